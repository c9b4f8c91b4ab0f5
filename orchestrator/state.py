"""orch's state directory (what it remembers between runs) and atomic JSON records in it.

The state directory is a cache everywhere: nothing orch publishes depends on writing it. A write
that fails (read-only, full, not a directory) is said once per run and then left alone; each
record is written to a temporary file of its own and renamed into place, and the temporary file
is removed whatever happens, so two runs at once and a failed write leave no debris.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_said = False


def _say(text: str) -> None:
    sys.stderr.write(f"orch: warning: {text}\n")


# How a failed write is told (the command line puts it through its logger).
warn: Callable[[str], None] = _say


def state_dir() -> Path:
    """$ORCH_STATE_HOME, else $XDG_STATE_HOME/orch (~/.local/state/orch)."""
    if os.environ.get("ORCH_STATE_HOME"):
        return Path(os.environ["ORCH_STATE_HOME"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orch"


def holds(path: str | Path) -> bool:
    """Whether `path`, links resolved, lies in the state directory (a stage layout moved to the
    temporary directory is a link out of it, publish.stage)."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(state_dir()))


def read_record(name: str) -> Any:
    """A JSON record under the state directory, or None when absent or unreadable."""
    try:
        return json.loads((state_dir() / name).read_text())
    except (OSError, ValueError):
        return None


def exclusive_file(directory: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file of this user's alone (0600) in `directory`, opened for writing, and its path:
    tempfile.mkstemp's promise, named by process, thread and clock instead of tempfile's random
    letters (tempfile imports shutil, random, bz2 and lzma: ~4 ms of every run)."""
    for attempt in range(100):
        path = os.path.join(directory, f"{prefix}{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}-{attempt}"
                                       f"{suffix}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), path
        except FileExistsError:
            continue  # left by a killed run whose pid this one reuses
    raise FileExistsError(f"no new file name in {directory}")


def write_record(name: str, data: Any) -> bool:
    """Write a record atomically (a crash never leaves half a file); False, said once per run,
    when the state directory cannot take it."""
    global _said
    path = state_dir() / name
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = exclusive_file(path.parent, f".{path.name}.", ".tmp")
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)
        return True
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        if not _said:
            _said = True
            warn(f"the state directory {state_dir()} cannot be written ({exc.strerror or exc}); orch goes on "
                 "without remembering this run (rerun records, step times, blob sources): set ORCH_STATE_HOME to a "
                 "writable directory to keep them")
        return False


def forget_record(name: str) -> None:
    try:
        (state_dir() / name).unlink(missing_ok=True)
    except OSError:
        pass  # a cache that cannot be cleared is stale, not wrong: records are checked when read
