"""`orch manifest create` on manifest-tool's own spec files (tests/data/manifest-tool, unchanged)
and its README samples, against a real registry: each is accepted and publishes the (digest,
platform) entries manifest-tool pushes for it. The expected entries are written out per file
from manifest-tool's rules (the spec's platform; variant, os.version and os.features from the
image config where the spec leaves them out); orch's one deliberate difference is beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.model.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

from .conftest import Registry
from .registry_api import digest_at, push_attestation, push_image, push_index, raw_manifest
from .test_build import orch

PEER_FILES = Path(__file__).parent / "data" / "manifest-tool"
WIN2019 = {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1879"}
WIN2016 = {"os": "windows", "architecture": "amd64", "os.version": "10.0.14393.4583"}
# orch lists arm64 without the v8 variant (as buildx and containerd write it; clients match the
# two alike) and says so in a note; manifest-tool keeps the variant the spec or config gives.
DELIBERATE = {"linux/arm64/v8": "linux/arm64"}


def shown(platform: dict) -> str:
    """A descriptor's platform in containerd's form, written here independently of orch."""
    options = platform.get("os.version", "") + "".join(f"+{f}" for f in platform.get("os.features", []))
    os_part = f"{platform['os']}({options})" if options else platform["os"]
    return "/".join(p for p in (os_part, platform["architecture"], platform.get("variant")) if p)


def config_for(spec_platform: dict, image: str) -> dict:
    """The config of a correct image for a spec entry; the Windows ones name their release,
    and arm64 ones carry variant v8 as BuildKit writes it."""
    if "win2019" in image:
        return WIN2019
    if "win2016" in image:
        return WIN2016
    config = {"os": spec_platform["os"], "architecture": spec_platform["architecture"]}
    if spec_platform.get("variant") or spec_platform["architecture"] == "arm64":
        config["variant"] = spec_platform.get("variant", "v8")
    return config


def localised(text: str, host: str) -> str:
    return (text.replace("mplatform/manifest-tool", f"{host}/mplatform/manifest-tool").replace("VERS", "1.0")
            .replace("__REGISTRY__", f"{host}/mt").replace("myprivreg:5000", host))


def prepared(registry: Registry, name: str, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The peer's file with its names on the local registry, and each source image pushed there
    (image name -> digest)."""
    import yaml

    text = localised((PEER_FILES / name).read_text(), registry.host)
    spec = yaml.load(text, Loader=yaml.BaseLoader)  # every scalar as text, as manifest-tool reads it
    digests = {}
    for entry in spec["manifests"]:
        image = entry["image"]
        repository, tag = image.removeprefix(f"{registry.host}/").rsplit(":", 1)
        digests[image] = push_image(registry.port, repository, tag, config_for(entry["platform"], image))[0]
    path = tmp_path / name
    path.write_text(text)
    return path, digests


def published_entries(registry: Registry, target: str) -> tuple[dict, set[tuple[str, str]]]:
    repository, tag = target.removeprefix(f"{registry.host}/").rsplit(":", 1)
    document, _ = raw_manifest(registry.port, repository, tag)
    return document, {(m["digest"], shown(m["platform"])) for m in document["manifests"]}


def expected_entries(digests: dict[str, str], manifest_tool: dict[str, str], host: str) -> set[tuple[str, str]]:
    """manifest-tool's entries (image -> platform as it lists it), with orch's deliberate difference."""
    return {(digests[localised(image, host)], DELIBERATE.get(platform, platform))
            for image, platform in manifest_tool.items()}


