"""Ctrl-C and SIGTERM: stop what can stop, finish what must not be left half done, and say which.

`install()` (the CLI does it) makes both signals raise Interrupted in the main
thread, so a build or a verification stops at once and nothing moves. Inside
`deferred()` (promotion) a signal is only noted: the block finishes (or rolls
back) and Interrupted is raised after it, with what became of the tags. A
second signal there aborts, after printing the state the tags are in.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

NAMES: dict[int, str] = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class Interrupted(BaseException):
    """Not an Exception: no `except Exception` may swallow a user's Ctrl-C."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM


class _State:
    def __init__(self) -> None:
        self.phase = "working"
        self.consequence = "no tag was changed"
        self.deferring = 0
        self.pending: int | None = None
        self.describe: Callable[[], str] | None = None


_state = _State()


def _name(signum: int) -> str:
    return NAMES.get(signum, f"signal {signum}")


def _handle(signum: int, _frame: FrameType | None) -> None:
    if _state.deferring:
        if _state.pending is None:
            _state.pending = signum
            sys.stderr.write(f"orch: {_name(signum)} received while {_state.phase}: finishing that first, so no tag "
                             "is left half moved (send it again to stop at once)\n")
            sys.stderr.flush()
            return
        where = _state.describe() if _state.describe else "unknown"
        raise Interrupted(signum, f"stopped by a second {_name(signum)} while {_state.phase}; the tags now:{where}")
    raise Interrupted(signum, f"interrupted by {_name(signum)} while {_state.phase}; {_state.consequence}")


def install() -> None:
    """SIGINT and SIGTERM raise Interrupted (in the main thread; a no-op elsewhere)."""
    try:
        for signum in NAMES:
            signal.signal(signum, _handle)
    except ValueError:
        pass  # not the main thread (an embedding program): leave its handlers alone


@contextmanager
def phase(what: str, consequence: str = "no tag was changed") -> Iterator[None]:
    """Name what orch is doing, for the message a signal prints."""
    before = (_state.phase, _state.consequence)
    _state.phase, _state.consequence = what, consequence
    try:
        yield
    finally:
        _state.phase, _state.consequence = before


@contextmanager
def deferred(what: str, describe: Callable[[], str]) -> Iterator[None]:
    """Run a block that must not stop halfway; a signal during it is raised once it is done,
    with `describe()` (what the block achieved) in the message. If the block fails, its own
    error (which says where each tag is) goes out instead."""
    outer_describe = _state.describe
    _state.deferring += 1
    _state.describe = describe
    signum = None
    try:
        with phase(what):
            yield
    finally:
        _state.deferring -= 1
        _state.describe = outer_describe
        if not _state.deferring:
            signum, _state.pending = _state.pending, None
    if signum is not None:
        raise Interrupted(signum, f"interrupted by {_name(signum)} while {what}; finished first:{describe()}")
