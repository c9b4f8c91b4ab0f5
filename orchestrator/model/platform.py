"""The Platform value (os, architecture, variant, os.version, os.features) and how it is written.

A Platform is frozen and hashable: it is the key wherever orch keys anything by
platform. Strings exist only at the edges: `format_platform` for buildx's
--platform, `format_all` where os.version matters (output, messages).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, order=False)
class Platform:
    """An OCI platform: os, architecture, variant, and Windows' os.version and os.features."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return format_platform(self)

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies an index entry: os, architecture, variant."""
        return (self.os, self.architecture, self.variant or "")

    def without_os_version(self) -> Platform:
        return replace(self, os_version=None, os_features=())

    def satisfies(self, wanted: Platform) -> bool:
        """Whether this (published) platform is the one asked for: the same os, architecture
        and variant, and the same os.version when the request names one."""
        return self.key == wanted.key and (wanted.os_version is None or self.os_version == wanted.os_version)


def format_platform(platform: Platform) -> str:
    """os/arch[/variant]: what buildx --platform takes."""
    return "/".join(p for p in (platform.os, platform.architecture, platform.variant) if p)


def format_all(platform: Platform) -> str:
    """Like format_platform, with os.version and os.features when set, as containerd's FormatAll
    writes them: windows(10.0.17763+win32k)/amd64, with %, +, (, ) and / percent-encoded."""
    features = "+".join(_encode(f) for f in sorted(set(platform.os_features)) if f)
    if not platform.os_version and not features:
        return format_platform(platform)
    options = _encode(platform.os_version or "") + (f"+{features}" if features else "")
    return "/".join(p for p in (f"{platform.os}({options})", platform.architecture, platform.variant) if p)


def oci_platform(platform: Platform) -> dict[str, object]:
    """The platform object of an index descriptor (OCI and Docker lists spell it the same)."""
    document: dict[str, object] = {"architecture": platform.architecture, "os": platform.os}
    if platform.os_version:
        document["os.version"] = platform.os_version
    if platform.os_features:
        document["os.features"] = list(platform.os_features)
    if platform.variant:
        document["variant"] = platform.variant
    return document


def _encode(value: str) -> str:
    for char, code in (("%", "%25"), ("+", "%2B"), ("(", "%28"), (")", "%29"), ("/", "%2F")):
        value = value.replace(char, code)
    return value


def platform_slug(platform: Platform) -> str:
    """A platform as a tag-safe word: linux/arm/v7 -> linux-arm-v7."""
    return format_platform(platform).replace("/", "-")
