"""Builder capabilities read from what buildx 0.13.1 and 0.30.1 really print (tests/data/buildx,
recorded on this project's engine machine; see SOURCE there), and the rules drawn from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.docker.capabilities import Capabilities, Node, capabilities_from, parse_version
from orchestrator.docker.facts import parse_builders

DATA = Path(__file__).parent / "data" / "buildx"
CONTAINERD_STORE = {"DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]}
CLASSIC_STORE = {"DriverStatus": [["Backing Filesystem", "extfs"]]}


def _caps(kind: str, version: str, info: dict | None = None) -> Capabilities:
    return capabilities_from((DATA / f"inspect-{kind}-{version}.txt").read_text(),
                             (DATA / f"version-{version}.txt").read_text(), info)


@pytest.mark.parametrize("version", ["0.13.1", "0.30.1"])
def test_a_two_node_remote_builder_routes_each_given_platform_to_its_node(version: str) -> None:
    caps = _caps("remote-2-nodes", version)
    assert (caps.builder, caps.driver) == ("tfarm", "remote")
    assert [(n.name, n.given, n.status) for n in caps.nodes] == [
        ("n1", ("linux/amd64", "linux/386"), "running"),
        ("n2", ("linux/arm64", "linux/arm/v7", "linux/arm/v6"), "running")]
    assert caps.nodes[0].buildkit == "v0.26.3"
    assert "linux/s390x" in caps.nodes[0].reported  # through QEMU, but not given: not routed there
    assert caps.node_for("linux/arm/v7").name == "n2" and caps.node_for("linux/386").name == "n1"
    assert caps.node_for("linux/s390x") is None  # buildx would send the whole build to n1
    # buildx tags a multi-node push-by-digest `latest` and refuses oci/docker exports and --load.
    assert (caps.multi_node, caps.push_by_digest, caps.export_oci, caps.load) == (True, False, False, False)
    assert caps.cache_export is True


@pytest.mark.parametrize(("version", "info", "several", "oci", "cache"), [
    ("0.13.1", CONTAINERD_STORE, True, True, True),
    ("0.30.1", CONTAINERD_STORE, True, True, True),
    ("0.13.1", CLASSIC_STORE, False, False, False),
])
def test_the_default_builder_depends_on_the_daemons_image_store(version, info, several, oci, cache) -> None:
    caps = _caps("default", version, info)
    assert (caps.builder, caps.driver, [n.name for n in caps.nodes]) == ("default", "docker", ["default"])
    assert caps.nodes[0].given == ()  # the docker driver's platforms are reported, never given
    assert caps.push_by_digest is False  # "push-by-digest is currently not implemented for docker driver"
    assert caps.load is True
    assert (caps.several_platforms_per_call, caps.export_oci, caps.cache_export) == (several, oci, cache)


def test_buildx_versions_and_the_bake_entitlements_that_come_with_0_18() -> None:
    assert parse_version((DATA / "version-0.13.1.txt").read_text()) == (0, 13, 1)
    assert parse_version((DATA / "version-0.30.1.txt").read_text()) == (0, 30, 1)
    assert parse_version("buildx: unknown") == (0, 0, 0)
    assert _caps("default", "0.13.1", CONTAINERD_STORE).bake_needs_fs_entitlements is False
    assert _caps("default", "0.30.1", CONTAINERD_STORE).bake_needs_fs_entitlements is True


def test_a_single_node_container_builder_pushes_by_digest_and_exports_oci() -> None:
    caps = Capabilities("ci", "docker-container", (0, 30, 1), (Node("ci0", "unix:///var/run/docker.sock", "running"),))
    assert (caps.push_by_digest, caps.export_oci, caps.load, caps.cache_export) == (True, True, True, True)


@pytest.mark.parametrize("version", ["0.13.1", "0.30.1"])
def test_each_builder_is_listed_once_whatever_buildx_prints(version: str) -> None:
    builders = parse_builders((DATA / f"ls-{version}.jsonl").read_text())
    assert [(b.name, b.driver, [n.name for n in b.nodes]) for b in builders] == [
        ("default", "docker", ["default"]), ("tfarm", "remote", ["n1", "n2"])]


def test_the_builder_buildx_uses_when_none_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.docker.probe import recorded_builder

    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert recorded_builder() is None  # nothing recorded: the daemon's own builder
    (tmp_path / "buildx").mkdir()
    current = tmp_path / "buildx" / "current"
    current.write_text('{"Key":"unix:///var/run/docker.sock","Name":"","Global":false}')  # `docker buildx use default`
    assert recorded_builder() is None
    current.write_text('{"Key":"unix:///var/run/docker.sock","Name":"ci","Global":false}')  # `docker buildx use ci`
    assert recorded_builder() == "ci"
    monkeypatch.setenv("BUILDX_BUILDER", "farm")
    assert recorded_builder() == "farm"


@pytest.mark.parametrize(("jobs", "expected"), [(None, 4), (1, 1)])
def test_on_a_builder_of_two_nodes_each_platform_goes_to_its_node_two_at_a_time_per_node(jobs, expected) -> None:
    from orchestrator.builds.complete import complete
    from orchestrator.builds.options import TagOptions
    from orchestrator.builds.request import BuildRequest, plan_build

    from .test_build import BASE_ARG, NOW, REPO

    plan = plan_build(BuildRequest(platforms=("linux/amd64", "linux/arm64", "linux/s390x"),
                                   dockerfile="Dockerfile.example", tags=TagOptions(("localhost:5000/a/b:1",)), push=True,
                                   build_args=(BASE_ARG,), jobs=jobs), now=NOW, cwd=REPO)
    completed = complete(plan, _caps("remote-2-nodes", "0.30.1"))
    assert [(job.label, job.node, job.native) for job in completed.per_arch] == [
        ("linux/amd64", "n1", True), ("linux/arm64", "n2", True), ("linux/s390x", "n1", False)]
    assert all("push-by-digest=true" in job.command_line() for job in completed.per_arch)
    assert completed.jobs == expected  # two per node unless --jobs says otherwise
