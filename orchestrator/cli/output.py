"""Results to stdout: JSON for scripts, plain text for people."""

from __future__ import annotations

import json
from typing import Any

import typer


def print_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False))


def print_table(rows: list[list[str]], header: list[str] | None = None) -> None:
    table = ([header] if header else []) + rows
    if not table:
        return
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())
