"""The blobs of earlier exports, kept in orch's state directory so that an export writes only
what changed.

The docker driver cannot push by digest, so orch has buildx write an OCI layout (`tar=false`)
and uploads it. BuildKit skips a blob the layout's directory already holds (the client's
content store answers "already exists"), so before a build the run's layout is seeded with hard
links to the blobs kept from earlier runs (no copy: the same inodes), and after it the blobs it
wrote are linked into the store. A no-op publish then exports manifests and configs only, and
the disk a publish adds is what changed. The run's layout is removed when the run ends.

The store is pruned after each publish: blobs not used for MAX_AGE_DAYS, then the least recently
used until it holds at most ORCH_BLOB_STORE_MAX bytes (default 10 GiB; `0` keeps nothing, which
turns the store off). Use is the file's modification time, touched when an export's image uses the blob.
Hard links need the layout and the store on one filesystem: both live under the state
directory; where linking fails (another filesystem, no permission) a run exports in full, as
without the store. A layout outside the state directory (staged in the temporary directory
because the state directory could not take it, publish.stage) is neither seeded nor kept: the
store is bypassed for that run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.model.mediatypes import INDEX_TYPES, MANIFEST_TYPES
from orchestrator.state import holds, state_dir

DEFAULT_MAX_BYTES = 10 << 30
MAX_AGE_DAYS = 14
_SHA256 = Path("blobs") / "sha256"


def store_dir() -> Path:
    return state_dir() / "blobs" / "sha256"


def max_bytes() -> int:
    """ORCH_BLOB_STORE_MAX in bytes (plain, or with K/M/G), else the default."""
    text = os.environ.get("ORCH_BLOB_STORE_MAX", "").strip().upper()
    if not text:
        return DEFAULT_MAX_BYTES
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("KMGB") or "0") * scale)
    except ValueError:
        return DEFAULT_MAX_BYTES


def seed(layout: str) -> int:
    """Link every kept blob into `layout` before buildx exports into it; the number linked."""
    store = store_dir()
    if max_bytes() == 0 or not store.is_dir() or not holds(layout):
        return 0
    target = Path(layout) / _SHA256
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:
        return 0  # buildx will say what is wrong with the directory
    linked = 0
    for blob in store.iterdir():
        try:
            os.link(blob, target / blob.name)
            linked += 1
        except FileExistsError:
            continue
        except OSError:
            return linked  # another filesystem, or not allowed: this run exports in full
    return linked


@dataclass(frozen=True)
class Exported:
    """What an export wrote, beside what it found kept from earlier runs."""

    written: int = 0
    written_bytes: int = 0
    reused: int = 0
    bypassed: bool = False  # the layout was outside the state directory: the store took no part

    def __str__(self) -> str:
        kept = "the blob store (cache) bypassed this run" if self.bypassed else f"{self.reused} kept from earlier runs"
        return f"the export wrote {self.written} blob{'s' if self.written != 1 else ''} ({self.written_bytes} bytes); {kept}"


def _reachable(layout: Path) -> set[str] | None:
    """The blob names (hex) the layout's images use: its indexes and manifests, and their
    configs and layers (leaves, never read). None when the layout cannot be read."""
    try:
        pending: list[dict[str, Any]] = list(json.loads((layout / "index.json").read_text()).get("manifests") or [])
        found: set[str] = set()
        while pending:
            descriptor = pending.pop()
            name = str(descriptor.get("digest", "")).removeprefix("sha256:")
            if name in found:
                continue
            found.add(name)
            if descriptor.get("mediaType") in (*INDEX_TYPES, *MANIFEST_TYPES):
                parsed = json.loads((layout / _SHA256 / name).read_bytes())
                pending += [child for child in (*(parsed.get("manifests") or []), parsed.get("config") or {},
                                                *(parsed.get("layers") or [])) if isinstance(child, dict)]
        return found
    except (OSError, ValueError, AttributeError):
        return None


def keep(layout: str) -> Exported:
    """Link the blobs the export wrote into the store (those it skipped are there already: a
    seeded blob is a second link to the store's file, a written one the only link), and mark
    the kept blobs the image uses as used now (what pruning goes by; seeding links every kept
    blob into the layout, used or not)."""
    source = Path(layout) / _SHA256
    if not source.is_dir():
        return Exported()
    used = _reachable(Path(layout))
    now = time.time()
    store = store_dir()
    bypassed = not holds(layout)
    keeping = bool(max_bytes()) and not bypassed
    try:
        if keeping:
            store.mkdir(parents=True, exist_ok=True)
    except OSError:
        keeping = False
    written = written_bytes = reused = 0
    for blob in source.iterdir():
        try:
            stat = blob.stat()
        except OSError:
            continue
        if stat.st_nlink > 1:
            if used is None or blob.name in used:
                reused += 1
                try:
                    os.utime(blob, (now, now))  # the same inode as the store's: used, so pruned last
                except OSError:
                    pass
            continue
        written, written_bytes = written + 1, written_bytes + stat.st_size
        if keeping and len(blob.name) == 64:
            try:
                os.link(blob, store / blob.name)
            except FileExistsError:
                continue
            except OSError:
                pass
    return Exported(written, written_bytes, reused, bypassed)


def prune(now: float | None = None) -> int:
    """Drop blobs unused for MAX_AGE_DAYS, then the least recently used down to max_bytes();
    the bytes freed. A blob a running publish has linked stays readable there (a hard link)."""
    store = store_dir()
    now = now if now is not None else time.time()
    entries = []
    try:  # runs as a publish ends, after its result: it never fails it
        for blob in store.iterdir():
            try:
                stat = blob.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, blob))
    except OSError:
        return 0
    entries.sort()  # least recently used first
    total = sum(size for _, size, _ in entries)
    limit, oldest = max_bytes(), now - MAX_AGE_DAYS * 86400
    freed = 0
    for used, size, blob in entries:
        if used >= oldest and total - freed <= limit:
            break
        blob.unlink(missing_ok=True)
        freed += size
    return freed
