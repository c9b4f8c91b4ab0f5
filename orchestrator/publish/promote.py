"""Promotion: point the user's tags at a verified index. The one function a publish calls to move tags."""

from __future__ import annotations

import shlex
from typing import Any

from orchestrator.errors import JobFailed
from orchestrator.model.references import Reference
from orchestrator.publish.merge import imagetools_create
from orchestrator.registry.client import Registry


def promote(engine: Any, staged: Reference, tags: tuple[Reference, ...]) -> None:
    """Point every tag at the verified list by digest (a registry-side copy), then check each."""
    engine.cli(*imagetools_create(tags, [staged]))
    for tag in tags:
        # A HEAD on the tag (a few ms) rather than another imagetools call (~150 ms).
        now_at = Registry(tag).head_digest(tag)
        if now_at != staged.digest:
            raise JobFailed(f"after promotion {tag} points at {now_at}, not the verified {staged.digest}",
                            fix=f"point it by hand: docker buildx imagetools create -t {tag} {staged}")


def promotion_lines(staging: Reference, tags: tuple[Reference, ...]) -> list[str]:
    """Promotion as --dry-run prints it."""
    if not tags:
        return []
    return ["docker " + shlex.join(imagetools_create(tags, [f"{staging.name}@<digest>"]))]
