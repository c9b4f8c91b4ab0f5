"""Waiting on events, never on the clock: a process's output lines, a condition, a deadline.

CI machines are busy, so a test never sleeps for a time it hopes is long enough. It waits
for the thing itself (a line orch printed, a file, a process's exit), up to a deadline that
only bounds a hang and says what was awaited when it passes.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Callable

# Long enough for a loaded 2-CPU machine; only reached when something hangs.
DEADLINE = 120.0


def wait_until(condition: Callable[[], object], what: str, timeout: float = DEADLINE, step: float = 0.05) -> object:
    """Check `condition` until it is true (returned) or the deadline passes (AssertionError naming `what`).

    For things that give no event of their own (a port that starts answering); `step` only
    spaces the checks, the deadline is what bounds the wait."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(step)


class Watched:
    """A running process whose stdout and stderr are read line by line as they come, so a test
    can wait for a line (`wait_for`) and still get everything at the end (`finish`)."""

    def __init__(self, args: list[str], **popen: object) -> None:
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        **popen)  # type: ignore[call-overload]
        self._lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in self._lines]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self, name: str) -> None:
        stream = getattr(self.process, name)
        for line in stream:
            with self._changed:
                self._lines[name].append(line)
                self._changed.notify_all()
        with self._changed:
            self._lines[name].append("")  # end of stream
            self._changed.notify_all()

    def text(self, name: str = "stderr") -> str:
        with self._changed:
            return "".join(self._lines[name])

    def wait_for(self, pattern: str, stream: str = "stderr", timeout: float = DEADLINE) -> re.Match[str]:
        """The first line matching `pattern` (a regex searched in each line), once it has been printed."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                lines = self._lines[stream]
                for line in lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(lines)
                if lines and lines[-1] == "":
                    raise AssertionError(f"the process ended without printing /{pattern}/ on {stream}:\n"
                                         f"{''.join(lines)[-3000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"waited {timeout:.0f} s for /{pattern}/ on {stream}:\n"
                                         f"{''.join(lines)[-3000:]}")
                self._changed.wait(left)

    def finish(self, timeout: float = 600) -> tuple[int, str, str]:
        """Wait for the exit and the end of both streams: (exit code, stdout, stderr)."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        return code, self.text("stdout"), self.text("stderr")
