"""Running a BuildPlan: checks first, then the single build or the per-arch path (with auto's
fallback), staging by digest, and the one publish pipeline.

Nothing the user named moves before the result is verified. The build writes
an OCI layout (or, on container drivers, buildx pushes by digest), orch
verifies it, stages it in the target repository by digest, verifies it again
from the registry and only then moves the tags (publish.promote). A failed or
interrupted build or verification leaves every user tag where it was; the
run's layouts are removed whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.builds.argv import command_line
from orchestrator.builds.buildx_run import BuildFailed, fallback_reason, pushed_digest, run_buildx
from orchestrator.builds.complete import ask_nodes, complete
from orchestrator.builds.nodes import call_nodes
from orchestrator.builds.plan import BuildPlan, KeepLocal, Publish
from orchestrator.builds.preflight import RegistryCheck, ensure_builder
from orchestrator.builds.readback import EarlyReadBack
from orchestrator.builds.timings import step_log
from orchestrator.docker import probe, runner
from orchestrator.docker.emulation import ensure_emulators
from orchestrator.docker.runner import Engine
from orchestrator.docker.steps import Step
from orchestrator.errors import JobFailed, OrchError
from orchestrator.interrupts import Interrupted, phase
from orchestrator.logging import get_logger
from orchestrator.publish import blobstore
from orchestrator.publish.stage import Staged, already_staged, remove_directory, upload_layout
from orchestrator.report.ci_outputs import group
from orchestrator.report.console import Console
from orchestrator.workers import preload

if TYPE_CHECKING:
    from orchestrator.builds.perarch import PerArchRun
    from orchestrator.builds.result import BuildResult
    from orchestrator.image.model import Inspection

# What runs after the build (the registry side: read-back, merge, verification, promotion),
# imported on a thread once the first buildx process has started: neither the build's start nor
# the publish after it waits for these imports.
AFTER_BUILD = ("orchestrator.publish.pipeline", "orchestrator.builds.result", "orchestrator.registry.transfer",
               "orchestrator.registry.layout", "orchestrator.builds.merge", "orchestrator.image.read")


@contextmanager
def _preloading_once_built() -> Iterator[None]:
    """preload(*AFTER_BUILD) when the first build process of the block starts."""
    started: list[bool] = []

    def first_start() -> None:
        if not started:
            started.append(True)
            preload(*AFTER_BUILD)

    with runner.on_each_start(first_start):
        yield


def run_plan(engine: Engine, plan: BuildPlan, console: Console) -> BuildResult:
    started = time.monotonic()
    try:
        result = _run(engine, plan, console)
        _where_the_time_went(plan, result)
        if plan.part is not None:
            from orchestrator.publish.parts import write_part  # --part only

            # result.plan: the plan as completed from the builder's capabilities
            result.part = str(write_part(plan.part, part_document(result.plan, result, time.monotonic() - started)))
            get_logger(profile=plan.profile).info("build.part_written", path=result.part, digest=result.digest)
        return result
    except Interrupted:
        runner.stop_all()  # per-arch builds run in threads a signal never reaches
        raise
    finally:
        if plan.stage_dir:
            remove_directory(plan.stage_dir)
            blobstore.prune()


def _run(engine: Engine, plan: BuildPlan, console: Console) -> BuildResult:
    """The profile's builder is ensured, the builder's capabilities probed once and the plan
    completed from them (builds.complete); from then on the plan is only run. The registry check
    runs beside the build (RegistryCheck)."""
    with RegistryCheck(plan) if plan.push else nullcontext() as registry:  # closed (cancelled) on every path
        return _checked_run(engine, plan, console, registry)


def _checked_run(engine: Engine, plan: BuildPlan, console: Console, registry: RegistryCheck | None) -> BuildResult:
    with phase("checking the builder"):
        if plan.builder_plan is not None and not plan.builder_plan.routes_by_context:
            plan = ensure_builder(engine, plan, probe.engine_facts(engine).info, probe.builders(engine))
        planned = len(plan.warnings)  # the CLI has said these already
        caps = probe.capabilities(engine, plan.builder, nodes=plan.spec.rewrite_timestamp)
        plan = complete(plan, caps, ask_nodes(engine, plan))
        for warning in plan.warnings[planned:]:  # what the builder's capabilities added
            get_logger(profile=plan.profile).warning("build.check_this", advice=warning)
    if isinstance(plan.destination, KeepLocal):
        return _keep_local(engine, plan, plan.destination, console)
    publish = plan.destination
    if plan.starts_per_arch:
        if registry is not None:
            registry.before_build()
        try:
            with registry.beside_builds() if registry is not None else nullcontext(), _preloading_once_built():
                built = _per_arch(engine, plan, publish, plan.per_arch_reason, _new_result(plan), console)
        except OrchError:
            if registry is not None:
                registry.after_build()  # builds stopped because the registry check failed say so
            raise
        if registry is not None:
            registry.after_build()
    else:
        built = _single(engine, plan, publish, console, registry)
    return _publish(plan, built, console)


@dataclass
class _Built:
    """What the build step of a push build left: the result so far, the staged index (with its
    inspection when the per-arch path has read it back already) and the per-arch run."""

    result: BuildResult
    staged: Staged
    inspection: Inspection | None = None
    run: PerArchRun | None = None
    befores: list[str | None] | None = None  # where the tags pointed, read beside the inspection


def _buildx(engine: Engine, plan: BuildPlan, console: Console, watch: Callable[[str], None] | None = None
            ) -> tuple[list[str], list[Step]]:
    """The one buildx call for every platform: its log and its steps (BuildFailed on a failure);
    `watch` is fed every progress line too."""
    get_logger(profile=plan.profile).info("build.start", platforms=plan.spec.platform_texts,
                                          output=plan.repository.name if plan.repository else plan.local_image)
    steps = step_log(plan.platforms)
    nodes = call_nodes(plan.platforms, plan.capabilities) if plan.capabilities is not None else {}
    node = next(iter(nodes)) if len(nodes) == 1 else None  # a local build of a multi-node builder: one node
    if node:
        console.building_on(node)
    with phase("building"), group(console.say, f"docker buildx build {','.join(plan.spec.platform_texts)}"):
        lines = run_buildx(engine, plan.spec, console, steps=steps, node=node, watch=watch)
    return lines, steps.all()


def _check_emulators(engine: Engine, plan: BuildPlan) -> None:
    with phase("checking the emulators"):
        ensure_emulators(engine, plan.platforms, plan.install_emulators)


def _keep_local(engine: Engine, plan: BuildPlan, local: KeepLocal, console: Console) -> BuildResult:
    """A build without --push: the result stays where the plan says."""
    _check_emulators(engine, plan)
    try:
        lines, steps = _buildx(engine, plan, console)
    except BuildFailed as failure:
        raise failure.error from None
    result = _new_result(plan)
    result.steps, result.commands = steps, [plan.shown(command_line(plan.spec))]
    result.tags = [str(t) for t in plan.tags] if plan.spec.output.type == "oci" else local.image.split(",")
    result.digest = pushed_digest(plan.metadata_path, lines)
    get_logger(profile=plan.profile).info("build.kept_locally", image=local.image)
    return result


def _single(engine: Engine, plan: BuildPlan, publish: Publish, console: Console,
            registry: RegistryCheck | None) -> _Built:
    """The one buildx call for every platform, staged; on a failure, auto's second step, already planned."""
    _check_emulators(engine, plan)
    if registry is not None:
        registry.before_build()
    ran = [plan.shown(command_line(plan.spec))]
    if plan.layout:
        blobstore.seed(plan.layout)  # BuildKit skips the blobs an earlier run exported
    early = EarlyReadBack(publish.repository, plan.tags) if plan.layout is None else None  # pushed by buildx itself
    try:
        with (registry.beside_builds() if registry is not None else nullcontext(), _preloading_once_built(),
              early or nullcontext()):
            lines, steps = _buildx(engine, plan, console, early.feed if early else None)
            digest = pushed_digest(plan.metadata_path, lines)  # read once: the metadata file is removed
            found = early.taken(digest) if early else None
    except BuildFailed as failure:
        if registry is not None:
            registry.after_build()  # the build was stopped because the registry check failed
        reason = fallback_reason(plan, failure.lines)
        if reason is None:
            raise failure.error from None
        result = _new_result(plan)
        result.commands = ran
        return _per_arch(engine, plan, publish, reason, result, console)
    if registry is not None:
        registry.after_build()
    if plan.layout:
        get_logger(profile=plan.profile).info("build.exported", detail=str(blobstore.keep(plan.layout)))
    result = _new_result(plan)
    result.steps, result.commands = steps, ran
    if found is not None:  # read from the registry while buildx was exiting
        return _Built(result, found.staged, found.inspection, befores=found.befores)
    return _Built(result, _stage_single(plan, publish, digest))


