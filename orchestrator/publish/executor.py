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

from orchestrator.docker import runner
from orchestrator.docker.facts import BuilderInfo
from orchestrator.docker.runner import Engine
from orchestrator.errors import JobFailed
from orchestrator.image.model import Inspection
from orchestrator.image.verify import VerifyOptions
from orchestrator.interrupts import Interrupted, phase
from orchestrator.logging import get_logger
from orchestrator.publish.buildx import BuildFailed, fallback_reason, pushed_digest, run_buildx
from orchestrator.publish.console import Console
from orchestrator.publish.perarch import PerArchRun
from orchestrator.publish.pipeline import check_layout, publish_staged
from orchestrator.publish.plan import BuildPlan
from orchestrator.publish.preflight import check_registries, check_single_build, ensure_builder, staging_mode
from orchestrator.publish.result import BuildResult, published_platforms
from orchestrator.publish.stage import Staged, already_staged, remove_directory, upload_layout


def run_plan(engine: Engine, plan: BuildPlan, console: Console) -> BuildResult:
    try:
        return _run(engine, plan, console)
    except Interrupted:
        runner.stop_all()  # per-arch builds run in threads a signal never reaches
        raise
    finally:
        if plan.stage_dir:
            remove_directory(plan.stage_dir)


def _run(engine: Engine, plan: BuildPlan, console: Console) -> BuildResult:
    log = get_logger(profile=plan.profile)
    with phase("checking the engine and the registry"):
        info, builders = engine.facts()
        plan = ensure_builder(engine, plan, info, builders)
        if plan.push:
            check_registries(plan)
            plan = staging_mode(plan, info, builders)
    result = BuildResult(plan)
    run: PerArchRun | None = None
    if plan.starts_per_arch:
        run, staged, inspection = _per_arch(engine, plan, plan.per_arch_reason, result, console, builders)
    else:
        reason = check_single_build(engine, plan, info, builders)
        if reason is not None:
            log.warning("build.no_attestations", reason="the docker driver on the classic image store cannot "
                        "attach provenance or SBOM; enable the containerd image store to keep them")
            run, staged, inspection = _per_arch(engine, plan.without_attestations(), reason, result, console,
                                                builders)
        else:
            log.info("build.start", platforms=plan.spec.platform_texts,
                     output=plan.repository.name if plan.repository else plan.local_image)
            try:
                with phase("building"):
                    lines = run_buildx(engine, plan.spec, console)
            except BuildFailed as failure:
                reason = fallback_reason(plan, failure.lines)
                if reason is None:
                    raise failure.error from None
                run, staged, inspection = _per_arch(engine, plan, reason, result, console, builders)
            else:
                digest = pushed_digest(plan.metadata_path, lines)
                if not plan.push:
                    in_layout = plan.spec.output.type == "oci"
                    result.tags = [str(t) for t in plan.tags] if in_layout else (plan.local_image or "").split(",")
                    result.digest = digest
                    log.info("build.kept_locally", image=plan.local_image)
                    return result
                staged, inspection = _stage_single(plan, digest), None
    assert plan.repository is not None
    result.digest = staged.index.digest
    # The per-arch path has read the staged list back from the registry already.
    published = publish_staged(staged, plan.tags, VerifyOptions(expected=plan.platforms), inspection=inspection)
    result.verification = published.verdict.to_json()
    result.platforms = published_platforms(published.inspection.entries, result.outcomes)
    result.tags = [str(t) for t in plan.tags]
    result.promotion = published.promotion.to_json()
    if run is not None:
        result.staging_kept = [str(t) for t in run.finish()]
    log.info("build.published", digest=result.digest, tags=result.tags, strategy=result.strategy)
    return result


def _stage_single(plan: BuildPlan, digest: str | None) -> Staged:
    """The single build's index, staged by digest: its layout verified, then uploaded."""
    assert plan.repository is not None
    if not digest:
        raise JobFailed("the build named no index digest (no metadata file, no 'exporting' line in its log)",
                        fix="rerun; if it persists, check the build log")
    if plan.layout is None:
        return already_staged(plan.repository, digest)
    check_layout(plan.layout, VerifyOptions(expected=plan.platforms))
    with phase("uploading the verified index"):
        return upload_layout(plan.layout, digest, plan.repository)


def _per_arch(engine: Engine, plan: BuildPlan, reason: str | None, result: BuildResult, console: Console,
              builders: list[BuilderInfo]) -> tuple[PerArchRun, Staged, Inspection]:
    result.strategy = "per-arch"
    result.fallback_reason = reason if plan.strategy == "auto" else None
    run = PerArchRun(engine, plan, console, builders)
    try:
        staged, inspection = run.run(reason)
    finally:
        result.outcomes = run.outcomes
    return run, staged, inspection
