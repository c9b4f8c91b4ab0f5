"""What per-arch builds staged, kept in orch's state directory so a rerun builds only what is missing.

Each platform's digest is recorded under a fingerprint of its inputs (its build
spec, and the build context's file names, sizes and mtimes); a rerun reuses a
platform only when the fingerprint matches and the repository still holds
that digest.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from orchestrator.model.platform import Platform, format_all
from orchestrator.model.references import Reference
from orchestrator.state import forget_record, read_record, write_record


def context_fingerprint(context: str, dockerfile: str | None) -> str | None:
    """A hash of the build context's file names, sizes and mtimes (and the Dockerfile's).
    None for remote contexts (a URL may move): those are always rebuilt."""
    if "://" in context or not Path(context).is_dir():
        return None
    import hashlib

    digest = hashlib.sha256()
    root = Path(context)
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != ".git")  # the revision is a label already
        for name in sorted(files):
            path = Path(directory) / name
            try:
                stat = path.lstat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    if dockerfile:
        try:
            digest.update(Path(dockerfile).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def _record_name(repository: Reference, tag: str | None) -> str:
    key = f"{repository.name}:{tag}"
    import hashlib

    return f"per-arch/{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


class StagedRecord:
    """What each platform's build staged, by fingerprint; written as each build ends."""

    def __init__(self, repository: Reference, tag: str | None) -> None:
        self.name = _record_name(repository, tag)
        self._lock = threading.Lock()
        data = read_record(self.name)
        self.entries: dict[str, dict[str, str]] = data.get("platforms", {}) if isinstance(data, dict) else {}

    def get(self, platform: Platform) -> dict[str, str] | None:
        return self.entries.get(format_all(platform))

    def put(self, platform: Platform, fingerprint: str, digest: str) -> None:
        with self._lock:
            self.entries[format_all(platform)] = {"fingerprint": fingerprint, "digest": digest}
            write_record(self.name, {"platforms": self.entries})

    def forget(self) -> None:
        """After a promotion the record has done its job."""
        forget_record(self.name)
