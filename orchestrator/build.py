"""`orch build`: plan, then execute.

The plan is plain data: the one `docker buildx build` for every platform,
the staging reference it pushes to, and the promotion that follows
verification. `--dry-run` prints it; :func:`execute` runs it.

Publishing never uses buildx's `--push` on the docker driver: that path
re-pushes through the daemon and was seen to leave the tag on a single
wrong manifest. orch exports with `--output type=registry` to a staging tag,
verifies the pushed index by digest, and only then points the user's tags
at that digest with `imagetools create` (a registry-side copy). A failed
build or verification leaves every user tag where it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.builders import BuilderPlan, plan_builder
from orchestrator.engine import DockerStreamFailed
from orchestrator.errors import BadInput, EnvironmentMissing, JobFailed
from orchestrator.gitinfo import oci_labels, read_git, template_values
from orchestrator.platforms import Platform, format_platform, order, parse_all
from orchestrator.profiles import MERGES, STRATEGIES, Profile, load, render_tags
from orchestrator.references import Reference, parse_reference

STAGING_PREFIX = "orch-staging-"
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


@dataclass(frozen=True)
class PlatformJob:
    """One platform's build on the per-arch path, pushed to its own staging tag."""

    platform: Platform
    staging: Reference
    build_command: tuple[str, ...]  # after `docker` (and after `docker_target`)
    metadata_path: str
    node: str | None = None  # the node that builds it, for the progress and the summary
    native: bool = False  # the node serves this platform natively (no emulation)
    docker_target: tuple[str, ...] = ()  # ("--context", NAME) or ("--host", URL) for a node's own daemon

    @property
    def label(self) -> str:
        return format_platform(self.platform)

    def command_line(self) -> str:
        return "docker " + shlex.join((*self.docker_target, *self.build_command))


@dataclass(frozen=True)
class BuildPlan:
    profile: str
    platforms: tuple[Platform, ...]
    context: str
    dockerfile: str | None
    builder: str | None
    push: bool
    tags: tuple[Reference, ...]
    staging: Reference | None
    build_args: dict[str, str]
    labels: dict[str, str]
    annotations: dict[str, str]
    build_command: tuple[str, ...]  # arguments after `docker`
    promote_command: tuple[str, ...] | None
    metadata_path: str
    local_image: str | None = None  # where a build without --push leaves the result
    strategy: str = "single"
    install_emulators: bool = False
    builder_plan: BuilderPlan | None = None  # the profile's builder, ensured before the build
    merge: str = "imagetools"
    jobs: int = 2
    per_arch: tuple[PlatformJob, ...] = ()  # the per-arch path (strategy per-arch, or auto's fallback)
    # Why auto goes straight to per-arch, known before anything runs (nodes that are separate daemons).
    per_arch_reason: str | None = None
    reuse: bool = True  # per-arch: keep platforms a previous run built from the same inputs

    @property
    def starts_per_arch(self) -> bool:
        return self.strategy == "per-arch" or (self.strategy == "auto" and self.per_arch_reason is not None)

    def commands(self) -> list[str]:
        """The plan as the commands it runs, in order."""
        out = [self.builder_plan.shell()] if self.builder_plan and not self.builder_plan.routes_by_context else []
        if self.starts_per_arch:
            return out + self.per_arch_commands()
        out.append("docker " + shlex.join(self.build_command))
        if self.push and self.staging is not None:
            out.append(f"orch verify {self.staging.name}@<digest from {self.metadata_path}> "
                       f"--platform {','.join(format_platform(p) for p in self.platforms)}")
            if self.promote_command:
                out.append("docker " + shlex.join(self.promote_command))
        if self.strategy == "auto" and self.per_arch:
            out.append("# auto: if the build fails for some platforms only, or the builder takes one platform "
                       "per call, instead:")
            out += [f"#   {line}" for line in self.per_arch_commands()]
        return out

    def per_arch_commands(self) -> list[str]:
        from orchestrator.merge import merge_commands

        lines = [job.command_line() + (f"   # on {job.node}" if job.node else "") for job in self.per_arch]
        lines += merge_commands(self)
        lines.append(f"orch verify {self.staging} --platform {','.join(format_platform(p) for p in self.platforms)}")
        if self.promote_command:
            lines.append("docker " + shlex.join(self.promote_command))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "strategy": self.strategy,
            "merge": self.merge,
            "jobs": self.jobs,
            "per_arch": [{"platform": j.label, "node": j.node, "native": j.native, "staging": str(j.staging),
                          "command": j.command_line()} for j in self.per_arch],
            "per_arch_reason": self.per_arch_reason,
            "platforms": [format_platform(p) for p in self.platforms],
            "context": self.context,
            "dockerfile": self.dockerfile,
            "builder": self.builder,
            "builder_plan": self.builder_plan.to_json() if self.builder_plan else None,
            "push": self.push,
            "tags": [str(t) for t in self.tags],
            "staging": str(self.staging) if self.staging else None,
            "local_image": self.local_image,
            "build_args": self.build_args,
            "labels": self.labels,
            "annotations": self.annotations,
            "commands": self.commands(),
        }


