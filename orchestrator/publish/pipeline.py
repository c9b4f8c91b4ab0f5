"""The one publish pipeline, once an index is staged by digest: verify it, then promote it.

`orch build` (single and per-arch) and `orch manifest create` all end here.
The staged index is read back from the registry (every byte checked against
its digest) and verified, with --deep when asked; only a verified index is
promoted (publish.promote: every tag or none). A layout built on this machine
is verified before it is uploaded, too (`check_layout`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.errors import JobFailed
from orchestrator.image.model import Inspection
from orchestrator.image.read import read_image, read_layout
from orchestrator.image.verify import Verdict, VerifyOptions, verify
from orchestrator.interrupts import phase
from orchestrator.model.references import Reference
from orchestrator.publish.promote import UNCHANGED, Promotion, TagMove, current_digests, promote
from orchestrator.publish.signing import Signing
from orchestrator.publish.stage import Staged
from orchestrator.registry.layout import PREFIX
from orchestrator.workers import both

BUILD_FIX = "fix the build so every platform is present with a matching config"


class VerificationFailed(JobFailed):
    """The staged index failed verification: nothing was promoted."""

    def __init__(self, staged: str, verdict: Verdict, inspection: Inspection, fix: str) -> None:
        problems = "".join(f"\n  {f.platform or '-'}: {f.check}: {f.message}" for f in verdict.failures)
        super().__init__(f"verification of {staged} failed; no tag was changed{problems}", fix=fix)
        self.staged = staged
        self.verdict = verdict
        self.inspection = inspection


@dataclass(frozen=True)
class Published:
    """What the pipeline published: the staged index, its inspection and verdict, and how each tag
    moved."""

    staged: Staged
    inspection: Inspection
    verdict: Verdict
    promotion: Promotion

    @property
    def signature(self) -> str | None:
        """The signature's tag in the staging repository, when signed (`signatures`: in each)."""
        return self.promotion.signatures[0] if self.promotion.signatures else None

    @property
    def signatures(self) -> list[str]:
        return self.promotion.signatures

    @property
    def tags(self) -> tuple[Reference, ...]:
        return tuple(move.tag for move in self.promotion.tags)


def _judge(shown: str, inspection: Inspection, options: VerifyOptions, deep_source: object | None,
           fix: str) -> Verdict:
    extra = []
    if deep_source is not None:
        from orchestrator.image.deep import check_binaries  # --deep only: it reads layers

        # Before tags move, a layer that cannot be unpacked is a failure (docker pull would fail).
        extra = check_binaries(inspection, deep_source, strict=True)  # type: ignore[arg-type]
    verdict = verify(inspection, options, extra)
    if not verdict.ok:
        raise VerificationFailed(shown, verdict, inspection, fix)
    return verdict


def check_layout(layout_dir: str, options: VerifyOptions, fix: str = BUILD_FIX) -> Inspection:
    """Verify what a build wrote into its layout, before anything is uploaded."""
    with phase("verifying the build output"):
        inspection, layout = read_layout(f"{PREFIX}{layout_dir}")
        _judge(inspection.ref, inspection, options, None, fix)
    return inspection


def verify_staged(staged: Staged, options: VerifyOptions, *, inspection: Inspection | None = None,
                  deep: bool = False, fix: str = BUILD_FIX) -> tuple[Inspection, Verdict]:
    """Read `staged` back from the registry (unless `inspection` already did) and verify it.
    Raises VerificationFailed."""
    with phase("verifying the staged index"):
        inspection = inspection or read_image(staged.ref)
        return inspection, _judge(str(staged.ref), inspection, options, staged.ref if deep else None, fix)


SAME_PLATFORMS = "every platform's manifest is the same (a reproducible build of an unchanged commit): not moved"


def platform_digests(inspection: Inspection) -> dict[str, str]:
    return {entry.label: entry.digest for entry in inspection.entries}


def _same_platforms(held: Inspection, tags: tuple[Reference, ...], befores: list[str | None]) -> bool:
    """Every tag holds an index whose platforms' manifests are exactly `held`'s."""
    if any(before is None for before in befores):
        return False
    wanted = platform_digests(held)
    for tag, before in zip(tags, befores, strict=True):
        try:
            if platform_digests(read_image(tag.with_digest(before or ""))) != wanted:
                return False
        except JobFailed:
            return False
    return True


def publish_staged(staged: Staged, tags: tuple[Reference, ...], options: VerifyOptions, *,
                   inspection: Inspection | None = None, befores: list[str | None] | None = None,
                   deep: bool = False, fix: str = BUILD_FIX,
                   say: Callable[[str], None] | None = None, signing: Signing | None = None,
                   reproducible: bool = False) -> Published:
    """Verify `staged` as the registry holds it (`inspection`: already read from there, with where
    the tags pointed then, `befores`), place it in every repository `tags` name and sign it in
    each when asked (before any tag moves: a tag never points at an unsigned index), then move
    `tags` to it. `say` hears how the verification and the signing went. `reproducible`: when
    every tag already holds an index of the same platforms' manifests (only the attestations
    differ, as they do on every build), no tag moves and each says so."""
    with phase("verifying the staged index"):
        if befores is None or inspection is None:
            found, held = both(lambda: current_digests(tags), lambda: inspection or read_image(
                staged.ref, staged.index if staged.read_back else None))
        else:
            found, held = befores, inspection
        verdict = _judge(str(staged.ref), held, options, staged.ref if deep else None, fix)
    if say is not None:
        say(f"orch: verifying {len(held.entries)} platforms of {staged.ref}{' (--deep)' if deep else ''} ... ok")
    same = reproducible and bool(tags) and _same_platforms(held, tags, found)
    if same:
        if say is not None:
            say(f"orch: every platform's manifest is what {', '.join(map(str, tags))} already hold: nothing moved")
        promotion = Promotion(held.digest or "", [
            TagMove(tag, before, after=before, state=UNCHANGED, note=SAME_PLATFORMS) for tag, before in zip(tags, found, strict=True)])
        return Published(staged, held, verdict, promotion)
    promotion = promote(staged, tags, found, signing=signing, say=say)
    return Published(staged, held, verdict, promotion)
