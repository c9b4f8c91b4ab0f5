"""The files `orch init --ci ... --runners native` writes, run as the CI runs them (tests/ci_runners.py),
attempt after attempt: a leg that fails, then GitHub's "re-run failed jobs", "re-run all jobs" and a
re-run of the release alone; GitLab's retry of a job. Each must end with every tag moved to a
verified index of every platform."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .ci_runners import Run
from .conftest import Registry, start_registry
from .test_init import orch

PLATFORMS = ("linux/amd64", "linux/arm64")
TAG_PUSH = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_REPOSITORY": "acme/svc"}


@pytest.fixture
def rerun_registry(tmp_path: Path, engine_ready: None) -> Iterator[Registry]:
    registry = start_registry(tmp_path)
    yield registry
    registry.stop()


def flaky_project(tmp_path: Path, ci: str, image: str) -> tuple[Path, str]:
    """A project whose build needs the file `flaky` (a leg's checkout may lack it: a failed leg)."""
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile flaky /\n")
    (directory / "flaky").write_text("here\n")
    made = orch("init", str(directory), "--ci", ci, "--runners", "native", "--image", image,
                "--platform", ",".join(PLATFORMS), "--install", "orch-multiarch==0.1.0")
    assert made.returncode == 0, made.stderr
    for args in (("init", "-q"), ("add", "."), ("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "svc")):
        subprocess.run(["git", "-C", str(directory), *args], check=True)
    sha = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    return directory, sha


def lose_flaky(workspace: Path) -> None:
    (workspace / "flaky").unlink()


def all_tags(registry: Registry, repository: str) -> list[str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{registry.host}/v2/{repository}/tags/list", timeout=10) as answer:
            return sorted(json.load(answer).get("tags") or [])
    except urllib.error.HTTPError as exc:  # nothing pushed yet
        assert exc.code == 404
        return []


def tags(registry: Registry, repository: str) -> list[str]:
    """The image's tags, its caches aside."""
    return [t for t in all_tags(registry, repository) if not t.startswith("buildcache")]


def legs(run: Run, attempt: int, fail: str | None = None, only: tuple[str, ...] = PLATFORMS) -> dict[str, Any]:
    plan = run.outputs["plan"]["outputs"]["matrix"]
    results = {}
    for leg in json.loads(plan)["include"]:
        if leg["platform"] in only:
            prepare = lose_flaky if leg["platform"] == fail else None
            results[leg["platform"]] = run.job("build", attempt, matrix=leg, prepare=prepare)
    return results


def release_needs_met(run: Run) -> bool:
    return all(run.results.get(f"build {p}") == "success" for p in PLATFORMS)


@pytest.mark.engine
def test_github_re_runs_of_failed_jobs_all_jobs_and_the_release_each_publish(tmp_path: Path,
                                                                              rerun_registry: Registry) -> None:
    image = f"{rerun_registry.host}/acme/svc"
    directory, sha = flaky_project(tmp_path, "github", image)
    workflow = yaml.safe_load((directory / ".github" / "workflows" / "image.yml").read_text())
    work = tmp_path / "runner"
    work.mkdir()
    run = Run(workflow, directory, work, {**TAG_PUSH, "GITHUB_SHA": sha},
              env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state")})

    # Attempt 1: the arm64 leg fails; the release waits on every leg, so it is skipped.
    assert run.job("plan", 1).status == "success"
    first = legs(run, 1, fail="linux/arm64")
    assert first["linux/amd64"].status == "success", first["linux/amd64"].why()
    assert first["linux/arm64"].status == "failure"
    assert not release_needs_met(run) and tags(rerun_registry, "acme/svc") == []
    assert "orch-report-linux-arm64-attempt-1" in run.artifacts  # its report, kept though it failed

    # Attempt 2, "re-run failed jobs": the failed leg, then the release (the plan's output is kept).
    second = legs(run, 2, only=("linux/arm64",))
    assert second["linux/arm64"].status == "success", second["linux/arm64"].why()
    assert release_needs_met(run)
    released = run.job("release", 2)
    assert released.status == "success", released.why()
    moved = ["1.2", "1.2.3", "latest", f"sha-{sha[:7]}"]
    assert tags(rerun_registry, "acme/svc") == sorted(moved)
    digest = released.outputs["digest"]
    assert digest.startswith("sha256:") and released.outputs["version"] == "1.2.3"
    assert "| linux/arm64 |" in released.summary

    # Attempt 3, "re-run all jobs": every job again, every upload again.
    assert run.job("plan", 3).status == "success"
    third = legs(run, 3)
    assert all(leg.status == "success" for leg in third.values()), [leg.why() for leg in third.values()]
    again = run.job("release", 3)
    assert again.status == "success", again.why()
    # Attempt 4: the release alone (say its push was cut short): the parts of attempt 3 again.
    last = run.job("release", 4)
    assert last.status == "success", last.why()
    assert last.outputs["digest"] == again.outputs["digest"]
    # Each leg wrote its own cache (and read both): no leg overwrote another's.
    assert [t for t in all_tags(rerun_registry, "acme/svc") if t.startswith("buildcache")] == [
        "buildcache-linux-amd64", "buildcache-linux-arm64"]
    verified = orch("verify", f"{image}:1.2.3", "--platform", ",".join(PLATFORMS))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_second_upload_of_an_artifact_name_is_refused_as_github_refuses_it(tmp_path: Path) -> None:
    """The stand-in is only worth what it refuses: attempt 1's name again, without overwrite, is 409."""
    from .ci_runners import Conflict

    workspace = tmp_path / "w"
    workspace.mkdir()
    (workspace / "orch-report.html").write_text("<p>1</p>")
    run = Run({"jobs": {}}, workspace, tmp_path, TAG_PUSH)
    assert run._upload({"name": "orch-report", "path": "orch-report.html"}, workspace)[0]
    with pytest.raises(Conflict, match="409"):
        run._upload({"name": "orch-report", "path": "orch-report.html"}, workspace)
    assert run._upload({"name": "orch-report", "path": "orch-report.html", "overwrite": True}, workspace)[0]


@pytest.mark.engine
def test_gitlab_retry_of_a_failed_leg_then_the_release_publishes(tmp_path: Path, rerun_registry: Registry) -> None:
    from .ci_runners import Pipeline

    image = f"{rerun_registry.host}/acme/svc"
    directory, sha = flaky_project(tmp_path, "gitlab", image)
    document = yaml.safe_load((directory / ".gitlab-ci.yml").read_text())
    work = tmp_path / "gitlab"
    work.mkdir()
    pipeline = Pipeline(document, directory, work,
                        {"CI_PIPELINE_ID": "77", "CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_SHA": sha,
                         "CI_COMMIT_REF_NAME": "v1.2.3", "CI_DEFAULT_BRANCH": "main",
                         "CI_PROJECT_URL": "https://gitlab.com/acme/svc", "CI_PIPELINE_SOURCE": "push"},
                        env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state")})
    matrix = [{k: v for k, v in leg.items() if k in ("PLATFORM", "SLUG", "RUNNER_TAG", "QEMU")}
              for leg in document["image-build"]["parallel"]["matrix"]]
    amd64, arm64 = matrix
    ok, log = pipeline.job("image-build", amd64)
    assert ok, log
    ok, _ = pipeline.job("image-build", arm64, prepare=lose_flaky)
    assert not ok  # the release waits on both legs: GitLab does not start it
    ok, log = pipeline.job("image-build", arm64)  # Retry: a new job, its artifacts replace the failed try's
    assert ok, log
    ok, log = pipeline.job("image-release")
    assert ok, log
    assert tags(rerun_registry, "acme/svc") == sorted(["1.2", "1.2.3", "latest", f"sha-{sha[:7]}"])
    ok, log = pipeline.job("image-release")  # and a retry of the release itself
    assert ok, log
    dotenv = (work / f"job-{pipeline.next_id}" / "svc" / "release.env").read_text()
    assert "ORCH_RESULT=success" in dotenv and f"ORCH_IMAGE={image}:1.2.3" in dotenv
