"""Running a BuildPlan: engine facts and builder, the single build or the per-arch path (with
auto's fallback), then the one publish pipeline.

Publishing never uses buildx's `--push` on the docker driver: that path
re-pushes through the daemon and was seen to leave the tag on a single wrong
manifest. orch exports with `--output type=registry` to a staging tag,
verifies the pushed index by digest, and only then points the user's tags at
that digest. A failed build or verification leaves every user tag where it was.
"""

from __future__ import annotations

from orchestrator.docker.facts import BuilderInfo
from orchestrator.docker.runner import Engine
from orchestrator.errors import JobFailed
from orchestrator.image.model import Inspection
from orchestrator.image.verify import VerifyOptions
from orchestrator.logging import get_logger
from orchestrator.model.platform import format_platform
from orchestrator.publish.buildx import BuildFailed, fallback_reason, pushed_digest, run_buildx
from orchestrator.publish.console import Console
from orchestrator.publish.perarch import PerArchRun
from orchestrator.publish.pipeline import publish_staged
from orchestrator.publish.plan import BuildPlan
from orchestrator.publish.preflight import check_single_build, ensure_builder
from orchestrator.publish.records import forget_staged
from orchestrator.publish.result import BuildResult, published_platforms


def run_plan(engine: Engine, plan: BuildPlan, console: Console) -> BuildResult:
    log = get_logger(profile=plan.profile)
    info, builders = engine.facts()
    plan = ensure_builder(engine, plan, info, builders)
    result = BuildResult(plan)
    staged: Inspection | None = None  # the per-arch path has read and checked the merged list already
    if plan.starts_per_arch:
        digest, staged = _per_arch(engine, plan, plan.per_arch_reason, result, console, builders)
    else:
        reason = check_single_build(engine, plan, info, builders)
        if reason is not None:
            log.warning("build.no_attestations", reason="the docker driver on the classic image store cannot "
                        "attach provenance or SBOM; enable the containerd image store to keep them")
            digest, staged = _per_arch(engine, plan.without_attestations(), reason, result, console, builders)
        else:
            log.info("build.start", platforms=plan.spec.platform_texts,
                     output=str(plan.staging) if plan.push else plan.local_image)
            try:
                lines = run_buildx(engine, plan.spec, console)
            except BuildFailed as failure:
                reason = fallback_reason(plan, failure.lines)
                if reason is None:
                    raise failure.error from None
                digest, staged = _per_arch(engine, plan, reason, result, console, builders)
            else:
                digest = pushed_digest(plan.metadata_path, lines)
                if not plan.push:
                    in_layout = plan.spec.output.type == "oci"
                    result.tags = [str(t) for t in plan.tags] if in_layout else (plan.local_image or "").split(",")
                    result.digest = digest
                    log.info("build.kept_locally", image=plan.local_image)
                    return result
    if not digest:
        raise JobFailed("the build pushed no index digest (no metadata, no 'exporting manifest list' line)",
                        fix="rerun; if it persists, check the registry log")
    assert plan.staging is not None
    result.digest = digest
    per_arch = result.strategy == "per-arch"
    published = publish_staged(engine, plan.staging.with_digest(digest), plan.tags,
                               VerifyOptions(expected=plan.platforms), inspection=staged, staging=plan.staging,
                               also_remove=[job.staging for job in plan.per_arch] if per_arch else ())
    result.verification = published.verdict.to_json()
    result.platforms = published_platforms(published.inspection.entries, result.outcomes)
    result.tags = [str(t) for t in plan.tags]
    result.staging_removed = published.staging_removed
    if per_arch:
        forget_staged(plan.staging)
    log.info("build.published", digest=digest, tags=result.tags, strategy=result.strategy,
             platforms=[format_platform(p) for p in plan.platforms])
    return result


def _per_arch(engine: Engine, plan: BuildPlan, reason: str | None, result: BuildResult, console: Console,
              builders: list[BuilderInfo]) -> tuple[str, Inspection]:
    result.strategy = "per-arch"
    result.fallback_reason = reason if plan.strategy == "auto" else None
    run = PerArchRun(engine, plan, console, builders)
    try:
        return run.run(reason)
    finally:
        result.outcomes = run.outcomes
