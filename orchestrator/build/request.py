"""`orch build`'s request, planned: the user's options and their profile become a BuildPlan,
touching no engine."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.build.argv import check_extra
from orchestrator.build.inputs import (
    build_time,
    check_metadata_file,
    check_secret,
    is_remote,
    parse_build_args,
    resolve_sources,
)
from orchestrator.build.nodes import assign_node
from orchestrator.build.plan import BuildPlan, PlatformJob
from orchestrator.build.spec import BuildSpec, CacheEntry, Output
from orchestrator.errors import BadInput
from orchestrator.model.platform import platform_slug
from orchestrator.model.platform_match import order
from orchestrator.model.platform_parse import parse_all, unusual
from orchestrator.model.references import Reference, parse_reference
from orchestrator.profiles import MERGES, STRATEGIES, Profile, load
from orchestrator.publish.stage import stage_directory
from orchestrator.tags.gitinfo import oci_labels, read_git
from orchestrator.tags.tagging import plan_tags

if TYPE_CHECKING:
    from orchestrator.docker.builder_plan import BuilderPlan

DEFAULT_LOCAL_REPO = "orch-local"


@dataclass(frozen=True)
class BuildRequest:
    """What the user asked for; CLI values override the profile's."""

    profile: str | None = None
    context: str | None = None
    dockerfile: str | None = None
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()
    push: bool = False
    builder: str | None = None
    install_emulators: bool | None = None
    oci_layout: str | None = None  # without --push: write an OCI layout directory here
    strategy: str | None = None  # single | per-arch | auto (default: the profile's, else auto)
    merge: str | None = None  # imagetools | manifest (default: the profile's, else imagetools)
    jobs: int | None = None  # per-arch builds at once (default: 2 per node, at least 2)
    no_cache: bool = False
    secrets: tuple[str, ...] = ()  # --secret id=NAME,env=VAR | id=NAME,src=FILE
    metadata_file: str | None = None  # where --metadata-file writes the result (checked before building)
    deep: bool = False  # verify down to each image's binaries before any tag moves
    # buildx's own options; lists add to the profile's, single values replace them
    target: str | None = None
    labels: tuple[str, ...] = ()  # KEY=VALUE
    annotations: tuple[str, ...] = ()  # [LEVEL:]KEY=VALUE
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    build_contexts: tuple[str, ...] = ()  # NAME=SOURCE
    pull: bool = False
    network: str | None = None
    add_hosts: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    shm_size: str | None = None
    ulimits: tuple[str, ...] = ()
    provenance: str | None = None
    sbom: bool | None = None
    extra_args: tuple[str, ...] = ()  # after `--`
    images: tuple[str, ...] = ()  # --image: repositories the tag rules tag
    tag_rules: tuple[str, ...] = ()  # --tag-rule: metadata-action rules
    flavor: tuple[str, ...] = ()  # --flavor: metadata-action flavor lines
    meta: str | None = None  # --meta env|FILE: metadata-action's output


