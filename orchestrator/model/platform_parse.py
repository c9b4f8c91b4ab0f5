"""Parse any spelling of a platform into a normalized Platform, as containerd's Parse and Normalize.

Every naming scheme a user meets (OCI ``linux/arm/v7``, official-image
prefixes ``arm32v7``, ``uname -m`` ``armv7l``, Debian ``armhf``, Go
``arm/7``, buildx's ``armv7``) parses to the same Platform. The names and
the decisions behind them are in platform_table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform
from orchestrator.model.platform_table import (
    ALIASES,
    ARCH_ALIASES,
    DEFAULT_VARIANT,
    KNOWN_OS,
    OS_VERSION_PATTERN,
    VARIANTS,
)

PLATFORM_HELP = "use an OCI name such as linux/arm/v7 or an alias such as arm32v7, armhf or armv7l (`orch platforms` lists them)"


def parse(text: str) -> Platform:
    """Parse any supported spelling into a normalized Platform.

    Raises BadInput, quoting the value and suggesting the nearest name.
    """
    if not isinstance(text, str):
        raise BadInput(f"platform must be text, got {text!r}", fix=PLATFORM_HELP)
    raw = text.strip()
    if not raw:
        raise BadInput("empty platform name", fix=PLATFORM_HELP)
    lowered = raw.lower()
    if lowered in ALIASES:
        return _parse_oci(ALIASES[lowered], raw)
    return _parse_oci(lowered, raw)


def parse_all(texts: Iterable[str]) -> list[Platform]:
    """Parse comma-separated lists, possibly repeated (as buildx --platform)."""
    out: list[Platform] = []
    for text in texts:
        for part in str(text).split(","):
            if part.strip():
                out.append(parse(part))
    return dedupe(out)


def _parse_oci(lowered: str, original: str) -> Platform:
    os_version = None
    spec = lowered
    # windows(10.0.17763)/amd64 (containerd 2) or windows/amd64:10.0.17763 (mquery, manifest-tool)
    paren = re.match(r"^([a-z0-9]+)\(([^)]*)\)(/.*)?$", spec)
    if paren:
        spec = paren.group(1) + (paren.group(3) or "")
        os_version = paren.group(2)
    elif ":" in spec:
        spec, _, os_version = spec.partition(":")
    if os_version is not None and not OS_VERSION_PATTERN.match(os_version):
        raise BadInput(
            f'invalid os.version "{os_version}" in platform "{original}"',
            fix="os.version is dotted numbers, e.g. windows/amd64:10.0.17763",
        )
    parts = spec.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise _unknown(original)
    if len(parts) == 1:
        if parts[0] in KNOWN_OS:
            raise BadInput(
                f'platform "{original}" names an OS but no architecture',
                fix=f"add one, e.g. {parts[0]}/amd64 or {parts[0]}/arm64",
            )
        os_name, arch, variant = "linux", parts[0], None
    elif len(parts) == 2:
        if parts[0] in KNOWN_OS:
            os_name, arch, variant = parts[0], parts[1], None
        elif parts[0] in ARCH_ALIASES:  # arch/variant, as containerd accepts
            os_name, arch, variant = "linux", parts[0], parts[1]
        else:
            raise _unknown(original, f'"{parts[0]}" is neither an OS nor an architecture')
    else:
        os_name, arch, variant = parts
    if os_name not in KNOWN_OS:
        raise _unknown(original, f'unknown OS "{os_name}"')
    return normalize(Platform(os_name, arch, variant, os_version), original)


def normalize(platform: Platform, original: str | None = None) -> Platform:
    """Canonical os/architecture/variant, as containerd's Normalize."""
    shown = original if original is not None else f"{platform.os}/{platform.architecture}"
    os_name = platform.os.lower()
    if os_name == "macos":
        os_name = "darwin"
    arch_key = platform.architecture.lower()
    if arch_key not in ARCH_ALIASES:
        raise _unknown(shown, f'unknown architecture "{platform.architecture}"')
    arch, implied = ARCH_ALIASES[arch_key]
    variant = (platform.variant or "").lower() or None
    if variant is not None and variant[0].isdigit():
        variant = "v" + variant  # Go's GOARM=7 and containerd's arm/7
    if implied and variant and variant != implied:
        raise BadInput(
            f'platform "{shown}": "{arch_key}" already means {arch}/{implied}, not {arch}/{variant}',
            fix=f"write linux/{arch}/{variant}",
        )
    variant = variant or implied
    if arch == "arm" and variant is None:
        variant = "v7"
    if variant is not None:
        allowed = VARIANTS.get(arch, ())
        if variant not in allowed:
            choices = ", ".join(allowed) if allowed else "none"
            raise BadInput(
                f'platform "{shown}": unknown variant "{variant}" for {arch} (allowed: {choices})',
                fix=PLATFORM_HELP,
            )
        if DEFAULT_VARIANT.get(arch) == variant:
            variant = None
    return Platform(os_name, arch, variant, platform.os_version, tuple(platform.os_features))


def _unknown(original: str, why: str | None = None) -> BadInput:
    candidates = sorted(set(ALIASES) | set(ALIASES.values()))
    import difflib  # only to suggest a name in an error
    close = difflib.get_close_matches(original.strip().lower(), candidates, n=1, cutoff=0.6)
    hint = ""
    if close:
        target = ALIASES.get(close[0], close[0])
        hint = f" (did you mean {target}?)" if close[0] == target else f" (did you mean {close[0]}, i.e. {target}?)"
    detail = f": {why}" if why else ""
    return BadInput(f'unknown platform "{original}"{detail}{hint}', fix=PLATFORM_HELP)


def dedupe(platforms: Iterable[Platform]) -> list[Platform]:
    """Drop repeats (by os/arch/variant/os.version), keeping first occurrence."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for p in platforms:
        key = (*p.key, p.os_version or "")
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def resolve(texts: Iterable[str]) -> list[tuple[str, Platform]]:
    """(what the user wrote, what it means), one pair per name."""
    return [(text, parse(text)) for raw in texts for text in str(raw).split(",") if text.strip()]
