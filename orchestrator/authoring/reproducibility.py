"""`orch advise`: the Dockerfile steps that break reproducible builds (`orch build --reproducible`),
each with its line and the fix.

`rewrite-timestamp` clamps the times of files; it cannot change what a step writes *into* them.
What differs on every build, and is pointed at here: times a RUN step writes (`date`, .pyc files
that record their sources' install times), package managers' indexes, caches and logs left in
the layer (apt, apk, dnf/yum, pip, npm, yarn), and `ADD` of a URL nothing pins. A cache or tmpfs
mount (`RUN --mount=type=cache,target=...`) never reaches the layer, so what it covers is fine.
Read from BuildKit's own parse of the file (authoring.advise.parse_dockerfile).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

DATE = re.compile(r"(?<![\w$./-])date\b(?![-.\w=])")
APT = re.compile(r"\bapt(?:-get)?\s+(?:-\S+\s+)*(update|install|upgrade|dist-upgrade|full-upgrade)\b")
APK = re.compile(r"\bapk\s+(?:-\S+\s+)*(add|upgrade|update)\b")
DNF = re.compile(r"\b(dnf|yum|microdnf|tdnf)\s+(?:-\S+\s+)*(install|upgrade|update|groupinstall|reinstall)\b")
PIP = re.compile(r"\bpip3?(?:\.\d+)?\s+(?:-\S+\s+)*install\b|\bpython3?(?:\.\d+)?\s+-m\s+pip\s+(?:-\S+\s+)*install\b")
NPM = re.compile(r"\bnpm\s+(?:-\S+\s+)*(ci|install|i)\b")
YARN = re.compile(r"\byarn(?:\s+(install|add)\b|\s*(?:$|&&|;|\|))")
GIT_URL = re.compile(r"^(git@|git://|ssh://)|\.git(#|$)")
COMMIT = re.compile(r"#[0-9a-f]{40}(:|$)")


@dataclass
class Hint:
    """One step that breaks reproducibility: where, what it leaves that differs, and the fix."""

    stage: str
    line: int
    end_line: int
    instruction: str
    problem: str
    fix: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StageFacts:
    """What a stage declares before a step: ARG names and ENV keys (ENV is inherited from a stage it starts FROM)."""

    name: str
    args: set[str] = field(default_factory=set)
    env: set[str] = field(default_factory=set)


def removes(text: str, *paths: str) -> bool:
    """Whether the step deletes every one of `paths` (or a directory above it) with rm."""
    targets = [word.rstrip("*").rstrip("/").replace("$HOME", "/root").replace("~", "/root", 1)
               for command in re.findall(r"\brm\s+([^;&|]*)", text) for word in command.split()
               if not word.startswith("-")]
    return all(any(target and (path == target or path.startswith(target + "/")) for target in targets)
               for path in paths)


def cache_mounts(flags: list[str]) -> list[str]:
    """The targets of a RUN step's cache and tmpfs mounts: what they hold never reaches the layer."""
    targets = []
    for flag in flags:
        if not flag.startswith("--mount="):
            continue
        fields = dict(part.partition("=")[::2] for part in flag.removeprefix("--mount=").split(","))
        if fields.get("type") in ("cache", "tmpfs"):
            target = fields.get("target") or fields.get("dst") or fields.get("destination")
            if target:
                targets.append(target.rstrip("/") or "/")
    return targets


def covered(path: str, mounts: list[str]) -> bool:
    return any(path == mount or path.startswith(mount + "/") for mount in mounts)


