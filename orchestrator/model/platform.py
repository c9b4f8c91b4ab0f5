"""The Platform value (os, architecture, variant, os.version, os.features) and how it is written.

A Platform is frozen and hashable: it is the key wherever orch keys anything by
platform. Strings exist only at the edges: `format_platform` for buildx's
--platform, `format_all` where os.version matters (output, messages).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, order=False)
class Platform:
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
    """Like format_platform, plus os.version when set: windows/amd64:10.0.17763."""
    base = format_platform(platform)
    return f"{base}:{platform.os_version}" if platform.os_version else base


def platform_slug(platform: Platform) -> str:
    """A platform as a tag-safe word: linux/arm/v7 -> linux-arm-v7."""
    return format_platform(platform).replace("/", "-")
