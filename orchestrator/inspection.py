"""What a reference really holds: index or single manifest, each entry's
descriptor platform beside its image config's own, attestations apart.

One buildx call gets the index and every config:
``docker buildx imagetools inspect REF --format '{{json .}}'``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import BadInput, EnvironmentMissing, JobFailed
from orchestrator.platforms import Platform, format_all, normalize
from orchestrator.references import Reference
from orchestrator.workers import parallel_map


INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json": "OCI image index",
    "application/vnd.docker.distribution.manifest.list.v2+json": "Docker manifest list",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json": "OCI image manifest",
    "application/vnd.docker.distribution.manifest.v2+json": "Docker image manifest",
}
ATTESTATION_TYPE = "attestation-manifest"


class ImageNotFound(JobFailed):
    pass


@dataclass(frozen=True)
class Entry:
    position: int  # index in the list, counting attestations
    digest: str
    media_type: str
    size: int
    platform: Platform | None  # what the index says (None for a single manifest)
    config: Platform | None  # what the image config says
    config_raw: dict[str, Any] | None

    @property
    def label(self) -> str:
        shown = self.platform or self.config
        return format_all(shown) if shown else "unknown"


@dataclass(frozen=True)
class Attestation:
    digest: str
    size: int
    refers_to: str | None


@dataclass(frozen=True)
class Inspection:
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


def _platform(data: dict[str, Any] | None) -> Platform | None:
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


def image_descriptors(index: dict[str, Any]) -> list[dict[str, Any]]:
    """An index's image entries: every child but the attestation manifests."""
    return [m for m in index.get("manifests") or []
            if (m.get("annotations") or {}).get("vnd.docker.reference.type") != ATTESTATION_TYPE]


def config_key(descriptor: dict[str, Any]) -> str:
    """buildx keys the configs in its JSON by the descriptor's platform, formatted as os/arch/variant."""
    platform = descriptor.get("platform") or {}
    return "/".join(p for p in (platform.get("os"), platform.get("architecture"), platform.get("variant")) if p)


def parse_inspection(ref: str, document: dict[str, Any]) -> Inspection:
    manifest = document.get("manifest") or {}
    media_type = manifest.get("mediaType", "")
    image = document.get("image")
    if media_type not in INDEX_TYPES:
        config = image if isinstance(image, dict) and "architecture" in image else None
        entry = Entry(0, manifest.get("digest", ""), media_type, int(manifest.get("size", 0)), None,
                      _platform(config), config)
        return Inspection(ref, media_type, manifest.get("digest"), (entry,), ())
    configs = image if isinstance(image, dict) else {}
    entries = []
    attestations = []
    for position, descriptor in enumerate(manifest.get("manifests") or []):
        annotations = descriptor.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == ATTESTATION_TYPE:
            attestations.append(Attestation(descriptor["digest"], int(descriptor.get("size", 0)),
                                            annotations.get("vnd.docker.reference.digest")))
            continue
        platform = _platform(descriptor.get("platform"))
        key = config_key(descriptor)
        config = configs.get(key) if isinstance(configs.get(key), dict) else None
        entries.append(Entry(position, descriptor["digest"], descriptor.get("mediaType", ""),
                             int(descriptor.get("size", 0)), platform, _platform(config), config))
    return Inspection(ref, media_type, manifest.get("digest"), tuple(entries), tuple(attestations))


def inspection_document(descriptor: dict[str, Any], top: dict[str, Any],
                        read_manifest: Callable[[str], dict[str, Any]], read_config: Callable[[str], dict[str, Any]],
                        concurrency: int = 8) -> dict[str, Any]:
    """The document `imagetools inspect --format '{{json .}}'` prints, built from blobs:
    the index (or manifest) and every image's config, keyed by platform as buildx keys them."""
    media_type = descriptor.get("mediaType") or top.get("mediaType", "")
    document: dict[str, Any] = {"manifest": {**top, "digest": descriptor["digest"], "mediaType": media_type,
                                             "size": descriptor.get("size", 0)}}
    if media_type not in INDEX_TYPES:
        document["image"] = read_config(top["config"]["digest"])
        return document
    children = image_descriptors(top)

    def config_of(child: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return config_key(child), read_config(read_manifest(child["digest"])["config"]["digest"])

    document["image"] = dict(parallel_map(config_of, children, concurrency))
    return document


def inspect_image(engine: Any, ref: Reference | str) -> Inspection:
    """Inspect through buildx; registry trouble becomes a plain error."""
    from orchestrator.errors import DockerCommandFailed

    shown = str(ref)
    try:
        document = engine.cli_json("buildx", "imagetools", "inspect", shown, "--format", "{{json .}}")
    except DockerCommandFailed as exc:
        raise classify_registry_error(shown, exc.stderr) from None
    return parse_inspection(shown, document)


def read_image(ref: Reference) -> Inspection:
    """The same Inspection as inspect_image, read straight from the registry API:
    no docker process, index and configs fetched concurrently (verify uses it)."""
    from orchestrator.registry_api import Registry

    registry = Registry(ref)
    top, media_type, digest = registry.manifest(ref)
    descriptor = {"mediaType": media_type or top.get("mediaType", ""), "digest": digest or ref.digest or "",
                  "size": 0}
    document = inspection_document(
        descriptor, top,
        lambda d: registry.manifest(ref.with_digest(d))[0],
        lambda d: registry.config(ref.repository, d),
    )
    return parse_inspection(str(ref), document)


def classify_registry_error(ref: str, stderr: str) -> JobFailed | EnvironmentMissing:
    text = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    lowered = stderr.lower()
    if ": not found" in lowered or "manifest unknown" in lowered or "name unknown" in lowered:
        return ImageNotFound(f'"{ref}" does not exist in the registry (no such tag or digest)',
                             fix="check the repository and tag; `orch inspect` shows what a reference holds")
    if "unauthorized" in lowered or "authentication required" in lowered or "401" in lowered or "denied" in lowered:
        registry = ref.split("/")[0]
        return EnvironmentMissing(f'the registry refused access to "{ref}": {text}',
                                  fix=f"log in first: `docker login {registry}`")
    if any(s in lowered for s in ("connection refused", "no such host", "i/o timeout", "dial tcp",
                                  "server gave http response to https client", "tls:")):
        return EnvironmentMissing(f'cannot reach the registry for "{ref}": {text}',
                                  fix="check that the registry is running and reachable (`orch doctor --registry HOST:PORT`)")
    return JobFailed(f'could not inspect "{ref}": {text}')
