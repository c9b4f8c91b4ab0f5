"""Words after `orch build ... --`: taken off the command line before the CLI parses it (click would
read them as more arguments), and handed to every buildx call the build makes."""

from __future__ import annotations

BUILDX_ARGS: tuple[str, ...] = ()


def split(argv: list[str]) -> list[str]:
    """The command line without `-- WORDS...`; the words are kept in BUILDX_ARGS."""
    global BUILDX_ARGS
    if "--" not in argv:
        return argv
    at = argv.index("--")
    BUILDX_ARGS = tuple(argv[at + 1:])
    return argv[:at]
