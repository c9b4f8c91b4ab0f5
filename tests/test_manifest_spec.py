"""orch manifest create: manifest-tool specs parsed without an engine; a list
assembled from existing (and mislabelled) images against the real registry."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import BadInput
from orchestrator.lists.manifest_list import (
    Child,
    ListOptions,
    _ordered,
    _refuse_duplicates,
    check_options,
    list_media_type,
    listed_platform,
)
from orchestrator.lists.manifest_spec import load_spec, parse_annotations, spec_from_args, spec_from_document
from orchestrator.model.mediatypes import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from orchestrator.model.platform import format_all, format_platform, platform_slug
from orchestrator.model.platform_parse import parse
from orchestrator.model.references import parse_reference

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


def test_a_manifest_tool_spec_keeps_the_spec_order_and_reads_every_platform_spelling() -> None:
    spec = spec_from_document(GOOD, "list.yaml")
    assert str(spec.target) == "localhost:5000/app:1.0"
    assert [str(t) for t in spec.tags] == ["localhost:5000/app:latest", "localhost:5000/app:1"]
    # The spec's order here; orch's order is decided once the images have filled the platforms.
    assert [format_platform(e.platform) for e in spec.entries] == [
        "linux/arm/v7", "windows/amd64", "linux/arm/v6", "linux/arm64"]
    windows = spec.entries[1].platform
    assert (windows.os_version, windows.os_features) == ("10.0.17763.1879", ("win32k",))
    # manifest-tool's own keys (yaml.v3's names for the OCI Platform fields) mean the same.
    spelled = _with(("manifests", 1, "platform"), {"os": "windows", "architecture": "amd64",
                                                   "osversion": "10.0.17763.1879", "osfeatures": ["win32k"]})
    assert spec_from_document(spelled, "list.yaml").entries[1].platform == windows


def test_scalars_are_read_as_their_text_as_manifest_tool_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("image: localhost:5000/app:1.0\ntags: [1.10, 2, true]\nmanifests:\n"
                    "  - image: localhost:5000/app:i386\n    platform: {architecture: 386, os: linux}\n")
    spec = load_spec(path)
    assert format_platform(spec.entries[0].platform) == "linux/386"
    assert [t.tag for t in spec.tags] == ["1.10", "2", "true"]


def test_what_the_spec_names_is_kept_and_what_it_leaves_out_is_known() -> None:
    doc = {"image": "localhost:5000/app:1.0", "manifests": [
        {"image": "localhost:5000/app:arm", "platform": {"os": "linux", "architecture": "arm"}},
        {"image": "localhost:5000/app:any"},
        {"image": "localhost:5000/app:v8", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}
    spec = spec_from_document(doc, "list.yaml")
    assert spec.entries[0].given == frozenset()  # variant, os.version, os.features: from the image
    assert spec.entries[1].platform is None  # the whole platform: from the image
    assert spec.entries[2].given == {"variant"}
    assert format_platform(spec.entries[2].platform) == "linux/arm64"
    assert spec.notes == ("list.yaml: manifests[2].platform: arm64 variant v8 is listed as linux/arm64, as buildx "
                          "and containerd write it (clients treat the two alike; manifest-tool keeps the variant)",)


def _with(path: tuple, value) -> dict:
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
        (_with(("manifests", 0, "platform"), {"variant": "v7"}), "names no os and architecture but other fields"),
        (_with(("manifests", 0, "platform", "architecture"), "armel7"), 'manifests[0].platform: '),
        (_with(("manifests", 1, "platform", "os.version"), "ltsc2019"), '"ltsc2019" is not a version'),
        (_with(("manifests", 1, "platform", "osversion"), "10.0.20348.1"), "osversion and os.version disagree"),
        (_with(("manifests", 1, "platform", "features"), "win32k"), "features: expected a list of text"),
        (_with(("manifests", 0, "image"), "ghcr.io/org/app:1.0-arm32v7"), 'is on ghcr.io, the list on localhost:5000'),
        (_with(("image",), "localhost:5000/app@sha256:" + "a" * 64), "the list is published to a tag"),
        (_with(("manifests", 0, "platform", "arch"), "arm"), 'unknown key "arch"'),
        ({**GOOD, "annotations": ["a=b"]}, "annotations: expected a mapping of names to text"),
    ],
)
def test_bad_specs_name_the_place_and_the_fix(doc, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        spec_from_document(doc, "list.yaml")
    assert says in str(caught.value)
    assert caught.value.fix


def test_from_args_fills_the_template_as_manifest_tool_does() -> None:
    spec = spec_from_args(["linux/amd64,linux/arm/v7", "linux/arm64/v8"], "localhost:5000/app:1.0-OS-ARCHVARIANT",
                          "localhost:5000/app:1.0", ["latest,2"], {"org.opencontainers.image.title": "app"})
    # ARCH, OS and VARIANT replaced once each, by the platform as written (arm64/v8 gives arm64v8).
    assert [str(e.image) for e in spec.entries] == [
        "localhost:5000/app:1.0-linux-amd64", "localhost:5000/app:1.0-linux-armv7", "localhost:5000/app:1.0-linux-arm64v8"]
    assert [t.tag for t in spec.tags] == ["latest", "2"]
    assert spec.annotations == (("org.opencontainers.image.title", "app"),)
    with pytest.raises(BadInput, match="no ARCH placeholder"):
        spec_from_args(["linux/amd64"], "localhost:5000/app:1.0", "localhost:5000/app:1.0", [])
    with pytest.raises(BadInput, match='--annotations "title" is not key=value'):
        parse_annotations(["title"])


@pytest.mark.parametrize(
    ("written", "config", "listed", "why"),
    [
        ({"os": "linux", "architecture": "arm"}, "linux/arm/v6", "linux/arm/v6", "the variant comes from the config"),
        ({"os": "linux", "architecture": "arm", "variant": "v7"}, "linux/arm/v6", "linux/arm/v7", "the spec wins"),
        ({"os": "linux", "architecture": "arm64"}, "linux/amd64", "linux/arm64",
         "a mislabelled config lends nothing (verify warns)"),
        ({"os": "windows", "architecture": "amd64"}, "windows(10.0.17763.1879+win32k)/amd64",
         "windows(10.0.17763.1879+win32k)/amd64", "os.version and os.features come from the config"),
        ({"os": "windows", "architecture": "amd64", "osversion": "10.0.20348.1"}, "windows(10.0.17763.1879)/amd64",
         "windows(10.0.20348.1)/amd64", "the spec's os.version wins"),
        (None, "linux/riscv64", "linux/riscv64", "no platform in the spec: the config's"),
    ],
)
def test_the_listed_platform_is_the_specs_with_the_rest_from_the_config(written, config, listed, why) -> None:
    doc = {"image": "localhost:5000/app:1.0", "manifests": [{"image": "localhost:5000/app:x", "platform": written}]}
    entry = spec_from_document(doc, "list.yaml").entries[0]
    assert format_all(listed_platform(entry, parse(config), "here")) == listed, why


def _child(platform: str, digest: str = "", media_type: str = DOCKER_MANIFEST) -> Child:
    digest = digest or "sha256:" + hashlib.sha256(platform.encode()).hexdigest()
    return Child(parse_reference(f"localhost:5000/app@{digest}"), {"mediaType": media_type, "digest": digest},
                 parse(platform), f"localhost:5000/app:{platform_slug(parse(platform))}")


def test_duplicates_are_decided_with_os_version_and_refused() -> None:
    releases = [_child("windows(10.0.17763.1879)/amd64"), _child("windows(10.0.14393.4583)/amd64")]
    _refuse_duplicates(releases)  # two Windows releases are two platforms
    with pytest.raises(BadInput) as caught:
        _refuse_duplicates([*releases, _child("windows(10.0.17763.1879)/amd64", "sha256:" + "e" * 64)])
    assert "windows(10.0.17763.1879)/amd64 is listed twice" in caught.value.message
    assert "sha256:" + "e" * 64 in caught.value.message and "osversion" in caught.value.fix


def test_orchs_order_is_said_and_keep_order_keeps_the_specs() -> None:
    spec_order = [_child("linux/arm/v7"), _child("linux/amd64"), _child("linux/arm/v6")]
    ordered, notes = _ordered(spec_order, keep_order=False)
    assert [format_all(c.platform) for c in ordered] == ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]
    assert notes[0].startswith("order: orch lists linux/amd64, linux/arm/v6, linux/arm/v7 (lower ARM variants first")
    assert "the spec had linux/arm/v7, linux/amd64, linux/arm/v6. --keep-order" in notes[0]
    assert _ordered(spec_order, keep_order=True) == (spec_order, [])
    assert _ordered(ordered, keep_order=False) == (ordered, [])  # nothing moved, nothing said


@pytest.mark.parametrize(
    ("requested", "types", "annotated", "expected"),
    [
        (None, [OCI_MANIFEST, OCI_MANIFEST], False, OCI_INDEX),
        (None, [OCI_MANIFEST, DOCKER_MANIFEST], False, DOCKER_LIST),
        (None, [DOCKER_MANIFEST], True, OCI_INDEX),
        ("docker", [OCI_MANIFEST], False, DOCKER_LIST),
        ("oci", [DOCKER_MANIFEST], False, OCI_INDEX),
    ],
)
def test_the_list_type_is_what_is_asked_else_what_the_sources_are(requested, types, annotated, expected) -> None:
    children = [_child(p, media_type=t) for p, t in zip(["linux/amd64", "linux/arm64"], types, strict=False)]
    assert list_media_type(requested, children, (("a", "b"),) if annotated else ()) == expected


def test_annotations_on_a_docker_list_and_an_unknown_type_are_refused() -> None:
    spec = spec_from_document({**GOOD, "annotations": {"org.opencontainers.image.title": "app"}}, "list.yaml")
    with pytest.raises(BadInput, match="a Docker manifest list carries no annotations"):
        check_options(spec, ListOptions(list_type="docker"))
    with pytest.raises(BadInput, match='--type "v2" is not docker or oci'):
        check_options(spec, ListOptions(list_type="v2"))


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
    *images, attestation = raw["manifests"]
    assert [m["platform"] for m in images] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
        {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1879", "os.features": ["win32k"]},
    ]
    # The armhf source was an index with its provenance: the attestation comes along, last.
    assert attestation["annotations"]["vnd.docker.reference.digest"] == images[2]["digest"]
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


def test_dry_run_says_what_is_read_copied_written_verified_and_promoted(tmp_path: Path) -> None:
    spec = tmp_path / "list.yaml"
    spec.write_text(json.dumps(GOOD))  # JSON is YAML
    result = orch("manifest", "create", "--spec", str(spec), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# read each image; its config fills what the spec leaves out")
    # Only the image from another repository is copied; the rest are there already.
    assert [line for line in lines if line.startswith("# copy")] == [
        "# copy localhost:5000/legacy/app:1.0-aarch64 (registry-side, by digest) into localhost:5000/app"]
    assert "in orch's order (lower ARM variants first)" in lines[2]
    assert lines[-2] == ("orch verify localhost:5000/app@<list digest> --platform linux/arm64,linux/arm/v6,"
                         "linux/arm/v7,windows(10.0.17763.1879+win32k)/amd64 --config-mismatch warn")
    assert lines[-1].startswith("# promote: PUT the verified index localhost:5000/app@<digest> under "
                                "localhost:5000/app:1.0 localhost:5000/app:latest localhost:5000/app:1 ")
    kept = orch("manifest", "create", "--spec", str(spec), "--dry-run", "--keep-order", "--type", "oci")
    assert "# write an OCI index: one entry per platform, in the spec's order" in kept.stdout
    assert "--platform linux/arm/v7,windows(10.0.17763.1879+win32k)/amd64,linux/arm/v6,linux/arm64" in kept.stdout


@pytest.mark.engine
def test_copies_are_retried_on_a_lost_blob_and_every_failure_is_said(registry, tmp_path: Path) -> None:
    """distribution 2.8 answers DIGEST_INVALID when a mounted blob's link was lost under parallel
    requests: the copy mounts again and retries; copies that keep failing are all named."""
    from .faultproxy import FaultProxy, Rule
    from .registry_api import push_image

    proxy = FaultProxy(registry.port).start()
    try:
        push_image(registry.port, "legacy/x86", "1", {"architecture": "amd64", "os": "linux"})
        push_image(registry.port, "legacy/arm", "1", {"architecture": "arm64", "os": "linux"})
        spec = tmp_path / "list.yaml"
        spec.write_text(f"image: {proxy.ref('app', '1.0')}\nmanifests:\n"
                        f"  - image: {proxy.ref('legacy/x86', '1')}\n    platform: {{os: linux, architecture: amd64}}\n"
                        f"  - image: {proxy.ref('legacy/arm', '1')}\n    platform: {{os: linux, architecture: arm64}}\n")
        lost = b'{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}'
        proxy.add(Rule("PUT", r"/v2/app/manifests/sha256:", "status", status=400, body=lost, times=1))
        result = orch("manifest", "create", "--spec", str(spec))
        assert result.returncode == 0, result.stderr
        assert proxy.done("PUT", r"/v2/app/manifests/sha256:").count("status 400") == 1

        proxy.clear()
        proxy.add(Rule("PUT", r"/v2/app/manifests/sha256:", "status", status=400, body=lost, times=99))
        push_image(registry.port, "legacy/x86", "2", {"architecture": "amd64", "os": "linux", "variant": ""})
        push_image(registry.port, "legacy/arm", "2", {"architecture": "arm64", "os": "linux", "variant": "v8"})
        spec.write_text(spec.read_text().replace("app:1.0", "app:2.0").replace("legacy/x86:1", "legacy/x86:2")
                        .replace("legacy/arm:1", "legacy/arm:2"))  # new images: nothing in app holds them yet
        failed = orch("manifest", "create", "--spec", str(spec))
        assert failed.returncode == 1, failed.stderr
        assert "2 copies failed" in failed.stderr and failed.stderr.count("DIGEST_INVALID") >= 2
        assert "Traceback" not in failed.stderr
    finally:
        proxy.stop()
