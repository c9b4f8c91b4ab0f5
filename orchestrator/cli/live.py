"""The live view of a build on a terminal: one row per platform (node, the step running, its own
elapsed time, whether QEMU runs it, state) redrawn in place instead of buildx's scroll. Plain lines
in CI and when piped (`--progress auto`); `--progress tty|plain|quiet` to choose.

As the terminal narrows, columns give way by priority (`layout`): QEMU first, then NODE, then
ELAPSED (then STATE, below ~40 columns); PLATFORM and STEP never. A platform's name is always
whole; the step is cut with an ellipsis to what is left."""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from orchestrator.docker.steps import StepLog
from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform
from orchestrator.patterns import on_first_use
from orchestrator.redact import mask
from orchestrator.report.console import Console

PROGRESS = ("auto", "tty", "plain", "quiet")
_PREFIX = on_first_use(r"^\[(?P<label>[^\]]+)\] (?P<line>.*)$")
_EXPORT = on_first_use(r"^#\d+ (?:exporting|pushing|writing image|naming to)")  # every step of that call ran


def progress_mode(value: str) -> str:
    if value not in PROGRESS:
        raise BadInput(f'--progress "{value}" is not one of {", ".join(PROGRESS)}',
                       fix="pass --progress auto (a live view on a terminal, plain lines otherwise)")
    if value == "auto":
        from orchestrator.ci_facts import in_ci

        return "tty" if sys.stderr.isatty() and not in_ci() else "plain"
    return value


KEEP_LOGS = 20  # the newest build logs kept in the state directory


def log_to_file() -> str | None:
    """Under the live view only warnings and errors reach the terminal; every event goes to a file
    in the state directory, whose path this returns. When it cannot be written: one warning, the
    build goes on (and the terminal stays quiet)."""
    from orchestrator import logging
    from orchestrator.state import state_dir

    folder = state_dir() / "logs"
    path = folder / f"build-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in sorted(folder.glob("build-*.log"))[:-KEEP_LOGS + 1]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # opening the file says why
    reason = logging.to_file(str(path))
    if reason is None:
        return str(path)
    logging.get_logger().warning("build.log_unwritten", path=str(path), reason=reason,
                                 advice="the build goes on; its info lines are not kept (set ORCH_STATE_HOME to a "
                                        "writable directory, or pass -v to see them here)")
    return None


COLUMNS = ("PLATFORM", "NODE", "STEP", "ELAPSED", "QEMU", "STATE")
GIVE_WAY = ("QEMU", "NODE", "ELAPSED", "STATE")  # the order columns leave a narrowing terminal
MIN_STEP = 16  # the step's room below which the next column gives way: a keyword and its start
GAP = 2


def layout(width: int, natural: dict[str, int]) -> tuple[tuple[str, ...], int]:
    """The columns shown at `width` (their natural widths given) and the room left for STEP.

    A column gives way only while STEP would otherwise get less than MIN_STEP (or less than its
    whole text, when that is shorter)."""
    shown = list(COLUMNS)

    def room() -> int:
        return width - sum(natural[c] for c in shown if c != "STEP") - GAP * (len(shown) - 1)

    for name in GIVE_WAY:
        if room() >= min(MIN_STEP, natural["STEP"]):
            break
        shown.remove(name)
    return tuple(shown), max(1, min(natural["STEP"], room()))


