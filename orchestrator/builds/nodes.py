"""Which node builds each platform on the per-arch path, and how orch reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.docker.runner import Daemon
from orchestrator.model.platform import Platform

if TYPE_CHECKING:
    from orchestrator.docker.builder_plan import BuilderPlan


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
