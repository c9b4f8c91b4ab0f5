"""`orch manifest create`: a list from images that already exist, published through the one pipeline.

The sources are read by manifest-tool's rules, with orch's defaults where they differ:

* each image's config fills what the spec leaves out: the variant (when the
  config is for the same os and architecture), os.version and os.features, or
  the whole platform when the spec names none. Two Windows images of different
  releases are thus two entries.
* a source that is itself an index gives its entry for the spec's platform and
  that entry's attestations; `whole_index` lists every image in it, as
  manifest-tool does. A note says which.
* two entries for one platform (os, architecture, variant, os.version,
  os.features, after filling) are refused, as manifest-tool refuses them.
* images go in orch's order (lower ARM variants first, so a client that takes
  the first matching entry gets one its CPU runs) unless `keep_order`, with a
  note when that moved anything; attestations last.
* the list is a Docker manifest list or an OCI index as asked, else an OCI
  index when every image is OCI or annotations are given, else a Docker list.

orch writes the list itself (a mislabelled image is listed as what the spec
says), copies each child into the target repository by digest (blobs mounted,
same bytes), stages the list by digest, verifies it (a config that disagrees
with the spec is a warning: lists assembled from mislabelled legacy images are
what this is for), and only then moves the target and its tags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchestrator.errors import BadInput, JobFailed
from orchestrator.image.model import image_descriptors, is_attestation, platform_from
from orchestrator.image.verify import VerifyOptions
from orchestrator.interrupts import phase
from orchestrator.lists.manifest_spec import ManifestSpec, SpecEntry
from orchestrator.model.mediatypes import (
    DOCKER_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    REFERENCE_DIGEST,
)
from orchestrator.model.platform import Platform, format_all, oci_platform
from orchestrator.model.platform_match import sort_key
from orchestrator.model.platform_parse import normalize
from orchestrator.model.references import Reference
from orchestrator.publish.pipeline import Published, publish_staged
from orchestrator.publish.signing import Signing
from orchestrator.publish.stage import stage_index
from orchestrator.registry.client import ManifestBytes, Registry
from orchestrator.status import Status
from orchestrator.workers import parallel_map

MISLABELLED_FIX = "rebuild the mislabelled images with `docker buildx build --platform ...`"
WHOLE_INDEX_FLAG = "--whole-index"


@dataclass(frozen=True)
class ListOptions:
    """The choices `orch manifest create` leaves to the user: the list's media type, and
    manifest-tool's ways where orch's defaults differ (a whole source index, the spec's order)."""

    list_type: str | None = None  # "docker", "oci", or None: from the sources
    whole_index: bool = False  # a source index gives every image in it (manifest-tool's way)
    keep_order: bool = False  # the spec's order instead of orch's


@dataclass(frozen=True)
class Child:
    """One entry of the list: where the manifest is now, and its descriptor as listed."""

    source: Reference  # REPO@sha256:...
    descriptor: dict[str, Any]
    platform: Platform | None  # None for an attestation
    image: str  # the spec's image it came from, for messages


@dataclass(frozen=True)
class ListPlan:
    """The list `orch manifest create` will publish: its entries and their sources, its exact
    bytes, and the notes said to the user."""

    children: tuple[Child, ...]  # in list order: images, then attestations
    manifest: ManifestBytes
    notes: tuple[str, ...]

    @property
    def images(self) -> tuple[Child, ...]:
        return tuple(c for c in self.children if c.platform is not None)


def check_options(spec: ManifestSpec, options: ListOptions) -> None:
    """What can be refused before any registry is read."""
    if options.list_type is not None and options.list_type not in ("docker", "oci"):
        raise BadInput(f'--type "{options.list_type}" is not docker or oci',
                       fix="pass --type docker (a Docker manifest list) or --type oci (an OCI index)")
    if options.list_type == "docker" and spec.annotations:
        raise BadInput("a Docker manifest list carries no annotations, and the spec has "
                       f"{', '.join(k for k, _ in spec.annotations)}",
                       fix="pass --type oci for an OCI index, or drop the annotations")


def listed_platform(entry: SpecEntry, config: Platform | None, where: str) -> Platform:
    """The platform an image is listed as: the spec's, with what it leaves out taken from the config."""
    if entry.platform is None:
        if config is None:
            raise JobFailed(f'{where}: the spec names no platform for "{entry.image}" and its config names none',
                            fix="give the platform in the spec: {os: linux, architecture: amd64}")
        return config
    platform = entry.platform
    if config is None:
        return platform
    if "variant" not in entry.given and config.variant and (config.os, config.architecture) == (
            platform.os, platform.architecture):
        platform = normalize(replace(platform, variant=config.variant))
    if "os.version" not in entry.given and config.os_version:
        platform = replace(platform, os_version=config.os_version)
    if "os.features" not in entry.given and config.os_features:
        platform = replace(platform, os_features=config.os_features)
    return platform


def _image_child(registry: Registry, ref: Reference, found: ManifestBytes, entry: SpecEntry, where: str,
                 annotations: dict[str, str] | None = None) -> Child:
    config_digest = (found.document().get("config") or {}).get("digest")
    try:
        config = platform_from(registry.config(ref.repository, config_digest)) if config_digest else None
    except ValueError:
        config = None  # verify reports the unreadable config
    platform = listed_platform(entry, config, where)
    descriptor: dict[str, Any] = {"mediaType": found.media_type, "digest": found.digest, "size": len(found.body),
                                  "platform": oci_platform(platform)}
    if annotations:
        descriptor["annotations"] = annotations
    return Child(ref.with_digest(found.digest), descriptor, platform, str(entry.image))


def _chosen(images: list[dict[str, Any]], entry: SpecEntry, where: str) -> dict[str, Any]:
    """The image of a source index that the spec's platform names."""
    def listed(descriptor: dict[str, Any]) -> Platform | None:
        return platform_from(descriptor.get("platform"))

    if entry.platform is not None:
        wanted = entry.platform
        exact = [m for m in images if (p := listed(m)) and p.satisfies(wanted)]
        loose = [m for m in images if (p := listed(m)) and (p.os, p.architecture) == (wanted.os, wanted.architecture)]
        found = exact or (loose if "variant" not in entry.given and len(loose) == 1 else [])
        if found:
            return found[0]
    if len(images) == 1:
        return images[0]
    shown = ", ".join(format_all(p) for p in (listed(m) for m in images) if p)
    if entry.platform is None:
        raise JobFailed(f'{where}: "{entry.image}" is an index of {shown} and the spec names no platform',
                        fix=f"name the platform in the spec, or pass {WHOLE_INDEX_FLAG} to list every image in it")
    raise JobFailed(f'{where}: "{entry.image}" is an index of {shown}, without {format_all(entry.platform)}',
                    fix="name the single-platform image, or the index that holds this platform")


def _read_entry(registry: Registry, entry: SpecEntry, where: str, whole_index: bool
                ) -> tuple[list[Child], list[Child], list[str]]:
    """(images, attestations, notes) that one spec entry contributes."""
    found = registry.manifest_bytes(entry.image)
    media_type = found.media_type or found.document().get("mediaType", "")
    if media_type in MANIFEST_TYPES:
        return [_image_child(registry, entry.image, found, entry, where)], [], []
    if media_type not in INDEX_TYPES:
        raise JobFailed(f'{where}: "{entry.image}" is a {media_type or "document of no known type"}, '
                        "not an image or an index", fix="name an image (or an index of images)")
    document = found.document()
    images = image_descriptors(document)
    attestations = [m for m in document.get("manifests") or [] if is_attestation(m)]

    def child(descriptor: dict[str, Any]) -> Child:
        return Child(entry.image.with_digest(descriptor["digest"]), dict(descriptor),
                     None if is_attestation(descriptor) else platform_from(descriptor.get("platform")),
                     str(entry.image))

    if whole_index:
        unlisted = [m["digest"] for m in images if platform_from(m.get("platform")) is None]
        if unlisted:
            raise JobFailed(f'{where}: "{entry.image}" has an image with no platform ({unlisted[0][:19]})',
                            fix="name its images one by one in the spec, each with its platform")
        note = (f'{where}: "{entry.image}" is an index; all {len(images)} images in it are listed'
                f"{f' and its {len(attestations)} attestations' if attestations else ''} ({WHOLE_INDEX_FLAG})")
        return [child(m) for m in images], [child(a) for a in attestations], [note]
    chosen = _chosen(images, entry, where)
    reference = entry.image.with_digest(chosen["digest"])
    image = _image_child(registry, reference, registry.manifest_bytes(reference), entry, where, chosen.get("annotations"))
    attached = [a for a in attestations if (a.get("annotations") or {}).get(REFERENCE_DIGEST) == chosen["digest"]]
    notes = []
    if len(images) > 1:
        notes.append(f'{where}: "{entry.image}" is an index of {len(images)} images; orch lists its '
                     f"{format_all(image.platform)} image{' and its attestation' if attached else ''} "  # type: ignore[arg-type]
                     f"({WHOLE_INDEX_FLAG} lists all of them, as manifest-tool does)")
    return [image], [child(a) for a in attached], notes


def _platform_key(platform: Platform) -> tuple[str, ...]:
    """What makes two entries the same platform (manifest-tool's rule)."""
    return (*platform.key, platform.os_version or "", ".".join(platform.os_features))


def _refuse_duplicates(images: list[Child]) -> None:
    seen: dict[tuple[str, ...], Child] = {}
    for image in images:
        key = _platform_key(image.platform)  # type: ignore[arg-type]
        if key in seen:
            first = seen[key]
            raise BadInput(
                f'{format_all(image.platform)} is listed twice: "{first.image}" ({first.source.digest}) '  # type: ignore[arg-type]
                f'and "{image.image}" ({image.source.digest})',
                fix="keep one image per platform (images for different Windows releases differ by os.version: "
                    "give osversion in the spec when their configs do not say it)")
        seen[key] = image


def _ordered(images: list[Child], keep_order: bool) -> tuple[list[Child], list[str]]:
    if keep_order:
        return images, []
    ordered = sorted(images, key=lambda c: sort_key(c.platform))  # type: ignore[arg-type]  # stable
    if ordered == images:
        return images, []
    return ordered, [
        "order: orch lists " + ", ".join(format_all(c.platform) for c in ordered)  # type: ignore[arg-type]
        + " (lower ARM variants first, so a client that takes the first matching entry gets one its CPU runs); "
        "the spec had " + ", ".join(format_all(c.platform) for c in images)  # type: ignore[arg-type]
        + ". --keep-order keeps the spec's order"]


def list_media_type(requested: str | None, images: list[Child], annotations: tuple[tuple[str, str], ...]) -> str:
    if requested:
        return OCI_INDEX if requested == "oci" else DOCKER_LIST
    if annotations or all(c.descriptor.get("mediaType") == OCI_MANIFEST for c in images):
        return OCI_INDEX
    return DOCKER_LIST


def plan_list(registry: Registry, spec: ManifestSpec, options: ListOptions) -> ListPlan:
    """Read every source and write the list (nothing is pushed here)."""
    check_options(spec, options)
    read = parallel_map(
        lambda pair: _read_entry(registry, pair[1], f"manifests[{pair[0]}] ({pair[1].image})", options.whole_index),
        list(enumerate(spec.entries)), 4)
    images = [c for found in read for c in found[0]]
    attestations = [c for found in read for c in found[1]]
    notes = [*spec.notes, *(n for found in read for n in found[2])]
    _refuse_duplicates(images)
    images, order_notes = _ordered(images, options.keep_order)
    media_type = list_media_type(options.list_type, images, spec.annotations)
    children = (*images, *attestations)
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                                "manifests": [c.descriptor for c in children]}
    if spec.annotations:
        document["annotations"] = dict(spec.annotations)
    return ListPlan(children, ManifestBytes.from_document(document), (*notes, *order_notes))


