"""`orch build`, planned: a request and its profile become a BuildPlan, touching no engine.

The plan is plain data: the typed spec of the one `docker buildx build` for
every platform, the per-platform jobs the per-arch path would run, the
staging reference, the tags to promote after verification. `--dry-run`
prints it (commands()), and publish.executor runs it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.docker.builder_plan import BuilderPlan, plan_builder
from orchestrator.docker.runner import Daemon
from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform, platform_slug
from orchestrator.model.platform_match import order
from orchestrator.model.platform_parse import parse_all
from orchestrator.model.references import Reference, parse_reference
from orchestrator.profiles import MERGES, STRATEGIES, Profile, load
from orchestrator.publish.argv import buildx_build_argv, command_line
from orchestrator.publish.gitinfo import oci_labels, read_git, render_tags, template_values
from orchestrator.publish.inputs import (
    build_time,
    check_metadata_file,
    check_secret,
    is_remote,
    parse_build_args,
    resolve_sources,
)
from orchestrator.publish.merge import MergeEntry, merge_lines
from orchestrator.publish.nodes import assign_node
from orchestrator.publish.promote import promotion_lines
from orchestrator.publish.spec import BuildSpec, CacheEntry, Output
from orchestrator.publish.stage import stage_directory, staging_tag
from orchestrator.redact import MASK

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


@dataclass(frozen=True)
class PlatformJob:
    """One platform's build on the per-arch path, written to its own layout and staged by digest."""

    platform: Platform
    spec: BuildSpec
    node: str | None = None  # the node that builds it, for the progress and the summary
    native: bool = False  # the node serves this platform natively (no emulation)

    @property
    def label(self) -> str:
        return format_platform(self.platform)

    @property
    def build_command(self) -> tuple[str, ...]:
        return buildx_build_argv(self.spec)

    @property
    def daemon(self) -> Daemon | None:
        return self.spec.daemon

    @property
    def layout(self) -> str | None:
        """Where the build writes its result (None when buildx pushes it)."""
        return self.spec.output.dest if self.spec.output.type == "oci" else None

    @property
    def staging_tag(self) -> Reference | None:
        """The tag buildx pushes it to, on the one setup that needs one (see publish.stage)."""
        output = self.spec.output
        return parse_reference(output.names[0]) if output.type == "registry" and not output.push_by_digest else None

    def command_line(self) -> str:
        return command_line(self.spec)


