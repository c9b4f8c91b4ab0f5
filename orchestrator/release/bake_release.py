"""A release of several images from bake files: every target verified before any tag of any
target moves, then all their tags moved as one promotion (every tag or none).

1. The targets (release.bake_files) are checked: each repository takes this user's push, every
   foreign platform has an emulator.
2. One `docker buildx bake` builds them all (BuildKit runs targets side by side and shares
   their cache), each into an OCI layout private to the run, from the resolved definitions
   orch wrote (what bake printed, outputs pointed at the layouts, platforms in orch's order).
   On a builder of several nodes, which can write no layout and tags a merged index `latest`,
   each target is split into one bake target per platform, pushed by digest from the node
   given that platform, and orch merges each target's platforms into its list.
3. Each target's layout is verified, uploaded to its repository by digest and verified again
   from the registry (or its merged list verified there).
4. publish.promote.promote_all moves every tag of every target, or puts back those it moved.

A failure at any step leaves every tag of every target where it was, and says which target
(and platform) failed.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.builds.argv import BUILDX_ENV
from orchestrator.docker.capabilities import Capabilities
from orchestrator.docker.runner import DockerStreamFailed, Engine
from orchestrator.errors import JobFailed
from orchestrator.interrupts import phase
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.references import Reference
from orchestrator.publish import blobstore
from orchestrator.publish.signing import Signing
from orchestrator.publish.stage import remove_directory
from orchestrator.release.bake_files import BakeTarget
from orchestrator.report.console import Console

# "#12 [worker linux/arm/v7 2/2] RUN make": bake names the target before the platform.
# Steps of a stage FROM scratch carry no platform: "#9 [worker 3/3] RUN make".
_TARGET_STEP = re.compile(r"^#(?P<id>\d+) \[(?P<target>[\w.-]+) (?:(?P<platform>[a-z][a-z0-9]*/[a-z0-9_]+"
                          r"(?:/[a-z0-9.]+)?)[ \]])?[^\]]*\] (?P<what>.*)$")
_STEP_ID = re.compile(r"^#(?P<id>\d+) ")
_TARGET_ERROR = re.compile(r"^ERROR: target (?P<target>[\w.-]+): (?P<why>.*)$")


@dataclass(frozen=True)
class ReleasePlan:
    """What a bake release (`orch build --bake`) will do, decided before bake runs: the targets,
    the files, where their layouts go, and how they are built, verified and signed."""

    targets: tuple[BakeTarget, ...]
    files: tuple[str, ...]
    stage_dir: str
    deep: bool = False
    no_cache: bool = False
    builder: str | None = None
    install_emulators: bool = False
    # buildx 0.18 and later: bake reads and writes outside the working directory only where it is
    # allowed to (docker.capabilities.Capabilities.bake_needs_fs_entitlements); orch's layouts and the
    # resolved file live in this run's stage directory.
    fs_entitlements: bool = False
    # A builder of several nodes: {platform: (node, native)} for each platform of any target; each
    # target's platforms are built as bake targets of their own (per_platform_name) on those nodes.
    nodes: Mapping[str, tuple[str, bool]] | None = None
    signing: Signing | None = None  # --sign: each target's verified index signed before any tag moves

    @property
    def per_platform(self) -> bool:
        return self.nodes is not None

    def per_platform_name(self, target: BakeTarget, platform: Platform) -> str:
        """`app--linux-arm-v7`: a bake target name (letters, digits, - and _)."""
        return f"{target.name}--{format_platform(platform).replace('/', '-')}"

    def bake_targets(self) -> dict[str, tuple[BakeTarget, Platform | None]]:
        """What bake builds, by the name bake knows it under: each target, or each target's platforms."""
        if not self.per_platform:
            return {t.name: (t, None) for t in self.targets}
        return {self.per_platform_name(t, p): (t, p) for t in self.targets for p in t.platforms}

    def label(self, bake_name: str) -> str:
        """How a bake target is named to the user: `app`, or `app (linux/arm64)`."""
        target, platform = self.bake_targets().get(bake_name, (None, None))
        return f"{target.name} ({format_platform(platform)})" if target and platform else bake_name

    def failure(self, bake_name: str, what: str) -> str:
        """`target worker: linux/arm/v7 at RUN make`, whether bake built the platform alone or not."""
        target, platform = self.bake_targets().get(bake_name, (None, None))
        if target and platform:
            return f"target {target.name}: {format_platform(platform)} {what}"
        return f"target {bake_name}: {what}"

    def layout(self, target: BakeTarget) -> str:
        return f"{self.stage_dir}/{target.name}"

    @property
    def resolved_file(self) -> str:
        return f"{self.stage_dir}/orch-bake.json"

    @property
    def metadata_file(self) -> str:
        return f"{self.stage_dir}/orch-bake-metadata.json"

    def bake_argv(self) -> tuple[str, ...]:
        allowed = (f"--allow=fs.read={self.stage_dir}", f"--allow=fs.write={self.stage_dir}")
        return ("buildx", "bake", *(("--builder", self.builder) if self.builder else ()),
                *(allowed if self.fs_entitlements else ()), "-f", self.resolved_file,
                "--metadata-file", self.metadata_file, "--progress", "plain",
                *(("--no-cache",) if self.no_cache else ()), *self.bake_targets())

    def resolved(self) -> dict[str, Any]:
        built = self.bake_targets()
        return {"group": {"default": {"targets": list(built)}},
                "target": {name: target.pushed_by_digest(platform) if platform else target.staged(self.layout(target))
                           for name, (target, platform) in built.items()}}

    def commands(self) -> list[str]:
        lines = [f"# resolved from {', '.join(self.files)} by docker buildx bake --print"]
        for target in self.targets:
            shown = target.shown()
            lines.append(f"# target {target.name}: {','.join(shown['platforms'])} -> {' '.join(shown['tags'])}")
            if target.epoch is not None:
                lines.append(f"#   reproducible: SOURCE_DATE_EPOCH={target.epoch}, rewrite-timestamp=true on its "
                             f"outputs, BuildKit {', '.join(sorted(set(dict(target.buildkit).values())))}")
        if self.per_platform:
            lines.append("docker " + shlex.join(self.bake_argv()) + "   # each target's platforms pushed by digest, "
                         "each from its node")
            for name, (_target, platform) in self.bake_targets().items():
                node, native = (self.nodes or {})[format_platform(platform)] if platform else ("?", False)
                lines.append(f"#   {name}: on {node}{'' if native else ' (emulated)'}")
            for target in self.targets:
                lines.append(f"# {target.name}: merge its platforms into one list in {target.repository.name} by "
                             "digest (no tag), verify it from the registry" + (" (--deep)" if self.deep else ""))
        else:
            lines.append("docker " + shlex.join(self.bake_argv()) + "   # each target into its own OCI layout")
            for target in self.targets:
                lines.append(f"# {target.name}: verify its layout, upload it to {target.repository.name} by digest, "
                             "verify it again from the registry" + (" (--deep)" if self.deep else ""))
        lines.append("# promote every target at once (each tag's current digest read first; all tags of all "
                     "targets move, or every moved one is put back): "
                     + "; ".join(f"{t.name} -> {' '.join(str(tag) for tag in t.tags)}" for t in self.targets))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"targets": [t.shown() for t in self.targets], "commands": self.commands()}


