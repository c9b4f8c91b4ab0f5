"""Fast paths: the plainest forms of a command, run without loading the CLI framework.

`orch verify REF --platform ...` is run in scripts and CI loops, `orch release DIR...` ends
every multi-runner release, and `orch build` is every publish; typer (and building its command
tree) costs about a third of verify's time and ~0.1 s of CPU of every build. Only an exact, simple
form is taken here (known options, each with its value; for release and build, also -q/-v first,
and for build --log-format); anything else (--help, a misspelt flag, a value that is no number,
--bake) returns None and goes through typer, which parses it and reports errors as usual. Both
read the same option tables (cli/options.py: names, defaults, environment variables) and call the
same cores (cli/verify_run.py, cli/release_run.py, cli/build_run.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from orchestrator.cli.options import BUILD, BUILDX, RELEASE, VERIFY, Group, Item, Option, flat, from_environment

if TYPE_CHECKING:  # each loaded when its command is taken: the others do not pay for it
    from orchestrator.cli.release_run import ReleaseArgs
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
    from orchestrator.cli.release_run import ReleaseArgs

    return ReleaseArgs.of(directories, given, quiet=quiet), verbose


def _globals(argv: list[str]) -> tuple[dict[str, bool], str | None, list[str]] | None:
    """orch's own options in front of the command (cli.entry put them there): -q, -v and
    --log-format; None when they contradict or repeat."""
    flags = {"quiet": False, "verbose": False}
    log_format = None
    while argv:
        word, _, value = argv[0].partition("=")
        if argv[0] in ("-q", "--quiet", "-v", "--verbose"):
            flags["quiet" if argv[0] in ("-q", "--quiet") else "verbose"] = True
            argv = argv[1:]
        elif word == "--log-format" and log_format is None and (value or len(argv) > 1):
            log_format = value or argv[1]
            argv = argv[1:] if value else argv[2:]
        else:
            break
    return (flags, log_format, argv) if not (flags["quiet"] and flags["verbose"]) else None


BuildArgs = tuple[dict[str, Any], dict[str, Any], dict[str, bool], str]


def build_args(argv: list[str]) -> BuildArgs | None:
    """`[-q|-v] [--log-format F] build [CONTEXT] [options]` (its options as `orch build --help` lists
    them, but --bake): (its options by key, the groups' dataclasses by group name; buildx's
    pass-through options by key; the global flags; the log format), or None for anything else."""
    taken = _globals(argv)
    if taken is None or not taken[2] or taken[2][0] != "build":
        return None
    flags, log_format, argv = taken
    log_format = log_format or os.environ.get("ORCH_LOG_FORMAT") or "auto"
    parsed = parse(argv[1:], BUILD)
    if parsed is None or log_format not in ("auto", "console", "json"):
        return None
    values, positional = parsed
    if values["bake"]:
        return None  # a release of bake targets: the Typer command's
    if values["jobs"] is not None:
        try:
            values["jobs"] = int(values["jobs"])
        except ValueError:
            return None  # typer says it is no number
    passed = {option.key for option in BUILDX}
    given: dict[str, Any] = {"arguments": positional or None}
    for item in BUILD:
        if isinstance(item, Group):
            given[item.name] = item.of(values)
        elif item.key not in passed:
            given[item.key] = item.value(values)
    return given, {option.key: values[option.key] for option in BUILDX}, flags, log_format


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
    build = build_args(argv) if "build" in argv[:4] else None
    verify, release = (verify_args(argv), release_args(argv)) if build is None else (None, None)
    if verify is None and release is None and build is None:
        return None
    from orchestrator import interrupts
    from orchestrator.cli.output import echo, print_error
    from orchestrator.errors import OrchError

    interrupts.install()
    registry_settings_from_the_daemon()
    as_json = verify.as_json if verify is not None else bool(release and release[0].as_json) if release else \
        bool(build and build[0]["as_json"])
    try:
        if build is not None:
            return _run_build(*build)
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
        from orchestrator.cli.release_run import run_release_parts

        return run_release_parts(args)
    except OrchError as exc:
        return print_error(exc, as_json=as_json)
    except interrupts.Interrupted as exc:
        echo(f"orch: {exc.message}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        echo("orch: interrupted", err=True)
        return 130


def _run_build(given: dict[str, Any], buildx: dict[str, Any], flags: dict[str, bool], log_format: str) -> int:
    from orchestrator import state
    from orchestrator.cli.build_run import build_request, run_build
    from orchestrator.logging import DEBUG, INFO, WARNING, LogFormat, configure, get_logger

    configure(level=DEBUG if flags["verbose"] else WARNING if flags["quiet"] else INFO, log_format=LogFormat(log_format))
    state.warn = lambda text: get_logger().warning("state.unwritable", advice=text)
    run_build(flags, build_request(given, buildx), dry_run=given["dry_run"], as_json=given["as_json"],
              progress=given["progress"])
    return 0


def registry_settings_from_the_daemon() -> None:
    """The registry client goes by the current daemon's registry settings (its insecure
    registries), read from the one `docker info` of the run (docker.probe), only when TLS fails."""
    from orchestrator.registry import reach

    reach.given_daemon_config(_current_daemon_registry_config)


def _current_daemon_registry_config() -> dict[str, Any]:
    from orchestrator.docker import probe
    from orchestrator.docker.runner import Engine

    return probe.engine_facts(Engine()).registry_config
