"""The one publish pipeline, after something has been staged: verify, promote, clean up.

`orch build` (single and per-arch) and `orch manifest create` both end here:
the staged index is read from the registry and verified (with --deep when
asked); only a verified index is promoted (publish.promote), and then the
staging tags are deleted where the registry allows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import JobFailed
from orchestrator.image.deep import check_binaries
from orchestrator.image.model import Inspection
from orchestrator.image.read import read_image
from orchestrator.image.verify import Verdict, VerifyOptions, verify
from orchestrator.model.references import Reference
from orchestrator.publish.promote import promote
from orchestrator.registry.client import delete_tag


class VerificationFailed(JobFailed):
    """The staged index failed verification: nothing was promoted."""

    def __init__(self, staged: Reference, verdict: Verdict, inspection: Inspection, fix: str) -> None:
        problems = "".join(f"\n  {f.platform or '-'}: {f.check}: {f.message}" for f in verdict.failures)
        super().__init__(f"verification of {staged} failed; no tag was changed{problems}", fix=fix)
        self.staged = staged
        self.verdict = verdict
        self.inspection = inspection


@dataclass(frozen=True)
class Published:
    staged: Reference
    inspection: Inspection
    verdict: Verdict
    tags: tuple[Reference, ...]
    staging_removed: bool | None  # None: nothing to remove; False: the registry keeps tags


def publish_staged(engine: Any, staged: Reference, tags: tuple[Reference, ...], options: VerifyOptions, *,
                   inspection: Inspection | None = None, deep: bool = False, staging: Reference | None = None,
                   also_remove: Sequence[Reference] = (),
                   fix: str = "fix the build so every platform is present with a matching config") -> Published:
    """Verify `staged` (REPO@DIGEST), then move `tags` to it and remove the staging tags.
    `staging_removed` says whether `staging` itself could be deleted; `also_remove` (per-platform
    staging tags) is deleted on a best-effort basis."""
    inspection = inspection or read_image(staged)
    extra = check_binaries(inspection, staged) if deep else []
    verdict = verify(inspection, options, extra)
    if not verdict.ok:
        raise VerificationFailed(staged, verdict, inspection, fix)
    promote(engine, staged, tags)
    removed = delete_tag(staging) if staging is not None else None
    others = [delete_tag(ref) for ref in also_remove]
    if removed is not None and also_remove:
        removed = removed and all(others)
    return Published(staged, inspection, verdict, tags, removed)
