"""`orch build`'s request, planned: the user's options and their profile become a BuildPlan,
touching no engine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.builds.argv import check_extra
from orchestrator.builds.inputs import (
    build_time,
    check_metadata_file,
    check_secret,
    is_remote,
    parse_build_args,
    resolve_sources,
    secret_value,
)
from orchestrator.builds.nodes import assign_node
from orchestrator.builds.options import BuilderOptions, OutputOptions, SigningOptions, TagOptions, VerificationOptions
from orchestrator.builds.plan import BuildPlan, KeepLocal, PlatformJob, Publish
from orchestrator.builds.spec import BuildSpec, CacheEntry, Output
from orchestrator.errors import BadInput
from orchestrator.model.buildx_options import merged_values
from orchestrator.model.platform import Platform, platform_slug
from orchestrator.model.platform_match import order
from orchestrator.model.platform_parse import parse_all, unusual
from orchestrator.model.references import Reference, parse_reference
from orchestrator.model.tagrules import RefContext, image_names
from orchestrator.profiles import MERGES, STRATEGIES, Profile
from orchestrator.profiles.model import is_tag_rule
from orchestrator.publish.signing import Signing
from orchestrator.publish.stage import stage_directory, temporary_directory
from orchestrator.tags.gitinfo import GitInfo, git_record, oci_labels, read_git, ref_context
from orchestrator.tags.tagging import Tagging, label_lines, plan_tags

if TYPE_CHECKING:
    from orchestrator.docker.builder_plan import BuilderPlan

DEFAULT_LOCAL_REPO = "orch-local"


@dataclass(frozen=True)
class BuildRequest:
    """What the user asked for; CLI values override the profile's."""

    profile: str | None = None
    context: str | None = None
    dockerfile: str | None = None
    platforms: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()
    push: bool = False
    oci_layout: str | None = None  # without --push: write an OCI layout directory here
    strategy: str | None = None  # single | per-arch | auto (default: the profile's, else auto)
    merge: str | None = None  # imagetools | manifest (default: the profile's, else imagetools)
    jobs: int | None = None  # per-arch builds at once (default: 2 per node, at least 2)
    no_cache: bool = False
    secrets: tuple[str, ...] = ()  # --secret id=NAME,env=VAR | id=NAME,src=FILE
    # buildx's own options; lists add to the profile's, single values replace them
    buildx: tuple[tuple[str, Any], ...] = ()  # the pass-through options (model.buildx_options), by key
    labels: tuple[str, ...] = ()  # KEY=VALUE
    annotations: tuple[str, ...] = ()  # [LEVEL:]KEY=VALUE
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    cache: str | None = None  # --cache REF: a registry cache read and written (per platform where built apart)
    build_contexts: tuple[str, ...] = ()  # NAME=SOURCE
    provenance: str | None = None
    sbom: bool | None = None
    extra_args: tuple[str, ...] = ()  # after `--`
    meta: str | None = None  # --meta env|FILE: metadata-action's output
    part: str | None = None  # --part DIR: stage by digest, move no tag, record the part for `orch release`
    reproducible: bool = False  # --reproducible (or the profile's `reproducible: true`): builds.reproducible
    source_date_epoch: int | None = None  # the epoch to build at (orch verify --reproduce: the image's own)
    # the option groups other commands share (cli/options.py)
    tags: TagOptions = TagOptions()  # -t, --image, --tag-rule, --flavor
    builder: BuilderOptions = BuilderOptions()
    outputs: OutputOptions = OutputOptions()  # --metadata-file (checked before building), --report, --output-env
    verification: VerificationOptions = VerificationOptions()  # --deep: before any tag moves
    signing: SigningOptions = SigningOptions()  # --sign: cosign signs the verified index before any tag moves


