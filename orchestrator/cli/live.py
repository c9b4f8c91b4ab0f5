"""The live view of a build on a terminal: one row per platform (node, current step, elapsed,
whether QEMU runs it, state) redrawn in place instead of buildx's scroll. Plain lines in CI and
when piped (`--progress auto`); `--progress tty|plain|quiet` to choose."""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any

from orchestrator.docker.steps import StepLog
from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform
from orchestrator.report.console import Console

PROGRESS = ("auto", "tty", "plain", "quiet")
_PREFIX = re.compile(r"^\[(?P<label>[^\]]+)\] (?P<line>.*)$")


def progress_mode(value: str) -> str:
    if value not in PROGRESS:
        raise BadInput(f'--progress "{value}" is not one of {", ".join(PROGRESS)}',
                       fix="pass --progress auto (a live view on a terminal, plain lines otherwise)")
    if value == "auto":
        from orchestrator.ci_facts import in_ci

        return "tty" if sys.stderr.isatty() and not in_ci() else "plain"
    return value


class _Row:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.node = "-"
        self.step = "waiting"
        self.emulated = False
        self.state = "waiting"
        self.started: float | None = None
        self.ended: float | None = None

    def elapsed(self) -> str:
        if self.started is None:
            return "-"
        return f"{(self.ended or time.monotonic()) - self.started:.0f}s"


class LiveConsole(Console):
    """A Console that draws the per-platform table with rich while the build runs."""

    def __init__(self, platforms: tuple[Platform, ...], *, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(quiet=False, secrets=secrets)
        from orchestrator.builds.timings import step_log

        self.rows = {format_platform(p): _Row(format_platform(p)) for p in platforms}
        self.log = step_log(platforms)
        self.per_platform: dict[str, StepLog] = {}
        self._live: Any = None
        self._rows_lock = threading.Lock()

    # -- the Console interface -----------------------------------------------------

    def say(self, text: str) -> None:
        """A buildx progress line moves a row, never scrolls; orch's own lines are printed."""
        prefixed = _PREFIX.match(text)
        if not (text.startswith("#") or (prefixed and prefixed.group("line").startswith("#"))):
            if text.strip() and not text.startswith("::"):
                self.line(text)
            return
        with self._rows_lock:
            if prefixed and prefixed.group("label") in self.rows:
                label = prefixed.group("label")
                log = self.per_platform.setdefault(label, self._log_for(label))
                step = log.feed(prefixed.group("line"))
            else:
                step = self.log.feed(text)
            if step is not None and step.platform in self.rows:
                row = self.rows[step.platform]
                row.started = row.started or time.monotonic()
                if step.failed:
                    row.state, row.ended = "FAILED", time.monotonic()
                elif not step.cached and not step.seconds:
                    row.step, row.emulated, row.state = step.instruction[:60], step.emulated, "building"
        self._refresh()

    def building_on(self, node: str) -> None:
        with self._rows_lock:
            for row in self.rows.values():
                row.node = node
        self._refresh()

    def platform(self, label: str, text: str) -> None:
        """The per-arch path's own lines: building on a node, built, reused, failed."""
        with self._rows_lock:
            row = self.rows.get(label)
            if row is not None:
                node = re.search(r" on (\S+)", text)
                if text.startswith("building"):
                    row.state, row.started = "building", row.started or time.monotonic()
                    row.node = node.group(1) if node else row.node
                else:
                    row.state = text.split()[0]
                    row.step, row.ended = text[:70], time.monotonic()
        self._refresh()

    def line(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, markup=False, highlight=False)
        else:
            super().line(text)

    # -- drawing ------------------------------------------------------------------------

    def _log_for(self, label: str) -> StepLog:
        from orchestrator.builds.timings import step_log
        from orchestrator.model.platform_parse import parse

        return step_log((parse(label),))

    def table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for name in ("PLATFORM", "NODE", "STEP", "ELAPSED", "QEMU", "STATE"):
            table.add_column(name, no_wrap=True)
        for row in self.rows.values():
            table.add_row(row.platform, row.node, row.step, row.elapsed(), "emulated" if row.emulated else "",
                          row.state)
        return table

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.table())

    def __enter__(self) -> LiveConsole:
        from rich.console import Console as RichConsole
        from rich.live import Live

        self._live = Live(self.table(), console=RichConsole(file=sys.stderr), refresh_per_second=4,
                          transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._rows_lock:
            for row in self.rows.values():
                if row.state in ("building", "waiting"):
                    row.state = "done" if exc[0] is None else "stopped"
                    row.ended = row.ended or time.monotonic()
        self._refresh()
        self._live.__exit__(*exc)
        self._live = None
