"""Fast paths: the plainest forms of a command, run without loading the CLI framework.

`orch verify REF --platform ...` is run in scripts and CI loops, and `orch release DIR...` ends
every multi-runner release; typer costs about a third of their time. Only an exact, simple form
is taken here (known options, each with its value; for release, also -q/-v first); anything else
(--help, other global options, a misspelt flag) returns None and goes through typer, which parses
it and reports errors as usual. Both call the same cores (cli/verify_run.py, cli/release_run.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from orchestrator.cli.release_run import ReleaseArgs, run_release_parts

if TYPE_CHECKING:  # loaded when a verify is taken: a release does not pay for it
    from orchestrator.cli.verify_run import VerifyArgs

_VERIFY_VALUES = {"--platform": "platforms", "--profile": "profile", "-p": "profile",
                  "--config-mismatch": "config_mismatch", "--key": "key",
                  "--require-attestations": "require_attestations", "--certificate-identity": "identity",
                  "--certificate-oidc-issuer": "issuer"}
_VERIFY_FLAGS = {"--strict": "strict", "--deep": "deep", "--json": "as_json", "--allow-duplicates": "allow_duplicates"}


_RELEASE_VALUES = {"--platform": "platforms", "--profile": "profile", "-p": "profile", "-t": "tags", "--tag": "tags",
                   "--tag-rule": "tag_rules", "--image": "images", "--flavor": "flavor", "--report": "report",
                   "--output-env": "output_env", "--metadata-file": "metadata_file", "--sign-key": "sign_key"}
_RELEASE_FLAGS = {"--deep": "deep", "--dry-run": "dry_run", "--json": "as_json", "--sign": "sign"}
_RELEASE_LISTS = ("platforms", "tags", "tag_rules", "images", "flavor")


def _options(words: list[str], takes_value: dict[str, str], flags: dict[str, str], lists: tuple[str, ...]
             ) -> tuple[dict[str, object], list[str]] | None:
    """Options by name (`--name value` or `--name=value`; a name in `lists` may be repeated) and
    the words that are no option; None when anything is unknown, doubled or missing its value."""
    values: dict[str, object] = {key: [] for key in lists}
    positional: list[str] = []
    rest = list(words)
    while rest:
        word = rest.pop(0)
        name, has_value, value = word.partition("=")
        if name in takes_value:
            if not has_value:
                if not rest or rest[0].startswith("-"):
                    return None
                value = rest.pop(0)
            key = takes_value[name]
            if key in lists:
                cast("list[str]", values[key]).append(value)
            elif key in values:
                return None  # given twice: let typer decide
            else:
                values[key] = value
        elif word in flags and not has_value:
            values[flags[word]] = True
        elif not word.startswith("-"):
            positional.append(word)
        else:
            return None
    return {key: tuple(v) if key in lists else v for key, v in values.items()}, positional  # type: ignore[arg-type]


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
    parsed = _options(argv[1:], _RELEASE_VALUES, _RELEASE_FLAGS, _RELEASE_LISTS)
    if parsed is None or not parsed[1]:
        return None
    values, directories = parsed
    return ReleaseArgs(directories=tuple(directories), **values, quiet=quiet), verbose  # type: ignore[arg-type]


def verify_args(argv: list[str]) -> VerifyArgs | None:
    """`verify REF [--platform LIST]... [--profile P] [--config-mismatch M] [--strict] [--deep]
    [--allow-duplicates] [--json] [--key PUB] ...`, or None for anything else."""
    if len(argv) < 2 or argv[0] != "verify":
        return None
    parsed = _options(argv[1:], _VERIFY_VALUES, _VERIFY_FLAGS, ("platforms",))
    if parsed is None or len(parsed[1]) != 1:
        return None
    values, (ref,) = parsed
    from orchestrator.cli.verify_run import VerifyArgs

    return VerifyArgs(ref=ref, **values)  # type: ignore[arg-type]


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
