"""Where the build stands: the git checkout, and in CI the environment (GitHub Actions, GitLab CI),
so a detached HEAD (every tag and pull-request build) still knows its branch, tag and commit.
From it: OCI labels as metadata-action sets them, the values `{version}`-style tag templates use,
and the RefContext metadata-action's tag rules read."""

from __future__ import annotations

import os
import re
from _string import formatter_parser  # type: ignore[import-not-found]  # string.Formatter.parse calls it
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.ci_facts import on_github, on_gitlab
from orchestrator.errors import BadInput
from orchestrator.model.tagrules import RefContext
from orchestrator.processes import outputs_at_once
from orchestrator.redact import redact


@dataclass(frozen=True)
class GitInfo:
    """What the checkout says about the build: commit, branch, version tag, source URL, commit
    date; tag rules, tag templates and OCI labels are filled in from it."""

    sha: str
    short_sha: str
    branch: str | None
    version: str | None  # the tag at HEAD, else `git describe --tags`; a leading v dropped; else None
    source: str | None  # remote URL, credentials stripped
    tag: str | None = None  # a tag pointing at HEAD (the highest version, if several)
    default_branch: str | None = None  # origin's HEAD branch
    commit_date: datetime | None = None
    name: str | None = None  # the repository's name (for org.opencontainers.image.title)


def _git_all(path: Path, *commands: tuple[str, ...]) -> list[str | None]:
    """Several git commands at once (each is a process start: at once they cost one);
    each one's output, or None when it failed or printed nothing."""
    return outputs_at_once([("git", "-C", str(path), *args) for args in commands])


def in_a_checkout(path: Path, environ: Mapping[str, str]) -> bool:
    """Whether git could find a repository at `path`: a `.git` (directory or file) there or in a
    parent, or `path` or a parent being a repository itself (bare); GIT_DIR leaves it to git.
    Outside one, asking git costs a process per question for nothing."""
    if environ.get("GIT_DIR"):
        return True
    try:
        here = path.resolve()
    except OSError:
        return True  # let git say
    for directory in (here, *here.parents):
        if (directory / ".git").exists() or ((directory / "HEAD").is_file() and (directory / "objects").is_dir()
                                             and (directory / "refs").is_dir()):
            return True
    return False


# One `git log` for the commit, its date, `git describe --tags --match '*[0-9]*'` and what points at it
# (`HEAD -> BRANCH` when HEAD is a branch); one `for-each-ref` for the tags (newest version first, each
# with the commit it names) and origin's HEAD; `git config` for the remote.
_LOG = "%H%x00%h%x00%cI%x00%(describe:tags=true,match=*[0-9]*)%x00%D"
_REFS = "%(refname)%00%(objectname)%00%(*objectname)%00%(symref)"


def _facts(path: Path) -> tuple[str, str | None, list[tuple[str, str]], str | None, str | None, str | None,
                                str | None] | None:
    """(sha, branch, tags with the commit each names, described, origin's HEAD branch, remote URL,
    commit date) read with three git processes at once; None when HEAD names no commit."""
    logged, refs, remote = _git_all(
        path, ("-c", "log.showSignature=false", "log", "-1", f"--format={_LOG}", "HEAD"),
        ("for-each-ref", "--sort=-v:refname", f"--format={_REFS}", "refs/tags", "refs/remotes/origin/HEAD"),
        ("config", "--get", "remote.origin.url"))
    fields = logged.split("\x00") if logged else []
    if len(fields) != 5:
        return None
    sha, short, committed, described, decorations = fields
    pointing = decorations.split(", ")
    branch = pointing[0][len("HEAD -> "):] if pointing and pointing[0].startswith("HEAD -> ") else None
    tags: list[tuple[str, str]] = []
    origin_head = None
    for line in (refs or "").splitlines():
        name, target, peeled, symref = (line.split("\x00") + ["", "", ""])[:4]
        if name.startswith("refs/tags/"):
            tags.append((name[len("refs/tags/"):], peeled or target))
        elif name == "refs/remotes/origin/HEAD" and symref.startswith("refs/remotes/origin/"):
            origin_head = symref[len("refs/remotes/origin/"):]
    if described.startswith("%("):  # a git before 2.35 prints the placeholder: ask describe itself
        described = (_git_all(path, ("describe", "--tags", "--match", "*[0-9]*"))[0] or "")
    return sha, branch, tags, described or (short if tags else None), origin_head, remote, committed or None


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


