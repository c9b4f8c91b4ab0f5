"""Where this machine's publishes left each blob, per registry: a publish to another repository
of the same registry mounts a blob from there (one request, no bytes sent; what buildx and
docker do from their own records) instead of uploading it again.

A record per registry, `blob-sources/HOST.json`: {digest: repository}, the newest MAX_ENTRIES. A
mount the registry refuses (the blob was deleted since, or the registry does not mount) falls
back to an upload (registry.transfer.copy_image).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable

from orchestrator.state import read_record, write_record

MAX_ENTRIES = 20_000
_lock = threading.Lock()  # per-arch uploads remember from several threads


def _name(host: str) -> str:
    return f"blob-sources/{hashlib.sha256(host.encode()).hexdigest()[:20]}.json"


def known(host: str) -> dict[str, str]:
    """{digest: repository} of the blobs publishes from here left on `host`, oldest first."""
    data = read_record(_name(host))
    pairs = data.get("blobs") if isinstance(data, dict) else None
    # A list of pairs, not a JSON object: records are written with sorted keys, which would lose
    # the order the trimming goes by.
    return {pair[0]: pair[1] for pair in pairs or [] if isinstance(pair, list) and len(pair) == 2
            and isinstance(pair[0], str) and isinstance(pair[1], str)}


def remember(host: str, repository: str, digests: Iterable[str]) -> None:
    """These blobs are in `repository` of `host` now (the oldest dropped beyond MAX_ENTRIES)."""
    with _lock:
        entries = known(host)
        for digest in digests:
            entries.pop(digest, None)
            entries[digest] = repository
        write_record(_name(host), {"blobs": [[d, r] for d, r in list(entries.items())[-MAX_ENTRIES:]]})
