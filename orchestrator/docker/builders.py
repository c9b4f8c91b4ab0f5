"""Builders against the engine: create, reuse, check and remove the buildx builders orch builds on.

A planned builder (builder_plan) is ensured against the engine: reused when it
exists, created and bootstrapped when it does not. orch defaults to the
docker-container driver, the usual QEMU-backed setup. Its BuildKit image
must be pulled; where it cannot be (offline) and the driver was not asked
for explicitly, orch falls back to the daemon's own ``docker`` builder, which
builds several platforms at once when the daemon uses the containerd image
store. Builders orch creates are recorded in its state directory: those are
the only ones ``orch builder rm`` removes. ``default`` is the daemon's own
builder and is never created or removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from orchestrator.docker import probe
from orchestrator.docker.builder_plan import BUILDKIT_IMAGE, RESERVED, BuilderPlan, plan_builder
from orchestrator.docker.capabilities import parse_inspect
from orchestrator.docker.emulation import BinfmtHandler, missing_emulators, read_handlers
from orchestrator.docker.facts import BuilderInfo, uses_containerd_image_store
from orchestrator.docker.runner import Daemon, Engine
from orchestrator.errors import BadInput, DockerCommandFailed, EnvironmentMissing
from orchestrator.model.platform import Platform, format_platform
from orchestrator.state import read_record, write_record
from orchestrator.workers import parallel_map

RECORD = "builders.json"


def created_by_orch() -> dict[str, dict[str, Any]]:
    data = read_record(RECORD)
    return data if isinstance(data, dict) else {}


def _write_record(record: dict[str, dict[str, Any]]) -> None:
    write_record(RECORD, record)


def _remember(plan: BuilderPlan) -> None:
    record = created_by_orch()
    record[plan.name] = {"driver": plan.driver, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "nodes": [n.endpoint for n in plan.nodes]}
    _write_record(record)


def _forget(name: str) -> None:
    record = created_by_orch()
    if record.pop(name, None) is not None:
        _write_record(record)


# -- checking what a builder can build ---------------------------------------


def platform_gaps(platforms: tuple[Platform, ...], plan: BuilderPlan, info: BuilderInfo | None,
                  handlers: list[BinfmtHandler] | None, machine: str | None = None) -> dict[Platform, str]:
    """Platforms this builder cannot be shown to build: {platform: why}.

    A node's declared platforms are native to it. On a builder whose nodes
    all run on this machine, binfmt decides (buildx's own list leaves out
    arm/v7, arm/v6 and 386 although they build). For other nodes only what
    their BuildKit reports counts.
    """
    machine = machine or os.uname().machine
    declared = {p.key for node in plan.nodes for p in node.platforms}
    reported = set(info.platforms) if info else set()  # buildx's own words
    remote = any(node.endpoint and not _is_local(node.endpoint) for node in plan.nodes)
    if remote:
        return {p: "no node declares it and no node's BuildKit reports it"
                for p in platforms if p.key not in declared and format_platform(p) not in reported}
    missing = missing_emulators(platforms, machine, handlers)
    return {p: why for p, why in missing.items() if p.key not in declared}


def _is_local(endpoint: str) -> bool:
    return endpoint in ("default", "unix:///var/run/docker.sock") or endpoint == os.environ.get("DOCKER_HOST")


# -- against the engine ------------------------------------------------------


@dataclass
class EnsureOutcome:
    """The builder a build will use, and how orch got it."""

    name: str
    driver: str
    action: str  # reused | created | fallback | daemon
    reason: str | None = None
    gaps: dict[Platform, str] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"builder": self.name, "driver": self.driver, "action": self.action, "reason": self.reason,
                "gaps": {format_platform(p): why for p, why in self.gaps.items()}, "nodes": self.nodes}


def _last_line(exc: DockerCommandFailed) -> str:
    lines = [line for line in (exc.stderr or "").strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("ERROR: ") if lines else str(exc)


def nodes_json(info: BuilderInfo | None) -> list[dict[str, Any]]:
    """A builder's nodes and the platforms routed to each (BuilderInfo.routes)."""
    if info is None:
        return []
    return [{"name": r.node.name, "endpoint": r.node.endpoint, "status": r.node.status,
             "platforms": list(r.node.platforms), "given": list(r.node.given), "routed": list(r.platforms),
             "takes_unlisted_platforms": r.takes_the_rest} for r in info.routes()]