def _parse_build_args(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            # As docker: `--build-arg NAME` takes NAME from the environment.
            if key not in os.environ:
                raise BadInput(f'--build-arg "{item}" has no value and ${key} is not set',
                               fix=f"write --build-arg {key}=VALUE")
            value = os.environ[key]
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise BadInput(f'--build-arg "{item}": "{key}" is not a valid argument name',
                           fix="names are letters, digits and _, not starting with a digit")
        out[key] = value
    return out


def build_time() -> datetime:
    """Now, or $SOURCE_DATE_EPOCH for reproducible builds (the convention buildx also follows)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return datetime.now(timezone.utc)
    if not epoch.isdigit():
        raise BadInput(f'SOURCE_DATE_EPOCH "{epoch}" is not a number of seconds since 1970',
                       fix="set it to e.g. $(git log -1 --format=%ct), or unset it")
    return datetime.fromtimestamp(int(epoch), timezone.utc)


def staging_reference(target: Reference, suffix: str = "") -> Reference:
    """One staging tag per target tag (and per platform on the per-arch path): a rerun
    reuses it instead of piling up new ones."""
    tag = f"{STAGING_PREFIX}{target.tag or 'latest'}" + (f"-{suffix}" if suffix else "")
    if len(tag) > 128:
        tag = tag[:112] + "-" + hashlib.sha256(tag.encode()).hexdigest()[:15]
    return target.with_tag(tag)


def plan_build(request: BuildRequest, *, now: datetime | None = None, cwd: Path | None = None) -> BuildPlan:
    """Turn a request (and its profile) into a plan. Touches no engine."""
    now = now or build_time()
    cwd = cwd or Path.cwd()
    profile = load(request.profile) if request.profile else Profile(name="adhoc", source="(command line)")
    platforms = tuple(order(parse_all(request.platforms))) if request.platforms else tuple(order(profile.platforms or ()))
    if not platforms:
        raise BadInput(f'no platforms to build (profile "{profile.name}" names none)',
                       fix="pass --platform linux/amd64,linux/arm64 or --profile arm-all")

    context = request.context or profile.context or "."
    context_path = (cwd / context) if not Path(context).is_absolute() else Path(context)
    if "://" not in context and not context_path.is_dir():
        raise BadInput(f'build context "{context}" is not a directory', fix="pass the directory to build from")
    dockerfile = request.dockerfile or profile.dockerfile
    if dockerfile and "://" not in context:
        candidate = Path(dockerfile) if Path(dockerfile).is_absolute() else cwd / dockerfile
        in_context = context_path / dockerfile
        # As buildx: -f is relative to the current directory; a profile's is relative to the context.
        resolved = candidate if request.dockerfile else in_context
        if not resolved.is_file():
            raise BadInput(f'Dockerfile "{dockerfile}" not found (looked at {resolved})',
                           fix="pass -f PATH to an existing Dockerfile")
        dockerfile = str(resolved)
    elif "://" not in context and not (context_path / "Dockerfile").is_file():
        raise BadInput(f'no Dockerfile in "{context}"', fix="pass -f PATH, or set dockerfile in the profile")

    git = read_git(context_path) if "://" not in context else None
    values = template_values(git, profile.name, now)
    tag_texts = list(request.tags) or render_tags(profile.tags or (), values)
    tags = tuple(parse_reference(t) for t in tag_texts)
    if request.push and not tags:
        raise BadInput("--push needs a tag to publish", fix="pass -t REGISTRY/IMAGE:TAG or set tags in the profile")
    for t in tags:
        if t.digest:
            raise BadInput(f'tag "{t}" has a digest; a build publishes to tags', fix="drop the @sha256:... part")

    build_args = {**(profile.build_args or {}), **_parse_build_args(request.build_args)}
    labels = {**oci_labels(git, now), **(profile.labels or {})}
    annotations = dict(profile.annotations or {})
    metadata_path = str(Path(tempfile.gettempdir()) / f"orch-metadata-{os.getpid()}-{int(now.timestamp())}.json")
    # --builder names an existing builder, as in buildx; a profile's builder is created when missing.
    builder_plan = plan_builder(profile.builder) if profile.builder and not request.builder else None
    builder = request.builder or (builder_plan.name if builder_plan else None)

    staging = staging_reference(tags[0]) if request.push else None
    local_image = None
    if request.push and request.oci_layout:
        raise BadInput("--oci-layout and --push both say where the result goes",
                       fix="pass one: --push publishes to the registry, --oci-layout DIR keeps it on disk")
    if request.push:
        output = f"type=registry,name={staging}"
    elif request.oci_layout:
        layout_dir = (cwd / request.oci_layout).resolve()
        if layout_dir.exists() and not layout_dir.is_dir():
            raise BadInput(f'--oci-layout "{request.oci_layout}" exists and is not a directory',
                           fix="pass a new or existing directory")
        local_image = f"oci-layout://{layout_dir}"
        name = f',"name={",".join(str(t) for t in tags)}"' if tags else ""
        output = f"type=oci,dest={layout_dir},tar=false{name}"
    else:
        names = [str(t) for t in tags] or [f"{DEFAULT_LOCAL_REPO}/{profile.name}:latest"]
        local_image = ",".join(names)
        output = f'type=image,"name={local_image}"'

    common: list[str] = []
    if dockerfile:
        common += ["--file", dockerfile]
    if profile.target:
        common += ["--target", profile.target]
    if request.no_cache:
        common.append("--no-cache")
    for key, value in build_args.items():
        common += ["--build-arg", f"{key}={value}"]
    for key, value in labels.items():
        common += ["--label", f"{key}={value}"]
    for source in profile.cache_from or ():
        common += ["--cache-from", source]
    for destination in profile.cache_to or ():
        common += ["--cache-to", destination]
    attestations = profile.attestations
    provenance = attestations.provenance if attestations and attestations.provenance else "mode=min"
    sbom = [f"--sbom={'true' if attestations.sbom else 'false'}"] if attestations and attestations.sbom is not None \
        else []

    args: list[str] = ["buildx", "build"]
    if builder:
        args += ["--builder", builder]
    args += ["--platform", ",".join(format_platform(p) for p in platforms), *common]
    for key, value in annotations.items():
        # One flag per level: buildx 0.13 reads "index,manifest:" as part of the key.
        args += ["--annotation", f"index:{key}={value}", "--annotation", f"manifest:{key}={value}"]
    args += [f"--provenance={provenance}", *sbom]
    args += ["--output", output, "--metadata-file", metadata_path, "--progress", "plain", context]

    strategy = request.strategy or profile.strategy or "auto"
    if strategy not in STRATEGIES:
        raise BadInput(f'--strategy "{strategy}" is not one of {", ".join(STRATEGIES)}',
                       fix="single: one buildx call; per-arch: one per platform, merged; auto: single, "
                           "falling back to per-arch")
    merge = request.merge or profile.merge or "imagetools"
    if merge not in MERGES:
        raise BadInput(f'--merge "{merge}" is not one of {", ".join(MERGES)}',
                       fix="imagetools (an OCI index, keeps attestations) or manifest (a Docker manifest list)")
    if request.jobs is not None and request.jobs < 1:
        raise BadInput(f'--jobs "{request.jobs}" must be 1 or more', fix="pass --jobs 2, say")
    routes_by_context = bool(builder_plan and builder_plan.routes_by_context)
    per_arch_reason = None
    if routes_by_context:
        if strategy == "single":
            raise BadInput(f'builder "{builder_plan.name}" lists nodes that are separate daemons (docker driver); '  # type: ignore[union-attr]
                           "one buildx call cannot span them", fix="use --strategy per-arch (or auto), or a "
                           "docker-container builder whose nodes buildx drives together")
        per_arch_reason = "the builder's nodes are separate daemons (docker driver): one buildx call cannot span them"
        builder = None
    jobs_plan: tuple[PlatformJob, ...] = ()
    if strategy != "single":
        if not request.push:
            if strategy == "per-arch":
                raise BadInput("per-arch builds are merged in the registry, so they need --push",
                               fix="add --push (the result is verified before any tag moves), or use "
                                   "--strategy single to keep the result locally")
        else:
            jobs_plan = _plan_jobs(platforms, tags[0], common, provenance, sbom, annotations, merge, context,
                                   builder, builder_plan, metadata_path)  # type: ignore[arg-type]
    nodes = len(builder_plan.nodes) if builder_plan else 0

    promote = None
    if request.push:
        from orchestrator.merge import imagetools_create

        promote = imagetools_create(tags, [f"{staging.name}@<digest>"])  # type: ignore[union-attr]
    return BuildPlan(
        profile=profile.name, platforms=platforms, context=context, dockerfile=dockerfile, builder=builder,
        push=request.push, tags=tags, staging=staging, build_args=build_args, labels=labels,
        annotations=annotations, build_command=tuple(args), promote_command=promote, metadata_path=metadata_path,
        local_image=local_image, strategy=strategy if request.push else "single",
        install_emulators=bool(request.install_emulators if request.install_emulators is not None
                               else profile.install_emulators),
        builder_plan=builder_plan, merge=merge, jobs=request.jobs or max(2, 2 * nodes), per_arch=jobs_plan,
        per_arch_reason=per_arch_reason, reuse=not request.no_cache,
    )


def platform_slug(platform: Platform) -> str:
    return format_platform(platform).replace("/", "-")


def _plan_jobs(platforms: tuple[Platform, ...], target: Reference, common: list[str], provenance: str,
               sbom: list[str], annotations: dict[str, str], merge: str, context: str, builder: str | None,
               builder_plan: BuilderPlan | None, metadata_path: str) -> tuple[PlatformJob, ...]:
    """One build per platform, each to its own staging tag, on the node that serves it natively."""
    jobs = []
    for position, platform in enumerate(platforms):
        slug = platform_slug(platform)
        if merge == "manifest":
            # `docker manifest push` lists children in the order of their names in the local
            # manifest store; numbered tags make that the planned order.
            slug = f"{position:02d}-{slug}"
        job_staging = staging_reference(target, suffix=slug)
        choice = assign_node(platform, builder_plan)
        args: list[str] = ["buildx", "build"]
        if choice.builder or (builder and not choice.docker_target):
            args += ["--builder", choice.builder or builder]  # type: ignore[list-item]
        args += ["--platform", format_platform(platform), *per_platform_cache(common, platform_slug(platform))]
        for key, value in annotations.items():
            args += ["--annotation", f"manifest:{key}={value}"]  # index annotations go on at the merge
        output = f"type=registry,name={job_staging}"
        if merge == "manifest":
            # `docker manifest create` takes only plain manifests: no attestations, Docker media types.
            args += ["--provenance=false", "--sbom=false"]
            output += ",oci-mediatypes=false"
        else:
            args += [f"--provenance={provenance}", *sbom]
        job_metadata = metadata_path.replace(".json", f"-{slug}.json")
        args += ["--output", output, "--metadata-file", job_metadata, "--progress", "plain", context]
        jobs.append(PlatformJob(platform=platform, staging=job_staging, build_command=tuple(args),
                                metadata_path=job_metadata, node=choice.name, native=choice.native,
                                docker_target=choice.docker_target))
    return tuple(jobs)


@dataclass(frozen=True)
class NodeChoice:
    """Where one platform's per-arch build runs."""

    name: str | None = None
    native: bool = False  # the node lists the platform: no emulation
    docker_target: tuple[str, ...] = ()  # ("--context", NAME) or ("--host", URL): the node's own daemon
    builder: str | None = None  # an existing buildx builder instead


def per_platform_cache(common: list[str], slug: str) -> list[str]:
    """On the per-arch path, registry cache refs get a per-platform suffix: builds running
    at once would otherwise overwrite each other's cache manifest. Each platform exports to
    its own ref and reads it besides the shared one."""
    def suffixed(value: str) -> str:
        return re.sub(r"(^|,)ref=([^,]+)", lambda m: f"{m.group(1)}ref={m.group(2)}-{slug}", value)

    out: list[str] = []
    pairs = iter(common)
    for flag in pairs:
        if flag not in ("--cache-to", "--cache-from"):
            out.append(flag)
            continue
        value = next(pairs)
        if flag == "--cache-to":
            out += [flag, suffixed(value)]
        else:
            out += [flag, value] + (["--cache-from", suffixed(value)] if suffixed(value) != value else [])
    return out


def assign_node(platform: Platform, builder_plan: BuilderPlan | None) -> NodeChoice:
    """The first node serving the platform natively, else the first node, which emulates it.
    Only nodes orch routes to itself need a target; a buildx multi-node builder routes by
    platform on its own."""
    if builder_plan is None or not builder_plan.nodes:
        return NodeChoice()
    native = next((n for n in builder_plan.nodes if any(p.key == platform.key for p in n.platforms)), None)
    node = native or builder_plan.nodes[0]
    if not builder_plan.routes_by_context:
        return NodeChoice(node.name, native is not None)
    if node.builder:
        return NodeChoice(node.name, native is not None, builder=node.builder)
    target = ("--host", node.endpoint) if "://" in node.endpoint else ("--context", node.endpoint)
    return NodeChoice(node.name, native is not None, target)


def without_attestations(plan: BuildPlan) -> BuildPlan:
    """The per-arch builds without provenance or SBOM, for a builder that cannot attach them
    (the docker driver on the classic image store)."""
    def strip(job: PlatformJob) -> PlatformJob:
        args = [a for a in job.build_command if not a.startswith(("--provenance=", "--sbom="))]
        at = args.index("--output")
        return replace(job, build_command=tuple(args[:at] + ["--provenance=false", "--sbom=false"] + args[at:]))

    return replace(plan, per_arch=tuple(strip(job) for job in plan.per_arch))


def with_builder(plan: BuildPlan, name: str) -> BuildPlan:
    """The same plan on another builder (after a fallback to the daemon's own)."""
    args = list(plan.build_command)
    if "--builder" in args:
        args[args.index("--builder") + 1] = name
    else:
        args[2:2] = ["--builder", name]
    return replace(plan, builder=name, build_command=tuple(args))


# -- execution --------------------------------------------------------------


@dataclass(frozen=True)
class PublishedPlatform:
    platform: str
    digest: str
    config: str | None
    state: str | None = None  # per-arch: built or reused
    node: str | None = None


@dataclass
class BuildResult:
    plan: BuildPlan
    digest: str | None = None
    platforms: list[PublishedPlatform] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    staging_removed: bool | None = None
    verification: dict[str, Any] | None = None
    strategy: str = "single"  # what ran: single or per-arch
    fallback_reason: str | None = None  # auto: why it built per platform
    per_platform: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-arch: {label: {state, node}}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "profile": self.plan.profile,
            "builder": self.plan.builder,
            "strategy": self.strategy,
            "merge": self.plan.merge if self.strategy == "per-arch" else None,
            "fallback_reason": self.fallback_reason,
            "digest": self.digest,
            "pushed": self.plan.push,
            "tags": self.tags,
            "local_image": self.plan.local_image,
            "platforms": [p.__dict__ for p in self.platforms],
            "staging": str(self.plan.staging) if self.plan.staging else None,
            "staging_removed": self.staging_removed,
            "verification": self.verification,
        }


