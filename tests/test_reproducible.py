"""orch build --reproducible and orch verify --reproduce: one commit, one digest per platform."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.builds.argv import buildx_build_argv
from orchestrator.builds.complete import complete
from orchestrator.builds.options import TagOptions
from orchestrator.builds.reproducible import BUILDKIT_LABEL, resolve_epoch
from orchestrator.builds.request import BuildRequest, plan_build
from orchestrator.docker.capabilities import Capabilities, Node
from orchestrator.errors import BadInput
from orchestrator.image.layerdiff import diff_layers

from . import orch_processes
from .conftest import Registry

COMMIT_TIME = "2024-01-02T03:04:05Z"
COMMIT_EPOCH = 1704164645  # the oracle: `date -d 2024-01-02T03:04:05Z +%s`


def orch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], env={**os.environ, **(env or {})},
                              cwd=cwd, timeout=900)


def git_app(root: Path, text: str = "hello\n",
            dockerfile: str = "FROM scratch\nCOPY hello.txt /hello.txt\nCOPY data /data\n") -> Path:
    """A work tree of one commit made at COMMIT_TIME: a FROM scratch image of two files (by default)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "hello.txt").write_text(text)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "one.txt").write_text("one\n")
    env = {**os.environ, "GIT_COMMITTER_DATE": COMMIT_TIME, "GIT_AUTHOR_DATE": COMMIT_TIME}
    for args in (["init", "-q"], ["add", "."], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def platform_digests(text: str) -> dict[str, str]:
    return {p["platform"]: p["digest"] for p in json.loads(text)["platforms"]}


# -- epoch and plan (no engine) -------------------------------------------------------


@pytest.mark.parametrize(("environ", "committed", "expected"), [
    ({"SOURCE_DATE_EPOCH": "1700000000"}, datetime(2024, 1, 2, tzinfo=timezone.utc), 1700000000),
    ({}, datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), COMMIT_EPOCH),
    ({"SOURCE_DATE_EPOCH": ""}, datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), COMMIT_EPOCH),
])
def test_epoch_is_the_environment_s_else_the_commit_s(environ: dict[str, str], committed: datetime,
                                                        expected: int) -> None:
    assert resolve_epoch(environ, committed) == expected


@pytest.mark.parametrize(("environ", "says"), [
    ({}, "not in a git work tree"),
    ({"SOURCE_DATE_EPOCH": "yesterday"}, '"yesterday" is not a number'),
    ({"SOURCE_DATE_EPOCH": "253402300800"}, "after the year 9999"),
])
def test_epoch_that_cannot_be_had_is_bad_input(environ: dict[str, str], says: str) -> None:
    with pytest.raises(BadInput) as raised:
        resolve_epoch(environ, None)
    assert says in raised.value.message


