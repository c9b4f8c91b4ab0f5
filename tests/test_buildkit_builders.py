"""On BuildKit's own builders (scripts/buildkit-up.sh: a remote-driver builder of two buildkitd
nodes, a docker-container builder): a build without --push ends where orch says, or is refused
before building with the reason; builders are listed once each."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from .test_build import BASE_ARG, orch
from .test_faults import tags_in


@pytest.mark.engine
def test_a_local_build_on_a_container_builder_is_loaded_into_the_daemon(buildkit_builders, tmp_path) -> None:
    image = f"orch-local/loaded:{tmp_path.name.lower()[-20:]}"
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64", "--build-arg",
                  BASE_ARG, "-t", image, "--builder", buildkit_builders["docker-container"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"into the local image store: docker.io/{image}" in result.stdout
    found = subprocess.run(["docker", "image", "inspect", image, "--format", "{{.Id}}"], capture_output=True,
                           text=True)
    subprocess.run(["docker", "image", "rm", image], capture_output=True)
    assert found.returncode == 0 and found.stdout.startswith("sha256:"), found.stderr  # where orch said it is


@pytest.mark.engine
@pytest.mark.parametrize(("extra", "what"), [((), "load one image into the daemon"),
                                             (("--oci-layout", "layout"), "write one OCI layout")])
def test_a_local_build_on_a_multi_node_builder_is_refused_before_building(buildkit_builders, tmp_path, extra,
                                                                           what) -> None:
    args = [word if word != "layout" else str(tmp_path / "layout") for word in extra]
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64", "--build-arg",
                  BASE_ARG, "-t", "orch-local/refused:1", "--builder", buildkit_builders["remote"], *args)
    assert result.returncode == 3, result.stderr[-3000:]
    assert f'builder "{buildkit_builders["remote"]}" has 2 nodes, and buildx cannot {what}' in result.stderr
    assert "add --push" in result.stderr and "Traceback" not in result.stderr
    assert "[internal] load build definition" not in result.stderr  # nothing was built
    assert not (tmp_path / "layout").exists()


@pytest.mark.engine
def test_each_builder_is_listed_once_with_its_nodes(buildkit_builders) -> None:
    listed = orch("builder", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    names = [b["name"] for b in json.loads(listed.stdout)]
    assert len(names) == len(set(names)), names
    farm = next(b for b in json.loads(listed.stdout) if b["name"] == buildkit_builders["remote"])
    assert farm["driver"] == "remote" and [n["name"] for n in farm["nodes"]] == ["farm-amd64", "farm-arm"]


@pytest.mark.engine
def test_one_cache_setting_keeps_every_nodes_cache_after_the_nodes_are_pruned(registry, buildkit_builders,
                                                                                tmp_path) -> None:
    """`--cache REF` on a builder of two nodes: each platform's build reads and writes a ref of its
    own, so after pruning both nodes a rebuild takes every platform's RUN step from the registry
    cache (with one shared ref the last node to write it wins and the other node's platforms rebuild).
    The RUN step writes the time it ran: run again, it would give another layer, another image."""
    from .conftest import ENGINE_STATE

    token = uuid.uuid4().hex  # a step no node has cached from an earlier run
    (tmp_path / "Dockerfile").write_text(f"FROM localhost:5000/orch/busybox:stable\n"
                                         f"RUN echo {token} > /token && date +%s%N > /ran-at\n")
    cache = registry.ref("cache/app", "main")

    def published_images(tag: str) -> dict[str, str]:
        result = orch("build", str(tmp_path), "--platform", "linux/amd64,linux/arm64", "-t",
                      registry.ref("cache/app", tag), "--push", "--builder", buildkit_builders["remote"],
                      "--cache", cache, "--json", env={"SOURCE_DATE_EPOCH": "1700000000"})
        assert result.returncode == 0, result.stderr[-3000:]
        return {p["platform"]: p["digest"] for p in json.loads(result.stdout)["platforms"]}

    first = published_images("1")
    buildctl = str(ENGINE_STATE / "buildkit" / "bin" / "buildctl")
    for node in ("farm-amd64", "farm-arm"):
        subprocess.run([buildctl, "--addr", f"unix:///run/orch-buildkit-{node}.sock", "prune", "--all"],
                       capture_output=True, check=True, timeout=120)
    assert published_images("2") == first  # the same images: no RUN ran again on either node
    assert sorted(tag for tag in tags_in(registry, "cache/app") if tag.startswith("main")) == [
        "main-linux-amd64", "main-linux-arm64"]

