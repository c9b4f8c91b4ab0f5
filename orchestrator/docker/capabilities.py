"""What a builder can do, probed once per run: its driver, buildx's version, its nodes and the
platforms each is given, and from those what orch may ask of it (push by digest with no tag,
export an OCI layout, load into the daemon, export a cache). The plan is completed from this
value before anything runs; nothing later guesses from a command's stderr.

The facts come from `docker buildx inspect [NAME]` (no --bootstrap: it changes nothing),
`docker buildx version` and, for the docker driver, `docker info` (the image store). Each
rule below says which buildx behaviour it encodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.docker.facts import uses_containerd_image_store

CONTAINER_DRIVERS = ("docker-container", "remote", "kubernetes")


@dataclass(frozen=True)
class Node:
    """One BuildKit node of a builder."""

    name: str
    endpoint: str
    status: str
    # The platforms the node was given (`buildx create --platform`, marked * by inspect): buildx
    # routes a platform to the node that lists it. Empty when none were given.
    given: tuple[str, ...] = ()
    # Everything the node reports it can run (natively or through QEMU's binfmt handlers).
    reported: tuple[str, ...] = ()
    buildkit: str | None = None


@dataclass(frozen=True)
class Capabilities:
    """A builder's facts, probed once per run, and what orch may ask of it (the properties below);
    the plan is completed from this before anything runs."""

    builder: str
    driver: str
    buildx_version: tuple[int, int, int]
    nodes: tuple[Node, ...] = field(default_factory=tuple)
    # The daemon's image store, for the docker driver (None: not asked, another driver).
    containerd_store: bool | None = None
    assumed: tuple[str, ...] = ()  # what a dry run took for granted instead of asking
    server_version: str | None = None  # the daemon's version, for the docker driver (its BuildKit is the daemon's)

    @property
    def multi_node(self) -> bool:
        return len(self.nodes) > 1

    @property
    def container_driver(self) -> bool:
        return self.driver in CONTAINER_DRIVERS

    @property
    def push_by_digest(self) -> bool:
        """buildx pushes with no tag (`push-by-digest=true`) on BuildKit's own drivers; the docker
        driver refuses ("not implemented for docker driver", 0.13.1 and 0.30.1 alike). On a
        multi-node builder buildx still tags the merged index `latest`, so orch pushes per node."""
        return self.container_driver and not self.multi_node

    @property
    def export_oci(self) -> bool:
        """`--output type=oci` on one call over every node: refused when the call's platforms go to
        several nodes ("oci for multi-node builds currently not supported"; a call that goes to one
        node works, builds.nodes.call_nodes) and on the docker driver over the classic image store."""
        if self.multi_node:
            return False
        return self.container_driver or self.containerd_store is not False

    @property
    def load(self) -> bool:
        """The result can reach the daemon's image store: the docker driver keeps it there; a
        container driver needs --load, which buildx refuses when the call's platforms go to several
        nodes (a call that goes to one node loads, builds.nodes.call_nodes)."""
        return self.driver == "docker" or not self.multi_node

    @property
    def cache_export(self) -> bool:
        """`--cache-to type=registry` works on BuildKit's own drivers and on the docker driver
        with the containerd image store."""
        return self.container_driver or self.containerd_store is True

    @property
    def several_platforms_per_call(self) -> bool:
        """The docker driver over the classic image store builds one platform per call."""
        return self.driver != "docker" or self.containerd_store is not False

    @property
    def bake_needs_fs_entitlements(self) -> bool:
        """buildx 0.18 and later refuse bake outputs outside the working directory unless
        `--allow=fs.write=DIR` is given; 0.13 knows no such option."""
        return self.buildx_version >= (0, 18, 0)

    def node_for(self, platform: str) -> Node | None:
        """The node buildx sends `platform` to on a multi-node builder: the first that was given
        it. None when no node was given it (buildx then sends the WHOLE build to the first node)."""
        return next((node for node in self.nodes if platform in node.given), None)

    def route(self, platform: str) -> tuple[Node, bool]:
        """The node a one-platform build of `platform` runs on, and whether the node was given
        the platform: buildx sends a platform no node was given to the first node (under QEMU)."""
        given = self.node_for(platform)
        return (given or self.nodes[0]), given is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "builder": self.builder, "driver": self.driver,
            "buildx_version": ".".join(map(str, self.buildx_version)),
            "nodes": [{"name": n.name, "endpoint": n.endpoint, "status": n.status, "platforms": list(n.given),
                       "buildkit": n.buildkit} for n in self.nodes],
            "containerd_store": self.containerd_store, "push_by_digest": self.push_by_digest,
            "export_oci": self.export_oci, "load": self.load, "cache_export": self.cache_export,
            "server_version": self.server_version, "assumed": list(self.assumed),
        }


def parse_inspect(text: str) -> tuple[str, str, tuple[Node, ...]]:
    """`docker buildx inspect` as (builder name, driver, nodes); the same layout from buildx
    0.13 to 0.30: the builder's `Name:`/`Driver:`, then after `Nodes:` one block per node."""
    name = driver = ""
    nodes: list[dict[str, str]] = []
    in_nodes = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep or line.startswith((" ", "\t")):
            continue
        key, value = key.strip(), value.strip()
        if key == "Nodes":
            in_nodes = True
        elif not in_nodes and key == "Name":
            name = value
        elif not in_nodes and key == "Driver":
            driver = value
        elif in_nodes and key == "Name":
            nodes.append({"Name": value})
        elif in_nodes and nodes:
            nodes[-1].setdefault(key, value)
    return name, driver, tuple(_node(fields) for fields in nodes)


