"""What CI jobs get: GitHub step outputs, step summary, folded log sections and annotations;
a dotenv file for GitLab. The runner's own formats are parsed here as the runner reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.report.ci_outputs import github_outputs, write_dotenv

from . import orch_processes
from .conftest import REPO, Registry
from .registry_api import digest_at

BASE_ARG = "BASE_IMAGE=localhost:5000/orch/busybox:stable"


def read_github_outputs(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: name=value lines, or name<<DELIMITER ... DELIMITER."""
    values, lines = {}, path.read_text().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1:end])
            i = end + 1
            continue
        if line:
            name, _, value = line.partition("=")
            values[name] = value
        i += 1
    return values


def test_outputs_use_the_runners_forms_and_dotenv_keeps_one_line_per_value(tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    github_outputs({"digest": "sha256:abc", "tags": "r/a:1\nr/a:latest", "metadata": '{\n  "ok": true\n}'}, str(out))
    assert read_github_outputs(out) == {"digest": "sha256:abc", "tags": "r/a:1\nr/a:latest",
                                        "metadata": '{\n  "ok": true\n}'}
    env = tmp_path / "build.env"
    write_dotenv(str(env), {"ORCH_TAGS": "r/a:1 r/a:latest", "ORCH_X": "two\nlines"})
    assert env.read_text() == "ORCH_TAGS=r/a:1 r/a:latest\nORCH_X=two lines\n"


def orch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO,
                              env={**os.environ, **env}, timeout=900)


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # what runs emulated is this machine's QEMU
def test_a_build_on_github_actions_leaves_outputs_a_summary_and_folded_logs(registry: Registry,
                                                                          tmp_path: Path) -> None:
    files = {"GITHUB_OUTPUT": tmp_path / "output", "GITHUB_STEP_SUMMARY": tmp_path / "summary.md"}
    env = {"GITHUB_ACTIONS": "true", **{k: str(v) for k, v in files.items()}}
    tag = registry.ref("ci/app", "1")
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64", "--build-arg",
                  BASE_ARG, "-t", tag, "--push", "--output-env", str(tmp_path / "build.env"), "--json", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)

    outputs = read_github_outputs(files["GITHUB_OUTPUT"])
    digest = document["digest"]
    assert outputs["digest"] == outputs["imageid"] == digest == digest_at(registry.port, "ci/app", "1")
    assert outputs["result"] == "success"
    assert outputs["tags"] == tag and outputs["platforms"] == "linux/amd64,linux/arm64"
    # build-push-action's `metadata`: buildx's metadata-file keys for a pushed multi-platform image.
    metadata = json.loads(outputs["metadata"])
    assert metadata["containerimage.digest"] == digest and metadata["image.name"] == tag
    assert metadata["containerimage.descriptor"]["digest"] == digest
    assert metadata["containerimage.descriptor"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert metadata["containerimage.descriptor"]["size"] > 0
    assert json.loads(outputs["orch-json"]) == document  # orch's own document, under its own name
    # metadata-action's names: labels and annotations as lines, json, version.
    labels = dict(line.split("=", 1) for line in outputs["labels"].splitlines())
    assert labels == document["labels"] and "org.opencontainers.image.created" in labels
    assert json.loads(outputs["json"])["tags"] == [tag] and json.loads(outputs["json"])["tag-names"] == ["1"]
    assert outputs["version"] == (document["version"] or "")
    assert set(json.loads(outputs["platform-digests"])) == {"linux/amd64", "linux/arm64"}

    summary = files["GITHUB_STEP_SUMMARY"].read_text()
    assert f"### orch build: `{document['digest']}`" in summary
    assert "| linux/arm64 |" in summary and "emulated (QEMU)" in summary and "native" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| linux/arm64 |"))
    assert row.rstrip(" |").endswith(" s")  # each platform's time, from its steps in the one call
    assert "| ✅ ok | platforms | linux/arm64 | present |" in summary
    assert f"| `{tag}` | (none) | `{document['digest'][:19]}` | moved |" in summary

    stderr = result.stderr.splitlines()
    start = stderr.index("::group::docker buildx build linux/amd64,linux/arm64")
    assert "::endgroup::" in stderr[start:]  # buildx's progress folded into one section

    dotenv = dict(line.split("=", 1) for line in (tmp_path / "build.env").read_text().splitlines())
    assert dotenv == {"ORCH_RESULT": "success", "ORCH_DIGEST": document["digest"], "ORCH_IMAGE": tag,
                      "ORCH_TAGS": tag, "ORCH_PLATFORMS": "linux/amd64,linux/arm64"}

    # orch verify reports to the summary too, and a failed check is an error annotation.
    failed = orch("verify", tag, "--platform", "linux/amd64,linux/arm/v7", env=env)
    assert failed.returncode == 1
    assert "::error title=orch verify::platforms: linux/arm/v7: missing from the index" in failed.stderr
    assert f"### orch verify `{tag}`: FAILED" in files["GITHUB_STEP_SUMMARY"].read_text()


def test_an_unwritable_output_env_stops_the_build_before_it_starts(tmp_path: Path) -> None:
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64", "-t", "localhost:5000/x/y:1",
                  "--push", "--output-env", str(tmp_path / "missing" / "build.env"), env={})
    assert result.returncode == 2 and '--output-env "' in result.stderr and "does not exist" in result.stderr