def with_given_platforms(engine: Engine, builders: list[BuilderInfo]) -> list[BuilderInfo]:
    """The builders, with the platforms each node of a builder of several nodes was given (from
    `buildx inspect NAME`, asked in parallel; the JSON listing does not say): what routing needs."""
    def given(builder: BuilderInfo) -> BuilderInfo:
        if len(builder.nodes) < 2:
            return builder
        try:
            _name, _driver, nodes = parse_inspect(engine.cli("buildx", "inspect", builder.name))
        except DockerCommandFailed:
            return builder  # a builder that cannot be inspected is listed as buildx lists it
        marked = {node.name: node.given for node in nodes}
        return replace(builder, nodes=tuple(replace(n, given=marked.get(n.name, ())) for n in builder.nodes))

    return parallel_map(given, builders, max(1, len(builders)))


class BuilderManager:
    """Builders against one engine, from the engine's facts (docker.probe: `docker info` and
    `buildx ls` asked once; a build passes the ones it already has); the listing is asked again
    only after orch changed a builder."""

    def __init__(self, engine: Engine, *, info: dict[str, Any] | None = None,
                 builders: list[BuilderInfo] | None = None) -> None:
        self.engine = engine
        self._info = info
        self._builders = builders

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = probe.engine_facts(self.engine).info
        return self._info

    def builders(self) -> list[BuilderInfo]:
        if self._builders is None:
            self._builders = probe.builders(self.engine)
        return self._builders

    def find(self, name: str) -> BuilderInfo | None:
        return next((b for b in self.builders() if b.name == name), None)

    def _changed(self, *command: str) -> None:
        """Run a command that changes builders; the listing is stale after it."""
        self._builders = None
        probe.builders_changed(self.engine)
        self.engine.cli(*command)

    def daemon_builder(self) -> str:
        """The context's own docker-driver builder (named after the context)."""
        return self.engine.context or self.engine.cli("context", "show").strip() or RESERVED

    def ensure(self, plan: BuilderPlan, platforms: tuple[Platform, ...] = ()) -> EnsureOutcome:
        """Reuse the planned builder or create it; fall back to the daemon's when allowed."""
        if plan.routes_by_context:
            return self._fan_out(plan, platforms)
        if plan.uses_daemon_builder:
            outcome = self._daemon(platforms, action="daemon", reason=None)
        else:
            existing = self.find(plan.name)
            if existing is not None:
                outcome = self._reuse(plan, existing, platforms)
            else:
                outcome = self._create(plan, bootstrap=True, platforms=platforms)
        info = self.find(outcome.name)
        outcome.nodes = nodes_json(info)
        if platforms:
            effective = plan if outcome.action != "fallback" else plan_builder(name=RESERVED)
            outcome.gaps = platform_gaps(platforms, effective, info, read_handlers())
        return outcome

    def create(self, plan: BuilderPlan, *, bootstrap: bool = True) -> EnsureOutcome:
        if plan.uses_daemon_builder:
            raise BadInput(f'"{plan.name}" is the daemon\'s own builder; it exists already and is not created',
                           fix="create a docker-container builder under another name")
        if self.find(plan.name) is not None:
            raise BadInput(f'builder "{plan.name}" already exists',
                           fix=f"reuse it with `orch builder ensure {plan.name}`, or remove it first")
        # An explicit create makes exactly this builder or fails: no fallback.
        outcome = self._create(replace(plan, driver_explicit=True), bootstrap=bootstrap, platforms=())
        outcome.nodes = nodes_json(self.find(plan.name))
        return outcome

    def remove(self, name: str) -> None:
        if name == RESERVED:
            raise BadInput(f'"{RESERVED}" is the daemon\'s own builder and is never removed',
                           fix="remove a builder orch created (`orch builder ls` marks them)")
        existing = self.find(name)
        if existing is None:
            _forget(name)
            raise BadInput(f'no builder named "{name}"', fix="`orch builder ls` lists the builders")
        if name not in created_by_orch():
            raise BadInput(f'builder "{name}" was not created by orch, so orch leaves it alone',
                           fix=f"remove it yourself if you mean to: docker buildx rm {name}")
        self._changed("buildx", "rm", name)
        _forget(name)

    def listing(self) -> list[dict[str, Any]]:
        ours = created_by_orch()
        return [{"name": b.name, "driver": b.driver, "status": b.status, "created_by_orch": b.name in ours,
                 "platforms": list(b.platforms), "nodes": nodes_json(b)}
                for b in with_given_platforms(self.engine, self.builders())]

    # -- steps --

    def _reuse(self, plan: BuilderPlan, existing: BuilderInfo, platforms: tuple[Platform, ...]) -> EnsureOutcome:
        reason = None
        if existing.driver != plan.driver:
            reason = (f'builder "{plan.name}" exists with the {existing.driver} driver, not {plan.driver}; '
                      f"reusing it as it is")
        if existing.status != "running":
            # Someone else's builder is never removed, even when it cannot start.
            fallback = self._bootstrap(plan, platforms, discard=False)
            if fallback is not None:
                return fallback
        return EnsureOutcome(plan.name, existing.driver, "reused", reason)

    def _create(self, plan: BuilderPlan, *, bootstrap: bool, platforms: tuple[Platform, ...]) -> EnsureOutcome:
        try:
            for command in plan.create_commands(bootstrap=False):
                self._changed(*command)
        except DockerCommandFailed as exc:
            self._discard(plan.name)
            raise EnvironmentMissing(f'could not create builder "{plan.name}": {_last_line(exc)}',
                                     fix="check each node's endpoint (`docker context ls`) and retry") from None
        _remember(plan)
        if not bootstrap:
            return EnsureOutcome(plan.name, plan.driver, "created", "not bootstrapped (--no-bootstrap)")
        fallback = self._bootstrap(plan, platforms, discard=True)
        return fallback or EnsureOutcome(plan.name, plan.driver, "created")

    def _bootstrap(self, plan: BuilderPlan, platforms: tuple[Platform, ...], *, discard: bool) -> EnsureOutcome | None:
        """Start the builder. None when it runs; the daemon's builder when falling back is allowed."""
        try:
            self._changed(*plan.bootstrap_command())
            return None
        except DockerCommandFailed as exc:
            failure = exc
        if discard:
            self._discard(plan.name)
        image = dict(plan.driver_opts).get("image", BUILDKIT_IMAGE)
        detail = _last_line(failure)
        image_missing = image.split(":")[0] in failure.stderr or "pull" in failure.stderr
        # Falling back is right only for a single-node builder whose driver nobody chose:
        # a multi-node builder's point is its other nodes.
        if image_missing and not plan.driver_explicit and len(plan.nodes) <= 1:
            why = (f"the {plan.driver} builder's image {image} cannot be had here ({detail}); "
                   "building on the daemon's own builder instead")
            return self._daemon(platforms, action="fallback", reason=why)
        raise EnvironmentMissing(
            f'builder "{plan.name}" ({plan.driver}) did not start: {detail}',
            fix=(f"make {image} available to each node's daemon (docker pull, or docker load from a machine "
                 "that has it; --driver-opt image=... names another), or use the daemon's own builder "
                 f"(`builder: {{name: {RESERVED}}}` in the profile, or --builder {RESERVED})"),
        )

    def _discard(self, name: str) -> None:
        """Remove a half-created builder so a failure leaves nothing behind."""
        if self.find(name) is not None:
            try:
                self._changed("buildx", "rm", name)
            except DockerCommandFailed:
                pass
        _forget(name)

    def _fan_out(self, plan: BuilderPlan, platforms: tuple[Platform, ...]) -> EnsureOutcome:
        """Nodes that are daemons or builders of their own: check that each answers, and
        name the platforms that would go to one that does not."""
        known = {b.name: b for b in self.builders()}
        nodes, down = [], {}
        for node in plan.nodes:
            where = node.builder or node.endpoint
            if node.builder:
                info = known.get(node.builder)
                status = info.status if info else "missing (no such builder)"
            else:
                try:
                    probe.engine_facts(Engine(Daemon.at(node.endpoint)))
                    status = "running"
                except (DockerCommandFailed, EnvironmentMissing) as exc:
                    status = f"not answering ({_last_line(exc) if isinstance(exc, DockerCommandFailed) else exc.message})"
            if status != "running":
                down[node.name] = f"node {node.name} ({where}) is {status}"
            nodes.append({"name": node.name, "endpoint": where, "status": status,
                          "platforms": [format_platform(p) for p in node.platforms]})
        gaps = {}
        for platform in platforms:
            serving, _native = plan.node_for(platform)
            if serving.name in down:
                gaps[platform] = down[serving.name]
        outcome = EnsureOutcome(plan.name, "docker", "fan-out", "each platform's build goes to the first node that "
                                "lists it, else to the first node", gaps=gaps)
        outcome.nodes = nodes
        return outcome

    def _daemon(self, platforms: tuple[Platform, ...], *, action: str, reason: str | None) -> EnsureOutcome:
        name = self.daemon_builder()
        if len(platforms) > 1 and not uses_containerd_image_store(self.info()):
            raise EnvironmentMissing(
                f"the daemon's own builder \"{name}\" cannot build {len(platforms)} platforms at once: the daemon "
                "does not use the containerd image store" + (f" ({reason})" if reason else ""),
                fix='enable it ({"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json, then '
                    f"restart dockerd), or make {BUILDKIT_IMAGE} available for a docker-container builder",
            )
        return EnsureOutcome(name, "docker", action, reason)
