"""manifest-tool's spec (`orch manifest create --spec` / `--from-args`), read and checked into a ManifestSpec.

The spec is manifest-tool's YAML::

    image: registry.example.com/app:1.0
    tags: [latest]
    annotations: {org.opencontainers.image.source: https://example.com/app}   # OCI index only
    manifests:
      - image: registry.example.com/app:1.0-arm32v7
        platform: {os: linux, architecture: arm, variant: v7}
      - image: registry.example.com/app:1.0-windows
        platform: {os: windows, architecture: amd64, osversion: 10.0.17763.1879, osfeatures: [win32k]}

read as manifest-tool reads it: every scalar is text (`architecture: 386`,
`tags: [1.10]`), the platform keys are the OCI Platform's as yaml.v3 names them
(`osversion`, `osfeatures`; orch's older `os.version`, `os.features` and
`features` are kept as aliases), and a platform may be left out for the image
to say. What the spec leaves out (variant, os.version, os.features) is filled
from each image's config in lists.manifest_list, which also decides duplicates
and order: here entries keep the spec's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_parse import parse, parse_all
from orchestrator.model.references import Reference, parse_reference

SPEC_FIELDS = ("image", "tags", "manifests", "annotations")
ENTRY_FIELDS = ("image", "platform")
OS_VERSION_KEYS = ("osversion", "os.version")  # manifest-tool's spelling first
FEATURE_KEYS = ("osfeatures", "os.features", "features")
PLATFORM_FIELDS = ("os", "architecture", "variant", *OS_VERSION_KEYS, *FEATURE_KEYS)
LIST_TYPES = ("docker", "oci")


@dataclass(frozen=True)
class SpecEntry:
    """One image of the spec's `manifests:`, with the platform the spec names for it (if any)."""

    image: Reference
    platform: Platform | None  # None: the spec leaves the platform to the image's config
    given: frozenset[str] = frozenset({"variant", "os.version", "os.features"})  # what the spec names itself


@dataclass(frozen=True)
class ManifestSpec:
    """A manifest-tool spec, read and checked: the list's reference, its tags, its images in the
    spec's order and its annotations."""

    target: Reference
    tags: tuple[Reference, ...]
    entries: tuple[SpecEntry, ...]  # in the spec's order
    annotations: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()  # what orch reads differently from manifest-tool, said once


def _fail(where: str, problem: str, fix: str) -> BadInput:
    return BadInput(f"{where}: {problem}", fix=fix)


def _reference(text: Any, where: str) -> Reference:
    if not isinstance(text, str) or not text:
        raise _fail(where, f'"{text}" is not an image reference', "write REGISTRY/REPOSITORY:TAG")
    return parse_reference(text)


def _one_of(value: dict[str, Any], keys: tuple[str, ...], where: str) -> tuple[str | None, Any]:
    present = [k for k in keys if k in value]
    if len(present) > 1 and len({repr(value[k]) for k in present}) > 1:
        raise _fail(where, f"{present[0]} and {present[1]} disagree ({value[present[0]]!r}, {value[present[1]]!r})",
                    f"keep one: {keys[0]} (manifest-tool's spelling)")
    return (present[0], value[present[0]]) if present else (None, None)


def _platform(value: Any, where: str) -> tuple[Platform | None, frozenset[str], list[str]]:
    """(the platform as the spec writes it, which optional fields it names, notes)."""
    example = "write platform: {os: linux, architecture: arm, variant: v7}"
    if value is None:
        return None, frozenset(), []
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping with os and architecture, got {value!r}", example)
    unknown = sorted(set(value) - set(PLATFORM_FIELDS))
    if unknown:
        raise _fail(where, f'unknown key "{unknown[0]}"', f"allowed: {', '.join(PLATFORM_FIELDS)}")
    os_name, arch = value.get("os") or "", value.get("architecture") or ""
    version_key, version = _one_of(value, OS_VERSION_KEYS, where)
    features_key, features = _one_of(value, FEATURE_KEYS, where)
    if not os_name and not arch:
        if len(value) and any(value.get(k) for k in value):
            raise _fail(where, "names no os and architecture but other fields",
                        "give os and architecture too, or leave platform out for the image's config to say")
        return None, frozenset(), []  # manifest-tool: the image says
    for key, text in (("os", os_name), ("architecture", arch)):
        if not text:
            raise _fail(f"{where}.{key}", f"missing or not text: {value.get(key)!r}",
                        "both os and architecture are required (e.g. os: linux, architecture: arm64)")
    variant = value.get("variant") or ""
    try:
        platform = parse("/".join(str(v) for v in (os_name, arch, variant) if v))
    except BadInput as exc:
        raise _fail(where, exc.message, exc.fix or "use an OCI platform (see `orch platforms list`)") from None
    notes = []
    if variant and platform.variant != variant and platform.architecture == "arm64":
        notes.append(f"{where}: {arch} variant {variant} is listed as {format_platform(platform)}, as buildx and "
                     "containerd write it (clients treat the two alike; manifest-tool keeps the variant)")
    features = features or []
    if isinstance(features, str) or not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise _fail(f"{where}.{features_key}", f"expected a list of text, got {features!r}",
                    "write osfeatures: [win32k]")
    if version is not None and not re.fullmatch(r"\d+(\.\d+)*", str(version)):
        raise _fail(f"{where}.{version_key}", f'"{version}" is not a version like 10.0.17763.1879',
                    "use the Windows build number as `docker manifest inspect -v` shows it")
    given = {name for name, present in (("variant", variant), ("os.version", version), ("os.features", features))
             if present}
    platform = replace(platform, os_version=str(version) if version else None, os_features=tuple(features))
    return platform, frozenset(given), notes


