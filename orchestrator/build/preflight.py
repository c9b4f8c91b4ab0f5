"""Before a build starts: the builder it needs (reused, created, or fallen back to), and what
would stop the single buildx call (an unknown builder, a missing emulator, a builder that
takes one platform per call)."""

from __future__ import annotations

import os
import threading
from typing import Any

from orchestrator.build.plan import BuildPlan
from orchestrator.docker import runner
from orchestrator.docker.facts import BuilderInfo, uses_containerd_image_store
from orchestrator.docker.runner import Engine
from orchestrator.errors import BadInput, EnvironmentMissing, OrchError
from orchestrator.logging import get_logger
from orchestrator.model.platform import format_platform
from orchestrator.model.references import Reference
from orchestrator.publish.stage import PUSH_BY_DIGEST_DRIVERS


def ensure_builder(engine: Engine, plan: BuildPlan, info: dict[str, Any], builders: list[BuilderInfo]) -> BuildPlan:
    """The plan on the builder it will really use: the profile's, reused or created, or the
    daemon's own after a fallback (logged with the reason)."""
    if plan.builder_plan is None or plan.builder_plan.routes_by_context:
        return plan  # nodes that are separate daemons are checked by the per-arch run
    from orchestrator.docker.builders import BuilderManager  # only profiles with a builder get here

    outcome = BuilderManager(engine, info=info, builders=builders).ensure(plan.builder_plan, plan.platforms)
    log = get_logger(profile=plan.profile, builder=outcome.name)
    if outcome.action == "fallback":
        log.warning("builder.fallback", reason=outcome.reason)
    else:
        log.info(f"builder.{outcome.action}", driver=outcome.driver, note=outcome.reason)
    for platform, why in outcome.gaps.items():
        log.warning("builder.gap", platform=format_platform(platform), why=why)
    return plan.on_builder(outcome.name) if outcome.name != plan.builder else plan


def check_named_builder(plan: BuildPlan, builders: list[BuilderInfo]) -> None:
    """--builder NAME must exist (a profile's builder is created instead)."""
    if plan.builder and plan.builder_plan is None:
        names = [b.name for b in builders]
        if plan.builder not in names:
            raise BadInput(f'unknown builder "{plan.builder}"', fix=f"existing builders: {', '.join(names)}; "
                           f"or create it: docker buildx create --name {plan.builder}")


def classic_store_reason(plan: BuildPlan, info: dict[str, Any], builders: list[BuilderInfo]) -> str | None:
    """Why the single call cannot work on this builder (the docker driver on the classic image
    store takes one platform per call and writes no layout), for auto to build per platform;
    None when that is not the trouble. Raises for --strategy single."""
    if plan.builder or uses_containerd_image_store(info):
        return None
    current = next((b for b in builders if b.name == "default"), None)
    if current is None or current.driver != "docker":
        return None
    if plan.strategy == "auto" and plan.per_arch:
        return "the daemon's builder (docker driver, without the containerd image store) builds one platform per call"
    raise EnvironmentMissing(
        "the default builder (docker driver) cannot build several platforms at once, or stage them by digest, "
        "without the containerd image store",
        fix='enable it ({"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json, '
            "restart dockerd), pass --builder with a docker-container builder, or build one platform "
            "per call with --strategy per-arch",
    )


def check_registries(plan: BuildPlan) -> None:
    """Every repository the publish writes to answers and takes this user's push (an upload
    session started with docker's credentials, then cancelled)."""
    from orchestrator.registry.client import Registry  # on RegistryCheck's thread, beside planning

    wanted = {(t.registry, t.repository) for t in ([plan.repository] if plan.repository else []) + list(plan.tags)}
    for host, repository in sorted(wanted):
        Registry.of(Reference(host, repository)).check_push_access(repository)


class RegistryCheck:
    """check_registries on a thread, started as soon as the plan exists. The build waits for
    it a moment; a slower registry is checked while the build runs, and a failure stops the
    build. Loopback registries answer in milliseconds, so there the build waits for the whole
    check (bounded by the client's own timeouts) and a failure always comes before any build
    step, however busy the machine is."""

    BUDGET = 0.3  # seconds the build may wait for the check of a registry beyond this machine

    def __init__(self, plan: BuildPlan) -> None:
        self.plan = plan
        self.error: OrchError | None = None
        self.building = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            check_registries(self.plan)
        except OrchError as exc:
            with self._lock:
                self.error = exc
                if self.building:
                    runner.stop_all()

    def before_build(self) -> None:
        targets = ([self.plan.repository] if self.plan.repository else []) + list(self.plan.tags)
        self._thread.join(None if all(t.is_loopback for t in targets) else self.BUDGET)
        with self._lock:
            self._raise("no build was started")
            self.building = True

    def after_build(self) -> None:
        """Raise the check's failure (the build was stopped for it), if it failed."""
        self._thread.join()
        with self._lock:
            self._raise("the build was stopped")

    def _raise(self, consequence: str) -> None:
        if self.error is not None:
            raise EnvironmentMissing(f"{self.error.message}; {consequence} (pushing to "
                                     f"{', '.join(sorted({f'{t.registry}/{t.repository}' for t in self.plan.tags}))})",
                                     fix=self.error.fix)


def staging_mode(plan: BuildPlan, info: dict[str, Any], builders: list[BuilderInfo]) -> BuildPlan:
    """How this builder stages: container drivers push by digest themselves; the docker driver
    writes a layout orch uploads by digest, except on the classic image store, which can only
    push to a name (publish.stage). Which builder is current is not asked: a layout works on all."""
    name = plan.builder or os.environ.get("BUILDX_BUILDER")
    builder = next((b for b in builders if b.name == name), None) if name else None
    if builder is not None and builder.driver in PUSH_BY_DIGEST_DRIVERS:
        return plan.pushed_by_digest()
    if (builder is None or builder.driver == "docker") and not uses_containerd_image_store(info):
        return plan.staged_by_tag()
    return plan
