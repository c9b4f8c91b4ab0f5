"""What a reference really holds: index or single manifest, each entry's descriptor platform
beside its image config's own, attestations apart.

One model for `inspect`, `verify`, build verification and `manifest create`,
built from the documents themselves (the index or manifest, and each image's
config keyed by the digest of the manifest it belongs to), wherever they were
read from (image.read: a registry, an OCI layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.mediatypes import (
    ATTESTATION_TYPE,
    INDEX_TYPES,
    MANIFEST_TYPES,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
)
from orchestrator.model.platform import Platform, format_all
from orchestrator.model.platform_parse import normalize


@dataclass(frozen=True)
class Entry:
    """One image of an index (or the single manifest): the platform its descriptor claims beside
    the one its config says."""

    position: int  # index in the list, counting attestations
    digest: str
    media_type: str
    size: int
    platform: Platform | None  # what the index says (None for a single manifest)
    config: Platform | None  # what the image config says
    config_raw: dict[str, Any] | None
    config_problem: str | None = None  # why the config is not a valid image config

    @property
    def shown_platform(self) -> Platform | None:
        return self.platform or self.config

    @property
    def label(self) -> str:
        shown = self.shown_platform
        return format_all(shown) if shown else "unknown"


@dataclass(frozen=True)
class Attestation:
    """An attestation manifest of an index, and the image digest it refers to."""

    digest: str
    size: int
    refers_to: str | None


@dataclass(frozen=True)
class Inspection:
    """What a reference holds: an index or one manifest, its images and its attestations apart."""

    ref: str
    media_type: str
    digest: str | None
    entries: tuple[Entry, ...]
    attestations: tuple[Attestation, ...]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def kind(self) -> str:
        return INDEX_TYPES.get(self.media_type) or MANIFEST_TYPES.get(self.media_type) or self.media_type

    def entry_for(self, digest: str) -> Entry | None:
        return next((e for e in self.entries if e.digest == digest), None)

    def to_json(self) -> dict[str, Any]:
        def platform_json(p: Platform | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {"os": p.os, "architecture": p.architecture, "variant": p.variant, "os_version": p.os_version}

        by_digest = {e.digest: e for e in self.entries}
        return {
            "ref": self.ref,
            "kind": self.kind,
            "media_type": self.media_type,
            "digest": self.digest,
            "is_index": self.is_index,
            "entries": [
                {"platform": e.label, "digest": e.digest, "size": e.size, "media_type": e.media_type,
                 "descriptor_platform": platform_json(e.platform), "config_platform": platform_json(e.config)}
                for e in self.entries
            ],
            "attestations": [
                {"digest": a.digest, "size": a.size, "refers_to": a.refers_to,
                 "for_platform": by_digest[a.refers_to].label if a.refers_to in by_digest else None}
                for a in self.attestations
            ],
        }


def platform_from(data: Mapping[str, Any] | None) -> Platform | None:
    """The platform of a descriptor or an image config, normalized; None for attestations ("unknown")."""
    if not data or not data.get("architecture") or data.get("architecture") == "unknown":
        return None
    raw = Platform(
        os=str(data.get("os", "")),
        architecture=str(data["architecture"]),
        variant=data.get("variant") or None,
        os_version=data.get("os.version") or data.get("os_version") or None,
        os_features=tuple(data.get("os.features") or ()),
    )
    try:
        return normalize(raw)
    except BadInput:
        return raw  # an exotic platform is shown as written, not refused


def is_attestation(descriptor: Mapping[str, Any]) -> bool:
    return (descriptor.get("annotations") or {}).get(REFERENCE_TYPE) == ATTESTATION_TYPE


def image_descriptors(index: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An index's image entries: every child but the attestation manifests."""
    return [m for m in index.get("manifests") or [] if not is_attestation(m)]


def _config(found: dict[str, Any] | str | None) -> tuple[dict[str, Any] | None, str | None]:
    return (None, found) if isinstance(found, str) else (found, None)


def inspection_of(ref: str, media_type: str, digest: str | None, document: Mapping[str, Any],
                  configs: Mapping[str, dict[str, Any] | str | None]) -> Inspection:
    """An Inspection from an index (or a single manifest) and the image configs, each keyed
    by the digest of the manifest it belongs to (for a single manifest: its own digest); a
    config given as text is the reason it is not a valid image config."""
    if media_type not in INDEX_TYPES:
        config, problem = _config(configs.get(digest or ""))
        entry = Entry(0, digest or "", media_type, int(document.get("size", 0) or 0), None,
                      platform_from(config), config, problem)
        return Inspection(ref, media_type, digest, (entry,), ())
    entries = []
    attestations = []
    for position, descriptor in enumerate(document.get("manifests") or []):
        if is_attestation(descriptor):
            attestations.append(Attestation(descriptor["digest"], int(descriptor.get("size", 0)),
                                            (descriptor.get("annotations") or {}).get(REFERENCE_DIGEST)))
            continue
        config, problem = _config(configs.get(descriptor["digest"]))
        entries.append(Entry(position, descriptor["digest"], descriptor.get("mediaType", ""),
                             int(descriptor.get("size", 0)), platform_from(descriptor.get("platform")),
                             platform_from(config), config, problem))
    return Inspection(ref, media_type, digest, tuple(entries), tuple(attestations))
