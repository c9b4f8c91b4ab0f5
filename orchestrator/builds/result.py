"""What a build did, as `orch build` reports it (and --json / --metadata-file write it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.docker.steps import Step, Timings
from orchestrator.image.model import Entry
from orchestrator.model.platform import Platform, format_platform

if TYPE_CHECKING:
    from orchestrator.builds.plan import BuildPlan


@dataclass
class PlatformOutcome:
    """One platform's build on the per-arch path."""

    state: str  # reused | built | failed
    digest: str | None = None
    node: str | None = None
    seconds: float = 0.0
    failure: str | None = None
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class PublishedPlatform:
    """An entry of the published index as the result reports it: its digest and config, and on
    the per-arch path the node that built it, how long that took, and whether it was reused."""

    platform: str
    digest: str
    config: str | None
    state: str | None = None  # per-arch: built or reused
    node: str | None = None
    seconds: float | None = None  # per-arch: how long its build took


def outcome_for(published: Platform | None, outcomes: Mapping[Platform, PlatformOutcome]) -> PlatformOutcome | None:
    """The outcome of the build that produced a published entry: the planned platform it is
    (an entry may carry an os.version the plan did not name)."""
    if published is None:
        return None
    if published in outcomes:
        return outcomes[published]
    return next((o for planned, o in outcomes.items() if published.satisfies(planned)), None)


def published_platforms(entries: Iterable[Entry],
                        outcomes: Mapping[Platform, PlatformOutcome]) -> list[PublishedPlatform]:
    rows = []
    for entry in entries:
        outcome = outcome_for(entry.shown_platform, outcomes)
        rows.append(PublishedPlatform(entry.label, entry.digest,
                                      format_platform(entry.config) if entry.config else None,
                                      outcome.state if outcome else None, outcome.node if outcome else None,
                                      round(outcome.seconds, 1) if outcome and outcome.seconds else None))
    return rows


@dataclass
class BuildResult:
    """What a build did, filled in as it goes: the index published (or kept), each platform, the
    tags moved, the verification and the steps timed; what `orch build` prints and --json writes."""

    plan: BuildPlan
    digest: str | None = None
    platforms: list[PublishedPlatform] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    promotion: list[dict[str, Any]] = field(default_factory=list)  # per tag: before, after, state
    staging_kept: list[str] = field(default_factory=list)  # classic image store: tags the registry keeps
    verification: dict[str, Any] | None = None
    strategy: str = "single"  # what ran: single or per-arch
    fallback_reason: str | None = None  # auto: why it built per platform
    outcomes: dict[Platform, PlatformOutcome] = field(default_factory=dict)  # per-arch, by planned platform
    steps: list[Step] = field(default_factory=list)  # the single build's steps (per-arch: in outcomes)
    # The buildx commands that ran, as a printed plan shows them (BuildPlan.shown), in plan order.
    commands: list[str] = field(default_factory=list)
    part: str | None = None  # --part: the part record written
    signatures: list[str] = field(default_factory=list)  # --sign: the signature's tag in each repository

    @property
    def signature(self) -> str | None:
        return self.signatures[0] if self.signatures else None
    index_media_type: str | None = None  # the published index (or manifest), as the registry holds it
    index_size: int | None = None

    @property
    def timings(self) -> Timings:
        return Timings(tuple(self.steps) + tuple(s for o in self.outcomes.values() for s in o.steps))

    @property
    def _single_node(self) -> str | None:
        """The node a one-call build ran on: its builder's only node (a builder of several
        nodes builds per platform, and each platform's outcome names its node)."""
        caps = self.plan.capabilities
        return caps.nodes[0].name if self.strategy == "single" and caps and len(caps.nodes) == 1 else None

    def _platform_steps(self, label: str) -> dict[str, Any]:
        from orchestrator.errors import BadInput
        from orchestrator.model.platform_parse import parse

        try:
            return self.timings.platform_json(parse(label).without_os_version())
        except BadInput:
            return {"steps": [], "emulated_seconds": 0.0}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "profile": self.plan.profile,
            "builder": self.plan.builder,
            "strategy": self.strategy,
            "merge": self.plan.merge if self.strategy == "per-arch" else None,
            "fallback_reason": self.fallback_reason,
            "digest": self.digest,
            "pushed": self.plan.push,
            "tags": self.tags,
            "local_image": self.plan.local_image,
            "platforms": [{**p.__dict__, "node": p.node or self._single_node, **self._platform_steps(p.platform)}
                          for p in self.platforms] or [
                {"platform": format_platform(p), "digest": None, "node": self._single_node,
                 **self._platform_steps(format_platform(p))}
                for p in self.plan.platforms],  # kept locally: what was built, with its steps
            "step_seconds": self.timings.total_seconds,
            "emulated_seconds": self.timings.emulated_seconds,
            "emulated_share": self.timings.emulated_share,
            "staged": f"{self.plan.repository.name}@{self.digest}" if self.plan.repository and self.digest else None,
            "promotion": self.promotion,
            "staging_kept": self.staging_kept,
            "verification": self.verification,
            "commands": self.commands,
            "part": self.part,
            "signature": self.signature,
            "signatures": self.signatures,
            "descriptor": {"mediaType": self.index_media_type, "digest": self.digest, "size": self.index_size}
            if self.digest and self.index_media_type else None,
            **labels_json(self.plan),
        }


def labels_json(plan: BuildPlan) -> dict[str, Any]:
    """What orch set in each image's config and on the index, and the version label (metadata-
    action's `version`)."""
    return {"labels": plan.labels, "annotations": plan.annotations,
            "version": plan.labels.get("org.opencontainers.image.version")}


def failure_json(plan: BuildPlan, error: Exception) -> dict[str, Any]:
    """A failed build, as CI outputs and reports take it: what was asked, where it failed."""
    failed = getattr(error, "failed", None) or {}
    message = getattr(error, "message", str(error))
    return {"ok": False, "profile": plan.profile, "builder": plan.builder, "digest": None, "pushed": False,
            "tags": [], "asked_tags": [str(t) for t in plan.tags], "error": message,
            "failed": [{"platform": platform or None, "step": step} for platform, step in failed.items()],
            "platforms": [{"platform": format_platform(p), "digest": None,
                           "state": "failed" if format_platform(p) in failed else None} for p in plan.platforms],
            "promotion": [], "verification": None, "part": None, **labels_json(plan)}
