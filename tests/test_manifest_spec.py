"""orch manifest create: manifest-tool specs parsed without an engine; a list
assembled from existing (and mislabelled) images against the real registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import BadInput
from orchestrator.model.platform import format_platform
from orchestrator.publish.manifest_spec import spec_from_args, spec_from_document

from .conftest import buildx_push, sh
from .test_build import orch

GOOD = {
    "image": "localhost:5000/app:1.0",
    "tags": ["latest", "1"],
    "manifests": [
        {"image": "localhost:5000/app:1.0-arm32v7", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"image": "localhost:5000/app:1.0-win", "platform": {"os": "windows", "architecture": "amd64",
                                                             "os.version": "10.0.17763.1879", "features": ["win32k"]}},
        {"image": "localhost:5000/app:1.0-arm32v6", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
        {"image": "localhost:5000/legacy/app:1.0-aarch64", "platform": {"os": "linux", "architecture": "aarch64"}},
    ],
}


def test_a_manifest_tool_spec_becomes_entries_in_orchs_order() -> None:
    spec = spec_from_document(GOOD, "list.yaml")
    assert str(spec.target) == "localhost:5000/app:1.0"
    assert [str(t) for t in spec.tags] == ["localhost:5000/app:latest", "localhost:5000/app:1"]
    # Lower ARM variants before higher ones, Windows last; aarch64 is arm64.
    assert [format_platform(e.platform) for e in spec.entries] == [
        "linux/arm64", "linux/arm/v6", "linux/arm/v7", "windows/amd64"]
    windows = spec.entries[-1].platform
    assert (windows.os_version, windows.os_features) == ("10.0.17763.1879", ("win32k",))


def _with(path: tuple, value) -> dict:  # noqa: ANN001
    doc = json.loads(json.dumps(GOOD))
    where = doc
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ([1, 2], "a manifest spec is a mapping"),
        ({**GOOD, "platforms": []}, 'unknown key "platforms"'),
        (_with(("manifests",), []), "manifests: expected a non-empty list"),
        (_with(("manifests", 0, "platform"), {"os": "linux"}), "manifests[0].platform.architecture: missing"),
        (_with(("manifests", 0, "platform", "architecture"), "armel7"), 'manifests[0].platform: '),
        (_with(("manifests", 1, "platform", "os.version"), "ltsc2019"), '"ltsc2019" is not a version'),
        (_with(("manifests", 0, "platform"), {"os": "linux", "architecture": "arm", "variant": "v6"}),
         "linux/arm/v6 is listed twice"),
        (_with(("manifests", 0, "image"), "ghcr.io/org/app:1.0-arm32v7"), 'is on ghcr.io, the list on localhost:5000'),
        (_with(("image",), "localhost:5000/app@sha256:" + "a" * 64), "the list is published to a tag"),
        (_with(("manifests", 0, "platform", "arch"), "arm"), 'unknown key "arch"'),
    ],
)
def test_bad_specs_name_the_place_and_the_fix(doc, says: str) -> None:  # noqa: ANN001
    with pytest.raises(BadInput) as caught:
        spec_from_document(doc, "list.yaml")
    assert says in str(caught.value)
    assert caught.value.fix


def test_from_args_fills_the_template_per_platform() -> None:
    spec = spec_from_args(["linux/amd64,linux/arm/v7", "linux/arm64"], "localhost:5000/app:1.0-OS-ARCHVARIANT",
                          "localhost:5000/app:1.0", ["latest"])
    assert [str(e.image) for e in spec.entries] == [
        "localhost:5000/app:1.0-linux-amd64", "localhost:5000/app:1.0-linux-arm64", "localhost:5000/app:1.0-linux-armv7"]
    with pytest.raises(BadInput, match="no ARCH placeholder"):
        spec_from_args(["linux/amd64"], "localhost:5000/app:1.0", "localhost:5000/app:1.0", [])


def test_cli_rejects_a_missing_spec_and_a_half_from_args(tmp_path: Path) -> None:
    missing = orch("manifest", "create", "--spec", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "cannot read the spec" in missing.stderr
    (tmp_path / "bad.yaml").write_text("image: [unclosed\n")
    broken = orch("manifest", "create", "--spec", str(tmp_path / "bad.yaml"))
    assert broken.returncode == 2 and "is not valid YAML" in broken.stderr and "Traceback" not in broken.stderr
    half = orch("manifest", "create", "--from-args", "--platforms", "linux/amd64")
    assert half.returncode == 2 and "--from-args needs --platforms, --template and --target" in half.stderr


@pytest.mark.engine
def test_a_spec_lists_a_mislabelled_image_as_what_it_is_warns_and_deep_confirms(registry, busybox_context,
                                                                               tmp_path: Path) -> None:
    repo = registry.ref("legacy/app", "1.0").rsplit(":", 1)[0]
    # The QEMU-era mistake: an arm64 binary in an image whose config says amd64.
    liar = busybox_context("liar", platforms=["linux/amd64"], binary_for={"linux/amd64": "linux/arm64"})
    buildx_push(liar, "linux/amd64", f"type=registry,name={repo}:1.0-aarch64", "--provenance=false")
    amd64 = busybox_context("amd64", platforms=["linux/amd64"])
    buildx_push(amd64, "linux/amd64", f"type=registry,name={repo}:1.0-amd64", "--provenance=false")
    # Built by buildx with provenance: an index holding the image and its attestation.
    v7 = busybox_context("v7", platforms=["linux/arm/v7"])
    buildx_push(v7, "linux/arm/v7", f"type=registry,name={registry.ref('other/app', '1.0-armhf')}",
                "--provenance=mode=min")
    # A Windows entry: FROM scratch needs no RUN, so buildx can make one here.
    win = tmp_path / "win"
    win.mkdir()
    (win / "hello.txt").write_text("hi\n")
    (win / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    buildx_push(win, "windows/amd64", f"type=registry,name={repo}:1.0-windows", "--provenance=false")

    spec = tmp_path / "list.yaml"
    spec.write_text(
        f"image: {repo}:1.0\n"
        "tags: [latest]\n"
        "manifests:\n"
        f"  - image: {registry.ref('other/app', '1.0-armhf')}\n"
        "    platform: {os: linux, architecture: arm, variant: v7}\n"
        f"  - image: {repo}:1.0-windows\n"
        "    platform: {os: windows, architecture: amd64, os.version: 10.0.17763.1879, features: [win32k]}\n"
        f"  - image: {repo}:1.0-aarch64\n"
        "    platform: {os: linux, architecture: arm64}\n"
        f"  - image: {repo}:1.0-amd64\n"
        "    platform: {os: linux, architecture: amd64}\n"
    )
    result = orch("manifest", "create", "--spec", str(spec), "--deep")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    out = result.stdout
    assert "WARN  config       linux/arm64    index says linux/arm64 but the image config says linux/amd64" in out
    assert "rebuild this image with `docker buildx build --platform linux/arm64`" in out
    assert "ok    binary       linux/arm64" in out  # --deep: the binary is what the list says

    raw = json.loads(sh("docker", "buildx", "imagetools", "inspect", f"{repo}:1.0", "--raw").stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert [m["platform"] for m in raw["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
        {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1879", "os.features": ["win32k"]},
    ]
    latest = json.loads(sh("docker", "buildx", "imagetools", "inspect", f"{repo}:latest", "--raw").stdout)
    assert latest == raw
    assert "armv7l" in sh("docker", "run", "--rm", "--platform", "linux/arm/v7", f"{repo}:1.0").stdout
    # Why the warning matters: dockerd (containerd store) checks the config of the entry it
    # picked and refuses the mislabelled one. The list is right; the image needs a rebuild.
    refused = subprocess.run(["docker", "run", "--rm", "--platform", "linux/arm64", f"{repo}:1.0"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "No such image" in refused.stderr


@pytest.mark.engine
def test_a_spec_naming_a_missing_image_moves_nothing(registry, tmp_path: Path) -> None:
    spec = tmp_path / "list.yaml"
    spec.write_text(f"image: {registry.ref('app', '1.0')}\nmanifests:\n"
                    f"  - image: {registry.ref('app', 'nope')}\n    platform: {{os: linux, architecture: amd64}}\n")
    result = orch("manifest", "create", "--spec", str(spec))
    assert result.returncode == 1, result.stderr
    assert "does not exist in the registry" in result.stderr and "Traceback" not in result.stderr


def test_dry_run_prints_copies_then_the_manifest_commands_then_verify_and_promotion(tmp_path: Path) -> None:
    spec = tmp_path / "list.yaml"
    spec.write_text(json.dumps(GOOD))  # JSON is YAML
    result = orch("manifest", "create", "--spec", str(spec), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "# copy localhost:5000/legacy/app:1.0-aarch64 (registry-side, by digest) into localhost:5000/app"
    create = next(line for line in lines if line.startswith("docker manifest create"))
    assert create.startswith("docker manifest create --insecure --amend localhost:5000/app:orch-list-")
    assert "'localhost:5000/app@<linux/arm64 digest>' 'localhost:5000/app@<linux/arm/v6 digest>'" in create
    assert any("--os windows --arch amd64 --os-version 10.0.17763.1879 --os-features win32k" in line for line in lines)
    # The list is never pushed under a tag of its own: docker only builds it locally.
    assert not any(line.startswith("docker manifest push") for line in lines)
    assert lines[-2].endswith("--config-mismatch warn")
    assert lines[-1].startswith("# promote: PUT the verified index localhost:5000/app@<digest> under "
                                "localhost:5000/app:1.0 localhost:5000/app:latest localhost:5000/app:1 ")
