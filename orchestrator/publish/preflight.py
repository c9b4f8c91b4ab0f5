"""Before a build starts: the builder it needs (reused, created, or fallen back to), and what
would stop the single buildx call (an unknown builder, a missing emulator, a builder that
takes one platform per call)."""

from __future__ import annotations

from typing import Any

from orchestrator.docker.builders import BuilderManager
from orchestrator.docker.emulation import ensure_emulators
from orchestrator.docker.facts import BuilderInfo, uses_containerd_image_store
from orchestrator.docker.runner import Engine
from orchestrator.errors import BadInput, EnvironmentMissing
from orchestrator.logging import get_logger
from orchestrator.model.platform import format_platform
from orchestrator.publish.plan import BuildPlan


def ensure_builder(engine: Engine, plan: BuildPlan, info: dict[str, Any], builders: list[BuilderInfo]) -> BuildPlan:
    """The plan on the builder it will really use: the profile's, reused or created, or the
    daemon's own after a fallback (logged with the reason)."""
    if plan.builder_plan is None or plan.builder_plan.routes_by_context:
        return plan  # nodes that are separate daemons are checked by the per-arch run
    outcome = BuilderManager(engine, info=info, builders=builders).ensure(plan.builder_plan, plan.platforms)
    log = get_logger(profile=plan.profile, builder=outcome.name)
    if outcome.action == "fallback":
        log.warning("builder.fallback", reason=outcome.reason)
    else:
        log.info(f"builder.{outcome.action}", driver=outcome.driver, note=outcome.reason)
    for platform, why in outcome.gaps.items():
        log.warning("builder.gap", platform=format_platform(platform), why=why)
    return plan.on_builder(outcome.name) if outcome.name != plan.builder else plan


def check_single_build(engine: Engine, plan: BuildPlan, info: dict[str, Any],
                       builders: list[BuilderInfo]) -> str | None:
    """Raise for what stops the single build. In auto mode, return why per-arch builds
    work where it cannot (a builder that takes one platform per call)."""
    if plan.builder and plan.builder_plan is None:
        names = [b.name for b in builders]
        if plan.builder not in names:
            raise BadInput(f'unknown builder "{plan.builder}"', fix=f"existing builders: {', '.join(names)}; "
                           f"or create it: docker buildx create --name {plan.builder}")
    ensure_emulators(engine, plan.platforms, plan.install_emulators)
    if len(plan.platforms) > 1 and not plan.builder and not uses_containerd_image_store(info):
        current = next((b for b in builders if b.name == "default"), None)
        if current is not None and current.driver == "docker":
            if plan.strategy == "auto" and plan.per_arch:
                return ("the daemon's builder (docker driver, without the containerd image store) builds one "
                        "platform per call")
            raise EnvironmentMissing(
                "the default builder (docker driver) cannot build several platforms at once without the "
                "containerd image store",
                fix='enable it ({"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json, '
                    "restart dockerd), pass --builder with a docker-container builder, or build one platform "
                    "per call with --strategy per-arch",
            )
    return None