PUSH_ATTEMPTS = 3
_REGISTRY_5XX = re.compile(r"unexpected status from \w+ request to \S+: 5\d\d |: 5\d\d Internal Server Error")


def is_transient_push_failure(log_lines: list[str]) -> bool:
    """The registry failed the push (5xx) after every build step succeeded.

    distribution 2.8's filesystem storage writes tag links non-atomically; with
    the docker driver BuildKit and the daemon both touch the tag, and a read
    of a half-written link answers 500. Pushing the same content again is
    idempotent and cached, so a retry is safe.
    """
    errors = [line for line in log_lines if "ERROR" in line]
    return bool(errors) and not failed_platforms(log_lines) and all(_REGISTRY_5XX.search(e) for e in errors)


_PLATFORM_STEP = re.compile(r"^#\d+ \[(?P<platform>[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9.]+)?)[ \]]")
_STEP_ID = re.compile(r"^#(?P<id>\d+) ")


def failed_platforms(log_lines: list[str]) -> dict[str, str]:
    """From buildx plain progress: {platform: the step that failed}."""
    step_platform: dict[str, tuple[str, str]] = {}
    failed: dict[str, str] = {}
    for line in log_lines:
        match = _PLATFORM_STEP.match(line)
        if match:
            step = _STEP_ID.match(line).group("id")  # type: ignore[union-attr]
            step_platform.setdefault(step, (match.group("platform"), line.split("] ", 1)[-1].strip()))
        id_match = _STEP_ID.match(line)
        if id_match and " ERROR" in line and id_match.group("id") in step_platform:
            platform, what = step_platform[id_match.group("id")]
            failed.setdefault(platform, what)
    return failed