@dataclass
class TargetResult:
    """What one bake target published: its digest and platforms, its verification, the tags
    moved and the steps timed."""

    name: str
    digest: str | None = None
    platforms: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    promotion: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # docker.steps.Step, as bake ran them for this target

    def to_json(self) -> dict[str, Any]:
        from orchestrator.docker.steps import Timings

        timings = Timings(tuple(self.steps))
        return {"digest": self.digest, "verification": self.verification, "promotion": self.promotion,
                "platforms": [{"platform": p, "steps": [s.to_json() for s in timings.for_platform(p)],
                               "emulated_seconds": round(sum(s.seconds for s in timings.for_platform(p)
                                                             if s.emulated), 1)} for p in self.platforms],
                "step_seconds": timings.total_seconds, "emulated_seconds": timings.emulated_seconds,
                "emulated_share": timings.emulated_share}


def node_routes(caps: Capabilities, targets: tuple[BakeTarget, ...]) -> dict[str, tuple[str, bool]] | None:
    """On a builder of several nodes: each platform's node, and whether it was given the platform
    (ReleasePlan.nodes); None on a builder of one node, where one bake target builds them all."""
    if not caps.multi_node:
        return None
    return {platform: (node.name, native) for platform in {format_platform(p) for t in targets for p in t.platforms}
            for node, native in [caps.route(platform)]}


