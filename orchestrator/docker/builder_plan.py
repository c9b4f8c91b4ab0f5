"""A builder as plain data, before anything touches the engine: name, driver, nodes, and the
`docker buildx create` commands that make it (which --dry-run prints)."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform
from orchestrator.profiles import DRIVERS, BuilderSpec

DEFAULT_NAME = "orch"
DEFAULT_DRIVER = "docker-container"
RESERVED = "default"
BUILDKIT_IMAGE = "moby/buildkit:buildx-stable-1"
# What buildx accepts as a builder name.
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
# Drivers that can hold several nodes (`buildx create --append`).
MULTI_NODE_DRIVERS = ("docker-container", "kubernetes", "remote")


@dataclass(frozen=True)
class NodePlan:
    """One node of a planned builder: the endpoint (or existing builder) it runs on, the platforms
    it is given and its own driver options, the name filled in when the profile gives none."""

    name: str
    endpoint: str
    platforms: tuple[Platform, ...] = ()
    builder: str | None = None  # an existing buildx builder instead of an endpoint (fan-out only)
    driver_opts: tuple[tuple[str, str], ...] = ()  # its own, over the builder's


@dataclass(frozen=True)
class BuilderPlan:
    """The builder a build needs, before anything touches the engine."""

    name: str
    driver: str
    driver_explicit: bool = False  # asked for by the user, so no silent fallback
    driver_opts: tuple[tuple[str, str], ...] = ()
    nodes: tuple[NodePlan, ...] = ()
    buildkitd_config: str | None = None
    buildkitd_flags: str | None = None

    @property
    def uses_daemon_builder(self) -> bool:
        """The docker driver is the context's own builder: nothing to create."""
        return self.driver == "docker"

    @property
    def routes_by_context(self) -> bool:
        """Nodes on the docker driver are separate daemons, each with its own builder:
        buildx cannot join them, so orch sends each platform's build to its node."""
        return self.uses_daemon_builder and bool(self.nodes)

    def node_for(self, platform: Platform) -> tuple[NodePlan, bool]:
        """The first node that lists the platform (natively), else the first node, which
        emulates it; and whether it is native. Needs at least one node."""
        native = next((n for n in self.nodes if any(p.key == platform.key for p in n.platforms)), None)
        return (native or self.nodes[0]), native is not None

    def create_commands(self, *, bootstrap: bool = True) -> list[tuple[str, ...]]:
        """`docker buildx create` for the first node, `--append` for the others. buildx keeps
        driver options, buildkitd config and flags per node, so every node is given them."""
        if self.uses_daemon_builder:
            return []
        commands: list[tuple[str, ...]] = []
        nodes = self.nodes or (NodePlan(name="", endpoint=""),)
        for index, node in enumerate(nodes):
            args: list[str] = ["buildx", "create", "--name", self.name]
            args += ["--driver", self.driver] if index == 0 else ["--append"]
            for key, value in sorted({**dict(self.driver_opts), **dict(node.driver_opts)}.items()):
                args += ["--driver-opt", f"{key}={value}"]
            if self.buildkitd_config:
                args += ["--buildkitd-config", self.buildkitd_config]
            if self.buildkitd_flags:
                args += ["--buildkitd-flags", self.buildkitd_flags]
            if node.name:
                args += ["--node", node.name]
            if node.platforms:
                args += ["--platform", ",".join(format_platform(p) for p in node.platforms)]
            if node.endpoint:
                args.append(node.endpoint)
            commands.append(tuple(args))
        if bootstrap:
            commands.append(self.bootstrap_command())
        return commands

    def bootstrap_command(self) -> tuple[str, ...]:
        return ("buildx", "inspect", "--bootstrap", self.name)

    def node_check_commands(self) -> list[str]:
        """For nodes orch routes to itself: how each is checked."""
        return [f"docker buildx inspect {shlex.quote(n.builder)}" if n.builder else
                f"docker {'--host' if '://' in n.endpoint else '--context'} {shlex.quote(n.endpoint)} info"
                for n in self.nodes]

    def shell(self) -> str:
        """One shell line: reuse the builder if it exists, else create it."""
        if self.routes_by_context:
            return " && ".join(f"{c} >/dev/null" for c in self.node_check_commands())
        if self.uses_daemon_builder:
            return f"docker buildx inspect --bootstrap {shlex.quote(self.name)}"
        create = " && ".join("docker " + shlex.join(c) for c in self.create_commands())
        return f"docker buildx inspect --bootstrap {shlex.quote(self.name)} >/dev/null 2>&1 || {{ {create}; }}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "driver": self.driver,
            "driver_opts": dict(self.driver_opts),
            "buildkitd_config": self.buildkitd_config,
            "buildkitd_flags": self.buildkitd_flags,
            "nodes": [{"name": n.name, "endpoint": n.endpoint, "builder": n.builder,
                       "platforms": [format_platform(p) for p in n.platforms], "driver_opts": dict(n.driver_opts)}
                      for n in self.nodes],
            "commands": ["docker " + shlex.join(c) for c in self.create_commands()],
        }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadInput(f'builder name "{name}" is not valid',
                       fix="use letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


def plan_builder(spec: BuilderSpec | None = None, *, name: str | None = None, driver: str | None = None,
                 driver_opts: dict[str, str] | None = None, buildkitd_config: str | None = None) -> BuilderPlan:
    """A builder plan from a profile's `builder` section, overridden by CLI values."""
    spec = spec or BuilderSpec()
    if buildkitd_config:
        spec = replace(spec, buildkitd_config=buildkitd_config)
    name = check_name(name or spec.name or DEFAULT_NAME)
    if driver is not None and driver not in DRIVERS:
        raise BadInput(f'unknown builder driver "{driver}"', fix=f"use one of: {', '.join(DRIVERS)}")
    chosen = driver or spec.driver
    if name == RESERVED:
        if chosen not in (None, "docker"):
            raise BadInput(f'"{RESERVED}" is the daemon\'s own builder (docker driver); it cannot be a {chosen} builder',
                           fix="pick another name for a builder orch should create")
        chosen = "docker"
    nodes = tuple(
        NodePlan(name=node.name or f"{name}-{index}", endpoint=node.endpoint or "",
                 platforms=tuple(node.platforms or ()), builder=node.builder,
                 driver_opts=tuple(sorted((node.driver_opts or {}).items())))
        for index, node in enumerate(spec.nodes or ())
    )
    resolved_driver = chosen or DEFAULT_DRIVER
    if any(node.builder for node in nodes) and resolved_driver != "docker":
        raise BadInput(f'builder "{name}" has a node given as an existing builder; that works only when orch sends '
                       "each platform's build to its node itself",
                       fix="set `driver: docker` in the builder section (per-arch fan-out), or give the node an "
                           "endpoint")
    if resolved_driver == "docker" and nodes:
        # Per-arch fan-out over daemons (docker contexts or endpoints): nothing to create.
        opts = {**(spec.driver_opts or {}), **(driver_opts or {})}
        return BuilderPlan(name=name, driver="docker", driver_explicit=True,
                           driver_opts=tuple(sorted(opts.items())), nodes=nodes)
    if len(nodes) > 1 and resolved_driver not in MULTI_NODE_DRIVERS:
        raise BadInput(f'builder "{name}" lists {len(nodes)} nodes, but the {resolved_driver} driver has only one',
                       fix="set `driver: docker-container` (or remote) in the profile's builder section, or "
                           "`driver: docker` to send each platform's build to its node's own daemon (per-arch)")
    if resolved_driver == "docker" and name != RESERVED:
        # buildx refuses `create --driver docker`: the docker builder is the context's own.
        raise BadInput(f'builder "{name}" cannot use the docker driver: that builder is the daemon\'s own, '
                       f'named after its context',
                       fix=f'use `name: {RESERVED}` for the daemon\'s builder, or `driver: {DEFAULT_DRIVER}`')
    _check_daemon_settings(name, resolved_driver, spec)
    opts = {**(spec.driver_opts or {}), **(driver_opts or {})}
    return BuilderPlan(name=name, driver=resolved_driver, driver_explicit=chosen is not None,
                       driver_opts=tuple(sorted(opts.items())), nodes=nodes,
                       buildkitd_config=spec.buildkitd_config, buildkitd_flags=spec.buildkitd_flags)


def _check_daemon_settings(name: str, driver: str, spec: BuilderSpec) -> None:
    """buildkitd's config and flags go to the nodes a driver starts; a remote node's buildkitd
    runs already, with its own (buildx: "setting config file is not supported for remote driver")."""
    given = [key for key in ("buildkitd_config", "buildkitd_flags") if getattr(spec, key)]
    if driver == "remote" and given:
        raise BadInput(f'builder "{name}" sets {" and ".join(given)}, but its driver is remote: a remote node\'s '
                       "buildkitd is already running with its own config",
                       fix="put the settings in each node's buildkitd.toml on its host (and restart it), or drop "
                           f"{' and '.join(given)} from the builder section")
    config = spec.buildkitd_config
    if config and not os.path.isfile(config):
        raise BadInput(f'builder "{name}": buildkitd_config "{config}" is not a file',
                       fix="give the path of a buildkitd.toml, relative to the profile, or an absolute one")