def test_reproducible_plan_sets_the_epoch_rewrites_timestamps_and_records_buildkit(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    app = git_app(tmp_path / "app")
    plan = plan_build(BuildRequest(context=str(app), platforms=("linux/amd64", "linux/arm64"), push=True,
                                   tags=TagOptions(("localhost:5000/r/app:1",)), reproducible=True,
                                   build_args=("GREETING=hi",)), cwd=app)
    caps = Capabilities("c", "docker-container", (0, 30, 1), (Node("c0", "unix://x", "running", buildkit="v0.26.3"),))
    argv = " ".join(buildx_build_argv(complete(plan, caps).spec))
    assert f"--build-arg SOURCE_DATE_EPOCH={COMMIT_EPOCH}" in argv
    assert "rewrite-timestamp=true" in argv
    assert "--label org.opencontainers.image.created=2024-01-02T03:04:05Z" in argv
    assert f"--label {BUILDKIT_LABEL}=v0.26.3" in argv
    assert '--label dev.orch.reproducible.build-args={"GREETING":"hi"}' in argv


def test_a_local_build_into_the_daemon_s_store_is_refused_with_the_fix(tmp_path: Path) -> None:
    app = git_app(tmp_path / "app")
    result = orch("build", "--reproducible", "--dry-run", "--builder", "default", "--platform", "linux/amd64", ".",
                  cwd=app)
    assert result.returncode == 2, result.stderr
    assert "cannot rewrite timestamps" in result.stderr and "--oci-layout DIR" in result.stderr


def test_outside_a_work_tree_without_source_date_epoch_exit_2(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    result = orch_processes.run([sys.executable, "-m", "orchestrator", "build", "--reproducible", "--dry-run",
                                 "--platform", "linux/amd64", "--oci-layout", str(tmp_path / "out"), "."],
                                env={**env, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
                                cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "SOURCE_DATE_EPOCH is not set" in result.stderr


# -- on the engine ----------------------------------------------------------------------


@pytest.mark.engine
def test_one_commit_gives_one_digest_per_platform_and_an_unchanged_publish_moves_nothing(
        tmp_path: Path, registry: Registry, buildkit_builders: dict[str, str]) -> None:
    app = git_app(tmp_path / "app")
    tag = registry.ref("repro/app", "1")
    common = ("build", "--reproducible", "--platform", "linux/amd64,linux/arm64", "-t", tag, "--push", "--json", ".")
    first = orch(*common, "--builder", buildkit_builders["docker-container"], cwd=app)
    assert first.returncode == 0, first.stderr
    again = orch(*common, "--builder", buildkit_builders["docker-container"], "--no-cache", cwd=app)
    assert again.returncode == 0, again.stderr
    digests = platform_digests(first.stdout)
    assert set(digests) == {"linux/amd64", "linux/arm64"}
    assert platform_digests(again.stdout) == digests
    moves = json.loads(again.stdout)["promotion"]
    assert [m["state"] for m in moves] == ["unchanged"]
    assert moves[0]["before"] == json.loads(first.stdout)["digest"]  # the tag still holds the first publish
    shown = orch(*common[:-2], ".", "--builder", buildkit_builders["docker-container"], cwd=app)
    assert shown.returncode == 0, shown.stderr
    assert "nothing moved" in shown.stdout


@pytest.mark.engine
def test_the_daemon_s_own_builder_reproduces_itself_in_an_oci_layout(tmp_path: Path, daemons_own_builder: None) -> None:
    app = git_app(tmp_path / "app")
    digests = []
    for run, extra in enumerate(((), ("--no-cache",))):
        out = tmp_path / f"layout{run}"
        result = orch("build", "--reproducible", "--builder", "default", "--platform", "linux/amd64,linux/arm64",
                      "--oci-layout", str(out), *extra, ".", cwd=app)
        assert result.returncode == 0, result.stderr
        index = json.loads((out / "index.json").read_text())
        top = json.loads((out / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text())
        digests.append({json.dumps(m.get("platform"), sort_keys=True): m["digest"] for m in top["manifests"]
                        if "platform" in m and m["platform"].get("architecture") != "unknown"})
    assert len(digests[0]) == 2
    assert digests[0] == digests[1]


# -- the layer diff (no engine) ---------------------------------------------------------


def tar_of(files: dict[str, tuple[bytes, int]]) -> io.BytesIO:
    """An uncompressed tar of name -> (content, mtime)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, (data, mtime) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_layer_diff_names_added_removed_and_changed_paths_with_sizes() -> None:
    before = tar_of({"etc/kept": (b"same", 1), "app/old.txt": (b"old", 1), "app/hello.txt": (b"hi\n", 1),
                     "app/touched": (b"t", 1)})
    after = tar_of({"etc/kept": (b"same", 1), "app/new.txt": (b"new!", 1), "app/hello.txt": (b"changed\n", 1),
                    "app/touched": (b"t", 2)})
    lines = [change.line() for change in diff_layers(before, after)]
    assert lines == [
        "changed  /app/hello.txt  (3 -> 8 bytes; content, size)",
        "added    /app/new.txt  (4 bytes)",
        "removed  /app/old.txt  (3 bytes)",
        "changed  /app/touched  (1 bytes; mtime, mtime 1 -> 2)",
    ]


def test_identical_layers_have_no_changes() -> None:
    files = {"a": (b"1", 5), "b/c": (b"22", 6)}
    assert diff_layers(tar_of(files), tar_of(files)) == []


# -- orch verify --reproduce on the engine --------------------------------------------------


@pytest.mark.engine
def test_verify_reproduce_equal_changed_file_and_other_commit(tmp_path: Path, registry: Registry,
                                                              buildkit_builders: dict[str, str]) -> None:
    app = git_app(tmp_path / "app")
    builder = buildkit_builders["docker-container"]
    tag = registry.ref("repro/verify", "1")
    built = orch("build", "--reproducible", "--platform", "linux/amd64,linux/arm64", "-t", tag, "--push",
                 "--builder", builder, ".", cwd=app)
    assert built.returncode == 0, built.stderr

    same = orch("verify", tag, "--reproduce", ".", "--builder", builder, cwd=app)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "reproduced: every platform's digest is equal" in same.stdout

    (app / "hello.txt").write_text("hello, changed\n")  # uncommitted: the work tree is rebuilt as it is
    changed = orch("verify", tag, "--reproduce", ".", "--builder", builder, cwd=app)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "FAIL  linux/amd64" in changed.stdout and "FAIL  linux/arm64" in changed.stdout
    assert "changed  /hello.txt  (6 -> 15 bytes; content, size)" in changed.stdout

    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "next"], cwd=app,
                   check=True, capture_output=True)
    other = orch("verify", tag, "--reproduce", ".", "--builder", builder, cwd=app)
    assert other.returncode == 2, other.stdout + other.stderr
    assert "but the image was built from" in other.stderr


@pytest.mark.engine
def test_verify_reproduce_refuses_an_image_not_built_reproducibly(tmp_path: Path, registry: Registry,
                                                                  buildkit_builders: dict[str, str]) -> None:
    app = git_app(tmp_path / "app")
    tag = registry.ref("repro/plain", "1")
    built = orch("build", "--platform", "linux/amd64", "-t", tag, "--push", "--builder",
                 buildkit_builders["docker-container"], ".", cwd=app)
    assert built.returncode == 0, built.stderr
    refused = orch("verify", tag, "--reproduce", ".", cwd=app)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "was not built reproducibly" in refused.stderr
