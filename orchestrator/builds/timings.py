"""Where a build's time went: step logs for its buildx calls, what they say once it is done, and a
record of each Dockerfile's measured step times in orch's state directory (orch advise ranks its
advice by them, and estimates what a rewrite saves)."""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from orchestrator.docker.steps import Step, StepLog, Timings
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_match import can_run, detect_host
from orchestrator.redact import mask
from orchestrator.state import read_record, write_record

# One line after a build where QEMU took at least this share of the step time, and this long.
HINT_SHARE = 0.5
HINT_SECONDS = 3.0


def host_platform() -> Platform:
    return detect_host(os.uname().machine).platform


def step_log(platforms: tuple[Platform, ...], *, node: str | None = None, native_node: bool = False) -> StepLog:
    """A log for one buildx call: a step is emulated when it runs on a platform this machine
    (or the node, when it builds natively) does not run itself."""
    host = host_platform()
    return StepLog(default_platform=format_platform(platforms[0]) if len(platforms) == 1 else None, node=node,
                   native=(lambda _p: True) if native_node else (lambda p: can_run(host, p)))


def _key(dockerfile: str | None, context: str) -> str:
    path = Path(dockerfile) if dockerfile else Path(context) / "Dockerfile"
    return hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]


def record(dockerfile: str | None, context: str, steps: Iterable[Step]) -> None:
    """Keep the last measured time of each step that ran (a cached step says nothing about its cost)."""
    name = f"timings/{_key(dockerfile, context)}.json"
    known: dict[str, Any] = read_record(name) or {}
    table = known.get("steps") or {}
    for step in steps:
        if step.cached or step.failed or not step.instruction.startswith("RUN"):
            continue
        # BuildKit names a step with its build args expanded: a secret's value is masked here too
        entry = table.setdefault(mask(f"{step.stage or ''}\t{' '.join(step.instruction.split())}"), {})
        entry[step.platform] = step.seconds
    if table:
        write_record(name, {"dockerfile": dockerfile or str(Path(context) / "Dockerfile"), "steps": table})


def load(dockerfile: str | None, context: str = ".") -> dict[tuple[str, str], dict[str, float]]:
    known = read_record(f"timings/{_key(dockerfile, context)}.json") or {}
    steps: dict[str, dict[str, float]] = known.get("steps") or {}
    return {(stage, instruction): seconds for key, seconds in steps.items()
            for stage, _, instruction in [key.partition("\t")]}


def hint(timings: Timings, dockerfile: str | None, platforms: tuple[Platform, ...]) -> str | None:
    """One line when emulation took most of the build: its costliest step and orch advise."""
    costliest = timings.costliest_emulated()
    if costliest is None or timings.emulated_share < HINT_SHARE or timings.emulated_seconds < HINT_SECONDS:
        return None
    command = ["orch", "advise"] + (["-f", dockerfile] if dockerfile else []) + \
        ["--platform", ",".join(format_platform(p) for p in platforms)]
    where = f"{costliest.platform}{' ' + costliest.stage if costliest.stage else ''}"
    return (f"QEMU ran {timings.emulated_share:.0%} of the step time ({timings.emulated_seconds:.0f} s); the costliest "
            f"emulated step: [{where}] {costliest.instruction[:80]} ({costliest.seconds:.0f} s). "
            f"See how to avoid it: {shlex.join(command)}")
