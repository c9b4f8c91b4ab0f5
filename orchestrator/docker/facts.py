"""What the engine says about itself: `docker info` and `buildx ls`, parsed into plain data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import EnvironmentMissing

NO_DAEMON_FIX = (
    "start the Docker daemon (on Debian/Ubuntu as root: `make engine`, which runs scripts/engine-up.sh), "
    "or point DOCKER_HOST / --context at a running one"
)


@dataclass(frozen=True)
class BuilderNodeInfo:
    """One node of a buildx builder, as `buildx ls` reports it."""

    name: str
    endpoint: str
    status: str
    platforms: tuple[str, ...]  # what the node reports it can run, natively or under QEMU
    # The platforms the node was given (`buildx create --platform`; `buildx inspect` marks them
    # with *, `buildx ls --format json` does not): what buildx routes to it on a builder of several nodes.
    given: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """The platforms a builder sends to one of its nodes."""

    node: BuilderNodeInfo
    platforms: tuple[str, ...]
    # It also takes every platform no node was given: the first node of a builder of several
    # (buildx sends such a build there, under QEMU), or a builder's only node.
    takes_the_rest: bool


@dataclass(frozen=True)
class BuilderInfo:
    """A buildx builder as `buildx ls` reports it: its driver and nodes, and which platforms go
    to which node."""

    name: str
    driver: str
    nodes: tuple[BuilderNodeInfo, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        states = {node.status for node in self.nodes}
        return states.pop() if len(states) == 1 else ",".join(sorted(states)) or "unknown"

    def routes(self) -> list[Route]:
        """Which node builds which platform: a builder's only node builds all it reports; on a
        builder of several nodes each builds the platforms it was given, and the first also
        those no node was given."""
        if len(self.nodes) == 1:
            return [Route(self.nodes[0], self.nodes[0].platforms, True)]
        return [Route(node, node.given, index == 0) for index, node in enumerate(self.nodes)]

    @property
    def platforms(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for node in self.nodes:
            seen.update(dict.fromkeys(node.platforms))
        return tuple(seen)


def checked_info(info: dict[str, Any]) -> dict[str, Any]:
    """`docker info` JSON, or EnvironmentMissing when it reports that no daemon answered."""
    errors = info.get("ServerErrors") or []
    if errors:
        raise EnvironmentMissing(f"no Docker daemon answers: {errors[0]}", fix=NO_DAEMON_FIX)
    return info


def parse_builders(text: str) -> list[BuilderInfo]:
    """`docker buildx ls --format json`: one builder per line (buildx 0.13 repeats a builder's
    line once per node and once more, so each name is kept once)."""
    builders: dict[str, BuilderInfo] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        b = json.loads(line)
        builders[b.get("Name", "")] = (BuilderInfo(
            name=b.get("Name", ""), driver=b.get("Driver", ""),
            nodes=tuple(BuilderNodeInfo(name=n.get("Name", ""), endpoint=n.get("Endpoint", ""),
                                        status=n.get("Status") or "unknown", platforms=tuple(n.get("Platforms") or ()))
                        for n in b.get("Nodes") or ()),
        ))
    return sorted(builders.values(), key=lambda b: b.name)  # buildx ls order is not stable


def uses_containerd_image_store(info: dict[str, Any]) -> bool:
    """True when `docker info` shows the containerd snapshotter image store."""
    for key, value in info.get("DriverStatus") or []:
        if key == "driver-type" and "containerd.snapshotter" in str(value):
            return True
    return False


@dataclass(frozen=True)
class EngineFacts:
    """One daemon's `docker info`, asked once per run (docker.probe), and what orch reads of it:
    the image store (what the docker driver can build), and the registry settings docker itself
    goes by (insecure registries, mirrors), which the registry client is given."""

    info: dict[str, Any]

    @property
    def containerd_store(self) -> bool:
        return uses_containerd_image_store(self.info)

    @property
    def registry_config(self) -> dict[str, Any]:
        """`docker info`'s RegistryConfig as the daemon prints it (what registry.reach.insecure_in reads)."""
        config = self.info.get("RegistryConfig")
        return config if isinstance(config, dict) else {}

    @property
    def insecure_registries(self) -> tuple[str, ...]:
        """Registries and networks the daemon speaks to without verified TLS: its insecure CIDRs,
        and the registries it lists as not secure."""
        listed = [name for name, index in sorted((self.registry_config.get("IndexConfigs") or {}).items())
                  if isinstance(index, dict) and index.get("Secure") is False]
        return (*(self.registry_config.get("InsecureRegistryCIDRs") or ()), *listed)

    @property
    def mirrors(self) -> tuple[str, ...]:
        """The daemon's registry mirrors (for Docker Hub)."""
        return tuple(self.registry_config.get("Mirrors") or ())
