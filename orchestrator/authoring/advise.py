"""`orch advise`: which RUN steps of a Dockerfile run under QEMU, what they cost, and how to stop it;
and which steps break reproducible builds (authoring.reproducibility).

The Dockerfile is read with BuildKit's own parser (the `dockerfile` package wraps it): stages,
`FROM --platform`, heredocs and continuations exactly as the engine reads them. A stage runs on
the target platform unless it starts `FROM --platform=$BUILDPLATFORM` (or from a stage that
does); its RUN steps are emulated for every target this machine does not run natively.

Each such step is ranked by what earlier builds measured (orch records step times in its state
directory, builds.timings), else by what the command does, and given a rewrite for its
toolchain: Go cross-compiles (GOOS/GOARCH), Rust and C/C++ through tonistiigi/xx, output that
does not depend on the CPU is built once on $BUILDPLATFORM and copied. A stage's rewrite is a
diff against the user's file when the stage is copied from (not the final image); steps that
install target-platform packages must stay emulated and are named as such.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.authoring.reproducibility import Hint, reproducibility_hints
from orchestrator.errors import BadInput

INSTRUCTIONS = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL")
BUILD_PLATFORM = re.compile(r"^--platform=\$\{?BUILDPLATFORM\}?$")
KINDS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    # (kind, what the command does, weight when nothing was measured)
    ("go", re.compile(r"\bgo\s+(build|install|test)\b"), 100),
    ("rust", re.compile(r"\bcargo\s+(build|install)\b"), 100),
    ("c", re.compile(r"\b(gcc|g\+\+|clang\+?\+?|cmake|make|ninja|meson|\./configure)\b"), 90),
    ("node", re.compile(r"\b(npm\s+(ci|install|run\s+build)|yarn(\s+(install|build))?|pnpm\s+(install|build))\b"), 60),
    ("python", re.compile(r"\bpip3?\s+install\b"), 50),
    ("packages", re.compile(r"\b(apt-get|apt|apk|dnf|yum|microdnf|zypper)\s+(-\S+\s+)*(install|add)\b"), 20),
)
REWRITES = {
    "go": "cross-compile on the build platform: FROM --platform=$BUILDPLATFORM, ARG TARGETOS TARGETARCH, and "
          "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build",
    "rust": "cross-compile on the build platform with tonistiigi/xx: FROM --platform=$BUILDPLATFORM, COPY --from="
            "tonistiigi/xx / /, ARG TARGETPLATFORM, then xx-cargo build (it picks the target triple)",
    "c": "cross-compile on the build platform: FROM --platform=$BUILDPLATFORM with tonistiigi/xx (xx-apt install "
         "gcc libc6-dev, then xx-clang or $(xx-info)-gcc), or Debian's cross compilers (gcc-aarch64-linux-gnu...)",
    "node": "install and build on the build platform when the result is plain JavaScript (FROM "
            "--platform=$BUILDPLATFORM) and COPY --from it; native modules (node-gyp) must stay on the target",
    "python": "use wheels built for the target (pip install --only-binary=:all:), or build them once per platform in "
              "CI; compiling sdists under QEMU is what costs",
    "other": "if this stage's output does not depend on the CPU (generated files, downloads, bundles, docs), build it "
             "once: FROM --platform=$BUILDPLATFORM, and COPY --from it",
}


@dataclass
class Stage:
    """A stage of the Dockerfile: its FROM line, whether it runs on the build platform (never
    emulated), and whether a later stage copies from it (so its rewrite can be a diff)."""

    index: int
    name: str | None
    base: str
    from_line: int  # 1-based
    on_build_platform: bool
    copied_from: bool = False  # a later stage copies from it (COPY --from / FROM stage)


@dataclass
class Advice:
    """An emulated RUN step and what to do about it: the rewrite for its toolchain, or why it stays
    emulated, and what earlier builds measured it costing (`weight` ranks it when nothing was)."""

    stage: str
    line: int
    end_line: int
    instruction: str
    kind: str
    stays_emulated: bool
    rewrite: str
    platforms: list[str]
    measured_seconds: float | None = None  # emulated time an earlier build measured, all platforms
    expected_saving: float | None = None
    diff: str | None = None
    weight: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "weight"}


@dataclass
class Report:
    """What `orch advise` says about a Dockerfile (and --json writes): its emulated steps, costliest
    first, the file with every rewrite applied, and the steps that break --reproducible."""

    dockerfile: str
    emulated_platforms: list[str]
    advice: list[Advice] = field(default_factory=list)
    rewritten: str | None = None  # the Dockerfile with every rewrite applied
    reproducibility: list[Hint] = field(default_factory=list)  # steps that break --reproducible (authoring.reproducibility)

    def to_json(self) -> dict[str, Any]:
        return {"dockerfile": self.dockerfile, "emulated_platforms": self.emulated_platforms,
                "advice": [a.to_json() for a in self.advice], "rewritten": self.rewritten,
                "reproducibility": [h.to_json() for h in self.reproducibility]}


def parse_dockerfile(path: Path) -> list[Any]:
    import dockerfile  # BuildKit's parser; only orch advise loads it

    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInput(f'cannot read "{path}": {exc.strerror}', fix="pass -f PATH to a Dockerfile") from None
    try:
        commands = list(dockerfile.parse_string(text))
    except dockerfile.GoParseError as exc:
        line = re.search(r"line (\d+)", str(exc))
        if line is None and "heredoc" in str(exc):
            line = re.search(r"(\d+)", str(next((n for n, t in enumerate(text.splitlines(), 1) if "<<" in t), "")))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise BadInput(f"{where}: BuildKit cannot parse it: {exc}", fix="fix the Dockerfile (docker build says the same)"
                       ) from None
    for command in commands:
        if command.cmd not in INSTRUCTIONS:
            raise BadInput(f'{path}:{command.start_line}: unknown instruction "{command.cmd}"',
                           fix=f"use one of {', '.join(INSTRUCTIONS)}")
    return commands


def stages_of(commands: list[Any]) -> list[Stage]:
    stages: list[Stage] = []
    for command in commands:
        if command.cmd == "FROM":
            base = command.value[0]
            name = command.value[2].lower() if len(command.value) >= 3 and command.value[1].upper() == "AS" else None
            parent = next((s for s in stages if s.name == base.lower()), None)
            if parent is not None:
                parent.copied_from = True
            build = any(BUILD_PLATFORM.match(flag) for flag in command.flags) or bool(
                parent and parent.on_build_platform and not command.flags)
            stages.append(Stage(len(stages), name, base, command.start_line, build))
        elif command.cmd == "COPY" and stages:
            for flag in command.flags:
                source = flag.partition("=")[2].lower() if flag.startswith("--from=") else None
                for stage in stages:
                    if source in (stage.name, str(stage.index)):
                        stage.copied_from = True
    return stages


def _stage_at(stages: list[Stage], line: int) -> Stage:
    return [s for s in stages if s.from_line <= line][-1]


def _command_text(command: Any) -> str:
    return " ".join(command.value) + "".join(h.content for h in command.heredocs)


def advise(path: Path, emulated_platforms: list[str], timings: dict[tuple[str, str], dict[str, float]] | None = None
           ) -> Report:
    """Advice for every RUN step that runs emulated, costliest first, and every step that breaks
    reproducibility. `timings`: per (stage, instruction), seconds per platform as earlier builds
    measured them."""
    commands = parse_dockerfile(path)
    stages = stages_of(commands)
    report = Report(str(path), emulated_platforms, reproducibility=reproducibility_hints(commands, _command_text))
    if not emulated_platforms:
        return report
    lines = path.read_text().splitlines()
    for command in commands:
        if command.cmd != "RUN" or not stages:
            continue
        stage = _stage_at(stages, command.start_line)
        if stage.on_build_platform:
            continue
        text = _command_text(command)
        kind, weight = next(((k, w) for k, pattern, w in KINDS if pattern.search(text)), ("other", 30))
        label = stage.name or f"stage {stage.index}"
        instruction = "RUN " + " ".join(command.value)
        advice = Advice(label, command.start_line, command.end_line, _short(instruction), kind,
                        stays_emulated=kind == "packages", rewrite="", platforms=list(emulated_platforms),
                        weight=weight)
        _measure(advice, timings, stage.name, instruction)
        if advice.stays_emulated:
            advice.rewrite = ("stays emulated: it installs packages for the target platform (keep the list short, "
                              "and put it in a stage that rarely changes so the cache keeps it)")
        elif stage.copied_from:
            advice.rewrite = REWRITES[kind]
            advice.diff = _diff(lines, stages, stage, commands, kind, str(path))
        else:
            advice.rewrite = (f"{REWRITES[kind]}. It runs in the final image's stage: move it to a stage of its own "
                              "(FROM --platform=$BUILDPLATFORM ... AS build) and COPY --from=build what it makes")
        report.advice.append(advice)
    report.advice.sort(key=lambda a: (-(a.measured_seconds or 0), -a.weight, a.line))
    report.rewritten = _rewrite_all(lines, stages, commands, report) if any(a.diff for a in report.advice) else None
    return report


def _short(text: str, most: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 1] + "…"


def _measure(advice: Advice, timings: dict[tuple[str, str], dict[str, float]] | None, stage: str | None,
             instruction: str) -> None:
    if not timings:
        return
    key = " ".join(instruction.split())
    found = timings.get((stage or "", key)) or next(
        (seconds for (recorded_stage, text), seconds in timings.items() if text == key), None)
    if not found:
        return
    emulated = {p: s for p, s in found.items() if p in advice.platforms}
    native = [s for p, s in found.items() if p not in advice.platforms]
    advice.measured_seconds = round(sum(emulated.values()), 1)
    # Moved to the build platform it runs once, natively: what a native build of it took, if one was measured.
    advice.expected_saving = round(advice.measured_seconds - (min(native) if native else 0.0), 1)


def _rewritten_stage(lines: list[str], stages: list[Stage], stage: Stage, commands: list[Any], kind: str) -> list[str]:
    out = list(lines)
    index = stage.from_line - 1
    out[index] = re.sub(r"^(\s*FROM)\s+", r"\1 --platform=$BUILDPLATFORM ", out[index], count=1, flags=re.I)
    extra: list[str] = []
    if kind == "go":
        extra = ["ARG TARGETOS TARGETARCH"]
    elif kind in ("rust", "c"):
        extra = ["COPY --from=tonistiigi/xx / /", "ARG TARGETPLATFORM"]
    for command in commands:
        if command.cmd != "RUN" or _stage_at(stages, command.start_line) is not stage:
            continue
        for number in range(command.start_line - 1, command.end_line):
            if kind == "go":
                out[number] = re.sub(r"(?<![=\w])go (build|install)\b",
                                     r"CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go \1", out[number])
            elif kind == "rust":
                out[number] = re.sub(r"(?<![-\w])cargo (build|install)\b", r"xx-cargo \1", out[number])
    return out[:index + 1] + extra + out[index + 1:]


def _diff(lines: list[str], stages: list[Stage], stage: Stage, commands: list[Any], kind: str, name: str) -> str:
    changed = _rewritten_stage(lines, stages, stage, commands, kind)
    return "".join(difflib.unified_diff([f"{line}\n" for line in lines], [f"{line}\n" for line in changed],
                                        fromfile=name, tofile=f"{name} (advised)"))


def _rewrite_all(lines: list[str], stages: list[Stage], commands: list[Any], report: Report) -> str:
    """Every stage with advice and a diff rewritten, last stage first (line numbers hold)."""
    out = list(lines)
    done: set[int] = set()
    for advice in sorted((a for a in report.advice if a.diff), key=lambda a: -a.line):
        stage = _stage_at(stages, advice.line)
        if stage.from_line in done:
            continue
        done.add(stage.from_line)
        out = _rewritten_stage(out, stages, stage, commands, advice.kind)
    return "\n".join(out) + "\n"
