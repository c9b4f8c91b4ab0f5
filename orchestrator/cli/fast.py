"""Fast paths: the plainest forms of a command, run without loading the CLI framework.

`orch verify REF --platform ...` is run in scripts and CI loops, and typer costs about a third
of its time. Only an exact, simple form is taken here (known options, each with its value);
anything else (--help, global options, a misspelt flag) returns None and goes through typer,
which parses it and reports errors as usual. Both call the same core (cli/verify_run.py).
"""

from __future__ import annotations

from typing import cast

from orchestrator.cli.verify_run import VerifyArgs, run_verify

_VERIFY_VALUES = {"--platform": "platforms", "--profile": "profile", "-p": "profile",
                  "--config-mismatch": "config_mismatch"}
_VERIFY_FLAGS = {"--strict": "strict", "--deep": "deep", "--json": "as_json", "--allow-duplicates": "allow_duplicates"}


def verify_args(argv: list[str]) -> VerifyArgs | None:
    """`verify REF [--platform LIST]... [--profile P] [--config-mismatch M] [--strict] [--deep]
    [--allow-duplicates] [--json]`, or None for anything else."""
    if len(argv) < 2 or argv[0] != "verify":
        return None
    ref, rest = None, argv[1:]
    values: dict[str, object] = {"platforms": []}
    while rest:
        word = rest.pop(0)
        name, has_value, value = word.partition("=")
        if name in _VERIFY_VALUES:
            if not has_value:
                if not rest or rest[0].startswith("-"):
                    return None
                value = rest.pop(0)
            key = _VERIFY_VALUES[name]
            if key == "platforms":
                cast("list[str]", values["platforms"]).append(value)
            elif key in values:
                return None  # given twice: let typer decide
            else:
                values[key] = value
        elif word in _VERIFY_FLAGS and not has_value:
            values[_VERIFY_FLAGS[word]] = True
        elif not word.startswith("-") and ref is None:
            ref = word
        else:
            return None
    if ref is None:
        return None
    values["platforms"] = tuple(values["platforms"])  # type: ignore[arg-type]
    return VerifyArgs(ref=ref, **values)  # type: ignore[arg-type]


def run(argv: list[str]) -> int | None:
    """The exit code of a command run on a fast path, or None when typer should run it."""
    args = verify_args(argv)
    if args is None:
        return None
    from orchestrator import interrupts
    from orchestrator.cli.output import echo, print_error
    from orchestrator.errors import OrchError

    interrupts.install()
    try:
        return run_verify(args)
    except OrchError as exc:
        return print_error(exc, as_json=args.as_json)
    except interrupts.Interrupted as exc:
        echo(f"orch: {exc.message}", err=True)
        return exc.exit_code

