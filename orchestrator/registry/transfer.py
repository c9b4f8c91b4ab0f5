"""Copy an image (an index or a manifest, with everything it references) into a repository,
by digest: no tag is written. Blobs already there are skipped, blobs in another repository
of the same registry are mounted, the rest are streamed; manifests go up children first."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol

from orchestrator.model.mediatypes import INDEX_TYPES
from orchestrator.model.references import Reference
from orchestrator.registry.client import ManifestBytes, Registry
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
    digest: str
    size: int


def closure(source: Store, digest: str) -> tuple[list[ManifestBytes], list[Blob]]:
    """Every manifest under `digest` (children before their parents, the top one last) and every
    blob they reference (configs and layers), each once."""
    manifests: list[ManifestBytes] = []
    blobs: dict[str, Blob] = {}
    seen: set[str] = set()

    def visit(current: str) -> None:
        if current in seen:
            return
        seen.add(current)
        manifest = source.manifest_bytes(current)
        document: dict[str, Any] = json.loads(manifest.body)
        if manifest.media_type in INDEX_TYPES or "manifests" in document:
            for child in document.get("manifests") or []:
                visit(child["digest"])
        else:
            for blob in [document.get("config") or {}, *(document.get("layers") or [])]:
                if blob.get("digest"):
                    blobs.setdefault(blob["digest"], Blob(blob["digest"], int(blob.get("size", 0))))
        manifests.append(manifest)

    visit(digest)
    return manifests, list(blobs.values())


def copy_image(source: Store, digest: str, target: Registry, repository: str, *,
               mount_from: str | None = None, progress: Callable[[str], None] | None = None) -> ManifestBytes:
    """Copy the image `digest` from `source` into `repository` of `target`, by digest; returns
    the top manifest exactly as written. `mount_from` names a repository of the same registry
    that holds the blobs already (a registry-side mount instead of an upload)."""
    manifests, blobs = closure(source, digest)

    def put_blob(blob: Blob) -> bool:
        if target.blob_exists(repository, blob.digest):
            return False
        if mount_from and mount_from != repository and target.mount(repository, blob.digest, mount_from):
            return False
        target.upload(repository, blob.digest, blob.size, lambda: source.open_blob(blob.digest))
        return True

    sent = parallel_map(put_blob, blobs, UPLOADS_AT_ONCE)
    if progress:
        progress(f"{sum(sent)} of {len(blobs)} blobs uploaded, {len(manifests)} manifests")
    for manifest in manifests:  # children first: a registry refuses an index whose children it lacks
        target.put_manifest(Reference(target.host, repository), manifest)
    return manifests[-1]
