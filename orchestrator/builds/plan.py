"""The BuildPlan: what `orch build` will do, as plain data, and how --dry-run prints it.

The typed spec of the one `docker buildx build` for every platform, the
per-platform jobs the per-arch path would run, where the result is staged
(by digest), the tags to promote after verification. builds.request makes
one from a request and a profile; builds.executor runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from orchestrator.builds.argv import buildx_build_argv, command_line
from orchestrator.builds.spec import BuildSpec, Output
from orchestrator.docker.runner import Daemon
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.references import Reference, parse_reference
from orchestrator.publish.signing import Signing
from orchestrator.publish.stage import staging_tag
from orchestrator.redact import MASK

if TYPE_CHECKING:
    from orchestrator.builds.merge import MergeEntry
    from orchestrator.docker.builder_plan import BuilderPlan
    from orchestrator.docker.capabilities import Capabilities


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
class Publish:
    """Where a push build goes: staged by digest in `repository` (the first tag's), built into
    layouts under `stage_dir` (this run's own, removed when it ends)."""

    repository: Reference
    stage_dir: str


@dataclass(frozen=True)
class KeepLocal:
    """Where a build without --push leaves its result: the daemon's image store under these
    names (comma-separated), or `oci-layout://DIR`."""

    image: str


@dataclass(frozen=True)
class BuildPlan:
    """Everything a build will do, decided before anything runs: what --dry-run prints and the
    executor carries out, the single build or the per-arch jobs, the tags and where the result goes."""

    profile: str
    spec: BuildSpec  # the single build of every platform
    tags: tuple[Reference, ...]
    destination: Publish | KeepLocal
    strategy: str = "single"
    merge: str = "imagetools"
    jobs: int = 2
    jobs_given: bool = False  # --jobs was passed; else 2 per node, which completion may raise
    per_arch: tuple[PlatformJob, ...] = ()  # the per-arch path (strategy per-arch, or auto's fallback)
    # Why auto goes straight to per-arch, known before anything runs (nodes that are separate daemons).
    per_arch_reason: str | None = None
    reuse: bool = True  # per-arch: keep platforms a previous run built from the same inputs
    install_emulators: bool = False
    builder_plan: BuilderPlan | None = None  # the profile's builder, ensured before the build
    warnings: tuple[str, ...] = ()  # what the user should hear before the build starts
    deep: bool = False  # verify down to the binaries before any tag moves
    # What the builder can do, once builds.complete has completed the plan from it (None before).
    capabilities: Capabilities | None = None
    part: str | None = None  # --part DIR: no tag moves; the staged result is recorded here for `orch release`
    git: dict[str, Any] | None = None  # the checkout's facts (tags.gitinfo.git_record), for the part record
    signing: Signing | None = None  # --sign: cosign signs the verified index before any tag moves

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
        return isinstance(self.destination, Publish)

    @property
    def repository(self) -> Reference | None:
        """Where a push build is staged (for output; the steps that need it take the Publish)."""
        return self.destination.repository if isinstance(self.destination, Publish) else None

    @property
    def stage_dir(self) -> str | None:
        return self.destination.stage_dir if isinstance(self.destination, Publish) else None

    @property
    def local_image(self) -> str | None:
        return self.destination.image if isinstance(self.destination, KeepLocal) else None

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
        if not isinstance(self.destination, Publish):
            return self  # nothing is pushed
        name = self.destination.repository.name
        jobs = tuple(replace(job, spec=job.spec.pushed_by_digest(name)) if job.spec.builder == self.builder
                     and job.spec.daemon is None else job for job in self.per_arch)
        return replace(self, spec=self.spec.pushed_by_digest(name), per_arch=jobs)

    def staged_by_tag(self, daemon: Daemon | None = None) -> BuildPlan:
        """Per-arch builds pushed under staging tags (the docker driver on the classic image store,
        which cannot write a layout): on `daemon`'s jobs, or on those of the current daemon."""
        if not isinstance(self.destination, Publish):
            return self  # nothing is pushed
        repository = self.destination.repository

        def staged(job: PlatformJob) -> PlatformJob:
            if job.spec.daemon != daemon or job.spec.output.type != "oci":
                return job
            tag = staging_tag(repository, job.platform, job.spec.fingerprint(""))
            output = Output("registry", (str(tag),), oci_mediatypes=job.spec.output.oci_mediatypes)
            # The classic store can attach no provenance or SBOM either ("Attestation is not supported").
            return replace(job, spec=replace(job.spec.without_attestations(), output=output))

        return replace(self, per_arch=tuple(staged(job) for job in self.per_arch))

    def without_attestations(self) -> BuildPlan:
        """For a builder that cannot attach provenance or SBOM (the docker driver on the classic store)."""
        return replace(self, spec=self.spec.without_attestations(),
                       per_arch=tuple(replace(job, spec=job.spec.without_attestations()) for job in self.per_arch))

    def merge_entries(self, publish: Publish, digests: dict[Platform, str] | None = None) -> list[MergeEntry]:
        """The children of the per-arch list, by digest, in plan order."""
        from orchestrator.builds.merge import MergeEntry

        return [MergeEntry(publish.repository.with_digest(digests[job.platform] if digests
                                                          else f"<{job.label} digest>"), job.platform)
                for job in self.per_arch]

    # -- what --dry-run prints ---------------------------------------------

    # Run-specific values a printed plan shows as placeholders: they differ on every run.
    STAGE_DIR = "<stage-dir>"
    METADATA = "<metadata>"

    def commands(self) -> list[str]:
        """The plan as the commands it runs, in order, with this run's temporary paths as
        placeholders (STAGE_DIR, METADATA)."""
        return [self.shown(line) for line in self._commands()]

    def shown(self, line: str) -> str:
        """A command line of this run as a printed plan shows it: temporary paths as placeholders."""
        if self.stage_dir:
            line = line.replace(self.stage_dir, self.STAGE_DIR)
        return line.replace(self.metadata_path.removesuffix(".json"), self.METADATA)

    def _commands(self) -> list[str]:
        from orchestrator.publish.promote import promotion_lines

        out = [self.builder_plan.shell()] if self.builder_plan and not self.builder_plan.routes_by_context else []
        if self.starts_per_arch:
            return out + self.per_arch_commands()
        out.append(command_line(self.spec))
        if isinstance(self.destination, Publish):
            repository = self.destination.repository
            out += self._staging_lines(repository, self.layout)
            out.append(f"orch verify {repository.name}@<digest from {self.metadata_path}> "
                       f"--platform {','.join(self.spec.platform_texts)}")
            out += promotion_lines(repository, self.tags)
        if self.strategy == "auto" and self.per_arch:
            out.append("# auto: if the build fails for some platforms only, or the builder takes one platform "
                       "per call, instead:")
            out += [f"#   {line}" for line in self.per_arch_commands()]
        return out

    def builder_lines(self) -> list[str]:
        """The builder the plan was completed for, its nodes, and what was assumed, as comments."""
        caps = self.capabilities
        if caps is None:
            return []
        version = ".".join(map(str, caps.buildx_version)) if any(caps.buildx_version) else "unknown"
        lines = [f"# builder {caps.builder}: {caps.driver} driver, buildx {version}, {len(caps.nodes)} "
                 f"node{'s' if len(caps.nodes) != 1 else ''}"]
        lines += [f"#   node {n.name}: {', '.join(n.given)}" for n in caps.nodes if n.given]
        if self.starts_per_arch and self.per_arch_reason:
            lines.append(f"# one build per platform: {self.per_arch_reason}")
        return lines + [f"# assumed: {line}" for line in caps.assumed]

    def per_arch_commands(self) -> list[str]:
        from orchestrator.builds.merge import merge_lines
        from orchestrator.publish.promote import promotion_lines

        lines = []
        for job in self.per_arch:
            where = f"   # on {job.node}{'' if job.native else ' (emulated)'}" if job.node else ""
            lines.append(job.command_line() + where)
            if isinstance(self.destination, Publish) and job.layout:
                lines.append(f"#   then upload {job.layout} to {self.destination.repository.name} by digest (no tag)")
        if not isinstance(self.destination, Publish):
            return lines
        repository = self.destination.repository
        lines += merge_lines(self.merge, repository, self.merge_entries(self.destination), self.annotations)
        lines.append(f"orch verify {repository.name}@<list digest> --platform {','.join(self.spec.platform_texts)}")
        return lines + promotion_lines(repository, self.tags)

    def _staging_lines(self, repository: Reference, layout: str | None) -> list[str]:
        if layout is None:
            return [f"# buildx pushed it to {repository.name} by digest (no tag)"]
        return [f"orch verify oci-layout://{layout} --platform {','.join(self.spec.platform_texts)}",
                f"# upload {layout} to {repository.name} by digest (no tag), then remove the directory"]

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
            "capabilities": self.capabilities.to_json() if self.capabilities else None,
            "push": self.push,
            "tags": [str(t) for t in self.tags],
            "part": self.part,
            "sign": {"key": self.signing.key, "tlog": self.signing.tlog} if self.signing else None,
            "staging": f"{self.repository.name}@<digest> (no tag)" if self.repository else None,
            "stage_dir": self.stage_dir,
            "local_image": self.local_image,
            "build_args": {k: MASK if k in self.spec.secret_build_args else v for k, v in self.build_args.items()},
            "secrets": list(self.spec.secrets),
            "labels": self.labels,
            "annotations": self.annotations,
            "commands": self.commands(),
        }


