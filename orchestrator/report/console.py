"""Progress lines on stderr while a publish runs: whole lines, from several threads, unless quiet."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from orchestrator.redact import redact


class Console:
    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.secrets = secrets  # values scrubbed from every line (a RUN step may echo a build arg)
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Always shown (a failure's log tail under --quiet, say)."""
        text = redact(text, self.secrets) if self.secrets else text
        with self._lock:  # per-arch builds print from several threads: whole lines only
            self.stream.write(text + "\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        """Progress: shown unless quiet."""
        if not self.quiet:
            self.line(text)

    def platform(self, label: str, text: str) -> None:
        self.say(f"orch: {label:<14} {text}")

    def building_on(self, node: str) -> None:
        """The one call for every platform runs on this node (its builder's only one); plain
        progress names it in buildx's own first line, the live view in each row."""