class _Row:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.node = "-"
        self.note: str | None = None  # what the per-arch path said last (built, reused, failed ...)
        self.log: StepLog | None = None  # the buildx call's steps this platform is in
        self.last = "waiting"  # the last step seen, shown when no step is running
        self.emulated = False
        self.state = "waiting"
        self.started: float | None = None  # this platform's own clock: its first step
        self.last_ended: float | None = None
        self.ended: float | None = None

    def step(self) -> str:
        if self.note is not None:
            return self.note
        if self.log is not None:
            running = self.log.running(self.platform)
            if running is not None:
                return running.instruction
            upcoming = self.log.next_step(self.platform)
            if upcoming is not None:
                return upcoming
        return self.last

    def elapsed(self, now: float) -> str:
        if self.started is None:
            return "-"
        seconds = int((self.ended or now) - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"

    def cells(self, now: float) -> dict[str, str]:
        return {"PLATFORM": self.platform, "NODE": self.node, "STEP": " ".join(self.step().split()),
                "ELAPSED": self.elapsed(now), "QEMU": "emulated" if self.emulated else "", "STATE": self.state}


class LiveConsole(Console):
    """A Console that draws the per-platform table with rich while the build runs."""

    def __init__(self, platforms: tuple[Platform, ...], *, secrets: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(quiet=False, secrets=secrets)
        from orchestrator.builds.timings import step_log

        self.rows = {format_platform(p): _Row(format_platform(p)) for p in platforms}
        self.log = step_log(platforms)
        self.per_platform: dict[str, StepLog] = {}
        self.clock = clock
        self._live: Any = None
        self._rows_lock = threading.Lock()

    # -- the Console interface -----------------------------------------------------

    def say(self, text: str) -> None:
        """A buildx progress line moves a row, never scrolls; orch's own lines are printed. Known
        secret values are masked first: a row shows the start of a step's text, and rich wraps long
        lines, so masking after either could show part of a secret."""
        text = mask(text)
        prefixed = _PREFIX.match(text)
        if not (text.startswith("#") or (prefixed and prefixed.group("line").startswith("#"))):
            if text.strip() and not text.startswith("::"):
                self.line(text)
            return
        with self._rows_lock:
            if prefixed and prefixed.group("label") in self.rows:
                label, line = prefixed.group("label"), prefixed.group("line")
                log = self.per_platform.setdefault(label, self._log_for(label))
                rows = [self.rows[label]]
            else:
                log, line, rows = self.log, text, list(self.rows.values())
            self._read(log, line, rows)

    def _read(self, log: StepLog, line: str, rows: list[_Row]) -> None:
        step = log.feed(line)
        now = self.clock()
        if step is not None and step.platform in self.rows:
            row = self.rows[step.platform]
            row.log, row.last = log, step.instruction
            row.started = row.started or now
            row.emulated = row.emulated or step.emulated
            if step.failed:
                row.state, row.ended = "FAILED", now
            elif row.state in ("waiting", "built"):
                row.state, row.ended = "building", None
            if step.failed or step.cached or step.seconds:
                row.last_ended = now
        elif _EXPORT.match(line):  # the call's steps all ran: each platform's clock stops at its last step
            for row in rows:
                if row.state == "building" and row.log is log and log.running(row.platform) is None:
                    row.state, row.ended = "built", row.last_ended or now

    def building_on(self, node: str) -> None:
        with self._rows_lock:
            for row in self.rows.values():
                row.node = node

    def platform(self, label: str, text: str) -> None:
        """The per-arch path's own lines: building on a node, built, reused, failed."""
        with self._rows_lock:
            row = self.rows.get(label)
            if row is not None:
                node = re.search(r" on (\S+)", text)
                if text.startswith("building"):
                    row.state, row.started = "building", row.started or self.clock()
                    row.node = node.group(1) if node else row.node
                else:
                    row.state = text.split()[0]
                    row.note, row.ended = mask(text)[:70], row.ended or self.clock()

    def line(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(mask(text), markup=False, highlight=False, soft_wrap=True)
        else:
            super().line(text)

    # -- drawing ------------------------------------------------------------------------

    def _log_for(self, label: str) -> StepLog:
        from orchestrator.builds.timings import step_log
        from orchestrator.model.platform_parse import parse

        return step_log((parse(label),))

    def lines(self, width: int) -> list[tuple[str, bool]]:
        """The table at `width` columns, as (line, is the header) pairs."""
        now = self.clock()
        with self._rows_lock:
            rows = [row.cells(now) for row in self.rows.values()]
        natural = {name: max([len(name)] + [len(cells[name]) for cells in rows]) for name in COLUMNS}
        shown, step_width = layout(width, natural)
        widths = {**natural, "STEP": step_width}

        def fit(name: str, text: str) -> str:
            if len(text) > widths[name]:
                text = text[:max(0, widths[name] - 1)] + "\u2026"
            return text.ljust(widths[name])

        header = (" " * GAP).join(fit(name, name) for name in shown).rstrip()
        return [(header, True)] + [((" " * GAP).join(fit(name, cells[name]) for name in shown).rstrip(), False)
                                   for cells in rows]

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        for text, is_header in self.lines(options.max_width):
            yield Text(text, style="bold" if is_header else "", no_wrap=True, overflow="crop")

    def __enter__(self) -> LiveConsole:
        from rich.console import Console as RichConsole
        from rich.live import Live

        # The view itself is the renderable: each redraw (4 a second, on rich's thread) reads the
        # rows and the clock, so elapsed times tick between progress lines.
        self._live = Live(self, console=RichConsole(file=sys.stderr), refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._rows_lock:
            for row in self.rows.values():
                if row.state in ("building", "waiting", "built"):
                    row.state = "done" if exc[0] is None else "stopped"
                    row.ended = row.ended or self.clock()
        self._live.__exit__(*exc)  # draws the last frame
        self._live = None
