"""Promotion: move every tag to a verified index, all or none, and say where each tag points.

1. Read where each tag points now (`before`); a tag that cannot be read stops
   everything before anything moves.
2. Copy the index (by digest) into every other repository the tags name:
   mounted within a registry, streamed across registries. With --sign, the
   index is signed in each of those repositories (and the staging one), so
   every tag, wherever it is, points at a signed index the moment it moves.
3. PUT the verified index bytes under each tag (same bytes, same digest; the
   client retries 5xx, 429 and dropped connections). If a tag still fails,
   every tag already moved is put back (the old index's bytes under the tag;
   a tag that did not exist is deleted where the registry allows it).
4. A HEAD per tag confirms where each one points now (`after`); a tag that
   points at neither the old nor the new index was moved by another publish
   at the same time, and is left alone.

Steps 3 and 4 finish (or roll back) even when a signal arrives; the signal
takes effect after them (orchestrator.interrupts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import EnvironmentMissing, JobFailed, OrchError
from orchestrator.interrupts import deferred, phase
from orchestrator.logging import get_logger
from orchestrator.model.references import Reference
from orchestrator.publish import journal
from orchestrator.publish.signing import Signing, sign
from orchestrator.publish.stage import Staged
from orchestrator.registry.client import Registry
from orchestrator.registry.transfer import RepositoryStore, copy_image
from orchestrator.workers import parallel_map

# What became of a tag.
MOVED, UNCHANGED, NOT_MOVED, ROLLED_BACK, STUCK, RACED = (
    "moved", "unchanged", "not moved", "rolled back", "stuck", "raced")


@dataclass
class TagMove:
    """One tag's move to the verified digest: where it pointed before, where a HEAD found it
    afterwards, and what became of it (moved, unchanged, rolled back...)."""

    tag: Reference
    before: str | None  # the digest it pointed at (None: no such tag)
    after: str | None = None  # where a HEAD found it afterwards
    state: str = NOT_MOVED
    note: str | None = None

    def line(self) -> str:
        before = self.before or "(no such tag)"
        after = self.after or "(no such tag)"
        text = {
            MOVED: f"{self.tag}: moved {before} -> {after}",
            UNCHANGED: f"{self.tag}: already at {after}",
            NOT_MOVED: f"{self.tag}: not moved, still at {after}",
            ROLLED_BACK: f"{self.tag}: put back at {after}",
            STUCK: f"{self.tag}: left at {after} (was {before})",
            RACED: f"{self.tag}: moved by another publish meanwhile, now at {after}",
        }[self.state]
        return text + (f" ({self.note})" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        return {"tag": str(self.tag), "before": self.before, "after": self.after, "state": self.state,
                "note": self.note}


@dataclass
class Promotion:
    """Every tag of one publish moved to one digest, or none: each tag's move, and the signatures
    pushed beside it."""

    digest: str
    tags: list[TagMove]
    signatures: list[str] = field(default_factory=list)  # --sign: the signature's tag in each repository

    @property
    def ok(self) -> bool:
        return all(t.state in (MOVED, UNCHANGED) for t in self.tags)

    def summary(self) -> str:
        return "".join(f"\n  {t.line()}" for t in self.tags)

    def to_json(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.tags]


class PromotionFailed(JobFailed):
    def __init__(self, promotions: Promotion | list[Promotion], why: str) -> None:
        promotions = promotions if isinstance(promotions, list) else [promotions]
        listed = "".join(p.summary() for p in promotions)
        everything_back = all(t.state in (NOT_MOVED, ROLLED_BACK, UNCHANGED) and t.after == t.before
                              for p in promotions for t in p.tags)
        headline = "no tag was changed" if everything_back else "tags are where each line says"
        what = promotions[0].digest if len(promotions) == 1 else f"{len(promotions)} verified indexes"
        super().__init__(f"promotion to {what} failed ({why}); {headline}:{listed}",
                         fix="fix what failed and rerun: the verified index stays in the registry by digest")
        self.promotions = promotions
        self.promotion = promotions[0]
        signatures = [s for p in promotions for s in p.signatures]
        if signatures:
            self.message += "\n  the signatures of the verified index stay at " + ", ".join(signatures)


def _registry(ref: Reference, cache: dict[str, Registry]) -> Registry:
    if ref.registry not in cache:
        cache[ref.registry] = Registry.of(ref)
    return cache[ref.registry]


def current_digests(tags: tuple[Reference, ...]) -> list[str | None]:
    """Where each tag points now (step 1), which the pipeline may ask while it verifies."""
    try:
        return parallel_map(lambda tag: Registry.of(tag).head_digest(tag), list(tags), 8)
    except OrchError as exc:
        raise _as(exc, f"could not read where the tags point now ({exc.message}); no tag was changed") from None


def _as(cause: OrchError, message: str) -> OrchError:
    """`message` as an error of the cause's kind: an unreachable registry stays exit 3 (EnvironmentMissing)."""
    return (EnvironmentMissing if isinstance(cause, EnvironmentMissing) else JobFailed)(message, fix=cause.fix)


