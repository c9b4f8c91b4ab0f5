"""Build steps and their times, read from buildx's plain progress (buildx 0.13 has no rawjson).

BuildKit names each step `[PLATFORM STAGE N/M] INSTRUCTION`: the platform when several are
built at once (`linux/amd64->arm64` for a stage that runs on the build platform for another
target), the stage when it has a name. A step ends with `#N DONE 12.3s`, `#N CACHED` or
`#N ERROR`. A RUN step is emulated when the platform it executes on is one the machine (or
node) building it does not run natively: QEMU runs it, and it is where multi-arch builds
spend their time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_parse import parse

_TITLE = re.compile(r"^#(?P<id>\d+) \[(?P<label>[^\]]+)\] (?P<what>.+)$")
_DONE = re.compile(r"^#(?P<id>\d+) DONE (?P<seconds>[\d.]+)s$")
_CACHED = re.compile(r"^#(?P<id>\d+) CACHED$")
_ERROR = re.compile(r"^#(?P<id>\d+) ERROR")
_COUNT = re.compile(r"^\d+/\d+$")
_PLATFORM = re.compile(r"^[a-z][a-z0-9]*/[a-z0-9_]+(?:/[a-z0-9.]+)?(?:->[a-z0-9_/.]+)?$")


@dataclass
class Step:
    """One build step, read from buildx's progress: the platform it builds for and runs on, how long
    it took, and whether it was cached, failed or ran under QEMU."""

    platform: str  # the target platform the step builds for
    runs_on: str  # the platform it executes on (the build platform for FROM --platform=$BUILDPLATFORM stages)
    stage: str | None
    instruction: str
    started: float  # seconds after the build started
    seconds: float = 0.0
    cached: bool = False
    failed: bool = False
    emulated: bool = False
    node: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepLog:
    """Steps seen so far in one build's progress, fed line by line as buildx prints them."""

    default_platform: str | None = None  # a single-platform build names no platform in its steps
    node: str | None = None
    native: Callable[[Platform], bool] = field(default=lambda _p: True)
    clock: Callable[[], float] = field(default=time.monotonic)
    steps: dict[str, Step] = field(default_factory=dict)
    started: float | None = None
    finished: set[str] = field(default_factory=set)  # ids of the steps done, cached or failed
    positions: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # id: (stage, N, M) of `N/M`

    def feed(self, line: str) -> Step | None:
        """Read one progress line; the step it concerns, when it is a build step."""
        now = self.clock()
        if self.started is None:
            self.started = now
        title = _TITLE.match(line)
        if title and title.group("id") not in self.steps:
            step = self._step(title.group("label"), title.group("what").strip(), now - self.started)
            if step is not None:
                self.steps[title.group("id")] = step
                words = title.group("label").split()
                count, total = words[-1].split("/")
                self.positions[title.group("id")] = (step.stage or "", int(count), int(total))
            return step
        for pattern, apply in ((_DONE, self._done), (_CACHED, self._cached), (_ERROR, self._failed)):
            match = pattern.match(line)
            if match and match.group("id") in self.steps:
                step = self.steps[match.group("id")]
                apply(step, match)
                self.finished.add(match.group("id"))
                return step
        return None

    def running(self, platform: str) -> Step | None:
        """The step running for `platform`: the latest started (its title seen) and not yet done,
        cached or failed; None when every step seen has ended."""
        open_steps = [s for key, s in self.steps.items() if s.platform == platform and key not in self.finished]
        return open_steps[-1] if open_steps else None

    def next_step(self, platform: str) -> str | None:
        """When nothing runs for `platform` yet its last ended step was N/M with N < M: step N+1
        of that stage has started or is about to, its title not printed yet (buildx's plain
        progress shows one step at a time and may hold a step's title back for seconds)."""
        ended = [key for key, s in self.steps.items() if s.platform == platform and key in self.finished]
        if not ended or self.running(platform) is not None:
            return None
        stage, count, total = self.positions[ended[-1]]
        if count >= total or self.steps[ended[-1]].failed:
            return None
        return f"{stage + ' ' if stage else ''}step {count + 1}/{total}"

    def _step(self, label: str, what: str, started: float) -> Step | None:
        words = label.split()
        if not words or words[0] == "internal" or "internal" in words[1:2] or not _COUNT.match(words[-1]):
            return None  # loading the Dockerfile, the context, metadata: not a build step
        platform = words[0] if _PLATFORM.match(words[0]) else None
        stage = " ".join(words[1 if platform else 0:-1]) or None
        target, runs_on = self._platforms(platform)
        if target is None:
            return None
        step = Step(target, runs_on, stage, what, round(started, 3), node=self.node)
        try:
            step.emulated = what.startswith("RUN") and not self.native(parse(runs_on))
        except BadInput:
            step.emulated = False
        return step

    def _platforms(self, label: str | None) -> tuple[str | None, str]:
        if label is None:
            return self.default_platform, self.default_platform or ""
        if "->" not in label:
            return label, label
        runs_on, target = label.split("->", 1)
        if "/" not in target:  # BuildKit shortens "linux/amd64->linux/arm64" to "linux/amd64->arm64"
            target = f"{runs_on.split('/')[0]}/{target}"
        return target, runs_on

    @staticmethod
    def _done(step: Step, match: re.Match[str]) -> None:
        step.seconds = float(match.group("seconds"))

    @staticmethod
    def _cached(step: Step, _match: re.Match[str]) -> None:
        step.cached = True

    @staticmethod
    def _failed(step: Step, _match: re.Match[str]) -> None:
        step.failed = True

    def all(self) -> list[Step]:
        return list(self.steps.values())


def read_steps(lines: Iterable[str], **options: Any) -> list[Step]:
    """Steps of a whole log at once (arrival times unknown: every start is 0)."""
    log = StepLog(clock=lambda: 0.0, **options)
    for line in lines:
        log.feed(line)
    return log.all()


@dataclass(frozen=True)
class Timings:
    """Per platform, its steps; and where the build's time went."""

    steps: tuple[Step, ...]

    def for_platform(self, platform: str) -> list[Step]:
        return [s for s in self.steps if s.platform == platform]

    @property
    def total_seconds(self) -> float:
        return round(sum(s.seconds for s in self.steps), 1)

    @property
    def emulated_seconds(self) -> float:
        return round(sum(s.seconds for s in self.steps if s.emulated), 1)

    @property
    def emulated_share(self) -> float:
        return round(self.emulated_seconds / self.total_seconds, 3) if self.total_seconds else 0.0

    def costliest_emulated(self) -> Step | None:
        emulated = [s for s in self.steps if s.emulated and not s.cached]
        return max(emulated, key=lambda s: s.seconds) if emulated else None

    def platform_json(self, platform: Platform) -> dict[str, Any]:
        name = format_platform(platform)
        steps = self.for_platform(name)
        return {"steps": [s.to_json() for s in steps],
                "emulated_seconds": round(sum(s.seconds for s in steps if s.emulated), 1)}
