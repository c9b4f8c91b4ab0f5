"""The per-arch path: one build per platform, in parallel, merged into one list.

Each platform's build writes its own layout, on the node that serves the
platform natively when the builder has nodes, and is staged in the target
repository by digest as soon as it is built. A rerun after a partial failure
rebuilds only what is missing (builds.records) and says what it reused.
Only when every platform is there are they merged (builds.merge); the
merged list is checked to hold exactly the images just built, in order, and
then goes through the same pipeline as a single build.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.builds.buildx_run import BuildFailed, NodeStopped, node_stopped, pushed_digest, restart_fix, run_buildx
from orchestrator.builds.plan import BuildPlan, PlatformJob, Publish
from orchestrator.builds.records import StagedRecord, context_fingerprint
from orchestrator.builds.result import PlatformOutcome
from orchestrator.builds.timings import step_log
from orchestrator.docker.emulation import ensure_emulators
from orchestrator.docker.progress import failed_step, last_error
from orchestrator.docker.runner import Engine
from orchestrator.errors import BuildStepFailed, EnvironmentMissing, JobFailed, OrchError
from orchestrator.image.model import Inspection
from orchestrator.interrupts import phase
from orchestrator.logging import get_logger
from orchestrator.model.platform import Platform, format_all, format_platform
from orchestrator.model.references import Reference
from orchestrator.publish import blobstore
from orchestrator.publish.stage import Staged, remove_directory, upload_layout
from orchestrator.redact import redact
from orchestrator.report.console import Console
from orchestrator.workers import run_workers

if TYPE_CHECKING:  # the registry side is imported while the builds run (executor.AFTER_BUILD)
    from orchestrator.registry.client import ManifestBytes


def image_digest(index: ManifestBytes) -> str:
    """An index's one image (beside its attestations), or the digest itself for a plain manifest."""
    from orchestrator.image.model import image_descriptors
    from orchestrator.model.mediatypes import INDEX_TYPES

    images = image_descriptors(index.document()) if index.media_type in INDEX_TYPES else []
    return images[0]["digest"] if len(images) == 1 else index.digest


def _on(node: str | None) -> str:
    """' on node pi', for messages about a platform's build."""
    return f" on node {node}" if node else ""


