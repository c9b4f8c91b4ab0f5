"""Read an Inspection from where an image lives: a registry (orch's own client) or an OCI layout.

Both offer the same reads by digest (a Source: manifest, config, open_blob),
so one function reads the index, then every image's manifest and config
concurrently, for `inspect`, `verify`, `verify --deep` and build verification.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import IO, Any, Protocol

from orchestrator.errors import JobFailed
from orchestrator.image.model import Inspection, image_descriptors, inspection_of
from orchestrator.model.mediatypes import INDEX_TYPES
from orchestrator.model.references import Reference
from orchestrator.registry.bounds import MAX_INDEX_ENTRIES
from orchestrator.registry.client import ManifestBytes, Registry, RepositoryView
from orchestrator.registry.layout import PREFIX, Layout, is_layout_ref, split_layout_ref
from orchestrator.registry.verified import well_formed
from orchestrator.workers import parallel_map

CONCURRENCY = 8
BROKEN_INDEX_FIX = "the index is broken: rebuild or re-push it (and check what serves it)"


class Source(Protocol):
    """Manifests and blobs by digest: a registry repository or a local OCI layout."""

    def manifest(self, digest: str) -> dict[str, Any]: ...

    def config(self, digest: str) -> dict[str, Any]: ...

    def open_blob(self, digest: str) -> IO[bytes]: ...


def image_config(source: Source, manifest: dict[str, Any]) -> dict[str, Any] | str:
    """An image's config, or why it is not a valid one: it must be a JSON object naming the
    os and architecture the image is for (a registry serving `{}` must not pass)."""
    descriptor = manifest.get("config") or {}
    if not descriptor.get("digest"):
        return "the manifest names no config"
    try:
        config = source.config(descriptor["digest"])
    except ValueError:
        return f"config {descriptor['digest'][:19]} is not JSON"
    if not isinstance(config, dict):
        return f"config {descriptor['digest'][:19]} is not a JSON object"
    missing = [key for key in ("architecture", "os") if not isinstance(config.get(key), str) or not config[key]]
    if missing:
        return f"config {descriptor['digest'][:19]} has no {' and no '.join(missing)}"
    return config


def read_from(source: Source, ref: str, media_type: str, digest: str | None,
              document: dict[str, Any]) -> Inspection:
    """The Inspection of a document already read: its images' manifests and configs are read
    here, each checked against the digest that names it."""
    media_type = media_type or document.get("mediaType", "")
    if media_type not in INDEX_TYPES:
        return inspection_of(ref, media_type, digest, document, {digest or "": image_config(source, document)})

    def config_of(child: dict[str, Any]) -> tuple[str, dict[str, Any] | str]:
        return child["digest"], image_config(source, source.manifest(child["digest"]))

    check_index(ref, document)  # before any child is asked for
    # Many short waits on the wire: hand the GIL over sooner than every 5 ms meanwhile.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:  # the first child missing stops the rest
        configs = dict(parallel_map(config_of, image_descriptors(document), CONCURRENCY, fail_fast=True))
    finally:
        sys.setswitchinterval(switch)
    return inspection_of(ref, media_type, digest, document, configs)


def check_index(ref: str, document: dict[str, Any]) -> None:
    """An index's entries, checked before any is fetched: a list of at most MAX_INDEX_ENTRIES
    descriptors, each with a well-formed digest, a media type and size of the right kinds."""
    entries = document.get("manifests")
    if entries is None:
        return
    if not isinstance(entries, list):
        raise JobFailed(f"{ref}: the index's manifests is not a list", fix=BROKEN_INDEX_FIX)
    if len(entries) > MAX_INDEX_ENTRIES:
        raise JobFailed(f"{ref}: the index lists {len(entries)} entries; orch reads at most {MAX_INDEX_ENTRIES}",
                        fix=BROKEN_INDEX_FIX)
    for number, entry in enumerate(entries, 1):
        problem = descriptor_problem(entry)
        if problem:
            raise JobFailed(f"{ref}: entry {number} of the index is malformed: {problem}", fix=BROKEN_INDEX_FIX)


def descriptor_problem(entry: object) -> str | None:
    if not isinstance(entry, dict):
        return f"{str(entry)[:60]!r} is not a descriptor"
    if not well_formed(entry.get("digest")):
        return f'digest "{str(entry.get("digest"))[:80]}" is not sha256 or sha512 in lowercase hex of full length'
    if "mediaType" in entry and not isinstance(entry["mediaType"], str):
        return f"{entry['digest'][:19]}: mediaType is not text"
    size = entry.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return f"{entry['digest'][:19]}: size {str(size)[:20]!r} is not a byte count"
    if "platform" in entry and not isinstance(entry["platform"], dict):
        return f"{entry['digest'][:19]}: platform is not an object"
    return None


def read_image(ref: Reference, found: ManifestBytes | None = None, *,
               configs: Mapping[str, bytes] | None = None) -> Inspection:
    """What a registry reference holds, read straight from the registry API (no docker process).
    `found`: its manifest as Registry.manifest_bytes already read it from there (by digest, so its
    bytes are the digest's): only what it lists is read. `configs`: config blobs read from there
    already, by digest (each checked against it), not read again."""
    registry = Registry.of(ref)
    document, media_type, digest = registry.manifest(ref) if found is None else registry.parsed(ref, found)
    return read_from(RepositoryView(registry, ref.repository, configs), str(ref), media_type, digest or ref.digest,
                     document)


def read_layout(text: str) -> tuple[Inspection, Layout]:
    """What `oci-layout://DIR[:TAG]` holds, and the layout (for --deep)."""
    root, tag = split_layout_ref(text)
    layout = Layout(root)
    descriptor = layout.pick(tag)
    shown = f"{PREFIX}{root}" + (f":{tag}" if tag else "")
    inspection = read_from(layout, shown, descriptor.get("mediaType", ""), descriptor["digest"],
                           layout.manifest(descriptor["digest"]))
    return inspection, layout


__all__ = ["Source", "is_layout_ref", "read_from", "read_image", "read_layout"]
