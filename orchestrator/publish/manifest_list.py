"""`orch manifest create`: a list from images that already exist, published through the one pipeline.

Each entry's image (or, from a list, its entry for the spec's platform) is
copied registry-side into the target repository by digest (same bytes, blobs
mounted); the list is made with `docker manifest create`/`annotate` (locally,
never pushed by docker), put in orch's order and staged by digest, then
verified (a config that disagrees with the spec is a warning: lists assembled
from mislabelled legacy images are what this is for) before the target and
its tags move. No staging tag is ever written.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import JobFailed
from orchestrator.image.model import image_descriptors, platform_from
from orchestrator.image.verify import VerifyOptions
from orchestrator.model.mediatypes import INDEX_TYPES
from orchestrator.model.platform import format_platform
from orchestrator.model.references import Reference
from orchestrator.publish.manifest_spec import ManifestSpec, SpecEntry
from orchestrator.publish.merge import MergeEntry, merge
from orchestrator.publish.pipeline import Published, publish_staged
from orchestrator.publish.stage import Staged
from orchestrator.registry.client import Registry
from orchestrator.status import Status

MISLABELLED_FIX = "rebuild the mislabelled images with `docker buildx build --platform ...`"


def child_manifest(registry: Registry, entry: SpecEntry, where: str) -> Reference:
    """The image manifest to list for an entry: the image itself, or from an index the
    entry matching the spec's platform (or its only image, e.g. beside an attestation)."""
    document, media_type, digest = registry.manifest(entry.image)
    if (media_type or document.get("mediaType")) not in INDEX_TYPES:
        return entry.image.with_digest(digest or entry.image.digest)
    images = image_descriptors(document)
    matching = [m for m in images if (listed := platform_from(m.get("platform"))) and listed.satisfies(entry.platform)]
    chosen = matching[0] if matching else images[0] if len(images) == 1 else None
    if chosen is None:
        listed = ", ".join(format_platform(p) for p in (platform_from(m.get("platform")) for m in images) if p)
        raise JobFailed(f'{where}: "{entry.image}" is a list of {listed}, without {format_platform(entry.platform)}',
                        fix="name the single-platform image, or the list that holds this platform")
    return entry.image.with_digest(chosen["digest"])


def stage_list(engine: Any, spec: ManifestSpec) -> Staged:
    """Copy each child into the target repository by digest (blobs mounted, same bytes), make
    the list in orch's order and stage it by digest. Nothing the user named moves here."""
    registry = Registry.of(spec.target)
    entries = []
    for entry in spec.entries:
        source = child_manifest(registry, entry, f"manifests for {format_platform(entry.platform)}")
        child = spec.target.with_digest(source.digest)  # type: ignore[arg-type]
        registry.copy_manifest(source, child)
        entries.append(MergeEntry(child, entry.platform))
    return merge(engine, "manifest", spec.target, entries)


def publish_list(engine: Any, spec: ManifestSpec, *, deep: bool = False) -> Published:
    """Stage, verify (config mismatches warn), promote the target and its tags.
    Raises pipeline.VerificationFailed (nothing moved) when a check fails."""
    staged = stage_list(engine, spec)
    return publish_staged(
        staged, (spec.target, *spec.tags),
        VerifyOptions(expected=tuple(e.platform for e in spec.entries), config_mismatch=Status.warn),
        deep=deep, fix=MISLABELLED_FIX,
    )
