"""The dry run is the run, on every builder kind: the daemon's own (docker driver), BuildKit's
docker-container and two-node remote builders, and a profile whose nodes are separate docker
daemons. The buildx commands `--dry-run --json` prints are the ones the run reports it ran, the
plan names the builder and its nodes as asked (nothing assumed), and each daemon is asked
`docker info` once, in the dry run and in the run (a `docker` on PATH that logs its words), but
the local daemon in the run: what it said in the dry run is kept for its life (docker.probe)."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from .test_build import orch
from .test_plan_once import SAME_TIME, _buildx_lines

WRAPPER = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
exec "{real}" "$@"
"""


class DockerLog:
    """Every `docker` call made through PATH (buildx itself runs as the plugin: not logged, not needed)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = shutil.which("docker")
        assert real, "docker is not on PATH"
        self.log = tmp_path / "docker-asked.log"
        bin_dir = tmp_path / "logging-docker"
        bin_dir.mkdir()
        (bin_dir / "docker").write_text(WRAPPER.format(log=self.log, real=real))
        (bin_dir / "docker").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def infos(self) -> Counter[str]:
        """`docker info` calls by daemon: "" for the current one, else its --context/--host."""
        asked: Counter[str] = Counter()
        for line in (self.log.read_text().splitlines() if self.log.exists() else []):
            words = line.split()
            flags = []
            while words[:1] in (["--context"], ["--host"]):
                flags, words = flags + words[:2], words[2:]
            if words[:1] == ["info"]:
                asked[" ".join(flags)] += 1
        self.log.unlink(missing_ok=True)
        return asked


def _profile(tmp_path: Path, kind: str, second_node: str | None) -> Path:
    builders = {
        "docker": "builder: {name: default}\n",
        "docker-container": "builder: {name: orch-container, driver: docker-container}\n",
        "remote": "builder: {name: orch-farm, driver: remote}\n",
        "nodes": ("strategy: per-arch\nbuilder:\n  driver: docker\n  nodes:\n"
                  "    - {name: main, endpoint: default, platforms: [linux/amd64]}\n"
                  # buildx lists a docker context as a builder of that name: the run uses it with --context
                  f"    - {{name: second, builder: {second_node}, platforms: [linux/arm64]}}\n"),
    }
    profile = tmp_path / f"{kind}.yaml"
    profile.write_text(builders[kind])
    return profile


@pytest.mark.engine
@pytest.mark.parametrize("kind", ["docker", "docker-container", "remote", "nodes"])
def test_the_dry_run_prints_what_runs_and_each_daemon_is_asked_once(registry, buildkit_builders, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    request: pytest.FixtureRequest,
                                                                    kind: str) -> None:
    from .test_build import BASE_ARG

    second_node = request.getfixturevalue("second_node") if kind == "nodes" else None
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)  # the profile names the builder
    docker = DockerLog(tmp_path, monkeypatch)
    args = ("build", "-f", "Dockerfile.example", "--profile", str(_profile(tmp_path, kind, second_node)),
            "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG,
            "-t", registry.ref("dry/run", kind), "--push", "--json")
    planned = orch(*args, "--dry-run", env=SAME_TIME)
    assert planned.returncode == 0, planned.stderr[-3000:]
    dry_infos = docker.infos()
    ran = orch(*args, env=SAME_TIME)
    assert ran.returncode == 0, ran.stderr[-3000:]
    run_infos = docker.infos()
    plan, result = json.loads(planned.stdout), json.loads(ran.stdout)

    expected = _buildx_lines(plan["commands"])
    assert expected and _buildx_lines(result["commands"]) == expected
    caps = plan["capabilities"]
    assert caps is not None and caps["assumed"] == []
    daemons = {""}
    if kind == "nodes":
        assert [(n["name"], n["status"], n["platforms"]) for n in caps["nodes"]] == [
            ("main", "running", ["linux/amd64"]), ("second", "running", ["linux/arm64"])]
        assert [line.split(" --file ")[0] for line in expected] == [
            "docker --context default buildx build --platform linux/amd64",
            f"docker --context {second_node} buildx build --platform linux/arm64"]
        assert [p["node"] for p in result["platforms"]] == ["main", "second"]
        daemons |= {"--context default", f"--context {second_node}"}
    else:
        builder = {"docker": "default", **buildkit_builders}[kind]
        assert caps["builder"] == builder and caps["driver"] == kind
        assert all(f"--builder {builder} " in line for line in expected)
    assert dry_infos == dict.fromkeys(daemons, 1)
    assert run_infos == dict.fromkeys(daemons - {""}, 1)


def test_a_dry_run_says_what_it_assumed_of_a_node_that_does_not_answer(tmp_path: Path) -> None:
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nstrategy: per-arch\nbuilder:\n  driver: docker\n  nodes:\n"
                       f"    - {{name: gone, endpoint: 'unix://{tmp_path}/none.sock', platforms: [arm64]}}\n")
    args = ("build", "--profile", str(profile), "-f", "Dockerfile.example", "-t", "localhost:5000/x/y:1", "--push")
    planned = orch(*args, "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert f'# assumed: node "gone" (--host unix://{tmp_path}/none.sock) did not answer' in planned.stdout
    assert "#   node gone: linux/arm64" in planned.stdout
    assert f"docker --host unix://{tmp_path}/none.sock buildx build --platform linux/arm64 " in planned.stdout
