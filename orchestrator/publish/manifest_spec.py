"""manifest-tool's spec (`orch manifest create --spec` / `--from-args`), read and checked into a ManifestSpec.

The spec is manifest-tool's YAML::

    image: registry.example.com/app:1.0
    tags: [latest]
    manifests:
      - image: registry.example.com/app:1.0-arm32v7
        platform: {os: linux, architecture: arm, variant: v7}
      - image: registry.example.com/app:1.0-windows
        platform: {os: windows, architecture: amd64, os.version: 10.0.17763.1879, features: [win32k]}

or the same from arguments (``--platforms``, ``--template`` with OS/ARCH/VARIANT,
``--target``). The platform each entry is listed as comes from the spec, not from
the image's config: that is how lists assembled from legacy, mislabelled images
get the right platform. Entries are kept in orch's order (lower ARM variants
first); publish.manifest_list makes and publishes the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_match import sort_key
from orchestrator.model.platform_parse import parse, parse_all
from orchestrator.model.references import Reference, parse_reference

SPEC_FIELDS = ("image", "tags", "manifests")
ENTRY_FIELDS = ("image", "platform")
PLATFORM_FIELDS = ("os", "architecture", "variant", "os.version", "os.features", "features")


@dataclass(frozen=True)
class SpecEntry:
    image: Reference
    platform: Platform


@dataclass(frozen=True)
class ManifestSpec:
    target: Reference
    tags: tuple[Reference, ...]
    entries: tuple[SpecEntry, ...]  # in orch's order



def _fail(where: str, problem: str, fix: str) -> BadInput:
    return BadInput(f"{where}: {problem}", fix=fix)


def _reference(text: Any, where: str) -> Reference:
    if not isinstance(text, str) or not text:
        raise _fail(where, f'"{text}" is not an image reference', "write REGISTRY/REPOSITORY:TAG")
    reference = parse_reference(text)
    return reference


def _platform(value: Any, where: str) -> Platform:
    if not isinstance(value, dict):
        raise _fail(where, f"expected a mapping with os and architecture, got {value!r}",
                    "write platform: {os: linux, architecture: arm, variant: v7}")
    unknown = sorted(set(value) - set(PLATFORM_FIELDS))
    if unknown:
        raise _fail(where, f'unknown key "{unknown[0]}"', f"allowed: {', '.join(PLATFORM_FIELDS)}")
    for key in ("os", "architecture"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise _fail(f"{where}.{key}", f"missing or not text: {value.get(key)!r}",
                        "both os and architecture are required (e.g. os: linux, architecture: arm64)")
    text = "/".join(str(v) for v in (value["os"], value["architecture"], value.get("variant")) if v)
    try:
        platform = parse(text)
    except BadInput as exc:
        raise _fail(where, exc.message, exc.fix or "use an OCI platform (see `orch platforms list`)") from None
    features = value.get("os.features", value.get("features")) or ()
    if isinstance(features, str) or not all(isinstance(f, str) for f in features):
        raise _fail(f"{where}.features", f"expected a list of text, got {features!r}", "write features: [win32k]")
    version = value.get("os.version")
    if version is not None and not re.fullmatch(r"\d+(\.\d+)*", str(version)):
        raise _fail(f"{where}.os.version", f'"{version}" is not a version like 10.0.17763.1879',
                    "use the Windows build number as `docker manifest inspect -v` shows it")
    return replace(platform, os_version=str(version) if version is not None else None, os_features=tuple(features))


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
    entries = []
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
        entries.append(SpecEntry(image, _platform(item.get("platform"), f"{where}.platform")))
    keys = [e.platform for e in entries]
    for i, platform in enumerate(keys):
        if any(other.key == platform.key and other.os_version == platform.os_version for other in keys[:i]):
            raise _fail(f"{source}: manifests[{i}]", f"{format_platform(platform)} is listed twice",
                        "keep one image per platform")
    entries.sort(key=lambda e: sort_key(e.platform))  # orch's order: lower ARM variants first
    return ManifestSpec(target, tags, tuple(entries))


def load_spec(path: Path) -> ManifestSpec:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BadInput(f'cannot read the spec "{path}": {exc.strerror}', fix="pass the path of a YAML spec") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise BadInput(f'"{path}{line}" is not valid YAML: {getattr(exc, "problem", exc)}',
                       fix="fix the YAML (indentation, quotes)") from None
    return spec_from_document(data, str(path))


def spec_from_args(platforms: list[str], template: str, target: str, tags: list[str]) -> ManifestSpec:
    """manifest-tool's `from-args`: one image per platform from a template with OS, ARCH, VARIANT."""
    if "ARCH" not in template:
        raise BadInput(f'--template "{template}" has no ARCH placeholder',
                       fix="write e.g. --template registry/app:1.0-ARCHVARIANT (OS, ARCH, VARIANT are replaced)")
    manifests = []
    for platform in parse_all(platforms):
        image = (template.replace("VARIANT", platform.variant or "").replace("ARCH", platform.architecture)
                 .replace("OS", platform.os))
        manifests.append({"image": image, "platform": {"os": platform.os, "architecture": platform.architecture,
                                                       **({"variant": platform.variant} if platform.variant else {})}})
    return spec_from_document({"image": target, "tags": tags, "manifests": manifests}, "arguments")