def promote(staged: Staged, tags: tuple[Reference, ...], befores: list[str | None] | None = None, *,
            signing: Signing | None = None, say: Callable[[str], None] | None = None) -> Promotion:
    return promote_all([(staged, tags, befores)], signing=signing, say=say)[0]


def promote_all(releases: list[tuple[Staged, tuple[Reference, ...], list[str | None] | None]], *,
                signing: Signing | None = None, say: Callable[[str], None] | None = None) -> list[Promotion]:
    """Move the tags of every (staged index, its tags) pair, all of them or none: a release of
    several images (a bake group) is one promotion. With `signing`, each index is signed in
    every repository it is placed in before any tag of any of them moves; `say` hears each
    signature."""
    registries: dict[str, Registry] = {}
    promotions = []
    # 1. Where each tag points now (read by the caller, or here). Failing here moves nothing.
    for staged, tags, befores in releases:
        _registry(staged.repository, registries)
        if befores is None:
            befores = current_digests(tags)
        promotions.append(Promotion(staged.index.digest, [TagMove(tag, b) for tag, b in zip(tags, befores,
                                                                                            strict=True)]))

    cut_short = _earlier_promotions(promotions)

    # 2. Each index in every repository its tags name, by digest.
    for (staged, tags, _), promotion in zip(releases, promotions, strict=True):
        try:
            _copy_to_tag_repositories(staged, tags, registries)
        except OrchError as exc:
            for move in (m for p in promotions for m in p.tags):
                move.after = move.before
            failed = PromotionFailed(promotions, f"copying {promotion.digest}: {exc.message}")
            failed.exit_code = exc.exit_code if isinstance(exc, EnvironmentMissing) else failed.exit_code
            raise failed from None
    if signing is not None:
        with phase("signing the verified index"):
            for (staged, tags, _), promotion in zip(releases, promotions, strict=True):
                promotion.signatures = _sign_everywhere(staged, tags, signing, say)

    # 3 and 4, never left halfway (a signal waits for them; kill -9 leaves the journal behind).
    record = journal.begin([(p.digest, [(m.tag, m.before) for m in p.tags]) for p in promotions])
    try:
        with deferred("moving tags", lambda: "".join(p.summary() for p in promotions)):
            failure = None
            for (staged, _, _), promotion in zip(releases, promotions, strict=True):
                failure = _move(promotion, staged, registries)
                if failure:
                    break
            if failure:
                for promotion in reversed(promotions):
                    _roll_back(promotion, registries)
            for promotion in promotions:
                _confirm(promotion, registries)
    finally:
        journal.end(record)
    if failure or not all(p.ok for p in promotions):
        raise PromotionFailed(promotions, failure or "another publish moved a tag at the same time")
    _repaired(cut_short, promotions)
    return promotions


def _earlier_promotions(promotions: list[Promotion]) -> list[journal.Unfinished]:
    """Say what an earlier publish left: tags on different digests, a promotion cut short."""
    log = get_logger()
    for promotion in promotions:
        split = journal.split_before([m.tag for m in promotion.tags], [m.before for m in promotion.tags])
        if split:
            log.warning("promote.split_before", advice=f"the tags point at different digests before this publish "
                        f"({split}): an earlier publish stopped halfway? This one moves them all to "
                        f"{promotion.digest[:19]}")
    cut_short = journal.unfinished({m.tag.name for p in promotions for m in p.tags})
    for unfinished in cut_short:
        log.warning("promote.unfinished", advice=unfinished.describe())
    return cut_short


def _repaired(cut_short: list[journal.Unfinished], promotions: list[Promotion]) -> None:
    now_at = {m.tag: m.after for p in promotions for m in p.tags}
    for unfinished in cut_short:
        if journal.repaired(unfinished, now_at):
            get_logger().warning("promote.repaired", advice=f"repaired the promotion cut short (orch process "
                                 f"{unfinished.pid}): its tags {', '.join(str(t) for t, _ in unfinished.tags)} now "
                                 f"all point at {now_at.get(unfinished.tags[0][0])}")