def plan_build(request: BuildRequest, *, now: datetime | None = None, cwd: Path | None = None) -> BuildPlan:
    """Turn a request (and its profile) into a plan. Touches no engine."""
    now = now or build_time()
    cwd = cwd or Path.cwd()
    profile = _profile(request)
    platforms = tuple(order(parse_all(request.platforms) if request.platforms else profile.platforms or ()))
    if not platforms:
        raise BadInput(f'no platforms to build (profile "{profile.name}" names none)',
                       fix="pass --platform linux/amd64,linux/arm64 or --profile arm-all")
    context = request.context or profile.context or "."
    context_path, dockerfile = resolve_sources(context, request.dockerfile or profile.dockerfile,
                                               from_cli=bool(request.dockerfile), cwd=cwd)
    git = None if is_remote(context) else read_git(context_path)
    reproducible = request.reproducible or bool(profile.reproducible)
    if reproducible:  # every timestamp at the commit's time (or SOURCE_DATE_EPOCH)
        now = reproducible_time(git, context) if request.source_date_epoch is None else \
            datetime.fromtimestamp(request.source_date_epoch, timezone.utc)
    repository: Reference | None
    if request.part is not None:
        tagging, repository = part_tagging(request, profile, git, now)
        tags: tuple[Reference, ...] = ()
    else:
        tagging = plan_tags(literal=request.tags.literal, rules=request.tags.rules, images=request.tags.images,
                            flavor=request.tags.flavor, meta=request.meta, profile=profile, git=git, now=now)
        tags = _tags(request, tagging.tags)
        repository = tags[0] if tags else None
    strategy, merge = _strategy_and_merge(request, profile)
    builder_plan, builder, per_arch_reason = _builder(request, profile, strategy)
    stage_dir = stage_directory(int(now.timestamp())) if request.push else None
    output, local_image = _output(request, tags, stage_dir, profile.name, cwd)
    spec = _spec(request, profile, platforms, context, dockerfile, output, builder, _metadata_file(stage_dir, now),
                 labels={**oci_labels(git, now, version=tagging.version), **tagging.labels},
                 annotations=tagging.annotations,
                 where=ref_context(git, now=now) if any("{{" in line for line in request.labels) else None)
    if reproducible:
        spec = made_reproducible(spec, int(now.timestamp()))
    keep_secrets(spec)
    if request.outputs.metadata_file:
        check_metadata_file(request.outputs.metadata_file)
    jobs: tuple[PlatformJob, ...] = ()
    if strategy != "single":
        if not request.push and strategy == "per-arch":
            raise BadInput("per-arch builds are merged in the registry, so they need --push",
                           fix="add --push (the result is verified before any tag moves), or use "
                               "--strategy single to keep the result locally")
        if request.push:
            jobs = plan_jobs(spec, stage_dir or "", merge, builder_plan)
    nodes = len(builder_plan.nodes) if builder_plan else 0
    destination: Publish | KeepLocal = Publish(repository, stage_dir) if stage_dir and repository \
        else KeepLocal(local_image or "")
    return BuildPlan(
        profile=profile.name, spec=spec, tags=tags, destination=destination,
        strategy=strategy if request.push else "single", merge=merge,
        jobs=request.jobs or max(2, 2 * nodes), jobs_given=request.jobs is not None, per_arch=jobs, per_arch_reason=per_arch_reason,
        reuse=not request.no_cache,
        install_emulators=bool(request.builder.install_emulators if request.builder.install_emulators is not None
                               else profile.install_emulators),
        builder_plan=builder_plan, warnings=_warnings(spec, request) + tagging.notes, deep=request.verification.deep,
        part=request.part, git=git_record(git), signing=signing_of(request, profile),
    )


def _metadata_file(stage_dir: str | None, now: datetime) -> str:
    """Where buildx writes its metadata (read and removed when the build ends): beside the run's
    stage directory, whose file system was just found writable, else in the temporary directory."""
    return os.path.join(os.path.dirname(stage_dir) if stage_dir else temporary_directory(),
                        f"orch-metadata-{os.getpid()}-{int(now.timestamp())}.json")


def _profile(request: BuildRequest) -> Profile:
    if not request.profile:
        return Profile(name="adhoc", source="(command line)")
    from orchestrator.profiles import load  # YAML and validation: a build given no profile never loads them

    return load(request.profile)


def reproducible_time(git: GitInfo | None, context: str) -> datetime:
    from orchestrator.builds.reproducible import epoch_time, resolve_epoch

    return epoch_time(resolve_epoch(os.environ, git.commit_date if git else None, where=context))


def made_reproducible(spec: BuildSpec, epoch: int) -> BuildSpec:
    """SOURCE_DATE_EPOCH as a build arg (BuildKit's times), rewrite-timestamp on every output, and
    what `orch verify --reproduce` needs recorded as labels (the created label is at `epoch` already)."""
    from dataclasses import replace

    from orchestrator.builds.reproducible import recorded_labels

    args = {**dict(spec.build_args), "SOURCE_DATE_EPOCH": str(epoch)}
    target = dict(spec.buildx).get("target")
    labels = {**recorded_labels(epoch, args, spec.secret_build_args, str(target) if target else None),
              **dict(spec.labels)}
    return replace(spec, build_args=tuple(args.items()), labels=tuple(labels.items()), rewrite_timestamp=True)


