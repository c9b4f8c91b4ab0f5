"""The per-arch path: one build per platform, in parallel, merged into one list.

Each platform's build pushes to its own staging tag, on the node that serves
the platform natively when the builder has nodes. What each platform built is
recorded in orch's state directory with a fingerprint of its inputs (the
buildx command without its timestamps, and the build context's files), so a
rerun after a partial failure rebuilds only what is missing and says what it
reused. Only when every platform is there are they merged (see merge.py); the
merged list then goes through the same verify-then-promote as a single build.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.build import BuildFailed, failed_step, read_digest
from orchestrator.engine import BuilderInfo, Engine
from orchestrator.errors import EnvironmentMissing, JobFailed, OrchError
from orchestrator.inspection import Inspection, read_image
from orchestrator.platforms import format_all
from orchestrator.merge import merge, plan_entries
from orchestrator.workers import parallel_map, run_workers

if TYPE_CHECKING:
    from orchestrator.build import BuildPlan, BuildResult, Executor, PlatformJob

# Labels that change on every run without changing what is built.
_VOLATILE_LABELS = ("org.opencontainers.image.created=",)


@dataclass
class PlatformOutcome:
    state: str  # reused | built | failed
    digest: str | None = None
    node: str | None = None
    seconds: float = 0.0
    failure: str | None = None


# -- inputs and what earlier runs left ---------------------------------------


def context_fingerprint(context: str, dockerfile: str | None) -> str | None:
    """A hash of the build context's file names, sizes and mtimes (and the Dockerfile's).
    None for remote contexts (a URL may move): those are always rebuilt."""
    if "://" in context or not Path(context).is_dir():
        return None
    digest = hashlib.sha256()
    root = Path(context)
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != ".git")  # the revision is a label already
        for name in sorted(files):
            path = Path(directory) / name
            try:
                stat = path.lstat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    if dockerfile:
        try:
            digest.update(Path(dockerfile).read_bytes())
        except OSError:
            return None
    return digest.hexdigest()


def job_fingerprint(job: PlatformJob, context_hash: str) -> str:
    args = list(job.build_command)
    stable = [a for i, a in enumerate(args) if not a.startswith(_VOLATILE_LABELS)
              and not (i > 0 and args[i - 1] == "--metadata-file")]
    return hashlib.sha256(json.dumps([list(job.docker_target), stable, context_hash]).encode()).hexdigest()


def _record_path(plan: BuildPlan) -> Path:
    from orchestrator.builders import state_dir

    key = hashlib.sha256(str(plan.staging).encode()).hexdigest()[:20]
    return state_dir() / "per-arch" / f"{key}.json"


class StagedRecord:
    """What each platform's build pushed, by fingerprint; written as each build ends."""

    def __init__(self, plan: BuildPlan) -> None:
        self.path = _record_path(plan)
        self._lock = threading.Lock()
        try:
            self.entries: dict[str, dict[str, str]] = json.loads(self.path.read_text()).get("platforms", {})
        except (OSError, ValueError):
            self.entries = {}

    def get(self, label: str) -> dict[str, str] | None:
        return self.entries.get(label)

    def put(self, label: str, fingerprint: str, digest: str, staging: str) -> None:
        with self._lock:
            self.entries[label] = {"fingerprint": fingerprint, "digest": digest, "staging": staging}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps({"platforms": self.entries}, indent=2) + "\n")
            temporary.replace(self.path)


def forget_staged(plan: BuildPlan) -> None:
    """After a promotion the record and the per-platform staging tags have done their job
    (registries that refuse tag deletion keep the tags; the next run overwrites them)."""
    from orchestrator.registry_api import delete_tag

    _record_path(plan).unlink(missing_ok=True)
    for job in plan.per_arch:
        delete_tag(job.staging)


# -- the run ------------------------------------------------------------------


def resolve_builder_nodes(plan: BuildPlan, builders: list[BuilderInfo]) -> BuildPlan:
    """Nodes named as builders: check each exists. A docker-driver builder is a docker
    context's own, which buildx will only use from that context, so its builds run
    as `docker --context NAME buildx build` instead of `--builder NAME`."""
    from dataclasses import replace

    named = {n.name: n.builder for n in plan.builder_plan.nodes if n.builder} if plan.builder_plan else {}
    if not named or not plan.builder_plan.routes_by_context:  # type: ignore[union-attr]
        return plan
    known = {b.name: b for b in builders}
    jobs = []
    for job in plan.per_arch:
        builder = named.get(job.node)  # type: ignore[arg-type]
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
            args = list(job.build_command)
            at = args.index("--builder")
            del args[at:at + 2]
            job = replace(job, build_command=tuple(args), docker_target=("--context", builder))
        jobs.append(job)
    return replace(plan, per_arch=tuple(jobs))


