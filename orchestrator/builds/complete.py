"""The plan completed once, from the builder's capabilities, before anything runs.

Planning (builds.request) decides what the user asked for without asking the engine. This step
decides how the builder that will run it stages and publishes, from what the builder says it
can do (docker.capabilities), and never again afterwards: the executor runs what comes out.
What depends on an outcome (auto's per-platform fallback when some platforms fail) is the
second step the plan already holds (`per_arch`), not an edit of the first.

A builder whose nodes are separate daemons (docker driver) is completed here too, from what
each node says (`ask_nodes`): its image store, and which builders nodes named as builders are.

A dry run completes the plan the same way from facts that change nothing to ask (`buildx
inspect` without bootstrap, `docker info`, `buildx ls`, each node's `docker info`), or, where
they cannot be had, from stated assumptions (`Capabilities.assumed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from orchestrator.builds.nodes import call_nodes
from orchestrator.builds.plan import BuildPlan
from orchestrator.docker import probe
from orchestrator.docker.capabilities import Capabilities, Node
from orchestrator.docker.facts import BuilderInfo
from orchestrator.docker.runner import Daemon, Engine
from orchestrator.errors import BadInput, EnvironmentMissing, OrchError
from orchestrator.model.platform import format_platform
from orchestrator.workers import parallel_map

CLASSIC_STORE = "the daemon's builder (docker driver, without the containerd image store) builds one platform per call"
NO_ATTESTATIONS = ("the docker driver on the classic image store cannot attach provenance or SBOM; enable the "
                   "containerd image store to keep them")
CLASSIC_STORE_FIX = ('enable it ({"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json, '
                     "restart dockerd), pass --builder with a docker-container builder, or build one platform "
                     "per call with --strategy per-arch")


@dataclass(frozen=True)
class NodeFacts:
    """What the nodes of a builder whose nodes are separate daemons said (`ask_nodes`)."""

    stores: dict[Daemon, bool] = field(default_factory=dict)  # each node's daemon: containerd image store?
    builders: tuple[BuilderInfo, ...] = ()  # `buildx ls`, for nodes named as builders
    status: dict[str, str] = field(default_factory=dict)  # node name -> "running", or why it was not asked
    assumed: tuple[str, ...] = ()


def complete(plan: BuildPlan, caps: Capabilities, nodes: NodeFacts | None = None) -> BuildPlan:
    """`plan` as this builder will run it: from the builder's capabilities, or, on a builder whose
    nodes are separate daemons, from what the nodes said."""
    done = _complete(plan, caps, nodes)
    return _recorded_buildkit(done, caps) if plan.spec.rewrite_timestamp else done


def _complete(plan: BuildPlan, caps: Capabilities, nodes: NodeFacts | None) -> BuildPlan:
    if plan.builder_plan is not None and plan.builder_plan.routes_by_context:
        # Nodes that are daemons of their own: orch sends each platform to its node's builder, so
        # the builder buildx would use here takes no part (a build kept locally runs here, as planned).
        return _on_nodes(plan, caps, nodes or NodeFacts()) if plan.push else plan
    plan = replace(plan, capabilities=caps)
    if not plan.push:
        return _kept_locally(plan, caps)
    if not caps.several_platforms_per_call:
        return _one_platform_per_call(plan, caps)
    if caps.multi_node:
        return _per_node(plan, caps)
    if caps.push_by_digest:
        return plan.pushed_by_digest()  # no layout on disk: buildx pushes with no tag
    return plan


REPRODUCIBLE_LOCAL_FIX = ("write an OCI layout instead (--oci-layout DIR; read it with orch inspect "
                          "oci-layout://DIR), publish it (--push), or use a docker-container builder (--builder)")


def _recorded_buildkit(plan: BuildPlan, caps: Capabilities) -> BuildPlan:
    """--reproducible: refuse the outputs that cannot rewrite timestamps (the daemon's own image
    exporter: "conflicts with unpack"), and record in each image the BuildKit that builds it."""
    if plan.builder_plan is not None and plan.builder_plan.routes_by_context:
        raise BadInput(f'--reproducible is not yet taken on builder "{plan.builder_plan.name}", whose nodes are '
                       "separate daemons: orch does not ask each daemon which BuildKit it runs, and the image "
                       "must record the one that built each platform",
                       fix="build each node's platforms as a part on that daemon (DOCKER_CONTEXT=NODE orch build "
                           "--reproducible --platform P --image REPO --push --part DIR), then orch release DIR...; "
                           "or use a docker-container or remote builder")
    from orchestrator.builds.reproducible import BUILDKIT_LABEL, buildkit_name

    if caps.driver == "docker":
        image = plan.spec.output.type == "image" and not plan.push
        staged = any(job.spec.output.type == "registry" for job in plan.per_arch)
        if image or staged:
            where = "a build into the daemon's image store" if image else \
                "a build staged under a tag from the classic image store"
            raise BadInput(f"--reproducible: {where} cannot rewrite timestamps (the daemon's own BuildKit refuses "
                           "rewrite-timestamp on its image exporter: it conflicts with unpack)",
                           fix=REPRODUCIBLE_LOCAL_FIX if image else CLASSIC_STORE_FIX)

    def version(node_name: str | None) -> str:
        node = next((n for n in caps.nodes if n.name == node_name), caps.nodes[0] if caps.nodes else None)
        return buildkit_name(node.buildkit if node else None, caps.driver, caps.server_version)

    jobs = tuple(replace(job, spec=job.spec.with_label(BUILDKIT_LABEL, version(job.node))) for job in plan.per_arch)
    return replace(plan, spec=plan.spec.with_label(BUILDKIT_LABEL, version(None)), per_arch=jobs)


def _kept_locally(plan: BuildPlan, caps: Capabilities) -> BuildPlan:
    """A build without --push ends where orch says it does. On BuildKit's own drivers an image
    stays inside BuildKit unless it is loaded into the daemon (`type=docker`, what --load does).
    On a builder of several nodes buildx loads or writes one layout when the call goes to one
    node, and refuses when its platforms go to several ("oci for multi-node builds currently not
    supported", 0.13.1 and 0.30.1 alike): that is refused here, before anything is built."""
    output = plan.spec.output
    if not caps.container_driver:
        return plan
    if caps.multi_node:
        _one_node(plan, caps)
    if output.type == "image":
        return replace(plan, spec=replace(plan.spec, output=replace(output, type="docker")))
    return plan


def _one_node(plan: BuildPlan, caps: Capabilities) -> None:
    """Refuse a local build whose platforms buildx would send to several nodes (builds.nodes)."""
    routed = call_nodes(plan.platforms, caps)
    if len(routed) < 2:
        return
    where = "write one OCI layout" if plan.spec.output.type == "oci" else "load one image into the daemon"
    split = "; ".join(f"{name} would build {', '.join(labels)}" for name, labels in routed.items())
    nodes = "; ".join(f"{n.name}: {', '.join(n.given)}" for n in caps.nodes if n.given)
    raise EnvironmentMissing(
        f'builder "{caps.builder}" has {len(caps.nodes)} nodes, and buildx cannot {where} from several nodes '
        f"({split})",
        fix=f"build only platforms of one node ({nodes}), add --push (orch builds each platform on its node and "
            "publishes one verified index), or pick a builder of one node")


def _one_platform_per_call(plan: BuildPlan, caps: Capabilities) -> BuildPlan:
    """The docker driver over the classic image store: no multi-platform call, no layout, no
    attestations; each platform pushed under a staging tag (publish.stage)."""
    if plan.strategy == "single":
        raise EnvironmentMissing("the default builder (docker driver) cannot build several platforms at once, or "
                                 "stage them by digest, without the containerd image store", fix=CLASSIC_STORE_FIX)
    reason = plan.per_arch_reason or CLASSIC_STORE
    return replace(plan.without_attestations().staged_by_tag(), per_arch_reason=reason,
                   warnings=(*plan.warnings, NO_ATTESTATIONS))


def _per_node(plan: BuildPlan, caps: Capabilities) -> BuildPlan:
    """A builder of several BuildKit nodes: one buildx call over them pushes the merged index as
    `latest` (even by digest) and refuses to write a layout, so each platform is built on its
    own, on the node given it, pushed by digest from that node (a one-platform call has no
    merged index, so no tag is written), and orch merges, verifies and promotes."""
    nodes = ", ".join(f"{n.name} ({', '.join(n.given) or 'no platforms given'})" for n in caps.nodes)
    if plan.strategy == "single":
        raise EnvironmentMissing(
            f'builder "{caps.builder}" has {len(caps.nodes)} nodes ({nodes}): one buildx call over them tags the '
            "pushed index `latest` and cannot write a layout, so orch cannot publish it unverified-tag-free",
            fix="use --strategy auto or per-arch (one build per platform, each on its node, merged by orch)")
    reason = plan.per_arch_reason or (f'builder "{caps.builder}" has {len(caps.nodes)} nodes: one build per '
                                      "platform, each on the node given it, merged and verified by orch")
    jobs = []
    for job in plan.per_arch:
        node, native = caps.route(job.label)
        jobs.append(replace(job, node=node.name, native=native))
    # Two builds at once per node, as for a profile's nodes, unless --jobs said otherwise.
    at_once = plan.jobs if plan.jobs_given else max(plan.jobs, 2 * len(caps.nodes))
    return replace(plan, per_arch_reason=reason, per_arch=tuple(jobs), jobs=at_once).pushed_by_digest()


def completed_for_dry_run(engine: Engine, plan: BuildPlan) -> BuildPlan:
    """The plan completed from what can be asked without changing anything (no bootstrap, no
    builder created); where that cannot be had, from assumptions the plan then states."""
    try:
        caps = probe.capabilities(engine, plan.builder, version=True)
    except BadInput:
        if plan.builder_plan is None:
            raise  # --builder names a builder that does not exist: as wrong in a dry run
        caps = assumed_capabilities(plan, "it does not exist yet; `orch build` creates it")
    except OrchError as exc:
        caps = assumed_capabilities(plan, f"no Docker engine answered ({exc.message})")
    return complete(plan, caps, ask_nodes(engine, plan, dry_run=True))


def assumed_capabilities(plan: BuildPlan, why: str) -> Capabilities:
    """What a dry run takes for granted when the builder cannot be asked (no engine answers, or
    the profile's builder does not exist yet): the profile's builder as it would be created, else
    the daemon's own builder with the containerd image store."""
    spec = plan.builder_plan
    if spec is not None and not spec.uses_daemon_builder:
        nodes = tuple(Node(n.name, n.endpoint or "", "inactive", given=tuple(str(p) for p in n.platforms))
                      for n in spec.nodes) or (Node(f"{spec.name}0", "", "inactive"),)
        return Capabilities(spec.name, spec.driver, (0, 0, 0), nodes, None,
                            assumed=(f'builder "{spec.name}" as the profile would create it ({spec.driver} driver, '
                                     f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}): {why}",))
    name = plan.builder or "default"
    return Capabilities(name, "docker", (0, 0, 0), (Node(name, "default", "unknown"),), True,
                        assumed=(f'builder "{name}" is the docker driver on the containerd image store: {why}',))


def ask_nodes(engine: Engine, plan: BuildPlan, *, dry_run: bool = False) -> NodeFacts | None:
    """What `complete` needs of a builder whose nodes are separate daemons (None for any other
    builder), read-only and once: each node's daemon (its image store: on the classic one its builds
    go under staging tags, without attestations) and, for nodes named as builders, `buildx ls`.
    Every daemon must answer before anything is built (exit 3 naming the node); a dry run says
    what it assumed of one that does not."""
    if plan.builder_plan is None or not plan.builder_plan.routes_by_context or not plan.push:
        return None
    assumed: list[str] = []
    named = {n.name: n.builder for n in plan.builder_plan.nodes if n.builder}
    listed: tuple[BuilderInfo, ...] = ()
    if named:
        try:
            listed = tuple(probe.builders(engine))
        except OrchError as exc:
            if not dry_run:
                raise
            assumed.append(f"the builders nodes name were not listed ({exc.message}): each taken to be a "
                           "builder of its own, used with --builder")
            listed = tuple(BuilderInfo(name, "unknown") for name in sorted(set(named.values())))
    known = {b.name: b.status for b in listed}
    status = {node: known.get(builder, "unknown") for node, builder in named.items()}
    resolved = resolve_builder_nodes(plan, list(listed))
    nodes: dict[Daemon, str | None] = {job.daemon: job.node for job in resolved.per_arch if job.daemon}

    def ask(daemon: Daemon) -> tuple[Daemon, bool | str]:
        try:
            return daemon, probe.engine_facts(Engine(daemon)).containerd_store
        except OrchError as exc:
            stderr = getattr(exc, "stderr", "").strip()
            reason = stderr.splitlines()[-1] if stderr else exc.message
            if dry_run:
                return daemon, reason
            raise EnvironmentMissing(f'build node "{nodes[daemon]}" ({daemon}) does not answer: {reason}',
                                     fix="start that daemon or builder, or check the node in the profile's "
                                         "builder.nodes (`docker context ls`, `docker buildx ls`)") from None

    stores = {}
    for daemon, answer in parallel_map(ask, list(nodes), max(1, len(nodes))):
        status[nodes[daemon] or str(daemon)] = "running" if isinstance(answer, bool) else "not answering"
        if isinstance(answer, bool):
            stores[daemon] = answer
        else:
            assumed.append(f'node "{nodes[daemon]}" ({daemon}) did not answer ({answer}): taken to be on the '
                           "containerd image store; `orch build` stops there (exit 3) unless it answers")
    return NodeFacts(stores, listed, status, tuple(assumed))


def _on_nodes(plan: BuildPlan, caps: Capabilities, nodes: NodeFacts) -> BuildPlan:
    """Each platform's build on its node's daemon or builder; a daemon on the classic image store
    stages its builds under tags (publish.stage). The capabilities the plan keeps are the profile's
    builder as its nodes answered, so a dry run names them and what it assumed."""
    plan = resolve_builder_nodes(plan, list(nodes.builders))
    for daemon, containerd_store in nodes.stores.items():
        if not containerd_store:
            plan = plan.staged_by_tag(daemon)
    spec = plan.builder_plan
    assert spec is not None
    fanned = tuple(Node(n.name, n.builder or n.endpoint, nodes.status.get(n.name, "unknown"),
                        given=tuple(format_platform(p) for p in n.platforms)) for n in spec.nodes)
    return replace(plan, capabilities=Capabilities(spec.name, "docker", caps.buildx_version, fanned,
                                                   assumed=nodes.assumed))


def resolve_builder_nodes(plan: BuildPlan, builders: list[BuilderInfo]) -> BuildPlan:
    """Nodes named as builders: check each exists. A docker-driver builder is a docker
    context's own, which buildx will only use from that context, so its builds run
    as `docker --context NAME buildx build` instead of `--builder NAME`."""
    named = {n.name: n.builder for n in plan.builder_plan.nodes if n.builder} if plan.builder_plan else {}
    if not named or not plan.builder_plan or not plan.builder_plan.routes_by_context:
        return plan
    known = {b.name: b for b in builders}
    jobs = []
    for job in plan.per_arch:
        builder = named.get(job.node or "")
        if builder is None:
            jobs.append(job)
            continue
        info = known.get(builder)
        if info is None:
            raise EnvironmentMissing(f'build node "{job.node}" names the builder "{builder}", which does not exist',
                                     fix=f"create it (`docker buildx create --name {builder} ...`), or fix the node "
                                         f"in the profile's builder.nodes; `docker buildx ls` lists them: "
                                         f"{', '.join(sorted(known))}")
        if info.driver == "docker":
            job = replace(job, spec=job.spec.on_daemon(Daemon(context=builder)))
        jobs.append(job)
    return replace(plan, per_arch=tuple(jobs))