def keep_secrets(spec: BuildSpec) -> None:
    """The values a build hands its steps in secret (secret-looking build args, also those passed
    through after --; each --secret's variable or file), masked from here on in everything orch
    prints or writes: a failing step may print them, and BuildKit quotes the step it failed at."""
    from orchestrator.redact import keep_secret, looks_secret

    passed = [word.removeprefix("--build-arg=") for before, word in zip(("", *spec.extra_args), spec.extra_args,
                                                                        strict=False)
              if before == "--build-arg" or word.startswith("--build-arg=")]
    keep_secret(*spec.secret_values, *(value for key, _, value in (word.partition("=") for word in passed)
                                       if looks_secret(key)),
                *(secret_value(text) for text in spec.secrets))


def signing_of(request: BuildRequest, profile: Profile) -> Signing | None:
    """--sign's settings (the command line's over the profile's `signing:`), checked before
    anything is built (cosign there, the key a file)."""
    asked = request.signing
    if not (asked.sign or (profile.signing or {}).get("sign")):
        # A key given on the command line without --sign is a mistake to point out; ORCH_SIGN_KEY is
        # set job-wide in CI (a secret variable), and the builds that do not sign must not be refused.
        if asked.key and asked.key != os.environ.get("ORCH_SIGN_KEY"):
            raise BadInput("--sign-key names the key for --sign, which was not given", fix="add --sign")
        return None
    if not request.push:
        raise BadInput("--sign signs what is published: add --push", fix="orch build ... --push --sign --sign-key KEY")
    return asked.signing(profile.signing)


def part_tagging(request: BuildRequest, profile: Profile, git: GitInfo | None, now: datetime
                 ) -> tuple[Tagging, Reference]:
    """A runner's part (--part): staged by digest in one repository, no tag. Its labels come from
    the same rules the release applies (so every runner's config agrees); its tags are the
    release's."""
    if not request.push:
        raise BadInput("--part records a part that was pushed: add --push",
                       fix="orch build --platform P --image REGISTRY/REPO --push --part DIR")
    if request.tags.literal:
        raise BadInput(f'-t "{request.tags.literal[0]}" with --part: tags move only when `orch release` merges the parts',
                       fix="name the repository with --image REGISTRY/REPO, and pass -t to orch release")
    part = Path(request.part or ".")
    if part.exists() and not part.is_dir():
        raise BadInput(f'--part "{request.part}" is a file; it names the directory the part record goes in',
                       fix="pass a directory (made if missing), e.g. --part parts")
    rules = request.tags.rules or tuple(t for t in profile.tags or () if is_tag_rule(t))
    tagging = plan_tags(literal=(), rules=rules, images=request.tags.images, flavor=request.tags.flavor, meta=request.meta,
                        profile=profile, git=git, now=now, need_tags=False) if rules or request.meta else Tagging(())
    names = image_names(request.tags.images or profile.images or ()) or [
        t for t in (*tagging.tags, *(profile.tags or ())) if not is_tag_rule(t) and "{" not in t]
    repositories = list(dict.fromkeys(parse_reference(n, default_tag=None).name for n in names))
    if len(repositories) != 1:
        raise BadInput("--part stages in one repository, " + (f"not {', '.join(repositories)}" if repositories else
                                                              "and none is named"),
                       fix="pass --image REGISTRY/REPO (orch release copies the result to more with its tags)")
    return tagging, parse_reference(repositories[0], default_tag=None)


def _tags(request: BuildRequest, tags: tuple[str, ...] | list[str]) -> tuple[Reference, ...]:
    parsed = tuple(parse_reference(t) for t in tags)
    if request.push and not parsed:
        raise BadInput("--push needs a tag to publish", fix="pass -t REGISTRY/IMAGE:TAG or set tags in the profile")
    for t in parsed:
        if t.digest:
            raise BadInput(f'tag "{t}" has a digest; a build publishes to tags', fix="drop the @sha256:... part")
    return parsed


def _strategy_and_merge(request: BuildRequest, profile: Profile) -> tuple[str, str]:
    strategy = _choice(request.strategy or profile.strategy or "auto", STRATEGIES, "--strategy",
                       "single: one buildx call; per-arch: one per platform, merged; auto: single, falling back to "
                       "per-arch")
    merge = _choice(request.merge or profile.merge or "imagetools", MERGES, "--merge",
                    "imagetools (an OCI index, keeps attestations) or manifest (a Docker manifest list)")
    if request.jobs is not None and request.jobs < 1:
        raise BadInput(f'--jobs "{request.jobs}" must be 1 or more', fix="pass --jobs 2, say")
    return strategy, merge