def failed_targets(lines: list[str]) -> dict[str, str]:
    """From bake's plain progress: {target: "linux/arm/v7 at RUN make"} for each target that failed."""
    steps: dict[str, tuple[str, str, str]] = {}
    failed: dict[str, str] = {}
    for line in lines:
        match = _TARGET_STEP.match(line)
        if match:
            steps.setdefault(match.group("id"), (match.group("target"), match.group("platform") or "",
                                                 match.group("what").strip()))
        step = _STEP_ID.match(line)
        if step and " ERROR" in line and step.group("id") in steps:
            target, platform, what = steps[step.group("id")]
            failed.setdefault(target, f"{platform} at {what}" if platform else f"at {what}")
        error = _TARGET_ERROR.match(line)
        if error and error.group("target") not in failed:
            failed[error.group("target")] = error.group("why")
    return failed


def run_release(engine: Engine, plan: ReleasePlan, console: Console) -> list[TargetResult]:
    try:
        return _run(engine, plan, console)
    finally:
        remove_directory(plan.stage_dir)
        blobstore.prune()


def _run(engine: Engine, plan: ReleasePlan, console: Console) -> list[TargetResult]:
    from orchestrator.docker.emulation import ensure_emulators
    from orchestrator.registry.client import Registry

    with phase("checking the registries and emulators"):
        for host, repository in sorted({(t.registry, t.repository) for target in plan.targets for t in target.tags}):
            Registry.of(Reference(host, repository)).check_push_access(repository)
        ensure_emulators(engine, {p for t in plan.targets for p in t.platforms}, plan.install_emulators)
    Path(plan.stage_dir).mkdir(parents=True, exist_ok=True)
    Path(plan.resolved_file).write_text(json.dumps(plan.resolved(), indent=2))
    from orchestrator.builds.timings import step_log
    from orchestrator.report.ci_outputs import group

    built = plan.bake_targets()
    steps = {name: _platform_log(plan, platform) if platform else step_log(target.platforms)
             for name, (target, platform) in built.items()}
    layouts = [] if plan.per_platform else [plan.layout(target) for target in plan.targets]
    for layout in layouts:
        blobstore.seed(layout)  # BuildKit skips the blobs an earlier run exported
    with phase("building"), group(console.say, f"docker buildx bake {' '.join(t.name for t in plan.targets)}"):
        _bake(engine, plan, console, steps)
    for layout in layouts:
        blobstore.keep(layout)
    digests = _digests(plan)
    results, staged = [], []
    for target in plan.targets:
        mine = {name: platform for name, (owner, platform) in built.items() if owner.name == target.name}
        results.append(TargetResult(target.name, steps=[step for name in mine for step in steps[name].all()]))
        if plan.per_platform:
            per_platform = {platform: digests[name] for name, platform in mine.items() if platform}
            staged.append(_merge(engine, plan, target, per_platform, results[-1]))
        else:
            staged.append(_stage(plan, target, digests[target.name], results[-1]))
        results[-1].digest = staged[-1].index.digest
    from orchestrator.publish.promote import PromotionFailed, promote_all

    try:  # every target verified: each signed wherever its tags are before any tag of any of them moves
        promotions = promote_all([(index, target.tags, None) for index, target in zip(staged, plan.targets,
                                                                                    strict=True)],
                                 signing=plan.signing, say=console.say)
    except PromotionFailed as failed:
        raise JobFailed(f"the release was not published: {failed.message}", fix=failed.fix) from None
    for result, promotion in zip(results, promotions, strict=True):
        result.promotion = promotion.to_json()
    return results


def _platform_log(plan: ReleasePlan, platform: Platform) -> Any:
    """The step log of one platform's bake target, on the node the plan routes it to."""
    from orchestrator.builds.timings import step_log

    node, native = (plan.nodes or {})[format_platform(platform)]
    return step_log((platform,), node=node, native_node=native)


