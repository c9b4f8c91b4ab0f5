"""orch's state directory (what it remembers between runs) and atomic JSON records in it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def state_dir() -> Path:
    """$ORCH_STATE_HOME, else $XDG_STATE_HOME/orch (~/.local/state/orch)."""
    if os.environ.get("ORCH_STATE_HOME"):
        return Path(os.environ["ORCH_STATE_HOME"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orch"


def read_record(name: str) -> Any:
    """A JSON record under the state directory, or None when absent or unreadable."""
    try:
        return json.loads((state_dir() / name).read_text())
    except (OSError, ValueError):
        return None


def write_record(name: str, data: Any) -> None:
    """Write a record atomically: a crash never leaves half a file."""
    path = state_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


def forget_record(name: str) -> None:
    (state_dir() / name).unlink(missing_ok=True)