def read_git(path: Path, environ: Mapping[str, str] | None = None) -> GitInfo | None:
    """The checkout's facts, corrected by the CI environment where HEAD is detached; None outside
    a checkout (no git process is started there) or before its first commit."""
    environ = environ if environ is not None else os.environ
    facts = _facts(path) if in_a_checkout(path, environ) else None
    if facts is None:
        return None
    sha, branch, tags, described, origin_head, remote, committed = facts
    tag = next((name for name, commit in tags if commit == sha), None)  # the highest version at HEAD
    ci = ci_ref(environ)
    if ci is not None:  # CI checks out a detached HEAD: its ref says what the build is
        ci_kind, ci_name = ci
        branch = ci_name if ci_kind == "heads" else branch
        tag = ci_name if ci_kind == "tags" else tag
    version = tag or described
    source = public_url(remote) if remote else None
    return GitInfo(
        sha=sha,
        short_sha=sha[:7],
        branch=None if branch in (None, "", "HEAD") else branch,
        version=re.sub(r"^v(?=\d)", "", version) if version else None,
        source=source,
        tag=tag,
        default_branch=origin_head,
        commit_date=datetime.fromisoformat(committed) if committed else None,
        name=(source or str(path.resolve())).rstrip("/").rsplit("/", 1)[-1] or None,
    )


