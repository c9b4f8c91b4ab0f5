"""Regular expressions compiled on first use.

A module-level `re.compile` runs when its module is imported: a publish imports some forty of
them (~12 ms of a 2-CPU runner's time) and a publish that goes well uses about a third (the
others read failures, templates, secrets to mask). `on_first_use` gives a stand-in that compiles
its pattern the first time one of its methods is read and answers as the compiled pattern from
then on. Use it only where the pattern's methods are called (`X.match(...)`): `re.sub(X, ...)`
and `isinstance(X, re.Pattern)` want the compiled pattern itself.
"""

from __future__ import annotations

import re
from typing import Any, cast


class _OnFirstUse:
    __slots__ = ("_pattern", "_flags", "_compiled")

    def __init__(self, pattern: str, flags: int) -> None:
        self._pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        compiled = self._compiled
        if compiled is None:  # two threads may both compile it: the same pattern either way
            compiled = self._compiled = re.compile(self._pattern, self._flags)
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"on_first_use({self._pattern!r}, {self._flags!r})"


def on_first_use(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """`re.compile(pattern, flags)`, done when the pattern is first used."""
    return cast("re.Pattern[str]", _OnFirstUse(pattern, flags))