def _date(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    if not DATE.search(text) or "SOURCE_DATE_EPOCH" in text:
        return None
    declare = "" if "SOURCE_DATE_EPOCH" in stage.args else "declare ARG SOURCE_DATE_EPOCH in this stage, then "
    return ("writes the time of the build (`date`) into the layer: it differs on every build",
            f"write the commit's time instead: {declare}date -u -d @$SOURCE_DATE_EPOCH (orch build --reproducible "
            "passes SOURCE_DATE_EPOCH)")


def _apt(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    verbs = {match.group(1) for match in APT.finditer(text)}
    if not verbs:
        return None
    left = []
    if "update" in verbs and not (removes(text, "/var/lib/apt/lists") or covered("/var/lib/apt/lists", mounts)):
        left.append("/var/lib/apt/lists (the package index the mirror served)")
    logs = [path for path in ("/var/log/dpkg.log", "/var/log/apt") if not (removes(text, path) or covered(path, mounts))]
    if verbs - {"update"} and logs:
        left.append(f"{', '.join(logs)} (install times)")
    if not left:
        return None
    return (f"leaves {'; '.join(left)} in the layer",
            "end the step with && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log "
            "/var/cache/ldconfig/aux-cache, or keep the index in cache mounts (RUN --mount=type=cache,"
            "target=/var/lib/apt/lists --mount=type=cache,target=/var/cache/apt ...)")


def _apk(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    if not APK.search(text) or "--no-cache" in text or removes(text, "/var/cache/apk") or \
            covered("/var/cache/apk", mounts) or covered("/etc/apk/cache", mounts):
        return None
    return ("leaves apk's index (/var/cache/apk/APKINDEX.*) in the layer",
            "apk add --no-cache, or RUN --mount=type=cache,target=/var/cache/apk")


def _dnf(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    match = DNF.search(text)
    if match is None:
        return None
    tool = match.group(1)
    cache = "/var/cache/yum" if tool == "yum" else f"/var/cache/{tool if tool != 'microdnf' else 'dnf'}"
    if re.search(rf"\b{tool}\s+(?:-\S+\s+)*clean\s+all\b", text) or removes(text, cache) or covered(cache, mounts):
        return None
    return (f"leaves {tool}'s metadata cache ({cache}) in the layer",
            f"end the step with && {tool} clean all && rm -rf {cache} /var/log/dnf* /var/log/yum.* "
            f"/var/log/hawkey.log, or RUN --mount=type=cache,target={cache}")


def _pip_cache(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    if not PIP.search(text) or "--no-cache-dir" in text or "PIP_NO_CACHE_DIR" in stage.env | stage.args or \
            "PIP_NO_CACHE_DIR" in text or any(".cache" in mount for mount in mounts) or removes(text, "/root/.cache/pip"):
        return None
    return ("leaves pip's cache (~/.cache/pip: downloads and built wheels) in the layer",
            "pip install --no-cache-dir, or RUN --mount=type=cache,target=/root/.cache/pip")


def _pyc(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    if not PIP.search(text) or "--no-compile" in text or "SOURCE_DATE_EPOCH" in stage.args | stage.env or \
            "SOURCE_DATE_EPOCH" in text:
        return None
    return ("the .pyc files pip compiles record each source file's time of install, which differs on every build "
            "(rewrite-timestamp clamps the file times, not what the .pyc holds)",
            "declare ARG SOURCE_DATE_EPOCH in this stage: Python then writes .pyc files that hold source hashes, "
            "not times (or pip install --no-compile)")


def _npm(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    if not NPM.search(text) or re.search(r"\bnpm\s+cache\s+clean\b", text) or removes(text, "/root/.npm") or \
            any(".npm" in mount for mount in mounts):
        return None
    return ("leaves npm's cache (~/.npm: its index records download times) in the layer",
            "end the step with && npm cache clean --force, or RUN --mount=type=cache,target=/root/.npm")


def _yarn(text: str, mounts: list[str], stage: StageFacts) -> tuple[str, str] | None:
    if not YARN.search(text) or re.search(r"\byarn\s+cache\s+clean\b", text) or any("yarn" in m for m in mounts):
        return None
    return ("leaves yarn's cache (/usr/local/share/.cache/yarn) in the layer",
            "end the step with && yarn cache clean, or RUN --mount=type=cache,target=/usr/local/share/.cache/yarn")


RUN_RULES: tuple[Callable[[str, list[str], StageFacts], tuple[str, str] | None], ...] = (
    _date, _apt, _apk, _dnf, _pip_cache, _pyc, _npm, _yarn)


def _add(command: Any) -> tuple[str, str] | None:
    """ADD of a URL (or a git repository) that nothing pins."""
    if any(flag.startswith("--checksum=") for flag in command.flags):
        return None
    for source in command.value[:-1]:
        if GIT_URL.search(source) and not COMMIT.search(source):
            return (f"ADD {source}: a branch or tag it names can move, so another build may get other files",
                    "pin the commit: ADD URL.git#<40-hex commit>")
        if re.match(r"^https?://", source) and not GIT_URL.search(source):
            return (f"ADD {source}: what the server sends can change between builds, and nothing pins it",
                    "pin it: ADD --checksum=sha256:<digest> URL (BuildKit refuses anything else), or download "
                    "a versioned file")
    return None


def reproducibility_hints(commands: list[Any], text_of: Callable[[Any], str]) -> list[Hint]:
    """Every step of `commands` (BuildKit's parse) that breaks reproducibility, in file order."""
    hints: list[Hint] = []
    stages: dict[str, StageFacts] = {}
    stage: StageFacts | None = None
    for command in commands:
        if command.cmd == "FROM":
            alias = command.value[2].lower() if len(command.value) >= 3 and command.value[1].upper() == "AS" else None
            parent = stages.get(command.value[0].lower())
            stage = StageFacts(alias or f"stage {len(stages)}", env=set(parent.env) if parent else set())
            stages[alias or str(len(stages))] = stage
            continue
        if stage is None:
            continue
        if command.cmd == "ARG":
            stage.args.update(value.partition("=")[0] for value in command.value)
        elif command.cmd == "ENV":
            stage.env.update(command.value[::2])
        found: list[tuple[str, str] | None] = []
        if command.cmd == "RUN":
            text, mounts = text_of(command), cache_mounts(list(command.flags))
            found = [rule(text, mounts, stage) for rule in RUN_RULES]
        elif command.cmd == "ADD":
            found = [_add(command)]
        shown = " ".join(f"{command.cmd} {' '.join(command.flags)} {' '.join(command.value)}".split())
        hints += [Hint(stage.name, command.start_line, command.end_line, shown if len(shown) <= 120 else
                       shown[:119] + "…", problem, fix) for problem, fix in filter(None, found)]
    return hints
