"""Before and beside a build: the builder it needs (reused, created, or fallen back to), and the
registry check (every repository the publish writes to answers and takes this user's push),
which runs on a helper thread beside planning and the build, and stops the build when it fails.
What a builder can do (one call or one platform per call, a missing emulator) is judged where the
plan is completed (builds.complete), from the probe's facts."""

from __future__ import annotations

import threading
from typing import Any

from orchestrator.builds.plan import BuildPlan
from orchestrator.docker import runner
from orchestrator.docker.facts import BuilderInfo
from orchestrator.docker.runner import Engine
from orchestrator.errors import EnvironmentMissing, OrchError
from orchestrator.logging import get_logger
from orchestrator.model.platform import format_platform
from orchestrator.model.references import Reference
from orchestrator.workers import Helper


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




def check_registries(plan: BuildPlan) -> None:
    """Every repository the publish writes to answers and takes this user's push (an upload
    session started with docker's credentials, then cancelled)."""
    from orchestrator.registry.client import Registry  # on RegistryCheck's thread, beside planning

    wanted = {(t.registry, t.repository) for t in ([plan.repository] if plan.repository else []) + list(plan.tags)}
    for host, repository in sorted(wanted):
        Registry.of(Reference(host, repository)).check_push_access(repository)


class RegistryCheck:
    """check_registries on a helper thread (workers.Helper), started as soon as the plan exists.
    The build waits for it a moment; a slower registry is checked while the build runs, and a
    failure stops the build. Loopback registries answer in milliseconds, so there the build waits
    for the whole check (bounded by the client's own timeouts) and a failure always comes before
    any build step, however busy the machine is. Its owner closes it on every path (`with`): a
    check still running then is cancelled (its sockets shut down), not waited out."""

    BUDGET = 0.3  # seconds the build may wait for the check of a registry beyond this machine

    def __init__(self, plan: BuildPlan) -> None:
        self.plan = plan
        self.error: OrchError | None = None
        self.building = False
        self._lock = threading.Lock()
        self._check = Helper(self._run, "orch-registry-check")

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
        self._check.join(None if all(t.is_loopback for t in targets) else self.BUDGET)
        with self._lock:
            self._raise("no build was started")
            self.building = True

    def after_build(self) -> None:
        """Raise the check's failure (the build was stopped for it), if it failed."""
        self._check.join()
        with self._lock:
            self._raise("the build was stopped")

    def close(self) -> None:
        self._check.close()

    def __enter__(self) -> RegistryCheck:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _raise(self, consequence: str) -> None:
        if self.error is not None:
            raise EnvironmentMissing(f"{self.error.message}; {consequence} (pushing to "
                                     f"{', '.join(sorted({f'{t.registry}/{t.repository}' for t in self.plan.tags}))})",
                                     fix=self.error.fix)
