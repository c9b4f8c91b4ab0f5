"""Running one `docker buildx build` of a spec: its progress, push retries, the failure a user sees,
the digest it pushed, and whether auto's per-arch fallback can help after it failed."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.builds.argv import BUILDX_ENV, buildx_build_argv
from orchestrator.builds.spec import BuildSpec
from orchestrator.docker.progress import (
    MULTI_PLATFORM_REFUSED,
    error_lines,
    exported_digest,
    failed_platforms,
    failed_step,
    is_transient_push_failure,
)
from orchestrator.docker.runner import DockerStreamFailed, Engine
from orchestrator.docker.steps import StepLog
from orchestrator.errors import BuildStepFailed, EnvironmentMissing, OrchError
from orchestrator.logging import get_logger
from orchestrator.model.platform import format_platform
from orchestrator.patterns import on_first_use
from orchestrator.publish.stage import export_elsewhere
from orchestrator.report.console import Console

if TYPE_CHECKING:
    from orchestrator.builds.plan import BuildPlan

PUSH_ATTEMPTS = 3
LOG_TAIL = 4000


class BuildFailed(Exception):
    """A buildx call failed: its log, and the error a user should see if nothing else is tried."""

    def __init__(self, lines: list[str], error: OrchError) -> None:
        super().__init__(str(error))
        self.lines = lines
        self.error = error


def run_buildx(engine: Engine, spec: BuildSpec, console: Console, *, prefix: str = "",
               steps: StepLog | None = None, node: str | None = None,
               watch: Callable[[str], None] | None = None) -> list[str]:
    """Run the build; retry when only the registry stumbled during the push. `steps` is fed
    every progress line (step times, for the result and orch advise), and so is `watch`; `node`,
    the node it runs on when known, is named if it stops answering.
    Raises BuildFailed with the log, for the caller to judge."""
    argv = buildx_build_argv(spec)
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        lines, error = _build_once(engine, argv, console, prefix, steps, watch)
        if error is None:
            return lines
        if attempt < PUSH_ATTEMPTS and is_transient_push_failure(lines):
            get_logger().warning(
                "build.push_retry", attempt=attempt + 1, of=PUSH_ATTEMPTS, platform=prefix.strip(" []") or None,
                reason="the registry answered 5xx while the image was pushed; the build itself succeeded")
            continue
        if spec.output.type == "oci" and spec.output.dest and export_elsewhere(spec.output.dest, lines):
            continue  # the state directory could not take the layout: exported again into the temporary one
        raise BuildFailed(lines, _failure(lines, error, console, spec.builder, node))
    raise AssertionError("unreachable")


def _build_once(engine: Engine, argv: tuple[str, ...], console: Console, prefix: str,
                steps: StepLog | None, watch: Callable[[str], None] | None) -> tuple[list[str], DockerStreamFailed | None]:
    tail: deque[str] = deque(maxlen=LOG_TAIL)
    try:
        for line in engine.stream(*argv, env=BUILDX_ENV):
            tail.append(line)
            if steps is not None:
                steps.feed(line)
            if watch is not None:
                watch(line)
            console.say(prefix + line)
    except DockerStreamFailed as exc:
        return list(tail), exc
    return list(tail), None


class NodeStopped(EnvironmentMissing):
    """No step failed: the BuildKit node the build ran on stopped answering (exit 3). `failed`
    maps each platform to what happened there, as BuildStepFailed's does, for CI outputs."""

    def __init__(self, message: str, *, failed: dict[str, str], fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.failed = failed


# What buildx prints when the node it builds on goes away (0.13.1 and 0.30.1 alike, seen by killing
# a node's buildkitd): during the build the status stream or the solve call breaks, whichever
# buildx hears of first ("ERROR: failed to receive status: rpc error: code = Unavailable desc =
# error reading from server: EOF", "ERROR: failed to solve: Unavailable: error reading from server:
# EOF"); gone before the build starts, the connection step times out ("#1 [internal] waiting for
# connection", "#1 ERROR: context deadline exceeded"). A failed step is an ERROR of its own step,
# never these; a registry's "503 Service Unavailable" is neither.
_UNAVAILABLE = on_first_use(r"rpc error: code = Unavailable\b|\bfailed to solve: Unavailable: ")
_CONNECTING = on_first_use(r"^#(\d+) \[internal\] waiting for connection$")


def node_stopped(lines: list[str]) -> str | None:
    """What buildx said when the node it built on stopped answering, or None if it did not."""
    connecting = {m.group(1) for m in (_CONNECTING.match(line.strip()) for line in lines) if m}
    for line in lines:
        text = line.strip()
        step, _, rest = text.partition(" ")
        if text.startswith("ERROR") and _UNAVAILABLE.search(text):
            return text.removeprefix("ERROR: ").removeprefix("failed to build: ")
        if step.lstrip("#") in connecting and rest.startswith("ERROR"):
            return f"waiting for connection: {rest.removeprefix('ERROR: ')}"
    return None


def restart_fix(node: str, builder: str | None) -> str:
    """How to bring back a node that stopped answering: `node` names it ("node farm-arm")."""
    return f"check or restart {node} (`docker buildx inspect{f' {builder}' if builder else ''}` shows each node's status)"


def _failure(lines: list[str], exc: DockerStreamFailed, console: Console, builder: str | None,
             node: str | None) -> OrchError:
    failed = failed_platforms(lines)
    per_platform = "".join(f"\n  {format_platform(p)}: failed at {what}" for p, what in failed.items())
    if console.quiet:
        console.line("\n".join(lines[-40:]))
    gone = node_stopped(lines)
    if gone and not failed:
        who = f"node {node}" if node else f'the node of builder "{builder}"' if builder else "the builder's node"
        return NodeStopped(f"{who} stopped answering during the build, no step failed (buildx: {gone}); "
                           "no tag was changed", failed={"": f"{who} stopped answering"},
                           fix=f"{restart_fix(who, builder)}, then rerun the same command")
    step = failed_step(lines)
    return BuildStepFailed(
        f"the build failed (exit {exc.return_code}); no tag was changed{per_platform}\n"
        + "\n".join(f"  {line}" for line in error_lines(lines)),
        failed={format_platform(p): what for p, what in failed.items()} or ({"": step} if step else {}),
        fix="fix the failing step (log above); tags still point where they did before",
    )


def pushed_digest(metadata_file: str, lines: list[str]) -> str | None:
    """The pushed image's digest: from the metadata file, else from the log (the push race
    can leave no metadata file; the log still names what was exported)."""
    path = Path(metadata_file)
    try:
        metadata = json.loads(path.read_text())
        digest = metadata.get("containerimage.digest")
        if isinstance(digest, str) and digest:
            return digest
    except (OSError, ValueError):
        pass
    finally:
        path.unlink(missing_ok=True)
    return exported_digest(lines)


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
    if failed and set(failed) < set(plan.platforms):
        names = [format_platform(p) for p in failed]
        where = "; ".join(f"{format_platform(p)} at {what}" for p, what in failed.items())
        return (f"only {', '.join(names)} failed in the single call ({where}); building each platform on its "
                "own keeps the others and retries those")
    return None
