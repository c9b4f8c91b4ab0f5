"""Before and beside a build: the builder it needs (reused, created, or fallen back to), and the
registry check (every repository the publish writes to answers and takes this user's push),
which runs on helper threads before and beside the build, and stops the build when it fails.
What a builder can do (one call or one platform per call, a missing emulator) is judged where the
plan is completed (builds.complete), from the probe's facts."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
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




Repositories = frozenset[tuple[str, str]]  # (registry, repository)


def check_registries(wanted: Repositories) -> None:
    """Every repository in `wanted` answers and takes this user's push (an upload session
    started with docker's credentials, then cancelled)."""
    from orchestrator.registry.client import Registry  # on RegistryCheck's thread, beside the build

    for host, repository in sorted(wanted):
        Registry.of(Reference(host, repository)).check_push_access(repository)


def open_ones(wanted: Repositories) -> Repositories:
    """The repositories of `wanted` whose registry answers GET /v2/ with 200 to anyone (a
    registry on this machine with no login); each other one is checked in full here."""
    from orchestrator.registry.client import Registry

    found = set()
    for host, repository in sorted(wanted):
        registry = Registry.of(Reference(host, repository))
        if registry.open_to_all():
            found.add((host, repository))
        else:  # down, or wants a login: the full check says which, in the words it always has
            registry.check_push_access(repository)
    return frozenset(found)


class RegistryCheck:
    """check_registries on helper threads (workers.Helper). A registry on this machine answers
    in milliseconds, so the build waits for a first look at it (`before_build`): a registry that
    is down or wants a login stops orch before any build step, with no build output in the way;
    one that answers GET /v2/ to anyone is open, and its upload session (an upload started and
    cancelled, which costs the registry storage work) goes beside the build. A registry beyond
    this machine takes a TLS handshake or two: its whole check starts with the first build
    process (runner.on_each_start) and the build does not wait for it. Either way a failure
    stops every build that has started or starts later (the builds push by digest only: a
    stopped one leaves no tag), and `after_build` waits for the check and raises its failure, so
    nothing is tagged on a registry that failed it. Its owner closes it on every path (`with`):
    a check still running then is cancelled (its sockets shut down), not waited out."""

    def __init__(self, plan: BuildPlan) -> None:
        self.plan = plan
        self.error: OrchError | None = None
        self.building = False
        self.stopped = False
        self._lock = threading.Lock()
        self._check: Helper[None] | None = None
        targets = ([plan.repository] if plan.repository else []) + list(plan.tags)
        self.beside: Repositories = frozenset((t.registry, t.repository) for t in targets)  # checked beside builds
        self._first: Helper[Repositories] | None = None  # on this machine: the look the build waits for
        if all(t.is_loopback for t in targets):
            self._first = Helper(lambda: open_ones(self.beside), "orch-registry-look")

    def _run(self) -> None:
        try:
            check_registries(self.beside)
        except OrchError as exc:
            with self._lock:
                self.error = exc
                self.stopped = self.building
            if self.stopped:
                runner.stop_all()

    def _start(self) -> None:
        """Under the lock: the check's thread, once, when there is something to check."""
        if self._check is None and self.beside:
            self._check = Helper(self._run, "orch-registry-check")

    def _build_started(self) -> None:
        with self._lock:
            self.building = True
            self._start()
            failed = self.error is not None
            self.stopped = self.stopped or failed
        if failed:
            runner.stop_all()  # the check failed before this build started: stopped at once

    def before_build(self) -> None:
        """On this machine: wait for the first look and raise its failure before any build starts."""
        if self._first is None:
            return
        try:
            opened = self._first.result()
        except OrchError as exc:
            self.error = exc
            opened = frozenset()
        with self._lock:
            self.beside = opened
            self._raise("no build was started")

    def beside_builds(self) -> AbstractContextManager[None]:
        """The check starts with the first build process started in this block and stops them all if it fails."""
        return runner.on_each_start(self._build_started)

    def after_build(self) -> None:
        """Raise the check's failure (the builds were stopped for it), if it failed."""
        with self._lock:
            self._start()
            check = self._check
        if check is not None:
            check.join()
        with self._lock:
            self._raise("the build was stopped" if self.stopped else "no tag was moved")

    def close(self) -> None:
        for helper in (self._first, self._check):
            if helper is not None:
                helper.close()

    def __enter__(self) -> RegistryCheck:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _raise(self, consequence: str) -> None:
        if self.error is not None:
            raise EnvironmentMissing(f"{self.error.message}; {consequence} (pushing to "
                                     f"{', '.join(sorted({f'{t.registry}/{t.repository}' for t in self.plan.tags}))})",
                                     fix=self.error.fix)
