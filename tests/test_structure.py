"""House rules about the code itself that keep orch's start cheap: read from the source with
`ast`, so no module is imported to check them."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import REPO

PACKAGE = REPO / "orchestrator"


def _is_dataclass(decorator: ast.expr) -> bool:
    """`@dataclass`, `@dataclass(...)` or the same through `dataclasses.`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id == "dataclass"
    return isinstance(target, ast.Attribute) and target.attr == "dataclass"


def _undocumented_dataclasses(path: Path) -> list[str]:
    shown = path.relative_to(REPO)
    return [f"{shown}:{node.lineno} {node.name}"
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
            if isinstance(node, ast.ClassDef) and any(map(_is_dataclass, node.decorator_list))
            and not ast.get_docstring(node)]


def test_every_dataclass_has_a_docstring() -> None:
    missing = [found for path in sorted(PACKAGE.rglob("*.py")) for found in _undocumented_dataclasses(path)]
    assert not missing, (
        "a dataclass without a docstring makes `dataclasses` call inspect.signature() for its "
        "__doc__, which imports inspect (with ast, dis, tokenize) when the module is imported: "
        "give each a docstring saying what it is for:\n" + "\n".join(missing))