def _node(fields: dict[str, str]) -> Node:
    platforms = [p.strip() for p in fields.get("Platforms", "").split(",") if p.strip()]
    return Node(name=fields["Name"], endpoint=fields.get("Endpoint", ""), status=fields.get("Status", "unknown"),
                given=tuple(p.rstrip("*") for p in platforms if p.endswith("*")),
                reported=tuple(p.rstrip("*") for p in platforms),
                buildkit=fields.get("BuildKit version") or fields.get("Buildkit") or None)


def parse_version(text: str) -> tuple[int, int, int]:
    """`docker buildx version`: `github.com/docker/buildx v0.30.1 9e66...` or Debian's
    `github.com/docker/buildx 0.13.1+ds1 ...`; (0, 0, 0) when unreadable."""
    found = re.search(r"\bv?(\d+)\.(\d+)\.(\d+)", text)
    if not found:
        return (0, 0, 0)
    major, minor, patch = (int(part) for part in found.groups())
    return (major, minor, patch)


def capabilities_configured(document: Any) -> Capabilities | None:
    """A BuildKit builder's capabilities from the configuration buildx keeps of it (its file under
    `instances/` in buildx's config directory, the same JSON from buildx 0.13 to 0.30): the
    driver, the nodes, their endpoints and the platforms each was given, which is all a plan is
    completed from. What only the nodes can say (status, BuildKit version, what else they run) is
    not there: `capabilities_from` (`buildx inspect`) where it is needed. None for anything
    else: the docker driver, a dynamic (kubernetes) builder, a file not as expected."""
    if not isinstance(document, dict) or document.get("Driver") not in CONTAINER_DRIVERS or document.get("Dynamic"):
        return None
    nodes = document.get("Nodes")
    if not isinstance(nodes, list) or not nodes or not isinstance(document.get("Name"), str):
        return None
    made = []
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("Name"), str):
            return None
        given = []
        for platform in node.get("Platforms") or []:
            if not isinstance(platform, dict) or not platform.get("os") or not platform.get("architecture"):
                return None
            given.append("/".join(str(platform[key]) for key in ("os", "architecture", "variant") if platform.get(key)))
        made.append(Node(node["Name"], str(node.get("Endpoint") or ""), "not asked", given=tuple(given)))
    return Capabilities(document["Name"], document["Driver"], (0, 0, 0), tuple(made))


def capabilities_from(inspect: str, version: str, info: dict[str, Any] | None) -> Capabilities:
    name, driver, nodes = parse_inspect(inspect)
    return Capabilities(builder=name, driver=driver, buildx_version=parse_version(version), nodes=nodes,
                        containerd_store=uses_containerd_image_store(info) if driver == "docker" and info else None,
                        server_version=str(info.get("ServerVersion") or "") or None if driver == "docker" and info
                        else None)