def _feed(line: str, steps: dict[str, Any]) -> None:
    """Bake names the target first in each step (`#9 [app linux/arm64 2/3] RUN make`): the line,
    without it, goes to that target's step log; DONE and CACHED lines go to every log (each
    knows only its own steps)."""
    named = re.match(r"^(#\d+ \[)(?P<target>[\w.-]+) (?P<rest>.*)$", line)
    if named and named.group("target") in steps:
        steps[named.group("target")].feed(named.group(1) + named.group("rest"))
        return
    for log in steps.values():
        log.feed(line)


def _bake(engine: Engine, plan: ReleasePlan, console: Console, steps: dict[str, Any]) -> None:
    from collections import deque

    from orchestrator.docker.progress import error_lines

    tail: deque[str] = deque(maxlen=4000)
    try:
        for line in engine.stream(*plan.bake_argv(), env=BUILDX_ENV):
            tail.append(line)
            _feed(line, steps)
            console.say(line)
    except DockerStreamFailed as exc:
        lines = list(tail)
        failed = failed_targets(lines)
        if console.quiet:
            console.line("\n".join(lines[-40:]))
        named = "".join(f"\n  {plan.failure(name, what)}" for name, what in failed.items())
        raise JobFailed(f"the bake failed (exit {exc.return_code}); no tag of any target was changed{named}\n"
                        + "\n".join(f"  {line}" for line in error_lines(lines)),
                        fix="fix the failing step (log above); every target's tags still point where they did"
                        ) from None


def _digests(plan: ReleasePlan) -> dict[str, str]:
    try:
        metadata = json.loads(Path(plan.metadata_file).read_text())
    except (OSError, ValueError):
        metadata = {}
    digests = {}
    for name in plan.bake_targets():
        digest = (metadata.get(name) or {}).get("containerimage.digest")
        if not digest:
            raise JobFailed(f"bake named no index digest for target {plan.label(name)}; no tag was changed",
                            fix="rerun; if it persists, check the bake log")
        digests[name] = digest
    return digests


def _merge(engine: Engine, plan: ReleasePlan, target: BakeTarget, digests: dict[Platform, str],
           result: TargetResult) -> Any:
    """One target's platforms, pushed by digest from their nodes, merged into one list in orch's
    order, staged by digest and verified from the registry."""
    from orchestrator.builds.merge import MergeEntry, merge

    entries = [MergeEntry(target.repository.with_digest(digests[p]), p) for p in target.platforms]
    with phase(f"merging {target.name}"):
        staged = merge(engine, "imagetools", target.repository, entries, target.index_annotations())
    return _verified(plan, target, staged, result)


def _stage(plan: ReleasePlan, target: BakeTarget, digest: str, result: TargetResult) -> Any:
    """One target's layout verified, uploaded by digest, verified again from the registry."""
    from orchestrator.image.verify import VerifyOptions
    from orchestrator.publish.pipeline import VerificationFailed, check_layout
    from orchestrator.publish.stage import upload_layout

    try:
        check_layout(plan.layout(target), VerifyOptions(expected=target.platforms))
        with phase(f"uploading {target.name}"):
            staged = upload_layout(plan.layout(target), digest, target.repository)
    except VerificationFailed as failed:
        raise _failed_verification(target, failed, result) from None
    return _verified(plan, target, staged, result)


def _verified(plan: ReleasePlan, target: BakeTarget, staged: Any, result: TargetResult) -> Any:
    """A target's staged list, verified as the registry holds it."""
    from orchestrator.image.verify import VerifyOptions
    from orchestrator.model.platform import format_all
    from orchestrator.publish.pipeline import VerificationFailed, verify_staged

    try:
        inspection, verdict = verify_staged(staged, VerifyOptions(expected=target.platforms), deep=plan.deep)
    except VerificationFailed as failed:
        raise _failed_verification(target, failed, result) from None
    result.verification = verdict.to_json()
    result.platforms = [format_all(e.platform) for e in inspection.entries if e.platform]
    return staged


def _failed_verification(target: BakeTarget, failed: Any, result: TargetResult) -> JobFailed:
    result.verification = failed.verdict.to_json()
    problems = "".join(f"\n  {f.platform or '-'}: {f.check}: {f.message}" for f in failed.verdict.failures)
    return JobFailed(f"target {target.name} failed verification; no tag of any target was changed{problems}",
                     fix=failed.fix)
