"""Outputs closed early or full: a reader that goes away never stops a publish (it completes
quietly, exit 0), and an output file that cannot be written after the tags moved is exit 1 with
one line saying which tags moved and what was not written, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, Registry
from .test_build import BASE_ARG
from .test_disk_full import fill, needs_root, small_disk
from .test_faults import tags_in


def context(tmp_path: Path, flavour: str) -> Path:
    ctx = tmp_path / f"ctx-{flavour}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN echo {flavour} > /flavour\n")
    return ctx


def orch_words(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def closed_stdout(args: list[str], **run: object) -> subprocess.CompletedProcess:
    """`args` run with a stdout whose reader has gone: every write there fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(args, stdout=write, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=600,
                              **run)  # type: ignore[call-overload]
    finally:
        os.close(write)


@pytest.mark.engine
def test_a_publish_piped_into_head_c_1_completes_and_moves_its_tag(registry: Registry, tmp_path: Path) -> None:
    ctx = context(tmp_path, "head")
    words = orch_words("build", str(ctx), "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG, "--push",
                       "-t", registry.ref("closed/app", "1"))
    shell = " ".join(f"'{w}'" for w in words) + ' 2>&1 | head -c 1 >/dev/null; exit "${PIPESTATUS[0]}"'
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    assert tags_in(registry, "closed/app") == ["1"]


@pytest.mark.engine
def test_a_release_whose_stdout_is_closed_moves_its_tags_and_exits_0(registry: Registry, tmp_path: Path) -> None:
    ctx = context(tmp_path, "release")
    parts = tmp_path / "parts"
    for platform in ("linux/amd64", "linux/arm64"):
        part = subprocess.run(orch_words("build", str(ctx), "--platform", platform, "--build-arg", BASE_ARG,
                                         "--image", f"{registry.host}/closed/rel", "--push", "--part", str(parts)),
                              capture_output=True, text=True, cwd=REPO, timeout=600)
        assert part.returncode == 0, part.stderr[-3000:]
    result = closed_stdout(orch_words("release", str(parts), "--platform", "linux/amd64,linux/arm64",
                                      "-t", registry.ref("closed/rel", "1"), "-t", registry.ref("closed/rel", "2")),
                           env={**os.environ, "ORCH_STATE_HOME": str(tmp_path / "state")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert tags_in(registry, "closed/rel") == ["1", "2"]


@pytest.mark.engine
@needs_root
def test_outputs_that_a_full_disk_refuses_after_the_tags_moved_are_one_line_and_exit_1(registry: Registry,
                                                                                       tmp_path: Path) -> None:
    ctx = context(tmp_path, "full")
    with small_disk(tmp_path / "full", "64k") as full:
        for name in ("meta.json", "report.html", "out.json", "github-output", "summary.md"):
            (full / name).touch()  # they exist, so orch's checks before the build pass
        fill(full / "filler")
        with (full / "out.json").open("w") as stdout:
            result = subprocess.run(
                orch_words("build", str(ctx), "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG,
                           "--push", "-t", registry.ref("full/app", "1"), "--json",
                           "--metadata-file", str(full / "meta.json"), "--report", str(full / "report.html")),
                stdout=stdout, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=600,
                env={**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(full / "github-output"),
                     "GITHUB_STEP_SUMMARY": str(full / "summary.md")})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("orch: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    said = errors[0]
    assert f"tags moved: {registry.ref('full/app', '1')}" in said, said
    for what in (f"--metadata-file {full / 'meta.json'}", f"--report {full / 'report.html'}", "--json (stdout)",
                 f"GITHUB_OUTPUT {full / 'github-output'}", "No space left on device"):
        assert what in said, said
    assert tags_in(registry, "full/app") == ["1"]
