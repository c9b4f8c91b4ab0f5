"""Results to stdout: JSON for scripts, plain text for people; errors to stderr. No typer here, so
the typer-free fast paths (cli/fast.py) print exactly what the Typer commands print.

A reader that goes away (`orch build ... | head -c 1`) must not stop a publish halfway: the
console script writes both streams through `keep_writing`'s streams, which drop what nobody
reads any more and remember a write that failed for another reason (a full disk under
`--json > FILE`), so the command can say what was not written once its work is done. Every text written to them
has the secret values orch knows of masked first (redact.keep_secret), whoever writes it.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from typing import Any

from orchestrator.errors import JobFailed
from orchestrator.redact import mask, mask_document


def echo(text: str = "", *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(mask(text) + "\n")


def print_json(document: Any) -> None:
    echo(json.dumps(mask_document(document), indent=2, sort_keys=False))


def print_table(rows: list[list[str]], header: list[str] | None = None) -> None:
    table = ([header] if header else []) + rows
    if not table:
        return
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


def print_error(exc: Any, *, as_json: bool = False) -> int:
    """An OrchError as the one line (and fix) a user sees; returns its exit code. With --json,
    scripts also get it on stdout as {"error", "fix", "exit_code"}."""
    echo(f"orch: error: {mask(str(exc))}", err=True)
    from orchestrator.ci_facts import on_github, workflow_command

    if on_github():  # masked before it is escaped for the annotation
        echo(workflow_command("error", mask(str(exc))), err=True)
    if as_json:
        print_json({"error": exc.message, "fix": exc.fix, "exit_code": int(exc.exit_code)})
    return int(exc.exit_code)


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for JSON output (before any `--`)."""
    words = argv[:argv.index("--")] if "--" in argv else argv
    return "--json" in words


class _Sink(io.RawIOBase):
    """One of the process's output descriptors, written to until the first failure: a reader
    gone (EPIPE) is `gone`, anything else is kept in `error`; from then on writes are dropped."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd
        self.gone = False
        self.error: OSError | None = None

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def write(self, data: Any) -> int:
        size = len(memoryview(data).cast("B"))
        if self.gone or self.error is not None:
            return size
        try:
            return os.write(self.fd, data)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                self.gone = True
            else:
                self.error = exc
            return size


class _Masking(io.TextIOWrapper):
    """A text stream that masks the secret values orch knows of in each text written (a whole
    line, as everything orch prints is written)."""

    def write(self, text: str) -> int:
        super().write(mask(text))
        return len(text)


_sinks: dict[str, _Sink] = {}


def keep_writing() -> None:
    """Put stdout and stderr on streams a closed or failing output cannot stop (see above); the
    same encoding, error handling and buffering as before."""
    for name in ("stdout", "stderr"):
        old = getattr(sys, name)
        try:
            fd = old.fileno()
            old.flush()
        except (AttributeError, OSError, ValueError):
            continue  # no real descriptor (an embedding program's stream): left as it is
        sink = _sinks[name] = _Sink(fd)
        setattr(sys, name, _Masking(io.BufferedWriter(sink), encoding=old.encoding, errors=old.errors,
                                            line_buffering=old.line_buffering or name == "stderr"))


def stdout_failure() -> OSError | None:
    """Why what was printed on stdout did not all arrive, if it failed for a reason other than
    its reader leaving (a full disk, say); None when it was written or nobody reads it any more."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        return exc if isinstance(exc, OSError) and exc.errno != errno.EPIPE else None
    sink = _sinks.get("stdout")
    return sink.error if sink is not None else None


def unwritten_error(done: str, unwritten: list[tuple[str, OSError]]) -> JobFailed:
    """Exit 1 after the work was done (`done`: "published sha256:... and moved ..."), naming
    what could not be written, in one line."""
    missing = "; ".join(f"{what} ({exc.strerror or exc})" for what, exc in unwritten)
    return JobFailed(f"{done}, but these were not written: {missing}")
