"""The plan is completed once, from the builder's capabilities, and the dry run prints what then
runs: the buildx commands of `--dry-run --json` are the ones the real run reports it ran."""

from __future__ import annotations

import json

import pytest

from .test_build import BASE_ARG, orch

SAME_TIME = {"SOURCE_DATE_EPOCH": "1700000000"}  # the created label is then the same in both runs


def _buildx_lines(commands: list[str]) -> list[str]:
    return [line.split("   # ")[0] for line in commands if line.startswith("docker ") and " buildx build " in line]


@pytest.mark.engine
@pytest.mark.parametrize("strategy", ["single", "per-arch"])
def test_the_dry_run_prints_the_buildx_commands_that_then_run(registry, strategy: str) -> None:
    args = ("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG,
            "-t", registry.ref("plan/once", strategy), "--push", "--strategy", strategy, "--json")
    planned = orch(*args, "--dry-run", env=SAME_TIME)
    assert planned.returncode == 0, planned.stderr[-3000:]
    plan = json.loads(planned.stdout)
    assert plan["capabilities"]["driver"] == "docker" and plan["capabilities"]["assumed"] == []
    ran = orch(*args, env=SAME_TIME)
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout)
    assert result["strategy"] == strategy
    expected = _buildx_lines(plan["commands"])
    assert len(expected) == (1 if strategy == "single" else 2)
    assert _buildx_lines(result["commands"]) == expected
    assert all("<stage-dir>/" in line and "<metadata>" in line for line in expected)  # placeholders, not paths


def test_a_dry_run_without_an_engine_says_what_it_assumed(tmp_path) -> None:
    missing = {"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock", **SAME_TIME}
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64",
                  "-t", "localhost:5000/plan/once:1", "--push", "--dry-run", env=missing)
    assert result.returncode == 0, result.stderr
    assert "# assumed: builder \"default\" is the docker driver on the containerd image store: no Docker engine " \
           "answered" in result.stdout
    assert "--output type=oci,dest=<stage-dir>/all,tar=false" in result.stdout