def run_scheduled(todo: list[tuple[PlatformJob, str | None]], jobs: int, nodes: int,
                  build: Callable[[PlatformJob, str | None], PlatformOutcome]) -> dict[str, PlatformOutcome]:
    """Run the builds, at most `jobs` at once and, with nodes, an even share per node:
    a free worker takes the first waiting build whose node has room, so one node's
    queue never holds up another's."""
    per_node = max(1, -(-jobs // nodes)) if nodes else jobs
    pending = list(todo)
    busy: dict[str | None, int] = {}
    results: dict[str, PlatformOutcome] = {}
    changed = threading.Condition()

    def worker() -> None:
        while True:
            with changed:
                while True:
                    if not pending:
                        return
                    pick = next((t for t in pending if busy.get(t[0].node, 0) < per_node), None)
                    if pick is not None:
                        pending.remove(pick)
                        busy[pick[0].node] = busy.get(pick[0].node, 0) + 1
                        break
                    changed.wait()
            try:
                results[pick[0].label] = build(*pick)
            finally:
                with changed:
                    busy[pick[0].node] -= 1
                    changed.notify_all()

    run_workers(worker, min(jobs, len(todo)))
    return results


class PerArchRun:
    def __init__(self, executor: Executor, plan: BuildPlan) -> None:
        self.executor = executor
        self.plan = plan
        self.outcomes: dict[str, PlatformOutcome] = {}

    def progress(self, label: str, text: str) -> None:
        if not self.executor.quiet:
            self.executor.say(f"orch: {label:<14} {text}")

    def run(self, reason: str | None, result: BuildResult) -> tuple[str, Inspection]:
        from orchestrator.logging import get_logger

        self.plan = plan = resolve_builder_nodes(self.plan, self.executor.builders)
        log = get_logger(profile=plan.profile, strategy="per-arch")
        if reason:
            log.warning("build.per_arch", reason=reason)
            if not self.executor.quiet:
                self.executor.say(f"orch: building each platform on its own: {reason}")
        self.check_nodes()
        if plan.merge == "manifest" and plan.annotations:
            log.warning("build.index_annotations_dropped", annotations=sorted(plan.annotations),
                        reason="a Docker manifest list cannot hold annotations; each image has them")
        record = StagedRecord(plan)
        context_hash = context_fingerprint(plan.context, plan.dockerfile) if plan.reuse else None
        todo: list[tuple[PlatformJob, str | None]] = []
        for job in plan.per_arch:
            fingerprint = job_fingerprint(job, context_hash) if context_hash else None
            reused = self.reusable(job, fingerprint, record)
            if reused:
                self.outcomes[job.label] = PlatformOutcome("reused", reused, job.node)
                self.progress(job.label, f"reused {reused} (same inputs as the last run)")
                log.info("build.platform_reused", platform=job.label, digest=reused)
            else:
                todo.append((job, fingerprint))
        if todo:
            built = run_scheduled(todo, plan.jobs, len(plan.builder_plan.nodes) if plan.builder_plan else 0,
                                  lambda job, fingerprint: self.build(job, fingerprint, record))
            self.outcomes.update(built)
        self.outcomes = {job.label: self.outcomes[job.label] for job in plan.per_arch}  # plan order
        for label, outcome in self.outcomes.items():
            result.per_platform[label] = {"state": outcome.state, "node": outcome.node}
        failed = {label: o for label, o in self.outcomes.items() if o.state == "failed"}
        if failed:
            kept = [label for label, o in self.outcomes.items() if o.state != "failed"]
            detail = "".join(f"\n  {label}: {o.failure}" for label, o in failed.items())
            raise JobFailed(
                f"{len(failed)} of {len(plan.per_arch)} platform builds failed; no tag was changed{detail}"
                + (f"\n  kept for the next run: {', '.join(kept)}" if kept and context_hash else ""),
                fix="fix the failing step and rerun the same command: only the failed platforms are built again",
            )
        entries = plan_entries(plan, {label: o.digest for label, o in self.outcomes.items()})  # type: ignore[misc]
        digest = merge(self.executor.engine, plan.merge, plan.staging, entries,  # type: ignore[arg-type]
                       plan.annotations)
        inspection = self.read_merged(digest)
        log.info("build.merged", method=plan.merge, digest=digest, staging=str(plan.staging))
        return digest, inspection

    def read_merged(self, digest: str) -> Inspection:
        """Read the merged list (the verify that follows uses it too) and check it holds
        exactly the images built for it, in the planned order."""
        staged = self.plan.staging.with_digest(digest)  # type: ignore[union-attr]
        inspection = read_image(staged)
        listed = [e.label for e in inspection.entries]
        planned = [format_all(p) for p in self.plan.platforms]
        wrong_order = [e.platform.key if e.platform else None for e in inspection.entries] != \
            [p.key for p in self.plan.platforms]
        # imagetools lists the images inside each platform's index; manifest lists the pushed images themselves.
        wrong_images = self.plan.merge == "manifest" and \
            [e.digest for e in inspection.entries] != [self.outcomes[job.label].digest for job in self.plan.per_arch]
        if wrong_order or wrong_images:
            raise JobFailed(f"the merged list {staged} lists {', '.join(listed)}, not the images just built for "
                            f"{', '.join(planned)} in that order; no tag was changed",
                            fix="another run may have moved a per-platform staging tag; rerun")
        return inspection

    def reusable(self, job: PlatformJob, fingerprint: str | None, record: StagedRecord) -> str | None:
        """The digest an earlier run pushed from the same inputs, if its staging tag still has it."""
        from orchestrator.registry_api import Registry

        previous = record.get(job.label)
        if not fingerprint or not previous or previous.get("fingerprint") != fingerprint:
            return None
        try:
            now_at = Registry(job.staging).head_digest(job.staging)
        except OrchError:
            return None
        return previous["digest"] if now_at == previous["digest"] else None

    def build(self, job: PlatformJob, fingerprint: str | None, record: StagedRecord) -> PlatformOutcome:
        where = f" on {job.node} ({'native' if job.native else 'emulated'})" if job.node else ""
        self.progress(job.label, f"building{where}")
        started = time.monotonic()
        engine = Engine.for_target(job.docker_target) if job.docker_target else self.executor.engine
        try:
            lines = self.executor.run_buildx(job.build_command, engine=engine, prefix=f"[{job.label}] ")
        except BuildFailed as failure:
            step = failed_step(failure.lines)
            why = f"failed at {step}" if step else _last_error(failure.lines)
            self.progress(job.label, f"FAILED {why}")
            return PlatformOutcome("failed", node=job.node, seconds=time.monotonic() - started, failure=why)
        except OrchError as exc:
            self.progress(job.label, f"FAILED {exc.message}")
            return PlatformOutcome("failed", node=job.node, seconds=time.monotonic() - started, failure=exc.message)
        digest = read_digest(job.metadata_path, lines)
        seconds = time.monotonic() - started
        if not digest:
            self.progress(job.label, "FAILED: pushed, but no digest in the metadata or the log")
            return PlatformOutcome("failed", node=job.node, seconds=seconds, failure="no digest after the push")
        if fingerprint:
            record.put(job.label, fingerprint, digest, str(job.staging))
        self.progress(job.label, f"built {digest} in {seconds:.1f} s")
        return PlatformOutcome("built", digest, job.node, seconds)

    def check_nodes(self) -> None:
        """Every node daemon answers, before any build starts (exit 3 naming the node)."""
        checks = {job.docker_target: job.node for job in self.plan.per_arch if job.docker_target}

        def check(target: tuple[str, ...]) -> None:
            try:
                Engine.for_target(target).info()
            except OrchError as exc:
                stderr = getattr(exc, "stderr", "").strip()
                reason = stderr.splitlines()[-1] if stderr else exc.message
                raise EnvironmentMissing(f'build node "{checks[target]}" ({" ".join(target)}) does not answer: '
                                         f"{reason}",
                                         fix="start that daemon or builder, or check the node in the profile's "
                                             "builder.nodes (`docker context ls`, `docker buildx ls`)") from None

        self.executor.engine.client  # import python-on-whales once, before threads do
        parallel_map(check, list(checks), len(checks))
        local = tuple(job.platform for job in self.plan.per_arch if not job.docker_target and not job.native)
        if local:
            self.executor.check_emulators(local, self.plan.install_emulators)


def _last_error(lines: list[str]) -> str:
    errors = [line for line in lines if "ERROR" in line]
    return (errors[-1] if errors else (lines[-1] if lines else "no output")).strip()
