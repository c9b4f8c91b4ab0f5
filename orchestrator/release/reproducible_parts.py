"""`orch release` of parts built with `--reproducible`: every part or none, all at one
SOURCE_DATE_EPOCH, else the release stops (exit 2) naming the parts. What the release then says:
the epoch, and the BuildKit version that built each platform. A platform reproduces on a builder
of its own BuildKit version; parts built by other versions are each reproducible, but another
version writes other bytes, so a rebuild of the whole on one builder differs where the versions do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.publish.parts import PartRecord

MIXED_FIX = ("rebuild the parts so they agree: every one with orch build --reproducible --part DIR (or every one "
             "without it), then release them again")
EPOCH_FIX = ("give every runner one SOURCE_DATE_EPOCH (the commit's: $(git log -1 --format=%ct)), or set it on "
             "none of them (each takes the commit's time), then rebuild the parts")


def _named(parts: Sequence[PartRecord]) -> str:
    return ", ".join(f"{part.label} ({part.path})" for part in parts)


def reproducible_release(parts: Sequence[PartRecord]) -> dict[str, Any] | None:
    """{"source_date_epoch": N, "buildkit": {platform: version}} when every part was built
    reproducibly at one epoch; None when none was; BadInput for a mix, naming the parts."""
    made = [part for part in parts if part.reproducible]
    plain = [part for part in parts if not part.reproducible]
    if made and plain:
        raise BadInput(f"the parts were not all built with --reproducible: {_named(made)} "
                       f"{'was' if len(made) == 1 else 'were'}, {_named(plain)} {'was' if len(plain) == 1 else 'were'} "
                       "not", fix=MIXED_FIX)
    if not made:
        return None
    epochs: dict[int, list[PartRecord]] = {}
    for part in made:
        epochs.setdefault(int((part.reproducible or {})["source_date_epoch"]), []).append(part)
    if len(epochs) > 1:
        shown = "; ".join(f"{epoch} ({_when(epoch)}) for {_named(group)}" for epoch, group in sorted(epochs.items()))
        raise BadInput(f"the parts were built at different SOURCE_DATE_EPOCH: {shown}", fix=EPOCH_FIX)
    buildkit = {platform: str(version) for part in made
                for platform, version in ((part.reproducible or {}).get("buildkit") or {}).items()}
    return {"source_date_epoch": next(iter(epochs)), "buildkit": buildkit}


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reproducible_lines(reproducible: dict[str, Any] | None) -> list[str]:
    """What the release says of it: the epoch, and the BuildKit versions (one, or which platform each)."""
    if not reproducible:
        return []
    epoch = reproducible["source_date_epoch"]
    versions: dict[str, list[str]] = {}
    for platform, version in (reproducible.get("buildkit") or {}).items():
        versions.setdefault(version, []).append(platform)
    head = f"reproducible: SOURCE_DATE_EPOCH {epoch} ({_when(epoch)})"
    if len(versions) <= 1:
        return [head + (f", every platform built by BuildKit {next(iter(versions))}" if versions else "")]
    by = "; ".join(f"{version}: {', '.join(platforms)}" for version, platforms in sorted(versions.items()))
    return [head, f"  the parts were built by different BuildKit versions ({by}): each platform reproduces on a "
                  "builder of its own version; another version writes other bytes (expected), so orch verify "
                  "--reproduce on one builder names both versions and stops"]