def _builder(request: BuildRequest, profile: Profile, strategy: str
             ) -> tuple[BuilderPlan | None, str | None, str | None]:
    """The profile's builder plan, the builder the build names, and why auto starts per platform.
    --builder names an existing builder, as in buildx; a profile's builder is created when missing."""
    builder_plan = None
    if profile.builder and not request.builder.name:
        from orchestrator.docker.builder_plan import plan_builder

        builder_plan = plan_builder(profile.builder)
    builder = request.builder.name or (builder_plan.name if builder_plan else None)
    if builder_plan and builder_plan.routes_by_context:
        if strategy == "single":
            raise BadInput(f'builder "{builder_plan.name}" lists nodes that are separate daemons (docker driver); '
                           "one buildx call cannot span them", fix="use --strategy per-arch (or auto), or a "
                           "docker-container builder whose nodes buildx drives together")
        return builder_plan, None, ("the builder's nodes are separate daemons (docker driver): one buildx call "
                                    "cannot span them")
    return builder_plan, builder, None


def _spec(request: BuildRequest, profile: Profile, platforms: tuple[Platform, ...], context: str,
          dockerfile: str | None, output: Output, builder: str | None, metadata_file: str, *,
          labels: Mapping[str, str], annotations: Mapping[str, str], where: RefContext | None = None) -> BuildSpec:
    """The one buildx call: the command line's values over the profile's (lists added to them)."""
    attestations = profile.attestations
    provenance = request.provenance or (attestations.provenance if attestations and attestations.provenance
                                        else "mode=min")
    if provenance not in ("true", "false", "mode=min", "mode=max"):
        raise BadInput(f'--provenance "{provenance}" is not true, false, mode=min or mode=max',
                       fix="pass --provenance mode=max, say")
    return BuildSpec(
        platforms=platforms, context=context, output=output,
        metadata_file=metadata_file,
        dockerfile=dockerfile, buildx=merged_values(profile.buildx, dict(request.buildx)),
        build_args=tuple({**(profile.build_args or {}), **parse_build_args(request.build_args)}.items()),
        labels=tuple({**labels, **(profile.labels or {}), **label_lines(request.labels, where)[0]}.items()),
        annotations=tuple({**annotations, **(profile.annotations or {}),
                           **pairs(request.annotations, "--annotation")}.items()),
        cache_from=tuple(CacheEntry.parse(c) for c in (*(profile.cache_from or ()), *request.cache_from,
                                                       *registry_cache(request, profile, platforms, "from"))),
        cache_to=tuple(CacheEntry.parse(c) for c in (*(profile.cache_to or ()), *request.cache_to,
                                                     *registry_cache(request, profile, platforms, "to"))),
        provenance=provenance,
        sbom=request.sbom if request.sbom is not None else attestations.sbom if attestations else None,
        secrets=tuple(check_secret(s) for s in (*(profile.secrets or ()), *request.secrets)),
        build_contexts=tuple({**(profile.build_contexts or {}),
                              **pairs(request.build_contexts, "--build-context")}.items()),
        extra_args=check_extra(request.extra_args), builder=builder, no_cache=request.no_cache,
    )


def registry_cache(request: BuildRequest, profile: Profile, platforms: tuple[Platform, ...],
                   direction: str) -> tuple[str, ...]:
    """`--cache REF` (else the profile's `cache: {registry: REF}`) as buildx's cache entries: read
    from REF, written to it with mode=max. A build of one platform gets REF-PLATFORM of its own
    (BuildSpec.for_platform), so nodes building side by side never overwrite each other's; so does
    a part (--part), built on its own runner beside the other platforms' parts: it writes its own
    ref and reads it and REF."""
    ref = request.cache or (profile.cache or {}).get("registry")
    if not ref:
        return ()
    if request.part is not None and len(platforms) == 1:
        own = f"{ref}-{platform_slug(platforms[0])}"
        return (f"type=registry,ref={own}", f"type=registry,ref={ref}") if direction == "from" else (
            f"type=registry,ref={own},mode=max",)
    return (f"type=registry,ref={ref}",) if direction == "from" else (f"type=registry,ref={ref},mode=max",)


def _warnings(spec: BuildSpec, request: BuildRequest) -> tuple[str, ...]:
    """What the user should hear before the build starts: unusual platforms, label lines left out,
    secret-looking build args."""
    return tuple(filter(None, (unusual(p) for p in spec.platforms))) + tuple(
        f'--label "{line}" has no "=": left out, as metadata-action leaves such lines out (write KEY=VALUE, or '
        f'KEY= for an empty value)' for line in label_lines(request.labels)[1]) + tuple(
        f'build arg {name} looks like a secret: build args are kept in the image\'s history, where anyone who '
        f"pulls it can read them; pass it as a build secret instead (--secret id={name},env={name}, read with "
        f"RUN --mount=type=secret,id={name})" for name in spec.secret_build_args)


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