def _publish(plan: BuildPlan, built: _Built, console: Console) -> BuildResult:
    """Verify the staged index as the registry holds it, then move every tag or none."""
    from orchestrator.builds.result import published_platforms
    from orchestrator.image.verify import VerifyOptions
    from orchestrator.publish.pipeline import publish_staged

    result = built.result
    result.digest = built.staged.index.digest
    result.index_media_type, result.index_size = built.staged.index.media_type, len(built.staged.index.body)
    # The per-arch path has read the staged list back from the registry already.
    published = publish_staged(built.staged, plan.tags, VerifyOptions(expected=plan.platforms),
                               inspection=built.inspection, befores=built.befores, deep=plan.deep, say=console.say,
                               signing=plan.signing, reproducible=plan.spec.rewrite_timestamp)
    result.signatures = published.signatures
    result.verification = published.verdict.to_json()
    result.platforms = published_platforms(published.inspection.entries, result.outcomes)
    result.tags = [t.as_given for t in plan.tags]  # as the user wrote them (docker.io/ not added)
    result.promotion = published.promotion.to_json()
    if built.run is not None:
        result.staging_kept = [str(t) for t in built.run.finish()]
    get_logger(profile=plan.profile).info("build.published", digest=result.digest, tags=result.tags,
                                          strategy=result.strategy)
    return result


