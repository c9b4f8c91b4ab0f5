#!/usr/bin/env python3
"""House rules import-linter does not check: every module in orchestrator/ says what it is for
in its first line (a docstring), and none grows past MAX_LINES (one concern per module)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 400
PACKAGE = Path(__file__).resolve().parent.parent / "orchestrator"
EXEMPT = {"__main__.py"}  # two lines that run the console script


def problems() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in EXEMPT:
            continue
        text = path.read_text()
        shown = path.relative_to(PACKAGE.parent)
        lines = text.count("\n")
        if lines > MAX_LINES:
            found.append(f"{shown}: {lines} lines (at most {MAX_LINES}): split it by concern")
        if not text.startswith('"""') or not ast.get_docstring(ast.parse(text)):
            found.append(f"{shown}: the first line is not a docstring saying what the module is for")
    return found


if __name__ == "__main__":
    listed = problems()
    for line in listed:
        print(line, file=sys.stderr)
    sys.exit(1 if listed else 0)