def run_scheduled(todo: list[tuple[PlatformJob, str | None]], jobs: int, nodes: int,
                  build: Callable[[PlatformJob, str | None], PlatformOutcome]) -> dict[Platform, PlatformOutcome]:
    """Run the builds, at most `jobs` at once and, with nodes, an even share per node:
    a free worker takes the first waiting build whose node has room, so one node's
    queue never holds up another's."""
    per_node = max(1, -(-jobs // nodes)) if nodes else jobs
    pending = list(todo)
    busy: dict[str | None, int] = {}
    results: dict[Platform, PlatformOutcome] = {}
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
                results[pick[0].platform] = build(*pick)
            finally:
                with changed:
                    busy[pick[0].node] -= 1
                    changed.notify_all()

    run_workers(worker, min(jobs, len(todo)))
    return results


def failure_error(failed: dict[Platform, PlatformOutcome], stopped: set[Platform], total: int,
                  kept: list[str] | None, builder: str | None) -> OrchError:
    """The error for failed platform builds: a failed step is the job's (exit 1); a node that
    stopped answering failed no step, and when that is all that happened it is the environment's
    (exit 3), naming the node and how to bring it back. `kept`: what a rerun reuses (None: no reuse)."""
    detail = "".join(f"\n  {format_platform(p)}{_on(o.node)}: {o.failure}" for p, o in failed.items())
    again = [format_platform(p) for p in failed]
    rerun = (f"rerun the same command: only {', '.join(again)} {'is' if len(again) == 1 else 'are'} built again"
             if kept is not None else "rerun the same command")
    detail += f"\n  kept for the next run: {', '.join(kept)}" if kept else ""
    lost = [p for p in failed if p in stopped]
    nodes = sorted({failed[p].node or "" for p in lost})
    node = ("node " if len(nodes) == 1 else "nodes ") + ", ".join(nodes) if all(nodes) else "the builder's node"
    what = {format_platform(p): f"{node} stopped answering" if p in stopped else
            (o.failure or "").removeprefix("failed at ") for p, o in failed.items()}
    if lost and len(lost) == len(failed):
        return NodeStopped(f"{node} stopped answering: {len(failed)} of {total} platform builds did not finish, "
                           f"no step failed; no tag was changed{detail}",
                           failed=what, fix=f"{restart_fix(node, builder)}, then {rerun}")
    also = f", {restart_fix(node, builder)}," if lost else ""
    return BuildStepFailed(f"{len(failed)} of {total} platform builds failed; no tag was changed{detail}",
                           failed=what, fix=f"fix the failing step{also} and {rerun}")


class PerArchRun:
    def __init__(self, engine: Engine, plan: BuildPlan, publish: Publish, console: Console) -> None:
        self.engine = engine
        self.plan = plan
        self.publish = publish
        self.console = console
        self.outcomes: dict[Platform, PlatformOutcome] = {}
        self.repository: Reference = publish.repository
        self.record = StagedRecord(publish.repository, publish.repository.tag)
        self.staging_tags: list[Reference] = []  # pushed to on the classic image store (publish.stage)
        self.started: set[Platform] = set()  # platforms whose buildx command ran
        # One clock for every platform's steps: the report draws them all on one axis, so a
        # platform queued behind another starts where it really started.
        self.origin = time.monotonic()
        self.stopped: set[Platform] = set()  # platforms whose node stopped answering: no step failed
        # What this machine lacks (exit 3: no room to stage a layout, ...) is no platform's failure.
        self.missing: list[EnvironmentMissing] = []
        # Each platform's index as read from the registry after its build (to name its image): the
        # merge composes the list from these instead of reading them again.
        self.read: dict[str, ManifestBytes] = {}

    def run(self, reason: str | None) -> tuple[Staged, Inspection]:
        """Build what is missing, merge, check the merged list: the staged list and its inspection."""
        plan = self.plan
        log = get_logger(profile=plan.profile, strategy="per-arch")
        if reason:
            # The route the builder calls for (its nodes) is news; auto's fallback is a warning.
            (log.info if reason == plan.per_arch_reason else log.warning)("build.per_arch", reason=reason)
            self.console.say(f"orch: building each platform on its own: {reason}")
        self.check_emulators()
        if plan.merge == "manifest" and plan.annotations:
            log.warning("build.index_annotations_dropped", annotations=sorted(plan.annotations),
                        reason="a Docker manifest list cannot hold annotations; each image has them")
        context_hash = context_fingerprint(plan.context, plan.dockerfile) if plan.reuse else None
        todo: list[tuple[PlatformJob, str | None]] = []
        for job in plan.per_arch:
            fingerprint = job.spec.fingerprint(context_hash) if context_hash else None
            reused = self.reusable(job, fingerprint)
            if reused:
                self.outcomes[job.platform] = PlatformOutcome("reused", reused, job.node)
                self.console.platform(job.label, f"reused {self.image_of(reused)} (same inputs as the last run)")
                log.info("build.platform_reused", platform=job.label, digest=reused)
            else:
                todo.append((job, fingerprint))
        if todo:
            with phase("building"):
                built = run_scheduled(todo, plan.jobs, len({job.node for job in plan.per_arch if job.node}),
                                      self.build)
            self.outcomes.update(built)
        self.outcomes = {job.platform: self.outcomes[job.platform] for job in plan.per_arch}  # plan order
        if self.missing:
            raise self.missing[0]
        failed = {p: o for p, o in self.outcomes.items() if o.state == "failed"}
        if failed:
            kept = [format_platform(p) for p, o in self.outcomes.items() if o.state != "failed"]
            raise failure_error(failed, self.stopped, len(plan.per_arch), kept if context_hash else None, plan.builder)
        digests = {p: o.digest for p, o in self.outcomes.items() if o.digest}
        from orchestrator.builds.merge import merge

        with phase("merging"):
            staged = merge(self.engine, plan.merge, self.repository, plan.merge_entries(self.publish, digests),
                           plan.annotations, self.read)
            inspection = self.read_merged(staged)
        log.info("build.merged", method=plan.merge, digest=staged.index.digest, repository=self.repository.name)
        return staged, inspection

    def commands(self) -> list[str]:
        """The buildx commands this run started (reused platforms start none), in plan order."""
        return [job.command_line() for job in self.plan.per_arch if job.platform in self.started]

    def image_of(self, digest: str) -> str:
        """The image manifest a per-platform index holds: the digest the published list (and the
        summary) names for this platform."""
        from orchestrator.registry.client import Registry

        try:
            index = Registry.of(self.repository).manifest_bytes(self.repository.with_digest(digest))
        except OrchError:
            return digest
        self.read[digest] = index
        return image_digest(index)

    def finish(self) -> list[Reference]:
        """After a promotion: forget the record, delete staging tags; those the registry keeps."""
        from orchestrator.registry.client import delete_tag

        self.record.forget()
        return [tag for tag in self.staging_tags if not delete_tag(tag)]

    def read_merged(self, staged: Staged) -> Inspection:
        """Read the merged list (the verify that follows uses it too) and check it holds
        exactly the images built for it, in the planned order."""
        from orchestrator.image.read import read_image

        inspection = read_image(staged.ref)
        listed = [e.label for e in inspection.entries]
        planned = [format_all(p) for p in self.plan.platforms]
        wrong_order = [e.platform.key if e.platform else None for e in inspection.entries] != \
            [p.key for p in self.plan.platforms]
        # imagetools lists the images inside each platform's index; manifest lists the images themselves.
        wrong_images = self.plan.merge == "manifest" and \
            [e.digest for e in inspection.entries] != [self.outcomes[job.platform].digest for job in self.plan.per_arch]
        if wrong_order or wrong_images:
            raise JobFailed(f"the merged list {staged.ref} lists {', '.join(listed)}, not the images just built for "
                            f"{', '.join(planned)} in that order; no tag was changed",
                            fix="rerun; if it persists, check the registry")
        return inspection

    def reusable(self, job: PlatformJob, fingerprint: str | None) -> str | None:
        """The digest an earlier run staged from the same inputs, if the repository still has it."""
        previous = self.record.get(job.platform)
        if not fingerprint or not previous or previous.get("fingerprint") != fingerprint:
            return None
        digest = previous["digest"]
        from orchestrator.registry.client import Registry

        try:
            found = Registry.of(self.repository).head_digest(self.repository.with_digest(digest))
        except OrchError:
            return None
        return digest if found == digest else None

    def build(self, job: PlatformJob, fingerprint: str | None) -> PlatformOutcome:
        where = f" on {job.node} ({'native' if job.native else 'emulated'})" if job.node else ""
        self.console.platform(job.label, f"building{where}")
        started = time.monotonic()
        engine = Engine(job.daemon) if job.daemon else self.engine
        steps = step_log((job.platform,), node=job.node, native_node=bool(job.node and job.native))
        steps.started = self.origin
        self.started.add(job.platform)
        if job.layout:
            blobstore.seed(job.layout)
        try:
            lines = run_buildx(engine, job.spec, self.console, prefix=f"[{job.label}] ", steps=steps)
            digest = pushed_digest(job.spec.metadata_file, lines)
            if not digest:
                raise JobFailed("built, but buildx named no digest (no metadata file, no 'exporting' line)")
            if job.layout:
                get_logger(profile=self.plan.profile).info("build.exported", platform=job.label,
                                                            detail=str(blobstore.keep(job.layout)))
                staged = upload_layout(job.layout, digest, self.repository)
                digest, shown = staged.index.digest, image_digest(staged.index)
            else:  # pushed by buildx: the image its index holds is what the summary will name
                shown = self.image_of(digest)
                if job.staging_tag is not None:
                    self.staging_tags.append(job.staging_tag)
        except BuildFailed as failure:
            gone = node_stopped(failure.lines)
            if gone:
                self.stopped.add(job.platform)
                return self._failed(job, started, f"{'the node' if job.node else 'the builder'} stopped answering "
                                                  f"(buildx: {gone})")
            step = failed_step(failure.lines)
            why = f"failed at {step}" if step else last_error(failure.lines)
            return self._failed(job, started, why)
        except EnvironmentMissing as exc:
            self.missing.append(exc)
            return self._failed(job, started, exc.message)
        except OrchError as exc:
            return self._failed(job, started, exc.message)
        finally:
            if job.layout:
                remove_directory(job.layout)
        seconds = time.monotonic() - started
        if fingerprint:
            self.record.put(job.platform, fingerprint, digest)
        self.console.platform(job.label, f"built {shown} in {seconds:.1f} s")
        return PlatformOutcome("built", digest, job.node, seconds, steps=steps.all())

    def _failed(self, job: PlatformJob, started: float, why: str) -> PlatformOutcome:
        # BuildKit's error quotes the failed command with its build args expanded: a secret's value
        # would reach the error, the result and CI outputs.
        why = redact(why, job.spec.secret_values)
        self.console.platform(job.label, f"FAILED{_on(job.node)}: {why}")
        return PlatformOutcome("failed", node=job.node, seconds=time.monotonic() - started,
                               failure=f"{why}" + (f" (daemon {job.daemon})" if job.daemon else ""))

    def check_emulators(self) -> None:
        """Platforms built here without a node that serves them natively need QEMU here."""
        local = tuple(job.platform for job in self.plan.per_arch if not job.daemon and not job.native)
        if local:
            ensure_emulators(self.engine, local, self.plan.install_emulators)