PUSHML = {
    "mplatform/manifest-tool:linux_ppc64le_VERS": "linux/ppc64le",
    "mplatform/manifest-tool:linux_amd64_VERS": "linux/amd64",
    "mplatform/manifest-tool:linux_i386_VERS": "linux/386",
    "mplatform/manifest-tool:linux_s390x_VERS": "linux/s390x",
    "mplatform/manifest-tool:linux_riscv64_VERS": "linux/riscv64",
    "mplatform/manifest-tool:linux_arm64_VERS": "linux/arm64/v8",
    "mplatform/manifest-tool:linux_arm_v7_VERS": "linux/arm/v7",
    "mplatform/manifest-tool:linux_arm_v6_VERS": "linux/arm/v6",
    "mplatform/manifest-tool:win2019_VERS": "windows(10.0.17763.1879)/amd64",
    "mplatform/manifest-tool:win2016_VERS": "windows(10.0.14393.4583)/amd64",
}
ALPINE = {
    "mplatform/manifest-tool:alpine_linux_ppc64le_VERS": "linux/ppc64le",
    "mplatform/manifest-tool:alpine_linux_amd64_VERS": "linux/amd64",
    "mplatform/manifest-tool:alpine_linux_i386_VERS": "linux/386",
    "mplatform/manifest-tool:alpine_linux_s390x_VERS": "linux/s390x",
    "mplatform/manifest-tool:alpine_linux_arm64_VERS": "linux/arm64/v8",
    "mplatform/manifest-tool:alpine_linux_arm_v7_VERS": "linux/arm/v7",
    "mplatform/manifest-tool:alpine_linux_arm_v6_VERS": "linux/arm/v6",
}
TEST_REGISTRY = {
    "__REGISTRY__/ppc64le_alpine:latest": "linux/ppc64le",
    "__REGISTRY__/amd64_alpine:latest": "linux/amd64",
    "__REGISTRY__/s390x_alpine:latest": "linux/s390x",
    "__REGISTRY__/aarch64_alpine:latest": "linux/arm64/v8",
}
TEST_REGISTRY_TAG = {
    "__REGISTRY__:ppc64le_alpine_latest": "linux/ppc64le",
    "__REGISTRY__:amd64_alpine_latest": "linux/amd64",
    "__REGISTRY__:s390x_alpine_latest": "linux/s390x",
    "__REGISTRY__:aarch64_alpine_latest": "linux/arm64/v8",
}
README_SAMPLE = {"myprivreg:5000/someimage:arm64": "linux/arm64", "myprivreg:5000/someimage:amd64": "linux/amd64"}


