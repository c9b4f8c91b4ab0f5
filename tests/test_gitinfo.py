"""What orch reads of a checkout (tags.gitinfo.read_git), on real git repositories: the same facts
the seven single-purpose git commands gave, from three processes; none outside a checkout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.tags.gitinfo import read_git

NO_CI = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}  # no CI variables


def git(path: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True,
                            env={**NO_CI, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                 "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    return result.stdout.strip() if result.returncode == 0 else ""


def one_question_each(path: Path) -> dict[str, str | None]:
    """The facts as the single-purpose commands answer them (how orch asked before)."""
    described = git(path, "describe", "--tags", "--always", "--match", "*[0-9]*")
    at_head = git(path, "tag", "--points-at", "HEAD", "--sort=-v:refname").splitlines()
    origin = git(path, "symbolic-ref", "--short", "refs/remotes/origin/HEAD")
    branch = git(path, "rev-parse", "--abbrev-ref", "HEAD")
    tag = at_head[0] if at_head else None
    version = tag or (described if git(path, "tag", "--list") else None)
    return {"sha": git(path, "rev-parse", "HEAD"), "branch": None if branch == "HEAD" else branch, "tag": tag,
            "version": version.removeprefix("v") if version and version[1:2].isdigit() else version,
            "default_branch": origin.split("/", 1)[1] if "/" in origin else None,
            "commit_date": git(path, "log", "-1", "--format=%cI")}


@pytest.fixture
def repos(tmp_path: Path) -> dict[str, Path]:
    """An upstream with a tag behind HEAD, and clones: one with tags at HEAD (annotated and not,
    versions to sort), one detached with tags no version matches, one with tags only behind."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    git(upstream, "init", "-q", "-b", "main")
    git(upstream, "commit", "-q", "--allow-empty", "-m", "one")
    git(upstream, "tag", "v1.0")
    git(upstream, "commit", "-q", "--allow-empty", "-m", "two")
    made = {"upstream": upstream}
    for name in ("tagged", "detached", "behind"):
        subprocess.run(["git", "clone", "-q", str(upstream), str(tmp_path / name)], check=True, env=NO_CI)
        made[name] = tmp_path / name
    git(made["tagged"], "tag", "v1.9")
    git(made["tagged"], "tag", "-a", "-m", "x", "v1.10")
    git(made["tagged"], "tag", "release")
    git(made["detached"], "tag", "-d", "v1.0")
    git(made["detached"], "tag", "nightly")
    git(made["detached"], "checkout", "-q", "--detach", "HEAD")
    return made


@pytest.mark.parametrize("name", ["upstream", "tagged", "detached", "behind"])
def test_one_read_gives_what_each_question_did(repos: dict[str, Path], name: str) -> None:
    info = read_git(repos[name], NO_CI)
    assert info is not None
    expected = one_question_each(repos[name])
    got = {"sha": info.sha, "branch": info.branch, "tag": info.tag, "version": info.version,
           "default_branch": info.default_branch, "commit_date": info.commit_date.isoformat()
           if info.commit_date else None}
    assert got == expected


def test_a_subdirectory_of_a_checkout_is_in_it_and_a_plain_directory_asks_no_git(repos: dict[str, Path],
                                                                                  tmp_path: Path) -> None:
    inner = repos["tagged"] / "sub" / "dir"
    inner.mkdir(parents=True)
    info = read_git(inner, NO_CI)
    assert info is not None and info.tag == "v1.10"
    plain = tmp_path / "plain"
    plain.mkdir()
    calls = tmp_path / "calls"
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "git").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 128\n")
    (shim / "git").chmod(0o755)
    env = {**NO_CI, "PATH": f"{shim}:{NO_CI['PATH']}"}
    before = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]
    try:
        assert read_git(plain, env) is None
        assert not calls.exists(), calls.read_text()
        assert read_git(repos["tagged"], env) is None  # git asked, and it failed: no checkout facts
        assert len(calls.read_text().splitlines()) == 3
    finally:
        os.environ["PATH"] = before


def test_a_checkout_before_its_first_commit_has_no_facts(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert read_git(tmp_path, NO_CI) is None