@pytest.mark.engine
def test_a_failed_build_still_leaves_outputs_a_summary_and_its_report(registry: Registry, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TARGETARCH\n"
                                    'RUN test "$TARGETARCH" != arm64\n')
    files = {"GITHUB_OUTPUT": tmp_path / "output", "GITHUB_STEP_SUMMARY": tmp_path / "summary.md"}
    env = {"GITHUB_ACTIONS": "true", **{k: str(v) for k, v in files.items()}}
    tag = registry.ref("ci/broken", "1")
    result = orch("build", str(ctx), "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG, "-t", tag,
                  "--push", "--strategy", "per-arch", "--report", str(tmp_path / "report.html"), "--output-env",
                  str(tmp_path / "build.env"), env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    outputs = read_github_outputs(files["GITHUB_OUTPUT"])
    assert outputs["result"] == "failure" and outputs["digest"] == "" and outputs["tags"] == ""
    assert outputs["failed-platform"] == "linux/arm64"
    assert outputs["failed-step"].startswith("[2/2] RUN test") or "RUN test" in outputs["failed-step"], outputs
    assert "platform builds failed; no tag was changed" in outputs["error"]
    summary = files["GITHUB_STEP_SUMMARY"].read_text()
    assert "### orch build: FAILED, no tag was changed" in summary and "| linux/arm64 |" in summary
    assert f"Tags left where they were: `{tag}`" in summary
    report = (tmp_path / "report.html").read_text()
    assert "orch build failed: no tag was changed" in report and "linux/arm64" in report
    assert "ORCH_RESULT=failure" in (tmp_path / "build.env").read_text()


@pytest.mark.engine
def test_progress_quiet_prints_nothing_but_errors(registry: Registry, tmp_path: Path) -> None:
    tag = registry.ref("ci/quiet", "1")
    args = ("build", "-f", "Dockerfile.example", "--platform", "linux/amd64", "--build-arg", BASE_ARG, "-t", tag,
            "--push", "--progress", "quiet")
    quiet = orch(*args, env={})
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert digest_at(registry.port, "ci/quiet", "1") is not None  # it did publish
    failed = orch(*args, "--build-arg", "BASE_IMAGE=localhost:5000/orch/no-such-base:1", env={})
    assert failed.returncode == 1 and failed.stdout == ""
    # The error (one build, or one per platform on a builder of several nodes), after the failed
    # build's own log: its tail is part of the error, as under -q. No log lines, no summary.
    assert "orch: error:" in failed.stderr and "failed" in failed.stderr and "no tag was changed" in failed.stderr
    assert "[info" not in failed.stderr and "build.start" not in failed.stderr