def plan_build(request: BuildRequest, *, now: datetime | None = None, cwd: Path | None = None) -> BuildPlan:
    """Turn a request (and its profile) into a plan. Touches no engine."""
    now = now or build_time()
    cwd = cwd or Path.cwd()
    profile = load(request.profile) if request.profile else Profile(name="adhoc", source="(command line)")
    platforms = tuple(order(parse_all(request.platforms) if request.platforms else profile.platforms or ()))
    if not platforms:
        raise BadInput(f'no platforms to build (profile "{profile.name}" names none)',
                       fix="pass --platform linux/amd64,linux/arm64 or --profile arm-all")
    context = request.context or profile.context or "."
    context_path, dockerfile = resolve_sources(context, request.dockerfile or profile.dockerfile,
                                               from_cli=bool(request.dockerfile), cwd=cwd)
    git = None if is_remote(context) else read_git(context_path)
    tagging = plan_tags(literal=request.tags, rules=request.tag_rules, images=request.images, flavor=request.flavor,
                        meta=request.meta, profile=profile, git=git, now=now)
    tags = tuple(parse_reference(t) for t in tagging.tags)
    if request.push and not tags:
        raise BadInput("--push needs a tag to publish", fix="pass -t REGISTRY/IMAGE:TAG or set tags in the profile")
    for t in tags:
        if t.digest:
            raise BadInput(f'tag "{t}" has a digest; a build publishes to tags', fix="drop the @sha256:... part")
    strategy = _choice(request.strategy or profile.strategy or "auto", STRATEGIES, "--strategy",
                       "single: one buildx call; per-arch: one per platform, merged; auto: single, falling back to "
                       "per-arch")
    merge = _choice(request.merge or profile.merge or "imagetools", MERGES, "--merge",
                    "imagetools (an OCI index, keeps attestations) or manifest (a Docker manifest list)")
    if request.jobs is not None and request.jobs < 1:
        raise BadInput(f'--jobs "{request.jobs}" must be 1 or more', fix="pass --jobs 2, say")

    # --builder names an existing builder, as in buildx; a profile's builder is created when missing.
    builder_plan = None
    if profile.builder and not request.builder:
        from orchestrator.docker.builder_plan import plan_builder

        builder_plan = plan_builder(profile.builder)
    builder = request.builder or (builder_plan.name if builder_plan else None)
    per_arch_reason = None
    if builder_plan and builder_plan.routes_by_context:
        if strategy == "single":
            raise BadInput(f'builder "{builder_plan.name}" lists nodes that are separate daemons (docker driver); '
                           "one buildx call cannot span them", fix="use --strategy per-arch (or auto), or a "
                           "docker-container builder whose nodes buildx drives together")
        per_arch_reason = "the builder's nodes are separate daemons (docker driver): one buildx call cannot span them"
        builder = None

    repository = tags[0] if request.push else None
    stage_dir = stage_directory(int(now.timestamp())) if request.push else None
    output, local_image = _output(request, tags, stage_dir, profile.name, cwd)
    attestations = profile.attestations
    provenance = request.provenance or (attestations.provenance if attestations and attestations.provenance
                                        else "mode=min")
    if provenance not in ("true", "false", "mode=min", "mode=max"):
        raise BadInput(f'--provenance "{provenance}" is not true, false, mode=min or mode=max',
                       fix="pass --provenance mode=max, say")
    spec = BuildSpec(
        platforms=platforms, context=context, output=output,
        metadata_file=str(Path(tempfile.gettempdir()) / f"orch-metadata-{os.getpid()}-{int(now.timestamp())}.json"),
        dockerfile=dockerfile, target=request.target or profile.target,
        build_args=tuple({**(profile.build_args or {}), **parse_build_args(request.build_args)}.items()),
        labels=tuple({**oci_labels(git, now, version=tagging.version), **tagging.labels, **(profile.labels or {}),
                      **pairs(request.labels, "--label")}.items()),
        annotations=tuple({**tagging.annotations, **(profile.annotations or {}),
                           **pairs(request.annotations, "--annotation")}.items()),
        cache_from=tuple(CacheEntry.parse(c) for c in (*(profile.cache_from or ()), *request.cache_from)),
        cache_to=tuple(CacheEntry.parse(c) for c in (*(profile.cache_to or ()), *request.cache_to)),
        provenance=provenance,
        sbom=request.sbom if request.sbom is not None else attestations.sbom if attestations else None,
        secrets=tuple(check_secret(s) for s in (*(profile.secrets or ()), *request.secrets)),
        ssh=(*(profile.ssh or ()), *request.ssh),
        build_contexts=tuple({**(profile.build_contexts or {}),
                              **pairs(request.build_contexts, "--build-context")}.items()),
        pull=request.pull or bool(profile.pull), network=request.network or profile.network,
        add_hosts=(*(profile.add_hosts or ()), *request.add_hosts), allow=(*(profile.allow or ()), *request.allow),
        shm_size=request.shm_size or profile.shm_size, ulimits=(*(profile.ulimits or ()), *request.ulimits),
        extra_args=check_extra(request.extra_args), builder=builder, no_cache=request.no_cache,
    )
    if request.metadata_file:
        check_metadata_file(request.metadata_file)
    warnings = tuple(filter(None, (unusual(p) for p in platforms))) + tuple(
        f'build arg {name} looks like a secret: build args are kept in the image\'s history, where anyone who '
        f"pulls it can read them; pass it as a build secret instead (--secret id={name},env={name}, read with "
        f"RUN --mount=type=secret,id={name})" for name in spec.secret_build_args)
    jobs: tuple[PlatformJob, ...] = ()
    if strategy != "single":
        if not request.push and strategy == "per-arch":
            raise BadInput("per-arch builds are merged in the registry, so they need --push",
                           fix="add --push (the result is verified before any tag moves), or use "
                               "--strategy single to keep the result locally")
        if request.push:
            jobs = plan_jobs(spec, stage_dir or "", merge, builder_plan)
    nodes = len(builder_plan.nodes) if builder_plan else 0
    return BuildPlan(
        profile=profile.name, spec=spec, tags=tags, repository=repository, local_image=local_image,
        stage_dir=stage_dir,
        strategy=strategy if request.push else "single", merge=merge, jobs=request.jobs or max(2, 2 * nodes),
        per_arch=jobs, per_arch_reason=per_arch_reason, reuse=not request.no_cache,
        install_emulators=bool(request.install_emulators if request.install_emulators is not None
                               else profile.install_emulators),
        builder_plan=builder_plan, warnings=warnings, deep=request.deep,
    )


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """KEY=VALUE options as a mapping (the last of a repeated key wins)."""
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise BadInput(f'{option} "{value}" is not KEY=VALUE', fix=f"pass {option} NAME=VALUE")
        out[key] = rest
    return out


