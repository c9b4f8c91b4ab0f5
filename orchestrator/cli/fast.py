"""Fast paths: the plainest forms of a command, run without loading the CLI framework.

`orch verify REF --platform ...` is run in scripts and CI loops, and `orch release DIR...` ends
every multi-runner release; typer costs about a third of their time. Only an exact, simple form
is taken here (known options, each with its value; for release, also -q/-v first); anything else
(--help, other global options, a misspelt flag) returns None and goes through typer, which parses
it and reports errors as usual. Both read the same option tables (cli/options.py: names,
defaults, environment variables) and call the same cores (cli/verify_run.py, cli/release_run.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from orchestrator.cli.options import RELEASE, VERIFY, Item, Option, flat, from_environment
from orchestrator.cli.release_run import ReleaseArgs, run_release_parts

if TYPE_CHECKING:  # loaded when a verify is taken: a release does not pay for it
    from orchestrator.cli.verify_run import VerifyArgs


def table(items: tuple[Item, ...]) -> dict[str, tuple[Option, Any]]:
    """Each name a command's options answer to (a switch's off name too): the option, and for a
    flag or switch the value the name gives (None: the name takes the next word)."""
    names: dict[str, tuple[Option, Any]] = {}
    for option in flat(items):
        flag = option.kind in ("flag", "switch")
        names.update({name: (option, True if flag else None) for name in option.names})
        if option.negative:
            names[option.negative] = (option, False)
    return names


def parse(words: list[str], items: tuple[Item, ...]) -> tuple[dict[str, Any], list[str]] | None:
    """Options by key (`--name value` or `--name=value`; a list may be repeated), those not given
    from their environment variable or default, and the words that are no option; None when
    anything is unknown, doubled or missing its value."""
    names = table(items)
    given: dict[str, Any] = {}
    positional: list[str] = []
    rest = list(words)
    while rest:
        word = rest.pop(0)
        name, has_value, value = word.partition("=")
        option, flag_value = names.get(name, (None, None))
        if option is not None and flag_value is None:
            if not has_value:
                if not rest or rest[0].startswith("-"):
                    return None
                value = rest.pop(0)
            if option.kind == "list":
                given.setdefault(option.key, []).append(value)
            elif option.key in given:
                return None  # given twice: let typer decide
            else:
                given[option.key] = value
        elif option is not None and not has_value:
            given[option.key] = flag_value
        elif not word.startswith("-"):
            positional.append(word)
        else:
            return None
    return {option.key: given[option.key] if option.key in given else from_environment(option)
            for option in flat(items)}, positional


def release_args(argv: list[str]) -> tuple[ReleaseArgs, bool] | None:
    """`[-q|-v] release DIR... [options]` (its options as `orch release --help` lists them), with
    whether -v was given; None for anything else."""
    quiet = verbose = False
    while argv and argv[0] in ("-q", "--quiet", "-v", "--verbose"):
        quiet, verbose = quiet or argv[0] in ("-q", "--quiet"), verbose or argv[0] in ("-v", "--verbose")
        argv = argv[1:]
    if len(argv) < 2 or argv[0] != "release" or (quiet and verbose):
        return None
    if os.environ.get("ORCH_LOG_FORMAT", "auto") not in ("", "auto", "console", "json"):
        return None  # typer says what is wrong with it
    parsed = parse(argv[1:], RELEASE)
    if parsed is None or not parsed[1]:
        return None
    given, directories = parsed
    return ReleaseArgs.of(directories, given, quiet=quiet), verbose


def verify_args(argv: list[str]) -> VerifyArgs | None:
    """`verify REF [options]` (its options as `orch verify --help` lists them), or None for
    anything else."""
    if len(argv) < 2 or argv[0] != "verify":
        return None
    parsed = parse(argv[1:], VERIFY)
    if parsed is None or len(parsed[1]) != 1:
        return None
    given, (ref,) = parsed
    from orchestrator.cli.verify_run import VerifyArgs

    return VerifyArgs.of(ref, given)


def run(argv: list[str]) -> int | None:
    """The exit code of a command run on a fast path, or None when typer should run it."""
    verify, release = verify_args(argv), release_args(argv)
    if verify is None and release is None:
        return None
    from orchestrator import interrupts
    from orchestrator.cli.output import echo, print_error
    from orchestrator.errors import OrchError

    interrupts.install()
    registry_settings_from_the_daemon()
    as_json = verify.as_json if verify is not None else bool(release and release[0].as_json)
    try:
        if verify is not None:
            from orchestrator.cli.verify_run import run_verify

            return run_verify(verify)
        assert release is not None
        from orchestrator.logging import DEBUG, INFO, WARNING, LogFormat, configure

        args, verbose = release
        configure(level=DEBUG if verbose else WARNING if args.quiet else INFO,
                  log_format=LogFormat(os.environ.get("ORCH_LOG_FORMAT") or "auto"))
        from orchestrator import state
        from orchestrator.logging import get_logger

        state.warn = lambda text: get_logger().warning("state.unwritable", advice=text)
        return run_release_parts(args)
    except OrchError as exc:
        return print_error(exc, as_json=as_json)
    except interrupts.Interrupted as exc:
        echo(f"orch: {exc.message}", err=True)
        return exc.exit_code


def registry_settings_from_the_daemon() -> None:
    """The registry client goes by the current daemon's registry settings (its insecure
    registries), read from the one `docker info` of the run (docker.probe), only when TLS fails."""
    from orchestrator.registry import reach

    reach.given_daemon_config(_current_daemon_registry_config)


def _current_daemon_registry_config() -> dict[str, Any]:
    from orchestrator.docker import probe
    from orchestrator.docker.runner import Engine

    return probe.engine_facts(Engine()).registry_config
