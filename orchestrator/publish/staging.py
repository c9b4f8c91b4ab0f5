"""Staging names: where a publish puts what it built before any tag the user named moves.

One staging tag per target tag (and per platform on the per-arch path), so a
rerun reuses it instead of piling up new ones. Numbered per-platform tags
(`...-00-linux-arm64`) fix the order for `docker manifest push`, which lists
children by their names in the local manifest store.
"""

from __future__ import annotations

import hashlib

from orchestrator.model.platform import Platform, platform_slug
from orchestrator.model.references import Reference

STAGING_PREFIX = "orch-staging-"


def staging_reference(target: Reference, suffix: str = "") -> Reference:
    tag = f"{STAGING_PREFIX}{target.tag or 'latest'}" + (f"-{suffix}" if suffix else "")
    if len(tag) > 128:
        tag = tag[:112] + "-" + hashlib.sha256(tag.encode()).hexdigest()[:15]
    return target.with_tag(tag)


def platform_staging(target: Reference, platform: Platform, position: int | None = None) -> Reference:
    """A per-platform staging tag; numbered when the list's order follows tag names."""
    slug = platform_slug(platform)
    return staging_reference(target, suffix=slug if position is None else f"{position:02d}-{slug}")