def publish_list(spec: ManifestSpec, options: ListOptions = ListOptions(), *, deep: bool = False,
                 signing: Signing | None = None) -> tuple[ListPlan, Published]:
    """Read, copy each child into the target repository, stage the list by digest, verify
    (config mismatches warn), promote the target and its tags.
    Raises pipeline.VerificationFailed (nothing moved) when a check fails."""
    registry = Registry.of(spec.target)
    with phase("reading the images the spec names"):
        plan = plan_list(registry, spec, options)
    with phase("copying the images into the target repository"):
        moving = [c for c in plan.children if c.source.repository != spec.target.repository]
        registry.copy_manifests([(c.source, spec.target.with_digest(c.descriptor["digest"])) for c in moving])
        staged = stage_index(spec.target, plan.manifest)
    published = publish_staged(
        staged, (spec.target, *spec.tags),
        VerifyOptions(expected=tuple(c.platform for c in plan.images if c.platform), config_mismatch=Status.warn),
        deep=deep, fix=MISLABELLED_FIX, signing=signing,
    )
    return plan, published


def plan_lines(spec: ManifestSpec, options: ListOptions) -> list[str]:
    """What `publish_list` does, for --dry-run (no registry is read)."""
    from orchestrator.publish.promote import promotion_lines

    kind = {"docker": "a Docker manifest list", "oci": "an OCI index"}.get(
        options.list_type or "", "an OCI index if every image is OCI or annotations are given, else a Docker list")
    lines = ["# read each image; its config fills what the spec leaves out (variant, os.version, os.features)"
             + ("; a source index gives every image in it" if options.whole_index else
                "; a source index gives its entry for the spec's platform")]
    lines += [f"# copy {entry.image} (registry-side, by digest) into {spec.target.name}" for entry in spec.entries
              if entry.image.repository != spec.target.repository]
    lines.append(f"# write {kind}: one entry per platform, "
                 + ("in the spec's order" if options.keep_order else "in orch's order (lower ARM variants first)")
                 + ", attestations last" + (f"; annotations {', '.join(k for k, _ in spec.annotations)}"
                                            if spec.annotations else ""))
    lines.append(f"# stage the list in {spec.target.name} by digest (no tag)")
    known = [e.platform for e in spec.entries if e.platform is not None]
    platforms = ",".join(format_all(p) for p in (known if options.keep_order else sorted(known, key=sort_key)))
    lines.append(f"orch verify {spec.target.name}@<list digest> --platform {platforms or '<from the images>'} "
                 "--config-mismatch warn")
    return lines + promotion_lines(spec.target, (spec.target, *spec.tags))
