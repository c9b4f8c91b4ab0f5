"""--reproducible on the paths beyond one build: bake targets, native runners' parts and their
release, and parts compared with an emulated one-call build of the same commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.builds.reproduce import _one_buildkit
from orchestrator.docker.capabilities import Capabilities, Node
from orchestrator.errors import BadInput
from orchestrator.image.model import Entry, Inspection
from orchestrator.model.platform_parse import parse
from orchestrator.publish.parts import read_parts, write_part
from orchestrator.release.bake_files import targets_from
from orchestrator.release.bake_release import ReleasePlan
from orchestrator.release.bake_reproducible import node_versions, reproducible_target

from .conftest import Registry
from .registry_api import raw_manifest
from .test_build import BASE_ARG
from .test_reproducible import COMMIT_EPOCH, git_app, orch, platform_digests

REPO_NAME = "localhost:5999/team/app"
REVISION = "0123456789abcdef0123456789abcdef01234567"
EPOCH_LABEL, BUILDKIT_LABEL = "dev.orch.reproducible.source-date-epoch", "dev.orch.reproducible.buildkit"


# -- bake targets (no engine) ---------------------------------------------------------


def _target(**fields: object) -> object:
    printed = {"target": {"app": {"context": ".", "dockerfile": "Dockerfile", "tags": ["r.test/app:1"],
                                  "platforms": ["linux/arm64", "linux/amd64"], **fields}}}
    (target,) = targets_from(printed)
    return target


def test_a_bake_target_is_built_at_its_commit_s_time_and_rewrites_timestamps_on_every_output(
        tmp_path: Path) -> None:
    app = git_app(tmp_path / "app")
    caps = Capabilities("farm", "remote", (0, 30, 1), (Node("n1", "unix://a", "running", buildkit="v0.26.3"),
                                                       Node("n2", "unix://b", "running", buildkit="v0.25.0")))
    routes = {"linux/amd64": ("n1", True), "linux/arm64": ("n2", True)}
    target = _target(args={"GREETING": "hi", "API_TOKEN": "s3cret"}, target="final",
                     labels={"org.opencontainers.image.created": "2031-01-01T00:00:00Z", "team": "a"})
    made = reproducible_target(target, node_versions(caps, (target,), routes), {}, app)
    definition = made.definition
    assert definition["args"]["SOURCE_DATE_EPOCH"] == str(COMMIT_EPOCH)
    labels = definition["labels"]
    assert labels["org.opencontainers.image.created"] == "2024-01-02T03:04:05Z"  # the bake file's would differ
    assert labels["team"] == "a" and labels[EPOCH_LABEL] == str(COMMIT_EPOCH)
    assert labels["dev.orch.reproducible.target"] == "final"
    assert json.loads(labels["dev.orch.reproducible.build-args"]) == {"API_TOKEN": None, "GREETING": "hi"}
    assert len(labels["org.opencontainers.image.revision"]) == 40
    # Each platform pushed by digest from its node records that node's BuildKit.
    plan = ReleasePlan((made,), ("docker-bake.hcl",), "/tmp/stage", nodes=routes)
    resolved = plan.resolved()["target"]
    arm = resolved["app--linux-arm64"]
    assert arm["output"][0].endswith(",push=true,rewrite-timestamp=true")
    assert arm["labels"][BUILDKIT_LABEL] == "v0.25.0" and resolved["app--linux-amd64"]["labels"][BUILDKIT_LABEL] == \
        "v0.26.3"
    # On a builder of one node: one layout, rewriting timestamps too.
    one = ReleasePlan((made,), ("docker-bake.hcl",), "/tmp/stage").resolved()["target"]["app"]
    assert one["output"] == ["type=oci,dest=/tmp/stage/app,tar=false,rewrite-timestamp=true"]


def test_a_bake_target_whose_epoch_cannot_be_had_is_named(tmp_path: Path) -> None:
    caps = Capabilities("c", "docker-container", (0, 30, 1), (Node("c0", "unix://x", "running", buildkit="v0.26.3"),))
    target = _target(context="https://github.com/example/app.git")
    with pytest.raises(BadInput) as raised:
        reproducible_target(target, node_versions(caps, (target,), None), {}, tmp_path)
    assert 'bake target "app"' in raised.value.message and "SOURCE_DATE_EPOCH is not set" in raised.value.message
    given = reproducible_target(_target(args={"SOURCE_DATE_EPOCH": "1700000000"}), {}, {}, tmp_path)
    assert given.epoch == 1700000000  # the bake file's own, where it sets one


# -- parts and their release (no engine) ------------------------------------------------


def part(directory: Path, platform: str, digest: str, epoch: int | None, buildkit: str = "v0.26.3") -> Path:
    labels = {"org.opencontainers.image.revision": REVISION}
    if epoch is not None:
        labels.update({EPOCH_LABEL: str(epoch), BUILDKIT_LABEL: buildkit})
    return write_part(str(directory), {
        "repository": REPO_NAME, "digest": digest, "platforms": [platform], "revision": REVISION, "labels": labels,
        "reproducible": {"source_date_epoch": epoch, "buildkit": {platform: buildkit}} if epoch else None})


def release(directory: Path, *args: str) -> object:
    return orch("release", str(directory), "--platform", "linux/amd64,linux/arm64", "-t", f"{REPO_NAME}:1", *args,
                cwd=directory)


@pytest.mark.parametrize(("epochs", "said"), [
    ((COMMIT_EPOCH, None), "the parts were not all built with --reproducible: linux/amd64 ("),
    ((COMMIT_EPOCH, 1700000000), "the parts were built at different SOURCE_DATE_EPOCH: 1700000000 "
                                 "(2023-11-14T22:13:20Z) for linux/arm64 ("),
])
def test_a_release_of_parts_not_all_reproducible_at_one_epoch_is_exit_2_naming_them(
        tmp_path: Path, epochs: tuple[int | None, int | None], said: str) -> None:
    part(tmp_path, "linux/amd64", "sha256:" + "a" * 64, epochs[0])
    part(tmp_path, "linux/arm64", "sha256:" + "b" * 64, epochs[1])
    result = release(tmp_path, "--dry-run")
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "orch-part-linux-arm64-bbbbbbbbbbbb.json" in result.stderr


def test_reproducible_parts_by_different_buildkit_versions_are_released_and_said(tmp_path: Path) -> None:
    part(tmp_path, "linux/amd64", "sha256:" + "a" * 64, COMMIT_EPOCH, "v0.26.3")
    part(tmp_path, "linux/arm64", "sha256:" + "b" * 64, COMMIT_EPOCH, "dockerd 26.1.5")
    assert [r.reproducible for r in read_parts([str(tmp_path)])][0] == {
        "source_date_epoch": COMMIT_EPOCH, "buildkit": {"linux/amd64": "v0.26.3"}}
    result = release(tmp_path, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr  # the BuildKit label is said, not compared
    plan = json.loads(result.stdout)
    assert plan["reproducible"] == {"source_date_epoch": COMMIT_EPOCH,
                                    "buildkit": {"linux/amd64": "v0.26.3", "linux/arm64": "dockerd 26.1.5"}}
    assert any("different BuildKit versions (dockerd 26.1.5: linux/arm64; v0.26.3: linux/amd64)" in line
               for line in plan["commands"])


def test_verify_reproduce_refuses_platforms_of_different_buildkit_versions() -> None:
    def entry(platform: str, version: str) -> Entry:
        config = {"config": {"Labels": {EPOCH_LABEL: "1", BUILDKIT_LABEL: version}}}
        return Entry(0, "sha256:" + "a" * 64, "application/vnd.oci.image.manifest.v1+json", 1, parse(platform), None,
                     config)

    image = Inspection("r.test/app:1", "application/vnd.oci.image.index.v1+json", None,
                       (entry("linux/amd64", "v0.26.3"), entry("linux/arm64", "v0.25.0")), ())
    with pytest.raises(BadInput) as raised:
        _one_buildkit(image)
    assert "BuildKit v0.25.0: linux/arm64; BuildKit v0.26.3: linux/amd64" in raised.value.message
    assert "--platform linux/arm64 --builder B" in raised.value.fix


def test_a_builder_of_separate_daemons_is_refused_naming_parts_as_the_way(tmp_path: Path) -> None:
    app = git_app(tmp_path / "app")
    (app / "orch.yaml").write_text(
        "platforms: [linux/amd64, linux/arm64]\nbuilder:\n  driver: docker\n  nodes:\n"
        "    - {name: main, endpoint: default, platforms: [linux/amd64]}\n"
        "    - {name: pi, endpoint: orch-no-such-context, platforms: [linux/arm64]}\n")
    result = orch("build", "--profile", str(app / "orch.yaml"), "--reproducible", "-t", f"{REPO_NAME}:1", "--push",
                  "--dry-run", ".", cwd=app)
    assert result.returncode == 2, result.stderr
    assert "whose nodes are separate daemons" in result.stderr and "--part DIR), then orch release" in result.stderr


# -- on the engine ---------------------------------------------------------------------


BAKE = """
variable "REG" { default = "localhost:5000" }
target "app" {
  context = "."
  platforms = ["linux/arm64", "linux/amd64"]
  tags = ["${REG}/repro/bake:1"]
  args = { GREETING = "hi" }
  labels = { "org.opencontainers.image.created" = "${timestamp()}" }
}
"""


def index_platforms(registry: Registry, repository: str, tag: str) -> dict[str, str]:
    index, _ = raw_manifest(registry.port, repository, tag)
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
            if m["platform"]["architecture"] != "unknown"}


@pytest.mark.engine
def test_bake_targets_reproduce_across_builders_of_one_buildkit_and_verify(
        tmp_path: Path, registry: Registry, buildkit_builders: dict[str, str]) -> None:
    app = git_app(tmp_path / "app")
    (app / "docker-bake.hcl").write_text(BAKE)
    env = {"REG": registry.host}
    one = orch("build", "--bake", "docker-bake.hcl", "app", "--reproducible", "--push", "--builder",
               buildkit_builders["docker-container"], cwd=app, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    first = index_platforms(registry, "repro/bake", "1")
    assert set(first) == {"linux/amd64", "linux/arm64"}
    # The two-node builder: each platform a bake target of its own, pushed by digest from its node.
    two = orch("build", "--bake", "docker-bake.hcl", "app", "--reproducible", "--push", "--no-cache", "--builder",
               buildkit_builders["remote"], cwd=app, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    assert index_platforms(registry, "repro/bake", "1") == first
    verified = orch("verify", registry.ref("repro/bake", "1"), "--reproduce", ".", "--builder",
                    buildkit_builders["docker-container"], cwd=app)
    assert verified.returncode == 0, verified.stdout + verified.stderr


DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY hello.txt /hello.txt\nRUN uname -m > /etc/built-on\n"


@pytest.mark.engine
def test_native_runners_parts_equal_an_emulated_one_call_build_of_one_commit(
        tmp_path: Path, registry: Registry, buildkit_builders: dict[str, str]) -> None:
    """Parts built each on the remote builder's node given its platform, released; the same commit
    built in one call on the one-node docker-container builder, arm64 under QEMU: both BuildKit
    v0.26.3, so every platform's manifest digest is the same."""
    app = git_app(tmp_path / "app", dockerfile=DOCKERFILE)
    repository = registry.ref("repro/parts", "1").rsplit(":", 1)[0]
    parts = tmp_path / "parts"
    for platform in ("linux/amd64", "linux/arm64"):
        ran = orch("build", "--reproducible", "--platform", platform, "--build-arg", BASE_ARG, "--image", repository,
                   "--push", "--part", str(parts / platform.replace("/", "-")), "--builder",
                   buildkit_builders["remote"], ".", cwd=app)
        assert ran.returncode == 0, ran.stderr[-3000:]
    assert [r.reproducible for r in sorted(read_parts([str(parts)]), key=lambda r: r.label)] == [
        {"source_date_epoch": COMMIT_EPOCH, "buildkit": {platform: "v0.26.3"}}
        for platform in ("linux/amd64", "linux/arm64")]  # the part record says so
    released = orch("release", str(parts), "--platform", "linux/amd64,linux/arm64", "-t", f"{repository}:1",
                    "--json", cwd=app)
    assert released.returncode == 0, released.stderr[-3000:]
    document = json.loads(released.stdout)
    assert document["reproducible"]["buildkit"] == {"linux/amd64": "v0.26.3", "linux/arm64": "v0.26.3"}
    from_parts = {row["platform"]: row["digest"] for row in document["platforms"]}

    emulated = orch("build", "--reproducible", "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG,
                    "-t", f"{repository}:one-call", "--push", "--json", "--builder",
                    buildkit_builders["docker-container"], ".", cwd=app)
    assert emulated.returncode == 0, emulated.stderr[-3000:]
    assert platform_digests(emulated.stdout) == from_parts
    shown = orch("release", str(parts), "--platform", "linux/amd64,linux/arm64", "-t", f"{repository}:1", cwd=app)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "reproducible: SOURCE_DATE_EPOCH" in shown.stdout and "every platform built by BuildKit v0.26.3" in shown.stdout