def _copy_to_tag_repositories(staged: Staged, tags: tuple[Reference, ...], registries: dict[str, Registry]) -> None:
    source = RepositoryStore(_registry(staged.repository, registries), staged.repository.repository)
    targets = sorted({(t.registry, t.repository) for t in tags} - {(staged.repository.registry,
                                                                      staged.repository.repository)})
    for host, repository in targets:
        target = _registry(Reference(host, repository), registries)
        try:
            copy_image(source, staged.index.digest, target, repository,
                       mount_from=staged.repository.repository if host == staged.repository.registry else None)
        except OrchError as exc:
            raise _as(exc, f"to {host}/{repository}: {exc.message}") from None


def _sign_everywhere(staged: Staged, tags: tuple[Reference, ...], signing: Signing,
                     say: Callable[[str], None] | None) -> list[str]:
    """Sign the index by digest in the staging repository and in every repository a tag names
    (cosign keeps a signature beside the image, in the same repository, and looks only there)."""
    places = [staged.ref] + [Reference(host, repository, digest=staged.index.digest) for host, repository in
                             sorted({(t.registry, t.repository) for t in tags} - {(staged.repository.registry,
                                                                                    staged.repository.repository)})]
    signatures = parallel_map(lambda ref: sign(ref, signing), places, 4)
    for ref, signature in zip(places, signatures, strict=True):
        if say is not None:
            say(f"orch: signed {ref} with cosign: {signature}")
    return signatures


def _move(promotion: Promotion, staged: Staged, registries: dict[str, Registry]) -> str | None:
    """PUT the index under each tag in turn; the first failure stops the moves and is returned."""
    for move in promotion.tags:
        if move.before == promotion.digest:
            move.state = UNCHANGED
            continue
        try:
            _registry(move.tag, registries).put_manifest(move.tag, staged.index)
        except OrchError as exc:
            move.state = NOT_MOVED
            return f"{move.tag}: {exc.message}"
        move.state = MOVED
    return None


def _roll_back(promotion: Promotion, registries: dict[str, Registry]) -> None:
    """Put every moved tag back where it was, last moved first. The tag whose move failed is
    checked too: a PUT whose answer was lost may have moved it all the same."""
    for move in reversed(promotion.tags):
        registry = _registry(move.tag, registries)
        if move.state == NOT_MOVED and move.before != promotion.digest:
            try:
                if registry.head_digest(move.tag) == promotion.digest:
                    move.state = MOVED
            except OrchError:
                pass
        if move.state != MOVED:
            continue
        try:
            if move.before is None:
                if registry.delete_tag(move.tag):
                    move.state = ROLLED_BACK
                else:
                    move.state, move.note = STUCK, "it did not exist before and the registry cannot delete a tag"
                continue
            old = registry.manifest_bytes(move.tag.with_digest(move.before))
            registry.put_manifest(move.tag, old)
            move.state = ROLLED_BACK
        except OrchError as exc:
            move.state, move.note = STUCK, f"could not put it back: {exc.message}"


def _confirm(promotion: Promotion, registries: dict[str, Registry]) -> None:
    """A HEAD per tag: where it really points now. A tag that cannot be read keeps what orch
    knows of it, marked unconfirmed."""
    for move in promotion.tags:
        believed = promotion.digest if move.state in (MOVED, UNCHANGED, STUCK) else move.before
        try:
            move.after = _registry(move.tag, registries).head_digest(move.tag)
        except OrchError as exc:
            move.after = believed
            note = f"not confirmed: {exc.message}"
            move.note = f"{move.note}; {note}" if move.note else note
            continue
        if move.after == believed:
            continue
        if move.after not in (move.before, promotion.digest) or move.state == MOVED:
            move.state = RACED  # another publish moved it after (or instead of) this one
        else:
            move.state, move.note = STUCK, "the registry reports the new index after all"


def promotion_lines(repository: Reference, tags: tuple[Reference, ...]) -> list[str]:
    """Promotion as --dry-run prints it."""
    if not tags:
        return []
    listed = " ".join(str(t) for t in tags)
    return [f"# promote: PUT the verified index {repository.name}@<digest> under {listed} "
            "(each tag's current digest read first; all tags move or every moved one is put back)"]