@pytest.mark.engine
@pytest.mark.parametrize(
    ("name", "target", "tags", "manifest_tool", "media_type"),
    [
        ("pushml.yaml", "mplatform/manifest-tool:VERS", ["latest"], PUSHML, DOCKER_LIST),
        ("pushml-pre.yaml", "mplatform/manifest-tool:VERS", [], PUSHML, DOCKER_LIST),
        ("pushml-alpine.yaml", "mplatform/manifest-tool:alpine-VERS", ["alpine"], ALPINE, DOCKER_LIST),
        ("test-registry.yml", "__REGISTRY__/alpine:latest", [], TEST_REGISTRY, OCI_INDEX),  # it has annotations
        ("test-registry-tag.yml", "__REGISTRY__:latest", [], TEST_REGISTRY_TAG, DOCKER_LIST),
        ("readme-sample.yaml", "myprivreg:5000/someimage:latest", ["1.0.0", "1.0", "1"], README_SAMPLE, DOCKER_LIST),
    ],
)
def test_manifest_tools_own_specs_publish_the_entries_manifest_tool_pushes(
        registry: Registry, tmp_path: Path, name: str, target: str, tags: list[str], manifest_tool: dict[str, str],
        media_type: str) -> None:
    path, digests = prepared(registry, name, tmp_path)
    result = orch("manifest", "create", "--spec", str(path), "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(result.stdout)

    target = localised(target, registry.host)
    document, entries = published_entries(registry, target)
    assert entries == expected_entries(digests, manifest_tool, registry.host)
    assert document["mediaType"] == out["media_type"] == media_type
    repository = target.removeprefix(f"{registry.host}/").rsplit(":", 1)[0]
    for tag in tags:
        assert digest_at(registry.port, repository, tag) == out["digest"]
    if name == "test-registry.yml":
        assert document["annotations"] == {
            "org.opencontainers.image.title": "My Image Title",
            "org.opencontainers.image.description": "My image description.",
            "org.opencontainers.image.authors": "Fred Flintstone",
            "org.opencontainers.image.source": "https://github.com/estesp/manifest-tool",
            "org.opencontainers.image.licenses": "Apache-2.0"}
    # What orch reads differently is said, not done silently.
    if any(platform == "linux/arm64/v8" for platform in manifest_tool.values()):
        assert any("arm64 variant v8 is listed as linux/arm64" in note for note in out["notes"]), out["notes"]
    if name.startswith("pushml"):
        assert any(note.startswith("order: orch lists linux/amd64, linux/arm64, linux/arm/v6, linux/arm/v7")
                   for note in out["notes"]), out["notes"]


@pytest.mark.engine
def test_keep_order_publishes_the_specs_order_and_type_oci_an_index(registry: Registry, tmp_path: Path) -> None:
    path, digests = prepared(registry, "pushml-alpine.yaml", tmp_path)
    result = orch("manifest", "create", "--spec", str(path), "--keep-order", "--type", "oci", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document, _ = published_entries(registry, localised("mplatform/manifest-tool:alpine-VERS", registry.host))
    assert document["mediaType"] == OCI_INDEX
    assert [m["digest"] for m in document["manifests"]] == list(digests.values())  # the spec's order
    # manifest-tool's order puts arm/v7 before arm/v6: a Pi Zero's first-match client gets v7. verify says so.
    assert any(f["check"] == "order" and f["level"] == "warn" for f in json.loads(result.stdout)["findings"])


@pytest.mark.engine
def test_a_docker_list_with_annotations_is_refused_before_anything_is_read(registry: Registry,
                                                                          tmp_path: Path) -> None:
    path, _ = prepared(registry, "test-registry.yml", tmp_path)
    result = orch("manifest", "create", "--spec", str(path), "--type", "docker")
    assert result.returncode == 2
    assert "a Docker manifest list carries no annotations" in result.stderr and "--type oci" in result.stderr
    assert digest_at(registry.port, "mt/alpine", "latest") is None


@pytest.mark.engine
@pytest.mark.parametrize(
    ("template", "platforms", "images"),
    [  # manifest-tool README's from-args samples
        ("foo/bar-ARCH:v1", "linux/amd64,linux/s390x,linux/arm64",
         {"foo/bar-amd64:v1": "linux/amd64", "foo/bar-s390x:v1": "linux/s390x", "foo/bar-arm64:v1": "linux/arm64"}),
        ("foo/bar-ARCHVARIANT:v1", "linux/amd64,linux/arm/v5,linux/arm/v7",
         {"foo/bar-amd64:v1": "linux/amd64", "foo/bar-armv5:v1": "linux/arm/v5", "foo/bar-armv7:v1": "linux/arm/v7"}),
    ],
)
def test_manifest_tools_from_args_samples_publish_the_same_entries(registry: Registry, template: str,
                                                                  platforms: str, images: dict[str, str]) -> None:
    digests = {}
    for image, platform in images.items():
        os_name, arch, *variant = platform.split("/")
        repository, tag = image.rsplit(":", 1)
        config = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant else {})}
        digests[image] = push_image(registry.port, repository, tag, config)[0]
    result = orch("manifest", "create", "--from-args", "--platforms", platforms,
                  "--template", f"{registry.host}/{template}", "--tags", "v1.0.0,v1.0",
                  "--target", f"{registry.host}/foo/bar:v1", "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _, entries = published_entries(registry, f"{registry.host}/foo/bar:v1")
    assert entries == {(digests[image], platform) for image, platform in images.items()}
    assert digest_at(registry.port, "foo/bar", "v1.0.0") == digest_at(registry.port, "foo/bar", "v1.0") \
        == json.loads(result.stdout)["digest"]


def _multi_index(registry: Registry) -> dict[str, str]:
    """An index as buildx pushes one: two images, each with its attestation."""
    digests = {}
    manifests, attestations = [], []
    for platform in ("linux/amd64", "linux/arm64"):
        os_name, arch = platform.split("/")
        digest, size = push_image(registry.port, "multi", None, {"os": os_name, "architecture": arch}, OCI_MANIFEST)
        digests[platform] = digest
        manifests.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                          "platform": {"architecture": arch, "os": os_name}})
        attestation = push_attestation(registry.port, "multi", digest)
        digests[f"attestation of {platform}"] = attestation["digest"]
        attestations.append(attestation)
    push_index(registry.port, "multi", "1", manifests + attestations)
    digests["riscv64"] = push_image(registry.port, "single", "1", {"os": "linux", "architecture": "riscv64"},
                                    DOCKER_MANIFEST)[0]
    return digests