def ci_ref(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """("heads" | "tags" | "pull", name) from GitHub's or GitLab's variables, if either runs this."""
    if on_github(environ) and environ.get("GITHUB_REF", "").startswith("refs/"):
        kind, _, name = environ["GITHUB_REF"][len("refs/"):].partition("/")
        return kind, name
    if on_gitlab(environ):
        if environ.get("CI_COMMIT_TAG"):
            return "tags", environ["CI_COMMIT_TAG"]
        if environ.get("CI_MERGE_REQUEST_IID"):
            return "pull", f"{environ['CI_MERGE_REQUEST_IID']}/merge"
        if environ.get("CI_COMMIT_BRANCH"):
            return "heads", environ["CI_COMMIT_BRANCH"]
    return None


def github_context(environ: Mapping[str, str], payload: Mapping[str, Any], *, default_branch: str | None,
                   now: datetime) -> RefContext:
    """As metadata-action reads a workflow run (pull_request_target builds the pull request's ref)."""
    event = environ.get("GITHUB_EVENT_NAME", "")
    ref = environ.get("GITHUB_REF", "")
    if "pull_request_target" in event and payload.get("number") is not None:
        ref = f"refs/pull/{payload['number']}/merge"
    sha = environ.get("GITHUB_SHA", "")
    pull = payload.get("pull_request") or {}
    if environ.get("DOCKER_METADATA_PR_HEAD_SHA", "").lower() == "true" and "pull_request" in event:
        sha = (pull.get("head") or {}).get("sha") or sha
    base = payload.get("base_ref") if ref.startswith("refs/tags/") else (pull.get("base") or {}).get("ref")
    return RefContext(ref=ref, sha=sha, event=event,
                      default_branch=(payload.get("repository") or {}).get("default_branch") or default_branch,
                      base_ref=re.sub(r"^refs/heads/", "", base) if base else None, now=now,
                      commit_date=_payload_commit_date(payload, sha))


def _payload_commit_date(payload: Mapping[str, Any], sha: str) -> datetime | None:
    for commit in [*(payload.get("commits") or []), payload.get("head_commit") or {}]:
        if commit.get("id") == sha and commit.get("timestamp"):
            return datetime.fromisoformat(str(commit["timestamp"]).replace("Z", "+00:00"))
    return None


def ref_context(git: GitInfo | None, environ: Mapping[str, str] | None = None,
                now: datetime | None = None) -> RefContext:
    """Where the build stands, for tag rules: the CI's own variables first, else the checkout."""
    import json

    environ = os.environ if environ is None else environ
    now = now or datetime.now(timezone.utc)
    fallback = git.default_branch if git else None
    if on_github(environ):
        payload: dict[str, Any] = {}
        if environ.get("GITHUB_EVENT_PATH"):
            try:
                payload = json.loads(Path(environ["GITHUB_EVENT_PATH"]).read_text())
            except (OSError, ValueError):
                payload = {}
        context = github_context(environ, payload, default_branch=fallback, now=now)
        return replace(context, commit_date=context.commit_date or (git.commit_date if git else None))
    if on_gitlab(environ):
        kind_name = ci_ref(environ)
        source = environ.get("CI_PIPELINE_SOURCE", "push")
        event = {"schedule": "schedule", "merge_request_event": "pull_request"}.get(source, "push")
        committed = environ.get("CI_COMMIT_TIMESTAMP")
        return RefContext(ref=f"refs/{kind_name[0]}/{kind_name[1]}" if kind_name else "",
                          sha=environ.get("CI_COMMIT_SHA", git.sha if git else ""), event=event,
                          default_branch=environ.get("CI_DEFAULT_BRANCH") or fallback,
                          base_ref=environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"), now=now,
                          commit_date=datetime.fromisoformat(committed) if committed else
                          (git.commit_date if git else None))
    if git is None:
        return RefContext(now=now)
    ref = f"refs/tags/{git.tag}" if git.tag else f"refs/heads/{git.branch}" if git.branch else ""
    return RefContext(ref=ref, sha=git.sha, default_branch=git.default_branch, now=now, commit_date=git.commit_date)


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


def oci_labels(git: GitInfo | None, now: datetime, *, version: str | None = None,
               environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The OCI labels metadata-action sets, from what is known here: created, revision, title,
    url and source (the repository's web page), version (the tag rules' main version, else the
    checkout's). A profile's labels and --label override them."""
    environ = os.environ if environ is None else environ
    labels = {"org.opencontainers.image.created": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    url, title = git.source if git else None, git.name if git else None
    if on_github(environ) and environ.get("GITHUB_REPOSITORY"):
        url = f"{environ.get('GITHUB_SERVER_URL', 'https://github.com')}/{environ['GITHUB_REPOSITORY']}"
        title = environ["GITHUB_REPOSITORY"].rsplit("/", 1)[-1]
    elif on_gitlab(environ) and environ.get("CI_PROJECT_URL"):
        url, title = environ["CI_PROJECT_URL"], environ.get("CI_PROJECT_NAME") or title
    # The commit the tags name: a pull request's head with DOCKER_METADATA_PR_HEAD_SHA, as metadata-action.
    head = ref_context(git, environ, now).sha if environ.get("DOCKER_METADATA_PR_HEAD_SHA", "").lower() == "true" \
        else None
    sha = head or environ.get("GITHUB_SHA") or environ.get("CI_COMMIT_SHA") or (git.sha if git else None)
    for key, value in (("revision", sha), ("title", title), ("url", url), ("source", url),
                       ("version", version or (git.version if git else None))):
        if value:
            labels[f"org.opencontainers.image.{key}"] = value
    return labels


def render_tags(tags: tuple[str, ...], values: Mapping[str, str | None]) -> list[str]:
    """Fill {version}, {short_sha}... ; a template needing an unknown value is an error."""
    out = []
    for tag in tags:
        needed = [name for _, name, _, _ in formatter_parser(tag) if name]
        missing = [name for name in needed if not values.get(name)]
        if missing:
            raise BadInput(f'tag template "{tag}" needs {", ".join("{" + m + "}" for m in missing)}, '
                           "which is unknown here", fix="build from a git checkout, or pass -t with a literal tag")
        out.append(tag.format(**{name: values[name] for name in needed}))
    return out


def git_record(git: GitInfo | None) -> dict[str, str | None] | None:
    """The checkout's facts as JSON (a part record carries them to `orch release`)."""
    if git is None:
        return None
    return {"sha": git.sha, "branch": git.branch, "version": git.version, "source": git.source, "tag": git.tag,
            "default_branch": git.default_branch, "name": git.name,
            "commit_date": git.commit_date.isoformat() if git.commit_date else None}


def git_from_record(record: Mapping[str, Any] | None) -> GitInfo | None:
    """A part record's checkout facts back (values that are not strings are dropped)."""
    if not record or not isinstance(record.get("sha"), str):
        return None
    text = {key: value for key, value in record.items() if isinstance(value, str)}
    try:
        committed = datetime.fromisoformat(text["commit_date"]) if "commit_date" in text else None
    except ValueError:
        committed = None
    return GitInfo(sha=text["sha"], short_sha=text["sha"][:7], branch=text.get("branch"), version=text.get("version"),
                   source=text.get("source"), tag=text.get("tag"), default_branch=text.get("default_branch"),
                   commit_date=committed, name=text.get("name"))
