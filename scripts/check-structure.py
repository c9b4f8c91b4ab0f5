#!/usr/bin/env python3
"""House rules import-linter does not check: every module in orchestrator/ says what it is for
in its first line (a docstring), none grows past MAX_LINES (one concern per module), and no
function past MAX_FUNCTION_LINES (one step per function; signature and docstring included)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_LINES = 400
MAX_FUNCTION_LINES = 60
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
        tree = ast.parse(text)
        if not text.startswith('"""') or not ast.get_docstring(tree):
            found.append(f"{shown}: the first line is not a docstring saying what the module is for")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{shown}:{node.lineno}: {node.name} is {length} lines (at most "
                                 f"{MAX_FUNCTION_LINES}): split it into named steps")
    return found


if __name__ == "__main__":
    listed = problems()
    for line in listed:
        print(line, file=sys.stderr)
    sys.exit(1 if listed else 0)
