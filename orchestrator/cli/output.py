"""Results to stdout: JSON for scripts, plain text for people; errors to stderr. No typer here, so
the typer-free fast paths (cli/fast.py) print exactly what the Typer commands print."""

from __future__ import annotations

import json
import sys
from typing import Any


def echo(text: str = "", *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")


def print_json(document: Any) -> None:
    echo(json.dumps(document, indent=2, sort_keys=False))


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
    echo(f"orch: error: {exc}", err=True)
    from orchestrator.ci_facts import on_github, workflow_command

    if on_github():
        echo(workflow_command("error", str(exc)), err=True)
    if as_json:
        print_json({"error": exc.message, "fix": exc.fix, "exit_code": int(exc.exit_code)})
    return int(exc.exit_code)


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for JSON output (before any `--`)."""
    words = argv[:argv.index("--")] if "--" in argv else argv
    return "--json" in words
