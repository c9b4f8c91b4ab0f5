"""The `orch` console script (and `python -m orchestrator`): a fast path where one applies, else the CLI."""

from __future__ import annotations

import sys

# Options of the `orch` command itself, also accepted after the subcommand (`orch build ... -q`).
GLOBAL_FLAGS = ("-v", "--verbose", "-q", "--quiet")
GLOBAL_VALUES = ("--log-format",)


def global_options_first(argv: list[str]) -> list[str]:
    """Move orch's own options found after the subcommand to the front, where the CLI reads
    them; nothing after `--` (words for buildx) is touched."""
    if not argv or argv[0].startswith("-"):
        return argv
    end = argv.index("--") if "--" in argv else len(argv)
    moved, kept, i = [], [], 0
    while i < end:
        word = argv[i]
        if word in GLOBAL_FLAGS or word.split("=", 1)[0] in GLOBAL_VALUES and "=" in word:
            moved.append(word)
        elif word in GLOBAL_VALUES and i + 1 < end:
            moved += [word, argv[i + 1]]
            i += 1
        else:
            kept.append(word)
        i += 1
    return moved + kept + argv[end:]


def main() -> None:
    """The command, its threads ended with it on every path (workers.command: helpers cancelled,
    everything joined), so the interpreter's own exit runs with no thread left. Output goes
    through streams a reader that left early cannot break (cli.output.keep_writing)."""
    if sys.argv[1:] == ["--version"]:  # answered before anything else is imported (~0.2 s of typer)
        _version()
        return
    import gc

    # Python collects its young objects after every 700 new ones, a default made for programs that
    # run for hours: orch's start makes ~40,000 (modules, classes, functions) that all live to its
    # end, and traversing them took ~30 collections and ~10 ms of a publish. At 50,000 a publish
    # runs none, and a long build still collects as it goes.
    gc.set_threshold(50_000, 10, 10)
    from orchestrator import codecache

    codecache.install()  # before any module with a dataclass is imported
    code: object = 0
    try:
        from orchestrator import workers
        from orchestrator.cli.output import keep_writing

        keep_writing()
        with workers.command():
            _main()
    except SystemExit as exc:
        code = exc.code
    finally:
        codecache.save()
        # Every object the command made is kept as it is for the exit: a collection then walks
        # none of them (~40 ms of a publish's end, with ~270 modules loaded).
        gc.freeze()
    _end(code)


def _end(code: object) -> None:  # never returns (typing is not imported for --version)
    """End as the interpreter ends a program that called sys.exit(code) (atexit's calls, a text
    code printed and exit 1, the streams flushed), once the command's threads are all joined,
    but without its last step: freeing every object and clearing every module one by one, ~8 ms
    of each command's end that no one needs once the process is gone. An exception other than
    SystemExit never gets here: Python reports it as always."""
    import atexit
    import os

    atexit._run_exitfuncs()
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed stream or a reader gone: nothing more to say
            pass
    os._exit((code or 0) & 0xFF)


def _version() -> None:
    """`orch --version`, as the CLI prints it; a reader that is gone or a closed stdout is no error
    (as keep_writing's streams)."""
    import os

    from orchestrator import __version__

    try:
        os.write(1, f"orch {__version__}\n".encode())
    except OSError:
        pass


def _main() -> None:
    from orchestrator.cli import fast, passthrough

    sys.argv[1:] = passthrough.split(global_options_first(sys.argv[1:]))
    if passthrough.BUILDX_ARGS and "build" not in sys.argv[1:2] + sys.argv[2:3]:
        from orchestrator.cli.output import print_error
        from orchestrator.errors import BadInput

        sys.exit(print_error(BadInput("words after -- are for `orch build` (passed to buildx build)",
                                      fix="drop the -- part, or use it with orch build")))
    code = fast.run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from orchestrator.cli.app import main as cli_main

    cli_main()
