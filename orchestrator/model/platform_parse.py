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
from orchestrator.model.platform import Platform, format_all
from orchestrator.model.platform_table import (
    ALIASES,
    ARCH_ALIASES,
    DEFAULT_VARIANT,
    KNOWN_ARM_VARIANTS,
    KNOWN_OS,
    OS_VERSION_PATTERN,
    VARIANT_ALIASES,
    VARIANT_HELP,
    VARIANTS,
)

# containerd's grammar: an OS with optional (version+feature+...), then plain components.
OS_COMPONENT = re.compile(r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$")
COMPONENT = re.compile(r"^[A-Za-z0-9_.-]+$")

PLATFORM_HELP = "use an OCI name such as linux/arm/v7 or an alias such as arm32v7, armhf or armv7l (`orch platforms` lists them)"


def parse(text: str) -> Platform:
    """Parse any supported spelling into a normalized Platform.

    The syntax is containerd's: `os[(version+feature...)]/arch[/variant]`, a
    bare architecture (Linux), or `arch/variant`; version and features may be
    percent-encoded. Aliases from platform_table (arm32v7, armhf, x86_64...)
    and orch's `os/arch:version` are read too. Raises BadInput, quoting the
    value and suggesting the nearest platform.
    """
    if not isinstance(text, str):
        raise BadInput(f"platform must be text, got {text!r}", fix=PLATFORM_HELP)
    raw = text.strip()
    if not raw:
        raise BadInput(f'empty platform name "{text}"', fix=PLATFORM_HELP)
    if "*" in raw:
        raise BadInput(f'platform "{raw}": wildcards are not platforms', fix=PLATFORM_HELP)
    lowered = raw.lower()
    if lowered in ALIASES:
        return _from_parts(ALIASES[lowered].split("/"), None, (), raw)
    spec, os_version = raw, None
    if ":" in raw and "(" not in raw:  # windows/amd64:10.0.17763 (mquery, older orch)
        spec, _, os_version = raw.partition(":")
        if not OS_VERSION_PATTERN.match(os_version):
            raise BadInput(f'invalid os.version "{os_version}" in platform "{raw}"',
                           fix="write windows(10.0.17763)/amd64 (or windows/amd64:10.0.17763)")
    parts = spec.split("/")
    if len(parts) > 3:
        raise _invalid(raw, "it has more than three components (os/arch/variant)")
    if any(not part for part in parts):
        raise _invalid(raw, "it has an empty component (a leading, trailing or doubled /)")
    os_part = OS_COMPONENT.match(parts[0])
    if os_part is None:
        raise _invalid(raw, f'"{parts[0]}" is not an OS or architecture name')
    bad = next((part for part in parts[1:] if not COMPONENT.match(part)), None)
    if bad is not None:
        raise _invalid(raw, f'"{bad}" has characters a platform component cannot have')
    if os_part.group(2) is not None or os_part.group(3):
        os_version = _decode(os_part.group(2) or "", raw) or None
    features = tuple(sorted({_decode(f, raw) for f in (os_part.group(3) or "").split("+") if f}))
    parts[0] = os_part.group(1)
    return _from_parts(parts, os_version, features, raw)


def _decode(value: str, original: str) -> str:
    if "%" not in value:
        return value
    try:
        return _unquote(value)
    except ValueError:
        raise _invalid(original, f'"{value}" is not valid percent-encoding') from None


def _unquote(value: str) -> str:
    """Percent-decoding (containerd's PathUnescape), strict about malformed escapes."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "%":
            pair = value[i + 1:i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
                raise ValueError(value)
            out.append(int(pair, 16))
            i += 3
        else:
            out += value[i].encode()
            i += 1
    return out.decode()


def _from_parts(parts: list[str], os_version: str | None, features: tuple[str, ...], original: str) -> Platform:
    first = parts[0].lower()
    first = "darwin" if first == "macos" else first
    if len(parts) == 1:
        if first in KNOWN_OS:
            host = host_arch()
            shown = format_all(Platform(first, host, None, os_version, features))
            raise BadInput(f'platform "{original}" names an OS but no architecture; did you mean {shown} '
                           "(this host's architecture)?", fix=f"write {shown}, or another architecture after the OS")
        return normalize(Platform("linux", first, None, os_version, features), original)
    if len(parts) == 2:
        if first in KNOWN_OS:
            return normalize(Platform(first, parts[1], None, os_version, features), original)
        if first in ARCH_ALIASES:  # arch/variant, as containerd accepts
            return normalize(Platform("linux", first, parts[1], os_version, features), original)
        raise _unknown(original, f'"{parts[0]}" is neither an OS nor an architecture')
    if first not in KNOWN_OS:
        raise _unknown(original, f'unknown OS "{parts[0]}"')
    return normalize(Platform(first, parts[1], parts[2], os_version, features), original)


def host_arch() -> str:
    import os

    return ARCH_ALIASES.get(os.uname().machine.lower(), (os.uname().machine.lower(), None))[0]


def _list_items(text: object) -> list[str]:
    """The items of one comma-separated list; an empty list or item is refused, never read as nothing."""
    text = str(text)
    if not text.strip():
        raise BadInput('platform "" is empty', fix="name a platform, e.g. linux/arm64 (or a list: linux/amd64,linux/arm64)")
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise BadInput(f'platform list "{text}" has an empty item',
                       fix="separate platforms with single commas, e.g. linux/amd64,linux/arm64")
    return items


def parse_all(texts: Iterable[str]) -> list[Platform]:
    """Parse comma-separated lists, possibly repeated (as buildx --platform). An empty list or an
    empty item in one (`linux/amd64,,linux/arm64`) is bad input, not nothing to build."""
    out: list[Platform] = []
    texts = list(texts)
    for text in texts:
        out.extend(parse(item) for item in _list_items(text))
    if not texts:
        raise BadInput("no platforms given", fix=PLATFORM_HELP)
    return dedupe(out)


def normalize(platform: Platform, original: str | None = None) -> Platform:
    """Canonical os/architecture/variant, as containerd's Normalize (and orch's decisions in
    platform_table: armel is arm/v5, arm alone is arm/v7, arm64/v8 is arm64)."""
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
        variant = VARIANT_ALIASES.get((arch, variant), variant)
        pattern = VARIANTS.get(arch)
        if pattern is not None and not pattern.match(variant):
            raise BadInput(f'platform "{shown}": unknown variant "{variant}" for {arch} '
                           f"(allowed: {VARIANT_HELP[arch]})", fix=PLATFORM_HELP)
        if DEFAULT_VARIANT.get(arch) == variant:
            variant = None
    return Platform(os_name, arch, variant, platform.os_version, tuple(sorted(set(platform.os_features))))


def unusual(platform: Platform) -> str | None:
    """A note for a platform orch reads but knows no device for (arm/v4, arm/v9...), or None."""
    if platform.architecture == "arm" and platform.variant not in KNOWN_ARM_VARIANTS:
        return (f"{format_all(platform)}: orch knows no device that runs arm {platform.variant} (its table has "
                f"{', '.join(KNOWN_ARM_VARIANTS)}); check the variant is meant")
    return None


def _invalid(original: str, why: str) -> BadInput:
    return _unknown(original, why)


def _unknown(original: str, why: str | None = None) -> BadInput:
    detail = f": {why}" if why else ""
    return BadInput(f'unknown platform "{original}"{detail}{_nearest(original)}', fix=PLATFORM_HELP)


def _nearest(original: str) -> str:
    """ (did you mean ...?) for the platform nearest to what was written: first the same text
    without stray slashes or spaces, else the closest name in the table."""
    kept = re.sub(r"[^A-Za-z0-9_.()%+/:-]", "", original)  # stray spaces and symbols
    cleaned = "/".join(part for part in kept.split("/") if part)
    if cleaned and cleaned != original:
        try:
            return f" (did you mean {format_all(parse(cleaned))}?)"
        except BadInput:
            pass
    import difflib  # only to suggest a name in an error

    candidates = sorted(set(ALIASES) | set(ALIASES.values()))
    close = difflib.get_close_matches((cleaned or original).lower(), candidates, n=1, cutoff=0.6)
    if not close:
        return ""
    target = ALIASES.get(close[0], close[0])
    return f" (did you mean {target}?)" if close[0] == target else f" (did you mean {close[0]}, i.e. {target}?)"


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
    """(what the user wrote, what it means), one pair per name; empty names are bad input."""
    out = []
    for raw in texts:
        out += [(item, parse(item)) for item in _list_items(raw)]
    return out
