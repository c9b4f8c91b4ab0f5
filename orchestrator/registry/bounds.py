"""Every bound on what orch reads from a registry or an OCI layout, in one place: what a registry
sends is hostile input, so each read is bounded in size and time before it is used.

- one answer that is not streamed (a manifest, a config, a token, an error body): at most
  `max_answer_bytes()`, 4 MiB (the distribution spec's manifest limit), raised with
  ORCH_MAX_MANIFEST_BYTES;
- silence: `stall_seconds()` for each read of the socket, 20 s (ORCH_REGISTRY_STALL_SECONDS),
  tried once more; one answer that is not streamed at most ANSWER_STALLS stall limits in all;
- Retry-After is honoured up to MAX_RETRY_AFTER seconds;
- an index lists at most MAX_INDEX_ENTRIES entries, judged before any is fetched;
- a streamed blob stops at the size its descriptor gives (verified.SizeBound), and JSON nested too
  deep is not JSON (verified.load_json);
- `orch verify --deep` reads at most MAX_BINARY_READ bytes of one binary (larger ones are judged
  by their header, HEADER_READ bytes) and follows at most MAX_LINKS symbolic links.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

MAX_ANSWER_BYTES = 4 * 1024 * 1024
STALL_SECONDS = 20.0
ANSWER_STALLS = 10
MAX_RETRY_AFTER = 5.0
MAX_INDEX_ENTRIES = 1024  # an index lists tens of images; thousands is a broken or hostile registry
MAX_BINARY_READ = 64 * 1024 * 1024
HEADER_READ = 64 * 1024
MAX_LINKS = 8

N = TypeVar("N", int, float)


def max_answer_bytes() -> int:
    return _setting("ORCH_MAX_MANIFEST_BYTES", MAX_ANSWER_BYTES, int)


def stall_seconds() -> float:
    return _setting("ORCH_REGISTRY_STALL_SECONDS", STALL_SECONDS, float)


def _setting(name: str, default: N, kind: Callable[[str], N]) -> N:
    """A bound from the environment, when it is a positive number; else the default."""
    try:
        value = kind(os.environ.get(name) or str(default))
    except ValueError:
        from orchestrator.errors import BadInput

        raise BadInput(f'{name} "{os.environ.get(name)}" is not a number', fix=f"set it to {default}, say") from None
    return value if value > 0 else default
