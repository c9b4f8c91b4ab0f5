"""On BuildKit's own builders (scripts/buildkit-up.sh: a remote-driver builder of two buildkitd
nodes, a docker-container builder): a build without --push ends where orch says, or is refused
before building with the reason; builders are listed once each."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from .conftest import copy_image, docker_config_dir
from .faultproxy import FaultProxy, Rule
from .registry_api import raw_manifest
from .test_build import BASE_ARG, orch
from .test_faults import tags_in
from .waiting import wait_until


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
    # The platforms routed to each node (buildx ls --format json does not mark the given ones).
    assert [(n["routed"], n["takes_unlisted_platforms"]) for n in farm["nodes"]] == [
        (["linux/amd64", "linux/386"], True), (["linux/arm64", "linux/arm/v7", "linux/arm/v6"], False)]
    table = orch("builder", "ls").stdout.splitlines()
    assert [line.split()[0] for line in table].count(buildkit_builders["remote"]) == 1
    assert any(line.split()[:1] == ["farm-arm"] and line.endswith("linux/arm64, linux/arm/v7, linux/arm/v6")
               for line in table), table
    assert any(line.split()[:1] == ["farm-amd64"] and "linux/386; any platform no node is given (emulated)" in line
               for line in table), table


@pytest.mark.engine
def test_doctor_says_which_node_builds_what(buildkit_builders) -> None:
    doctor = orch("doctor")
    line = next(line for line in doctor.stdout.splitlines() if line.split()[1:2] == ["builders"])
    assert line.count(f"{buildkit_builders['remote']} (") == 1, line
    assert ("farm-amd64 builds linux/amd64, linux/386 and platforms no node is given / farm-arm builds "
            "linux/arm64, linux/arm/v7, linux/arm/v6") in line


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



@pytest.mark.engine
def test_a_push_the_registry_fumbles_once_is_pushed_again_and_the_publish_goes_on(registry, buildkit_builders,
                                                                                  tmp_path) -> None:
    """Two nodes pushing a layer their platforms share into one repository at the same moment: distribution
    2.8 can answer the manifest PUT of the one that lost the race with the layer unknown (seen in CI on this
    builder). The proxy gives that answer to one platform's first manifest PUT; that platform is pushed
    again (its build cached on its node), and the publish ends with every tag moved."""
    race = json.dumps({"errors": [
        {"code": "UNKNOWN", "message": "provided digest did not match uploaded content"},
        {"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": "sha256:" + "0" * 64}]}).encode()
    proxy = FaultProxy(registry.port).start()
    try:
        proxy.add(Rule("PUT", r"^/v2/race/app/manifests/", "status", status=400, body=race))
        (tmp_path / "shared.txt").write_text(uuid.uuid4().hex)  # one layer for both platforms
        (tmp_path / "Dockerfile").write_text("FROM localhost:5000/orch/busybox:stable\nCOPY shared.txt /\n")
        result = orch("build", str(tmp_path), "--platform", "linux/amd64,linux/arm64", "-t",
                      proxy.ref("race/app", "1"), "--push", "--builder", buildkit_builders["remote"], "--json")
    finally:
        proxy.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    assert proxy.done("PUT", "/manifests/").count("status 400") == 1  # the fault was given, once
    assert "build.push_retry" in result.stderr  # said, with which platform
    assert "1" in tags_in(registry, "race/app")



@pytest.mark.engine
def test_what_buildx_pushed_is_read_back_once_each_and_verified_before_the_tag(registry, buildkit_builders,
                                                                                 tmp_path) -> None:
    """On a builder that pushes by digest itself, orch reads the index buildx pushed once (by digest,
    its bytes hashed to it) and, to verify it, each manifest it lists and each config once; then
    it moves the tag. Every read goes to the registry."""
    proxy = FaultProxy(registry.port).start()
    try:
        (tmp_path / "note.txt").write_text(uuid.uuid4().hex)
        (tmp_path / "Dockerfile").write_text("FROM localhost:5000/orch/busybox:stable\nCOPY note.txt /\n")
        result = orch("build", str(tmp_path), "--platform", "linux/amd64,linux/arm64", "-t",
                      proxy.ref("once/app", "1"), "--push", "--builder", buildkit_builders["docker-container"],
                      "--json")
    finally:
        proxy.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    published = json.loads(result.stdout)
    index = published["digest"]
    images = [p["digest"] for p in published["platforms"]]
    assert len(images) == 2
    reads = [s.path for s in proxy.log if s.method == "GET" and "/manifests/sha256:" in s.path]
    assert reads.count(f"/v2/once/app/manifests/{index}") == 1, reads
    assert all(reads.count(f"/v2/once/app/manifests/{image}") == 1 for image in images), reads
    assert len([s for s in proxy.log if s.method == "GET" and "/blobs/sha256:" in s.path]) == 2  # the configs
    assert proxy.done("PUT", r"/manifests/1$") == ["forwarded 201"]
    assert "1" in tags_in(registry, "once/app")


@pytest.mark.engine
def test_the_read_back_starts_when_buildx_says_its_push_is_done_not_when_it_exits(registry, buildkit_builders,
                                                                                    tmp_path) -> None:
    """After its exporter's step is done, buildx still resolves the provenance for its metadata
    file before it exits (10-120 ms). Here its exit is held until the registry has served orch's
    read of the pushed index, so the publish ends only because orch read back while buildx was
    still running; it takes that read (each manifest and config read once) and moves the tag."""
    from orchestrator.docker.runner import buildx_plugin

    real, release = buildx_plugin(), tmp_path / "release"
    assert real is not None
    config = docker_config_dir(tmp_path / "docker", logins_from=Path(os.environ.get("DOCKER_CONFIG") or
                                                                      Path.home() / ".docker"))
    held = config / "cli-plugins" / "docker-buildx"
    held.parent.mkdir(exist_ok=True)
    held.unlink(missing_ok=True)
    # Only `build` is held, at most 2 minutes (a deadline, not a wait that hopes for a fast machine).
    held.write_text(f'#!/bin/sh\n"{real}" "$@"\ncode=$?\nif [ "$1" = build ]; then\n'
                    f'  i=0; while [ ! -e "{release}" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done\n'
                    f"fi\nexit $code\n")
    held.chmod(0o755)
    proxy = FaultProxy(registry.port).start()
    finished: list[subprocess.CompletedProcess] = []
    try:
        (tmp_path / "note.txt").write_text(uuid.uuid4().hex)
        (tmp_path / "Dockerfile").write_text("FROM localhost:5000/orch/busybox:stable\nCOPY note.txt /\n")
        publish = threading.Thread(target=lambda: finished.append(orch(
            "build", str(tmp_path), "--platform", "linux/amd64,linux/arm64", "-t", proxy.ref("early/app", "1"),
            "--push", "--builder", buildkit_builders["docker-container"], "--json",
            env={"DOCKER_CONFIG": str(config)})))
        publish.start()
        try:
            wait_until(lambda: any(s.method == "GET" and s.path.startswith("/v2/early/app/manifests/sha256:")
                                   for s in list(proxy.log)), "orch's read of the index while buildx is held")
        finally:
            release.touch()
            publish.join()
    finally:
        proxy.stop()
    result = finished[0]
    assert result.returncode == 0, result.stderr[-3000:]
    published = json.loads(result.stdout)
    reads = [s.path for s in proxy.log if s.method == "GET" and "/manifests/sha256:" in s.path]
    assert reads.count(f"/v2/early/app/manifests/{published['digest']}") == 1, reads
    assert all(reads.count(f"/v2/early/app/manifests/{p['digest']}") == 1 for p in published["platforms"]), reads
    assert proxy.done("PUT", r"/manifests/1$") == ["forwarded 201"]


@pytest.mark.engine
def test_buildx_resolves_no_provenance_for_orchs_metadata_file(registry, buildkit_builders, tmp_path) -> None:
    """orch reads only the digest from the metadata file it asks buildx for; buildx 0.30 would
    resolve the build's provenance for that file after the push, a step a raw push never runs
    (`#11 resolving provenance for metadata file`, 10-120 ms). orch's builds leave it out, and
    the provenance attestation itself is still pushed with the image."""
    (tmp_path / "note.txt").write_text(uuid.uuid4().hex)
    (tmp_path / "Dockerfile").write_text("FROM localhost:5000/orch/busybox:stable\nCOPY note.txt /\n")
    result = orch("build", str(tmp_path), "--platform", "linux/amd64,linux/arm64", "-t",
                  f"{registry.host}/nometa/app:1", "--push", "--builder", buildkit_builders["docker-container"],
                  "--progress", "plain", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "exporting manifest list" in result.stderr  # buildx's progress is there
    assert "resolving provenance for metadata file" not in result.stderr
    index, _ = raw_manifest(registry.port, "nometa/app", json.loads(result.stdout)["digest"])
    kinds = [m.get("annotations", {}).get("vnd.docker.reference.type") for m in index["manifests"]]
    assert kinds.count("attestation-manifest") == 2, index  # one provenance attestation per platform


def _made_builder(tmp_path, name: str, section: str) -> str:
    """A profile whose builder section is `section`, created with `orch builder create`."""
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(f"platforms: [amd64, arm64]\nbuilder:\n  name: {name}\n{section}")
    created = orch("builder", "create", "--profile", str(profile), "--json")
    assert created.returncode == 0, created.stderr[-3000:]
    return str(profile)


@pytest.mark.engine
def test_a_profile_makes_a_remote_builder_of_two_nodes_and_each_builds_its_platforms(registry, buildkit_builders,
                                                                                      tmp_path) -> None:
    name = f"orch-test-made-{uuid.uuid4().hex[:8]}"
    sockets = {node: f"unix:///run/orch-buildkit-{node}.sock" for node in ("farm-amd64", "farm-arm")}
    try:
        profile = _made_builder(tmp_path, name, "  driver: remote\n  nodes:\n"
                                f"    - {{name: made-amd64, endpoint: '{sockets['farm-amd64']}', platforms: [x86_64]}}\n"
                                f"    - {{name: made-arm, endpoint: '{sockets['farm-arm']}', platforms: [aarch64]}}\n")
        listed = {b["name"]: b for b in json.loads(orch("builder", "ls", "--json").stdout)}[name]
        assert listed["created_by_orch"] and listed["driver"] == "remote"
        assert [(n["name"], n["routed"]) for n in listed["nodes"]] == [("made-amd64", ["linux/amd64"]),
                                                                      ("made-arm", ["linux/arm64"])]
        built = orch("build", "-f", "Dockerfile.example", "--profile", profile, "--build-arg", BASE_ARG,
                     "-t", registry.ref("made/remote", "1"), "--push", "--json")
        assert built.returncode == 0, built.stderr[-3000:]
        result = json.loads(built.stdout)
        assert [(p["platform"], p["node"]) for p in result["platforms"]] == [("linux/amd64", "made-amd64"),
                                                                            ("linux/arm64", "made-arm")]
        assert tags_in(registry, "made/remote") == ["1"]
    finally:
        removed = orch("builder", "rm", name)
    assert removed.returncode == 0, removed.stderr


@pytest.mark.engine
def test_a_profile_makes_a_docker_container_builder_with_its_buildkitd_config(registry, buildkit_builders,
                                                                               tmp_path) -> None:
    """The config reaches buildkitd: it makes the test registry Docker Hub's mirror, so `FROM busybox`
    resolves on a machine that cannot reach Docker Hub (without it, the build fails)."""
    image = _container_image(buildkit_builders["docker-container"])
    copy_image("localhost:5000/orch/busybox:stable", registry.ref("library/busybox", "latest"))
    (tmp_path / "buildkitd.toml").write_text(f'[registry."docker.io"]\n  mirrors = ["{registry.host}"]\n'
                                             f'[registry."{registry.host}"]\n  http = true\n')
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM busybox\nRUN echo mirrored > /how\n")
    name = f"orch-test-made-{uuid.uuid4().hex[:8]}"
    try:
        profile = _made_builder(tmp_path, name, f"  driver: docker-container\n  buildkitd_config: buildkitd.toml\n"
                                f"  driver_opts: {{image: '{image}', network: host}}\n")
        built = orch("build", str(tmp_path / "ctx"), "--profile", profile, "-t", registry.ref("made/container", "1"),
                     "--push", "--json")
        assert built.returncode == 0, built.stderr[-3000:]
        assert json.loads(built.stdout)["strategy"] == "single"  # one node: one call, pushed by digest
        assert tags_in(registry, "made/container") == ["1"]
    finally:
        removed = orch("builder", "rm", name)
    assert removed.returncode == 0, removed.stderr


def _container_image(builder: str) -> str:
    """The BuildKit image the harness's docker-container builder runs (scripts/buildkit-up.sh)."""
    for line in subprocess.run(["docker", "buildx", "ls", "--format", "json"], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        listed = json.loads(line)
        if listed.get("Name") == builder:
            return listed["Nodes"][0]["DriverOpts"]["image"]
    raise AssertionError(f"no builder {builder}")
