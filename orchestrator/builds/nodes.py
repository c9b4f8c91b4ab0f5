"""Which node builds each platform, on the per-arch path and in one buildx call, and how orch
reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.docker.runner import Daemon
from orchestrator.model.platform import Platform, format_platform

if TYPE_CHECKING:
    from orchestrator.docker.builder_plan import BuilderPlan
    from orchestrator.docker.capabilities import Capabilities, Node


@dataclass(frozen=True)
class NodeChoice:
    """Where one platform's per-arch build runs."""

    name: str | None = None
    native: bool = False  # the node lists the platform: no emulation
    daemon: Daemon | None = None  # the node's own daemon (a docker context or an endpoint)
    builder: str | None = None  # or an existing buildx builder


def assign_node(platform: Platform, builder_plan: BuilderPlan | None) -> NodeChoice:
    """The first node serving the platform natively, else the first node, which emulates it.
    Only nodes orch routes to itself need a daemon; a buildx multi-node builder routes by
    platform on its own."""
    if builder_plan is None or not builder_plan.nodes:
        return NodeChoice()
    node, native = builder_plan.node_for(platform)
    if not builder_plan.routes_by_context:
        return NodeChoice(node.name, native)
    if node.builder:
        return NodeChoice(node.name, native, builder=node.builder)
    return NodeChoice(node.name, native, Daemon.at(node.endpoint))


def call_nodes(platforms: tuple[Platform, ...], caps: Capabilities) -> dict[str, tuple[str, ...]]:
    """The nodes one buildx call over `platforms` runs on, in the builder's order, each with the
    platforms it builds. buildx (0.13.1 and 0.30.1 alike, checked on a builder of two nodes) sends
    each platform to the node given it (Capabilities.route); when any platform is given to no
    node, or none is named, the WHOLE call goes to the first node, under QEMU where needed."""
    labels = tuple(format_platform(p) for p in platforms)
    if not caps.nodes:
        return {}
    given: dict[str, Node | None] = {label: caps.node_for(label) for label in labels}
    if not labels or None in given.values():
        return {caps.nodes[0].name: labels}
    return {node.name: tuple(label for label in labels if given[label] is node)
            for node in caps.nodes if node in given.values()}