@pytest.mark.engine
def test_a_source_index_gives_its_entry_by_default_and_every_image_with_whole_index(registry: Registry,
                                                                                   tmp_path: Path) -> None:
    digests = _multi_index(registry)
    spec = tmp_path / "list.yaml"
    spec.write_text(f"image: {registry.host}/app:2\nmanifests:\n"
                    f"  - image: {registry.host}/multi:1\n    platform: {{os: linux, architecture: arm64}}\n"
                    f"  - image: {registry.host}/single:1\n    platform: {{os: linux, architecture: riscv64}}\n")

    picked = orch("manifest", "create", "--spec", str(spec), "--json")
    assert picked.returncode == 0, picked.stdout[-3000:] + picked.stderr[-3000:]
    document, _ = published_entries(registry, f"{registry.host}/app:2")
    assert [(m["digest"], shown(m["platform"])) for m in document["manifests"]] == [
        (digests["linux/arm64"], "linux/arm64"), (digests["riscv64"], "linux/riscv64"),
        (digests["attestation of linux/arm64"], "unknown/unknown")]  # its attestation comes along, last
    assert any("is an index of 2 images; orch lists its linux/arm64 image and its attestation (--whole-index"
               in note for note in json.loads(picked.stdout)["notes"])

    # manifest-tool's way: every image of the index, then every attestation.
    whole = orch("manifest", "create", "--spec", str(spec), "--whole-index", "--keep-order", "--json")
    assert whole.returncode == 0, whole.stdout[-3000:] + whole.stderr[-3000:]
    document, _ = published_entries(registry, f"{registry.host}/app:2")
    assert [(m["digest"], shown(m["platform"])) for m in document["manifests"]] == [
        (digests["linux/amd64"], "linux/amd64"), (digests["linux/arm64"], "linux/arm64"),
        (digests["riscv64"], "linux/riscv64"),
        (digests["attestation of linux/amd64"], "unknown/unknown"),
        (digests["attestation of linux/arm64"], "unknown/unknown")]
    assert document["mediaType"] == DOCKER_LIST  # the riscv64 source is a Docker image


@pytest.mark.engine
def test_two_images_for_one_windows_release_are_refused_and_nothing_moves(registry: Registry,
                                                                         tmp_path: Path) -> None:
    push_image(registry.port, "win", "a", WIN2019)
    push_image(registry.port, "win", "b", WIN2019)
    spec = tmp_path / "list.yaml"
    spec.write_text(f"image: {registry.host}/win:1\nmanifests:\n"
                    f"  - image: {registry.host}/win:a\n    platform: {{os: windows, architecture: amd64}}\n"
                    f"  - image: {registry.host}/win:b\n    platform: {{os: windows, architecture: amd64}}\n")
    result = orch("manifest", "create", "--spec", str(spec))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "windows(10.0.17763.1879)/amd64 is listed twice" in result.stderr
    assert digest_at(registry.port, "win", "1") is None