def _annotations(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise _fail(where, f"expected a mapping of names to text, got {value!r}",
                    "write annotations: {org.opencontainers.image.source: https://...}")
    return tuple((key, "" if text is None else str(text)) for key, text in value.items())


def spec_from_document(data: Any, source: str) -> ManifestSpec:
    if not isinstance(data, dict):
        raise _fail(source, "a manifest spec is a mapping with image, tags and manifests",
                    "see `orch manifest create --help` for the format (manifest-tool's)")
    unknown = sorted(set(data) - set(SPEC_FIELDS))
    if unknown:
        raise _fail(source, f'unknown key "{unknown[0]}"', f"allowed: {', '.join(SPEC_FIELDS)}")
    target = _reference(data.get("image"), f"{source}: image")
    if target.digest:
        raise _fail(f"{source}: image", f'"{target}" has a digest; the list is published to a tag', "drop @sha256:...")
    tags_value = data.get("tags") or []
    if not isinstance(tags_value, list):
        raise _fail(f"{source}: tags", f"expected a list, got {tags_value!r}", "write tags: [latest, '1']")
    tags = tuple(target.with_tag(str(t)) if ":" not in str(t) and "/" not in str(t) else _reference(t, "tags")
                 for t in tags_value)
    manifests = data.get("manifests")
    if not isinstance(manifests, list) or not manifests:
        raise _fail(f"{source}: manifests", "expected a non-empty list of {image, platform}",
                    "list each image with its platform")
    entries, notes = [], []
    for i, item in enumerate(manifests):
        where = f"{source}: manifests[{i}]"
        if not isinstance(item, dict):
            raise _fail(where, f"expected a mapping, got {item!r}", "write - image: ...\\n    platform: {...}")
        unknown = sorted(set(item) - set(ENTRY_FIELDS))
        if unknown:
            raise _fail(where, f'unknown key "{unknown[0]}"', "allowed: image, platform")
        image = _reference(item.get("image"), f"{where}.image")
        if image.registry != target.registry:
            raise _fail(f"{where}.image", f'"{image}" is on {image.registry}, the list on {target.registry}',
                        f"copy it first: docker buildx imagetools create -t {target.name}:SOMETAG {image}")
        platform, given, entry_notes = _platform(item.get("platform"), f"{where}.platform")
        entries.append(SpecEntry(image, platform, given))
        notes += entry_notes
    return ManifestSpec(target, tags, tuple(entries), _annotations(data.get("annotations"), f"{source}: annotations"),
                        tuple(notes))


def _text_loader() -> type:
    """PyYAML's safe loader with every scalar kept as its text, as manifest-tool (yaml.v3 into
    string fields) reads them: `architecture: 386` is "386", `tags: [1.10]` is "1.10"."""
    import yaml

    class TextLoader(yaml.SafeLoader):
        pass

    TextLoader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return TextLoader


def load_spec(path: Path) -> ManifestSpec:
    import yaml

    try:
        data = yaml.load(path.read_text(), Loader=_text_loader())  # a SafeLoader subclass
    except OSError as exc:
        raise BadInput(f'cannot read the spec "{path}": {exc.strerror}', fix="pass the path of a YAML spec") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise BadInput(f'"{path}{line}" is not valid YAML: {getattr(exc, "problem", exc)}',
                       fix="fix the YAML (indentation, quotes)") from None
    return spec_from_document(data, str(path))


def _written_parts(item: str) -> tuple[str, str, str]:
    """OS, ARCH and VARIANT as the user wrote them (manifest-tool fills its template with those:
    linux/arm64/v8 gives arm64v8), or orch's reading for an alias such as arm32v7."""
    parts = item.strip().split("/")
    if len(parts) in (2, 3) and all(parts):
        return parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    platform = parse(item)
    return platform.os, platform.architecture, platform.variant or ""


def parse_annotations(pairs: list[str]) -> dict[str, str]:
    """--annotations key=value (repeatable or comma-separated, as manifest-tool takes them)."""
    out = {}
    for pair in (p for text in pairs for p in text.split(",") if p):
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f'--annotations "{pair}" is not key=value',
                           fix="e.g. --annotations org.opencontainers.image.source=https://example.com/app")
        out[key] = value
    return out


def spec_from_args(platforms: list[str], template: str, target: str, tags: list[str],
                   annotations: dict[str, str] | None = None) -> ManifestSpec:
    """manifest-tool's `from-args`: one image per platform from a template in which ARCH, OS and
    VARIANT are each replaced once, in that order, by the platform as written."""
    if "ARCH" not in template:
        raise BadInput(f'--template "{template}" has no ARCH placeholder',
                       fix="write e.g. --template registry/app:1.0-ARCHVARIANT (OS, ARCH, VARIANT are replaced)")
    parse_all(platforms)  # bad names and empty items fail here, naming the list
    manifests = []
    for item in (i for text in platforms for i in text.split(",")):
        os_name, arch, variant = _written_parts(item)
        image = template.replace("ARCH", arch, 1).replace("OS", os_name, 1).replace("VARIANT", variant, 1)
        manifests.append({"image": image, "platform": {"os": os_name, "architecture": arch,
                                                       **({"variant": variant} if variant else {})}})
    return spec_from_document({"image": target, "tags": [t for text in tags for t in text.split(",") if t],
                               "manifests": manifests, "annotations": annotations or None}, "arguments")