@dataclass(frozen=True)
class BuildPlan:
    profile: str
    spec: BuildSpec  # the single build of every platform
    tags: tuple[Reference, ...]
    repository: Reference | None  # where the result is staged by digest (tags[0]'s); None: nothing is pushed
    local_image: str | None = None  # where a build without --push leaves the result
    stage_dir: str | None = None  # this run's build layouts (removed when it ends)
    strategy: str = "single"
    merge: str = "imagetools"
    jobs: int = 2
    per_arch: tuple[PlatformJob, ...] = ()  # the per-arch path (strategy per-arch, or auto's fallback)
    # Why auto goes straight to per-arch, known before anything runs (nodes that are separate daemons).
    per_arch_reason: str | None = None
    reuse: bool = True  # per-arch: keep platforms a previous run built from the same inputs
    install_emulators: bool = False
    builder_plan: BuilderPlan | None = None  # the profile's builder, ensured before the build
    warnings: tuple[str, ...] = ()  # what the user should hear before the build starts

    # -- views of the spec -------------------------------------------------

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return self.spec.platforms

    @property
    def context(self) -> str:
        return self.spec.context

    @property
    def dockerfile(self) -> str | None:
        return self.spec.dockerfile

    @property
    def builder(self) -> str | None:
        return self.spec.builder

    @property
    def push(self) -> bool:
        return self.repository is not None

    @property
    def layout(self) -> str | None:
        """Where the single build writes its result for staging (None: pushed by digest or not pushed)."""
        return self.spec.output.dest if self.push and self.spec.output.type == "oci" else None

    @property
    def build_args(self) -> dict[str, str]:
        return dict(self.spec.build_args)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.labels)

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.spec.annotations)

    @property
    def build_command(self) -> tuple[str, ...]:
        return buildx_build_argv(self.spec)

    @property
    def metadata_path(self) -> str:
        return self.spec.metadata_file

    @property
    def starts_per_arch(self) -> bool:
        return self.strategy == "per-arch" or (self.strategy == "auto" and self.per_arch_reason is not None)

    # -- transformations ---------------------------------------------------

    def on_builder(self, name: str) -> BuildPlan:
        """The same plan on another builder (after a fallback to the daemon's own): the single
        build and every per-arch job that used the plan's builder."""
        jobs = tuple(replace(job, spec=job.spec.on_builder(name)) if job.spec.builder == self.builder
                     and job.spec.daemon is None else job for job in self.per_arch)
        return replace(self, spec=self.spec.on_builder(name), per_arch=jobs)

    def pushed_by_digest(self) -> BuildPlan:
        """buildx pushes the result by digest itself (the plan's builder has a container driver):
        no layout on disk. Per-arch jobs on other builders or daemons keep theirs."""
        assert self.repository is not None
        name = self.repository.name
        jobs = tuple(replace(job, spec=job.spec.pushed_by_digest(name)) if job.spec.builder == self.builder
                     and job.spec.daemon is None else job for job in self.per_arch)
        return replace(self, spec=self.spec.pushed_by_digest(name), per_arch=jobs)

    def staged_by_tag(self, daemon: Daemon | None = None) -> BuildPlan:
        """Per-arch builds pushed under staging tags (the docker driver on the classic image store,
        which cannot write a layout): on `daemon`'s jobs, or on those of the current daemon."""
        assert self.repository is not None
        repository = self.repository

        def staged(job: PlatformJob) -> PlatformJob:
            if job.spec.daemon != daemon or job.spec.output.type != "oci":
                return job
            tag = staging_tag(repository, job.platform, job.spec.fingerprint(""))
            output = Output("registry", (str(tag),), oci_mediatypes=job.spec.output.oci_mediatypes)
            return replace(job, spec=replace(job.spec, output=output))

        return replace(self, per_arch=tuple(staged(job) for job in self.per_arch))

    def without_attestations(self) -> BuildPlan:
        """For a builder that cannot attach provenance or SBOM (the docker driver on the classic store)."""
        return replace(self, spec=self.spec.without_attestations(),
                       per_arch=tuple(replace(job, spec=job.spec.without_attestations()) for job in self.per_arch))

    def merge_entries(self, digests: dict[Platform, str] | None = None) -> list[MergeEntry]:
        """The children of the per-arch list, by digest, in plan order."""
        assert self.repository is not None
        return [MergeEntry(self.repository.with_digest(digests[job.platform] if digests else f"<{job.label} digest>"),
                           job.platform) for job in self.per_arch]

    # -- what --dry-run prints ---------------------------------------------

    def commands(self) -> list[str]:
        """The plan as the commands it runs, in order."""
        out = [self.builder_plan.shell()] if self.builder_plan and not self.builder_plan.routes_by_context else []
        if self.starts_per_arch:
            return out + self.per_arch_commands()
        out.append(command_line(self.spec))
        if self.repository is not None:
            out += self._staging_lines(self.layout)
            out.append(f"orch verify {self.repository.name}@<digest from {self.metadata_path}> "
                       f"--platform {','.join(self.spec.platform_texts)}")
            out += promotion_lines(self.repository, self.tags)
        if self.strategy == "auto" and self.per_arch:
            out.append("# auto: if the build fails for some platforms only, or the builder takes one platform "
                       "per call, instead:")
            out += [f"#   {line}" for line in self.per_arch_commands()]
        return out

    def per_arch_commands(self) -> list[str]:
        lines = []
        for job in self.per_arch:
            lines.append(job.command_line() + (f"   # on {job.node}" if job.node else ""))
            if self.repository is not None and job.layout:
                lines.append(f"#   then upload {job.layout} to {self.repository.name} by digest (no tag)")
        if self.repository is None:
            return lines
        lines += merge_lines(self.merge, self.repository, self.merge_entries(), self.annotations)
        lines.append(f"orch verify {self.repository.name}@<list digest> --platform {','.join(self.spec.platform_texts)}")
        return lines + promotion_lines(self.repository, self.tags)

    def _staging_lines(self, layout: str | None) -> list[str]:
        assert self.repository is not None
        if layout is None:
            return [f"# buildx pushed it to {self.repository.name} by digest (no tag)"]
        return [f"orch verify oci-layout://{layout} --platform {','.join(self.spec.platform_texts)}",
                f"# upload {layout} to {self.repository.name} by digest (no tag), then remove the directory"]

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "strategy": self.strategy,
            "merge": self.merge,
            "jobs": self.jobs,
            "per_arch": [{"platform": j.label, "node": j.node, "native": j.native, "layout": j.layout,
                          "command": j.command_line()} for j in self.per_arch],
            "per_arch_reason": self.per_arch_reason,
            "platforms": self.spec.platform_texts,
            "context": self.context,
            "dockerfile": self.dockerfile,
            "builder": self.builder,
            "builder_plan": self.builder_plan.to_json() if self.builder_plan else None,
            "push": self.push,
            "tags": [str(t) for t in self.tags],
            "staging": f"{self.repository.name}@<digest> (no tag)" if self.repository else None,
            "stage_dir": self.stage_dir,
            "local_image": self.local_image,
            "build_args": {k: MASK if k in self.spec.secret_build_args else v for k, v in self.build_args.items()},
            "secrets": list(self.spec.secrets),
            "labels": self.labels,
            "annotations": self.annotations,
            "commands": self.commands(),
        }


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
    tags = tuple(parse_reference(t) for t in
                 (list(request.tags) or render_tags(profile.tags or (), template_values(git, profile.name, now))))
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
    builder_plan = plan_builder(profile.builder) if profile.builder and not request.builder else None
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
    spec = BuildSpec(
        platforms=platforms, context=context, output=output,
        metadata_file=str(Path(tempfile.gettempdir()) / f"orch-metadata-{os.getpid()}-{int(now.timestamp())}.json"),
        dockerfile=dockerfile, target=profile.target,
        build_args=tuple({**(profile.build_args or {}), **parse_build_args(request.build_args)}.items()),
        labels=tuple({**oci_labels(git, now), **(profile.labels or {})}.items()),
        annotations=tuple((profile.annotations or {}).items()),
        cache_from=tuple(CacheEntry.parse(c) for c in profile.cache_from or ()),
        cache_to=tuple(CacheEntry.parse(c) for c in profile.cache_to or ()),
        provenance=attestations.provenance if attestations and attestations.provenance else "mode=min",
        sbom=attestations.sbom if attestations else None,
        secrets=tuple(check_secret(s) for s in request.secrets), builder=builder, no_cache=request.no_cache,
    )
    if request.metadata_file:
        check_metadata_file(request.metadata_file)
    warnings = tuple(
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
        builder_plan=builder_plan, warnings=warnings,
    )


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

