"""The plan is completed once, from the builder's capabilities, and the dry run prints what then
runs: the buildx commands of `--dry-run --json` are the ones the real run reports it ran."""

from __future__ import annotations

import json

import pytest

from .test_build import BASE_ARG, orch
from .test_faults import tags_in

SAME_TIME = {"SOURCE_DATE_EPOCH": "1700000000"}  # the created label is then the same in both runs


def _buildx_lines(commands: list[str]) -> list[str]:
    return [line.split("   # ")[0] for line in commands if line.startswith("docker ") and " buildx build " in line]


def _dry_run_then_run(registry, name: str, *extra: str) -> tuple[dict, dict]:
    args = ("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG,
            "-t", registry.ref("plan/once", name), "--push", "--json", *extra)
    planned = orch(*args, "--dry-run", env=SAME_TIME)
    assert planned.returncode == 0, planned.stderr[-3000:]
    ran = orch(*args, env=SAME_TIME)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return json.loads(planned.stdout), json.loads(ran.stdout)


@pytest.mark.engine
@pytest.mark.parametrize("strategy", ["single", "per-arch"])
def test_the_dry_run_prints_the_buildx_commands_that_then_run(registry, strategy: str,
                                                              daemons_own_builder: None) -> None:
    plan, result = _dry_run_then_run(registry, strategy, "--strategy", strategy)
    assert plan["capabilities"]["driver"] == "docker" and plan["capabilities"]["assumed"] == []
    assert result["strategy"] == strategy
    expected = _buildx_lines(plan["commands"])
    assert len(expected) == (1 if strategy == "single" else 2)
    assert _buildx_lines(result["commands"]) == expected
    assert all("<stage-dir>/" in line and "<metadata>" in line for line in expected)  # placeholders, not paths


@pytest.mark.engine
@pytest.mark.parametrize("kind", ["remote", "docker-container"])
def test_on_buildkits_own_builders_the_dry_run_is_what_runs(registry, buildkit_builders, kind: str) -> None:
    builder = buildkit_builders[kind]
    plan, result = _dry_run_then_run(registry, kind, "--builder", builder)
    assert plan["capabilities"]["driver"] == kind and plan["capabilities"]["assumed"] == []
    expected = _buildx_lines(plan["commands"])
    assert _buildx_lines(result["commands"]) == expected
    assert all(f"--builder {builder} " in line for line in expected)
    assert tags_in(registry, "plan/once") == [kind]  # no `latest`, no staging tag: only the one asked for
    if kind == "remote":  # two nodes: one build per platform, each on the node given it
        assert result["strategy"] == "per-arch" and len(expected) == 2
        assert [p["node"] for p in result["platforms"]] == ["farm-amd64", "farm-arm"]
        assert all("push-by-digest=true" in line for line in expected)  # from each node, no layout on disk
    else:  # one node: one call, pushed by digest with no tag
        assert result["strategy"] == "single" and len(expected) == 1
        assert "push-by-digest=true" in expected[0]


def test_a_dry_run_without_an_engine_says_what_it_assumed(tmp_path) -> None:
    missing = {"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock", **SAME_TIME}
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64",
                  "-t", "localhost:5000/plan/once:1", "--push", "--dry-run", env=missing)
    assert result.returncode == 0, result.stderr
    assert "# assumed: builder \"default\" is the docker driver on the containerd image store: no Docker engine " \
           "answered" in result.stdout
    assert "--output type=oci,dest=<stage-dir>/all,tar=false" in result.stdout
