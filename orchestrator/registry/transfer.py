"""Copy an image (an index or a manifest, with everything it references) into a repository,
by digest: no tag is written. Blobs already there are skipped, blobs in another repository
of the same registry are mounted, the rest are streamed; manifests go up children first."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, Protocol, cast

from orchestrator.model.mediatypes import INDEX_TYPES
from orchestrator.model.references import Reference
from orchestrator.registry.client import ManifestBytes, Registry
from orchestrator.registry.verified import SizeBound
from orchestrator.workers import parallel_map

UPLOADS_AT_ONCE = 4


class Store(Protocol):
    """Where an image is copied from: a local OCI layout, or a repository (RepositoryStore)."""

    def manifest_bytes(self, digest: str) -> ManifestBytes: ...

    def open_blob(self, digest: str) -> IO[bytes]: ...


class RepositoryStore:
    """A registry repository as a source to copy from (mounted when the target shares its registry)."""

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry, self.repository = registry, repository

    def manifest_bytes(self, digest: str) -> ManifestBytes:
        return self.registry.manifest_bytes(Reference(self.registry.host, self.repository, digest=digest))

    def open_blob(self, digest: str) -> IO[bytes]:
        return self.registry.blob(self.repository, digest)


@dataclass(frozen=True)
class Blob:
    """A layer or config an image references, to be copied into the target repository."""

    digest: str
    size: int


def _put_blob(source: Store, blob: Blob, target: Registry, repository: str,
              mount_from: str | Mapping[str, str] | None) -> int:
    """One blob into `repository`: nothing when it is there, a mount where a holder is known, else
    an upload; the bytes sent."""
    if target.blob_exists(repository, blob.digest):
        return 0
    holder = mount_from if isinstance(mount_from, str) else (mount_from or {}).get(blob.digest)
    if holder and holder != repository and target.mount(repository, blob.digest, holder):
        return 0
    target.upload(repository, blob.digest, blob.size,
                  lambda: cast(IO[bytes], SizeBound(source.open_blob(blob.digest), blob.size, blob.digest, target.host)))
    return blob.size


def copy_image(source: Store, digest: str, target: Registry, repository: str, *,
               mount_from: str | Mapping[str, str] | None = None, progress: Callable[[str], None] | None = None,
               placed: Callable[[list[str]], None] | None = None) -> ManifestBytes:
    """Copy the image `digest` from `source` into `repository` of `target`, by digest; returns
    the top manifest exactly as written. A manifest the repository holds already is skipped
    with everything under it (a registry accepts a manifest only once what it references is
    there): when that is the top one, nothing is sent. Each missing blob is sent once
    (children share blobs), then the manifests, a level at a time, children first.
    `mount_from` names a repository of the same registry that holds the blobs already, or
    {digest: repository} for some of them (a registry-side mount instead of an upload; a mount
    the registry refuses falls back to the upload). `placed` hears the blobs the repository
    holds once the copy is done."""
    here = Reference(target.host, repository)
    top = source.manifest_bytes(digest)
    levels: list[list[ManifestBytes]] = []  # manifests to PUT, by depth
    blobs: dict[str, Blob] = {}

    def held(child: str) -> bool:
        return target.head_digest(here.with_digest(child)) == child

    def visit(manifest: ManifestBytes, depth: int, known_missing: bool) -> bool:
        """Collect what `manifest` needs; False when the repository holds it (and so all of it)."""
        document: dict[str, Any] = json.loads(manifest.body)
        children = list(dict.fromkeys(c["digest"] for c in document.get("manifests") or [])) \
            if manifest.media_type in INDEX_TYPES or "manifests" in document else []  # each once: they repeat
        # One round trip asks for the manifest itself (unless known missing) and all its children.
        asked = ([] if known_missing else [manifest.digest]) + children
        answers = dict(zip(asked, parallel_map(held, asked, UPLOADS_AT_ONCE), strict=True))
        if answers.get(manifest.digest):
            return False
        for child in children:
            if not answers[child]:
                visit(source.manifest_bytes(child), depth + 1, True)
        if not children:
            for blob in [document.get("config") or {}, *(document.get("layers") or [])]:
                if blob.get("digest"):
                    blobs.setdefault(blob["digest"], Blob(blob["digest"], int(blob.get("size", 0))))
        while len(levels) <= depth:
            levels.append([])
        levels[depth].append(manifest)
        return True

    if not visit(top, 0, False):
        return top
    sent = parallel_map(lambda blob: _put_blob(source, blob, target, repository, mount_from), list(blobs.values()),
                        UPLOADS_AT_ONCE)
    for level in reversed(levels):  # the deepest first: a registry refuses an index whose children it lacks
        parallel_map(lambda manifest: target.put_manifest(here, manifest), level, UPLOADS_AT_ONCE)
    if placed:
        placed(list(blobs))
    if progress:
        progress(f"{sum(1 for s in sent if s)} blobs uploaded ({sum(sent)} bytes), "
                 f"{sum(len(level) for level in levels)} manifests")
    return top