_STEP_TITLE = re.compile(r"^#(?P<id>\d+) \[(?P<title>[^\]]+)\] (?P<what>.+)$")


def failed_step(log_lines: list[str]) -> str | None:
    """From buildx plain progress of any build: the step that failed ("RUN make"), if one did."""
    titles: dict[str, str] = {}
    for line in log_lines:
        title = _STEP_TITLE.match(line)
        if title:
            titles.setdefault(title.group("id"), title.group("what").strip())
        step = _STEP_ID.match(line)
        if step and " ERROR" in line and step.group("id") in titles:
            return titles[step.group("id")]
    return None


def promote_tags(engine: Any, source: Reference, tags: tuple[Reference, ...]) -> None:
    """Point every tag at the verified list by digest (a registry-side copy), then check each."""
    from orchestrator.merge import imagetools_create
    from orchestrator.registry_api import Registry

    engine.cli(*imagetools_create(tags, [source]))
    for tag in tags:
        # A HEAD on the tag (a few ms) rather than another imagetools call (~150 ms).
        now_at = Registry(tag).head_digest(tag)
        if now_at != source.digest:
            raise JobFailed(f"after promotion {tag} points at {now_at}, not the verified {source.digest}",
                            fix=f"point it by hand: docker buildx imagetools create -t {tag} {source}")


