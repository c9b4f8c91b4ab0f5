"""Shell completion values: profile names and platform names (the last item of a comma list)."""

from __future__ import annotations


def profile_names(incomplete: str) -> list[str]:
    from orchestrator.profiles import available

    return [name for name in available() if name.startswith(incomplete)]


def platform_names(incomplete: str) -> list[str]:
    from orchestrator.model.platform import format_platform
    from orchestrator.model.platform_table import KNOWN_PLATFORMS

    head, comma, last = incomplete.rpartition(",")
    names = dict.fromkeys(format_platform(row.platform) for row in KNOWN_PLATFORMS)
    return [f"{head}{comma}{name}" for name in names if name.startswith(last)]