def _choice(value: str, allowed: tuple[str, ...], option: str, fix: str) -> str:
    if value not in allowed:
        raise BadInput(f'{option} "{value}" is not one of {", ".join(allowed)}', fix=fix)
    return value


def _output(request: BuildRequest, tags: tuple[Reference, ...], stage_dir: str | None, profile: str,
            cwd: Path) -> tuple[Output, str | None]:
    """Where the single build's result goes, and where a build without --push leaves it."""
    if stage_dir is not None:
        if request.oci_layout:
            raise BadInput("--oci-layout and --push both say where the result goes",
                           fix="pass one: --push publishes to the registry, --oci-layout DIR keeps it on disk")
        return Output("oci", dest=f"{stage_dir}/all"), None
    if request.oci_layout:
        layout_dir = (cwd / request.oci_layout).resolve()
        if layout_dir.exists() and not layout_dir.is_dir():
            raise BadInput(f'--oci-layout "{request.oci_layout}" exists and is not a directory',
                           fix="pass a new or existing directory")
        return Output("oci", tuple(str(t) for t in tags), dest=str(layout_dir)), f"oci-layout://{layout_dir}"
    names = tuple(str(t) for t in tags) or (f"{DEFAULT_LOCAL_REPO}/{profile}:latest",)
    return Output("image", names), ",".join(names)


def plan_jobs(spec: BuildSpec, stage_dir: str, merge: str, builder_plan: BuilderPlan | None
              ) -> tuple[PlatformJob, ...]:
    """One build per platform, each to its own layout, on the node that serves it natively."""
    jobs = []
    plain = merge == "manifest"  # `docker manifest create` takes plain Docker manifests only
    for platform in spec.platforms:
        slug = platform_slug(platform)
        job_spec = spec.for_platform(platform, Output("oci", dest=f"{stage_dir}/{slug}", oci_mediatypes=not plain),
                                     spec.metadata_file.replace(".json", f"-{slug}.json"))
        if plain:
            job_spec = job_spec.without_attestations()
        choice = assign_node(platform, builder_plan)
        if choice.daemon is not None:
            job_spec = job_spec.on_daemon(choice.daemon)
        elif choice.builder:
            job_spec = job_spec.on_builder(choice.builder)
        jobs.append(PlatformJob(platform, job_spec, choice.name, choice.native))
    return tuple(jobs)