class BuildFailed(Exception):
    """A buildx call failed: its log, and the error a user should see if nothing else is tried."""

    def __init__(self, lines: list[str], error: JobFailed) -> None:
        super().__init__(str(error))
        self.lines = lines
        self.error = error


MULTI_PLATFORM_REFUSED = "Multi-platform build is not supported"


def fallback_reason(plan: BuildPlan, lines: list[str]) -> str | None:
    """Why auto may retry a failed single build per platform, or None to fail fast.

    Per-arch helps when the builder cannot take several platforms in one call,
    or when only some platforms failed (their steps are retried alone and the
    others are kept). A failure of every platform, or one tied to none (a
    Dockerfile syntax error, a missing file), would fail per-arch too."""
    if plan.strategy != "auto" or not plan.per_arch:
        return None
    if any(MULTI_PLATFORM_REFUSED in line for line in lines):
        return "the builder cannot build several platforms in one call (docker driver without the containerd store)"
    failed = failed_platforms(lines)
    labels = {format_platform(p) for p in plan.platforms}
    if failed and set(failed) < labels:
        where = "; ".join(f"{p} at {what}" for p, what in failed.items())
        return (f"only {', '.join(failed)} failed in the single call ({where}); building each platform on its "
                "own keeps the others and retries those")
    return None