def _where_the_time_went(plan: BuildPlan, result: BuildResult) -> None:
    """Keep the step times for orch advise; say so when QEMU took most of the build."""
    from orchestrator.builds import timings

    timings.record(plan.dockerfile, plan.context, result.timings.steps)
    advice = timings.hint(result.timings, plan.dockerfile, plan.platforms)
    if advice:
        get_logger(profile=plan.profile).warning("build.emulation", advice=advice)


def part_document(plan: BuildPlan, result: BuildResult, seconds: float) -> dict[str, Any]:
    """What `orch release` needs of this runner's part (publish.parts reads it back)."""
    from datetime import datetime, timezone

    from orchestrator import __version__
    from orchestrator.ci_facts import ci_job

    labels = plan.labels
    document = result.to_json()
    return {"repository": plan.repository.name if plan.repository else "", "digest": result.digest,
            "platforms": plan.spec.platform_texts, "profile": plan.profile,
            "revision": labels.get("org.opencontainers.image.revision") or (plan.git or {}).get("sha"),
            "labels": labels, "git": plan.git, "ci": ci_job(),
            "builder": plan.capabilities.builder if plan.capabilities else plan.builder,
            "seconds": round(seconds, 2), "verification": result.verification, "entries": document["platforms"],
            "written": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "orch": __version__,
            "reproducible": _reproducible_part(plan, result)}


def _reproducible_part(plan: BuildPlan, result: BuildResult) -> dict[str, Any] | None:
    """--reproducible, as the part record says it: the epoch, and the BuildKit each platform was
    built by (`orch release` refuses a mix of reproducible parts and others, or of epochs)."""
    from orchestrator.builds.reproducible import BUILDKIT_LABEL, EPOCH_LABEL

    if not plan.spec.rewrite_timestamp:
        return None
    labels = plan.labels
    jobs = {job.label: dict(job.spec.labels) for job in plan.per_arch} if result.strategy == "per-arch" else {}
    return {"source_date_epoch": int(labels[EPOCH_LABEL]),
            "buildkit": {p: jobs.get(p, labels).get(BUILDKIT_LABEL) or "unknown" for p in plan.spec.platform_texts}}


def _new_result(plan: BuildPlan) -> BuildResult:
    from orchestrator.builds.result import BuildResult  # beside image.model: imported while buildx runs

    return BuildResult(plan)


def _stage_single(plan: BuildPlan, publish: Publish, digest: str | None) -> Staged:
    """The single build's index, staged by digest: its layout verified, then uploaded."""
    if not digest:
        raise JobFailed("the build named no index digest (no metadata file, no 'exporting' line in its log)",
                        fix="rerun; if it persists, check the build log")
    if plan.layout is None:
        return already_staged(publish.repository, digest)
    from orchestrator.image.verify import VerifyOptions
    from orchestrator.publish.pipeline import check_layout

    check_layout(plan.layout, VerifyOptions(expected=plan.platforms))
    with phase("uploading the verified index"):
        return upload_layout(plan.layout, digest, publish.repository)


def _per_arch(engine: Engine, plan: BuildPlan, publish: Publish, reason: str | None, result: BuildResult,
              console: Console) -> _Built:
    from orchestrator.builds.perarch import PerArchRun

    result.strategy = "per-arch"
    result.fallback_reason = reason if plan.strategy == "auto" else None
    run = PerArchRun(engine, plan, publish, console)
    try:
        staged, inspection = run.run(reason)
    finally:
        result.outcomes = run.outcomes
        result.commands += [plan.shown(line) for line in run.commands()]
    return _Built(result, staged, inspection, run)
