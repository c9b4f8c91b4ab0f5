"""Progress lines on stderr while a publish runs: whole lines, from several threads, unless quiet."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Console:
    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        """Always shown (a failure's log tail under --quiet, say)."""
        with self._lock:  # per-arch builds print from several threads: whole lines only
            self.stream.write(text + "\n")
            self.stream.flush()

    def say(self, text: str) -> None:
        """Progress: shown unless quiet."""
        if not self.quiet:
            self.line(text)

    def platform(self, label: str, text: str) -> None:
        self.say(f"orch: {label:<14} {text}")