def read_digest(metadata_path: str, lines: list[str]) -> str | None:
    """The pushed image's digest: from the metadata file, else from the log."""
    path = Path(metadata_path)
    try:
        metadata = json.loads(path.read_text())
        if metadata.get("containerimage.digest"):
            return metadata["containerimage.digest"]
    except (OSError, ValueError):
        pass
    finally:
        path.unlink(missing_ok=True)
    # The push race can leave no metadata file; the log still names what was exported.
    for line in reversed(lines):
        match = re.search(r"exporting manifest(?: list)? (sha256:[a-f0-9]{64})", line)
        if match:
            return match.group(1)
    return None


class Executor:
    """Runs a plan against an Engine, printing buildx progress to stderr."""

    def __init__(self, engine: Any, *, quiet: bool = False, stream: Any = None) -> None:
        self.engine = engine
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.builders: list[Any] = []  # `buildx ls`, once run() has asked
        self._say_lock = threading.Lock()

    def run(self, plan: BuildPlan) -> BuildResult:
        from orchestrator.logging import get_logger

        log = get_logger(profile=plan.profile)
        info, builders = self.engine_facts()
        self.builders = builders
        plan = self.ensure_builder(plan, info, builders)
        result = BuildResult(plan)
        merged = None  # the per-arch path has read and checked the merged list already
        if plan.starts_per_arch:
            digest, merged = self.per_arch(plan, plan.per_arch_reason, result)
        else:
            reason = self.preflight(plan, info, builders)
            if reason is not None:
                log.warning("build.no_attestations", reason="the docker driver on the classic image store cannot "
                            "attach provenance or SBOM; enable the containerd image store to keep them")
                digest, merged = self.per_arch(without_attestations(plan), reason, result)
            else:
                log.info("build.start", platforms=[format_platform(p) for p in plan.platforms],
                         output=str(plan.staging) if plan.push else plan.local_image)
                try:
                    lines = self.run_buildx(plan.build_command)
                except BuildFailed as failure:
                    reason = fallback_reason(plan, failure.lines)
                    if reason is None:
                        raise failure.error from None
                    digest, merged = self.per_arch(plan, reason, result)
                else:
                    digest = read_digest(plan.metadata_path, lines)
                    if not plan.push:
                        in_layout = bool(plan.local_image and plan.local_image.startswith("oci-layout://"))
                        result.tags = [str(t) for t in plan.tags] if in_layout else (plan.local_image or "").split(",")
                        result.digest = digest
                        log.info("build.kept_locally", image=plan.local_image)
                        return result
        if not digest:
            raise JobFailed("the build pushed no index digest (no metadata, no 'exporting manifest list' line)",
                            fix="rerun; if it persists, check the registry log")
        result.digest = digest
        staged = plan.staging.with_digest(digest)  # type: ignore[union-attr]
        inspection, verdict = self.verify(plan, staged, merged)
        result.verification = verdict.to_json()
        result.platforms = [
            PublishedPlatform(e.label, e.digest, format_platform(e.config) if e.config else None,
                              **result.per_platform.get(e.label, {}))
            for e in inspection.entries
        ]
        self.promote(plan, digest)
        result.tags = [str(t) for t in plan.tags]
        result.staging_removed = self._remove_staging(plan)
        if result.strategy == "per-arch":
            from orchestrator.perarch import forget_staged

            forget_staged(plan)
        log.info("build.published", digest=digest, tags=result.tags, strategy=result.strategy)
        return result

    def per_arch(self, plan: BuildPlan, reason: str | None, result: BuildResult) -> tuple[str, Any]:
        from orchestrator.perarch import PerArchRun

        result.strategy = "per-arch"
        result.fallback_reason = reason if plan.strategy == "auto" else None
        return PerArchRun(self, plan).run(reason, result)

    # -- steps --

    def ensure_builder(self, plan: BuildPlan, info: dict[str, Any], builders: list[Any]) -> BuildPlan:
        from orchestrator.builders import BuilderManager
        from orchestrator.logging import get_logger

        if plan.builder_plan is None or plan.builder_plan.routes_by_context:
            return plan  # nodes that are separate daemons are checked by the per-arch run
        outcome = BuilderManager(self.engine, info=info, builders=builders).ensure(plan.builder_plan, plan.platforms)
        log = get_logger(profile=plan.profile, builder=outcome.name)
        if outcome.action == "fallback":
            log.warning("builder.fallback", reason=outcome.reason)
        else:
            log.info(f"builder.{outcome.action}", driver=outcome.driver, note=outcome.reason)
        for platform, why in outcome.gaps.items():
            log.warning("builder.gap", platform=platform, why=why)
        return with_builder(plan, outcome.name) if outcome.name != plan.builder else plan

    def engine_facts(self) -> tuple[dict[str, Any], list[Any]]:
        """`docker info` and `buildx ls`, run while python-on-whales imports (together
        they cost ~0.6 s one after the other)."""
        pending = self.engine.start_facts()
        self.engine.client  # noqa: B018 - the import, overlapping the two processes
        return pending.collect()

    def preflight(self, plan: BuildPlan, info: dict[str, Any], builders: list[Any]) -> str | None:
        """Raise for what stops the single build. In auto mode, return why per-arch
        builds work where it cannot (a builder that takes one platform per call)."""
        from orchestrator.engine import uses_containerd_image_store

        if plan.builder and plan.builder_plan is None:
            names = [b.name for b in builders]
            if plan.builder not in names:
                raise BadInput(f'unknown builder "{plan.builder}"', fix=f"existing builders: {', '.join(names)}; "
                               f"or create it: docker buildx create --name {plan.builder}")
        self.check_emulators(plan.platforms, plan.install_emulators)
        if len(plan.platforms) > 1 and not plan.builder and not uses_containerd_image_store(info):
            current = next((b for b in builders if b.name == "default"), None)
            if current is not None and current.driver == "docker":
                if plan.strategy == "auto" and plan.per_arch:
                    return ("the daemon's builder (docker driver, without the containerd image store) builds one "
                            "platform per call")
                raise EnvironmentMissing(
                    "the default builder (docker driver) cannot build several platforms at once without the "
                    "containerd image store",
                    fix='enable it ({"features": {"containerd-snapshotter": true}} in /etc/docker/daemon.json, '
                        "restart dockerd), pass --builder with a docker-container builder, or build one platform "
                        "per call with --strategy per-arch",
                )
        return None

    def check_emulators(self, platforms: tuple[Platform, ...], install: bool) -> None:
        import platform as host

        from orchestrator.emulation import install_command, missing_emulators, read_handlers

        names = [format_platform(p) for p in platforms]
        missing = missing_emulators(names, host.machine(), read_handlers())
        if missing and install:
            self.engine.cli(*install_command(list(missing)))
            missing = missing_emulators(names, host.machine(), read_handlers())
        if missing:
            listed = "; ".join(f"{p}: {why}" for p, why in missing.items())
            raise EnvironmentMissing(
                f"this host cannot run the build steps of {', '.join(missing)} ({listed})",
                fix="install the emulators: `docker run --privileged --rm tonistiigi/binfmt --install "
                    f"{','.join(sorted({p.split('/')[1] for p in missing}))}`, or the distribution's "
                    "qemu-user-static package (Debian: apt-get install qemu-user-static binfmt-support)",
            )

    def run_buildx(self, command: tuple[str, ...], *, engine: Any = None, prefix: str = "") -> list[str]:
        """Run one buildx call; retry when only the registry stumbled during the push.
        Raises BuildFailed with the log, for the caller to judge."""
        from orchestrator.logging import get_logger

        for attempt in range(1, PUSH_ATTEMPTS + 1):
            lines, error = self._build_once(command, engine or self.engine, prefix)
            if error is None:
                return lines
            if attempt < PUSH_ATTEMPTS and is_transient_push_failure(lines):
                get_logger().warning(
                    "build.push_retry", attempt=attempt + 1, of=PUSH_ATTEMPTS, platform=prefix.strip(" []") or None,
                    reason="the registry answered 5xx while the image was pushed; the build itself succeeded")
                continue
            raise BuildFailed(lines, self._build_failure(lines, error))
        raise AssertionError("unreachable")

    def _build_once(self, command: tuple[str, ...], engine: Any,
                    prefix: str) -> tuple[list[str], DockerStreamFailed | None]:
        tail: deque[str] = deque(maxlen=4000)
        try:
            for line in engine.stream(*command):
                tail.append(line)
                if not self.quiet:
                    self.say(prefix + line)
        except DockerStreamFailed as exc:
            return list(tail), exc
        return list(tail), None

    def say(self, line: str) -> None:
        with self._say_lock:  # per-arch builds print from several threads: whole lines only
            self.stream.write(line + "\n")
            self.stream.flush()

    def _build_failure(self, lines: list[str], exc: DockerStreamFailed) -> JobFailed:
        failed = failed_platforms(lines)
        error_lines = [line for line in lines if line.startswith("ERROR") or "ERROR:" in line][-3:]
        per_platform = "".join(f"\n  {p}: failed at {what}" for p, what in failed.items())
        if self.quiet:
            print("\n".join(lines[-40:]), file=self.stream)
        return JobFailed(
            f"the build failed (exit {exc.return_code}); no tag was changed{per_platform}\n"
            + "\n".join(f"  {line}" for line in error_lines),
            fix="fix the failing step (log above); tags still point where they did before",
        )

    def verify(self, plan: BuildPlan, staged: Reference, inspection: Any = None) -> tuple[Any, Any]:
        """Inspect (unless already read) and verify the staged index; raise before anything
        is promoted."""
        from orchestrator.inspection import read_image
        from orchestrator.verify import VerifyOptions, verify

        inspection = inspection or read_image(staged)
        verdict = verify(inspection, VerifyOptions(expected=plan.platforms))
        if not verdict.ok:
            problems = "".join(f"\n  {f.platform or '-'}: {f.check}: {f.message}" for f in verdict.failures)
            raise JobFailed(f"verification of {staged} failed; no tag was changed{problems}",
                            fix="fix the build so every platform is present with a matching config")
        return inspection, verdict

    def promote(self, plan: BuildPlan, digest: str) -> None:
        promote_tags(self.engine, plan.staging.with_digest(digest), plan.tags)  # type: ignore[union-attr]

    def _remove_staging(self, plan: BuildPlan) -> bool:
        from orchestrator.registry_api import delete_tag

        return delete_tag(plan.staging)  # type: ignore[arg-type]
