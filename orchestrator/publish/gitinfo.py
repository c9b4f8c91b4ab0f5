"""What a git checkout says about the build: OCI labels and the values tag templates use."""

from __future__ import annotations

import re
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.errors import BadInput
from orchestrator.redact import redact


@dataclass(frozen=True)
class GitInfo:
    sha: str
    short_sha: str
    branch: str | None
    version: str | None  # `git describe --tags`, else None
    source: str | None  # remote URL, credentials stripped


def _git_all(path: Path, *commands: tuple[str, ...]) -> list[str | None]:
    """Several git commands at once (each is a process start: at once they cost one);
    each one's output, or None when it failed or printed nothing."""
    try:
        running = [subprocess.Popen(["git", "-C", str(path), *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
                   for args in commands]
    except OSError:
        return [None] * len(commands)
    outputs = []
    for process in running:
        try:
            out, _ = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            out = ""
        outputs.append(out.strip() if process.returncode == 0 and out.strip() else None)
    return outputs


def tag_safe(text: str) -> str:
    """A string usable in an image tag: [A-Za-z0-9_.-], not starting with . or -."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).lstrip(".-")
    return cleaned[:128] or "unknown"


def public_url(url: str) -> str:
    """git@github.com:o/r.git -> https://github.com/o/r ; credentials dropped."""
    url = re.sub(r"^(https?://)[^/@]+@", r"\1", url)
    ssh = re.match(r"^(?:ssh://)?git@([^:/]+)[:/](.+?)(?:\.git)?$", url)
    if ssh:
        return f"https://{ssh.group(1)}/{ssh.group(2)}"
    return redact(re.sub(r"\.git$", "", url))


def read_git(path: Path) -> GitInfo | None:
    heads, remote, tags, described = _git_all(
        path, ("rev-parse", "HEAD", "--abbrev-ref", "HEAD"), ("config", "--get", "remote.origin.url"),
        ("tag", "--list"), ("describe", "--tags", "--always", "--match", "*[0-9]*"))
    if not heads:
        return None
    sha, _, branch = heads.partition("\n")
    return GitInfo(
        sha=sha,
        short_sha=sha[:7],
        branch=None if branch in ("", "HEAD") else branch,
        version=described if tags else None,
        source=public_url(remote) if remote else None,
    )


def template_values(git: GitInfo | None, profile: str, now: datetime | None = None) -> dict[str, str | None]:
    now = now or datetime.now(timezone.utc)
    return {
        "version": tag_safe(git.version) if git and git.version else None,
        "sha": git.sha if git else None,
        "short_sha": git.short_sha if git else None,
        "branch": tag_safe(git.branch) if git and git.branch else None,
        "date": now.strftime("%Y%m%d"),
        "profile": profile,
    }


def oci_labels(git: GitInfo | None, now: datetime) -> dict[str, str]:
    labels = {"org.opencontainers.image.created": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if git:
        labels["org.opencontainers.image.revision"] = git.sha
        if git.source:
            labels["org.opencontainers.image.source"] = git.source
        if git.version:
            labels["org.opencontainers.image.version"] = git.version
    return labels


def render_tags(tags: tuple[str, ...], values: Mapping[str, str | None]) -> list[str]:
    """Fill {version}, {short_sha}... ; a template needing an unknown value is an error."""
    out = []
    for tag in tags:
        needed = [name for _, name, _, _ in string.Formatter().parse(tag) if name]
        missing = [name for name in needed if not values.get(name)]
        if missing:
            raise BadInput(f'tag template "{tag}" needs {", ".join("{" + m + "}" for m in missing)}, '
                           "which is unknown here", fix="build from a git checkout, or pass -t with a literal tag")
        out.append(tag.format(**{name: values[name] for name in needed}))
    return out
