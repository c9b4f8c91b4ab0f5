"""Signing with cosign (Debian's, the peer client) before any tag moves, and `orch verify --key`,
both ways: cosign accepts what orch signed, orch accepts what cosign signed; an unsigned image,
a wrong key and a signature over another digest fail both. A signature upload the registry
refuses is a failed publish with every tag where it was."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import orch_processes
from .conftest import IN_CI, REPO, Registry
from .faultproxy import FaultProxy, Rule
from .registry_api import digest_at
from .test_build import BASE_ARG

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("cosign") is None:
        message = "cosign is not installed (make engine installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    found = {}
    for name in ("ours", "other"):
        folder = tmp_path_factory.mktemp(name)
        subprocess.run(["cosign", "generate-key-pair"], cwd=folder, check=True, capture_output=True,
                       env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
        found[name], found[f"{name}.pub"] = folder / "cosign.key", folder / "cosign.pub"
    return found


def orch(*args: str) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO,
                              env={**os.environ, "COSIGN_PASSWORD": PASSWORD}, timeout=900)


def cosign_verify(ref: str, pub: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["cosign", "verify", "--key", str(pub), "--insecure-ignore-tlog=true", ref],
                          capture_output=True, text=True, timeout=120)


def build(tag: str, *extra: str) -> subprocess.CompletedProcess:
    return orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64,linux/arm64", "--build-arg", BASE_ARG,
                "-t", tag, "--push", "--json", *extra)


@pytest.mark.engine
def test_orch_signs_before_tags_move_and_both_clients_check_it(registry: Registry, keys) -> None:
    tag = registry.ref("signed/app", "1")
    built = build(tag, "--sign", "--sign-key", str(keys["ours"]))
    assert built.returncode == 0, built.stderr[-3000:]
    digest = json.loads(built.stdout)["digest"]
    assert json.loads(built.stdout)["signature"] == f"{registry.host}/signed/app:{digest.replace(':', '-')}.sig"
    by_digest = f"{registry.host}/signed/app@{digest}"
    assert cosign_verify(by_digest, keys["ours.pub"]).returncode == 0  # the peer accepts what orch signed
    ok = orch("verify", tag, "--platform", "linux/amd64,linux/arm64", "--key", str(keys["ours.pub"]))
    assert ok.returncode == 0 and f"a valid cosign signature covers {digest}" in ok.stdout, ok.stdout
    wrong = orch("verify", tag, "--platform", "linux/amd64,linux/arm64", "--key", str(keys["other.pub"]))
    # Signed, but by another key: said so, with a fix of its own (not "sign it").
    assert wrong.returncode == 1 and f'not signed by key "{keys["other.pub"]}": {digest} has cosign signatures, but ' \
        "none verifies with it" in wrong.stdout and "public half of the key that signed it" in wrong.stdout, wrong.stdout
    assert "fix: sign it" not in wrong.stdout
    assert cosign_verify(by_digest, keys["other.pub"]).returncode != 0


@pytest.mark.engine
def test_what_cosign_signed_verifies_with_orch_and_unsigned_or_other_digests_fail(registry: Registry, keys) -> None:
    signed, unsigned = registry.ref("peer/app", "1"), registry.ref("peer/app", "2")
    first = build(signed)
    assert first.returncode == 0, first.stderr[-3000:]
    digest = json.loads(first.stdout)["digest"]
    signing = subprocess.run(["cosign", "sign", "--yes", "--key", str(keys["ours"]), "--tlog-upload=false",
                              f"{registry.host}/peer/app@{digest}"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    assert signing.returncode == 0, signing.stderr
    ok = orch("verify", signed, "--platform", "linux/amd64,linux/arm64", "--key", str(keys["ours.pub"]))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Another image in the same repository: the signature above covers the other digest only.
    second = build(unsigned, "--label", "another=image")
    assert second.returncode == 0 and json.loads(second.stdout)["digest"] != digest
    refused = orch("verify", unsigned, "--platform", "linux/amd64,linux/arm64", "--key", str(keys["ours.pub"]))
    assert refused.returncode == 1 and "not signed: no cosign signature covers" in refused.stdout, refused.stdout
    assert "fix: sign it" in refused.stdout
    assert cosign_verify(f"{registry.host}/peer/app@{json.loads(second.stdout)['digest']}",
                         keys["ours.pub"]).returncode != 0


@pytest.mark.engine
def test_a_refused_signature_upload_moves_no_tag(registry: Registry, keys) -> None:
    proxy = FaultProxy(registry.port).start()
    try:
        tag = proxy.ref("faulty/app", "1")
        first = build(tag)
        assert first.returncode == 0, first.stderr[-3000:]
        old = digest_at(registry.port, "faulty/app", "1")
        proxy.add(Rule("PUT", r"/manifests/sha256-[0-9a-f]+\.sig$", "status", status=500, times=99))
        failed = build(tag, "--sign", "--sign-key", str(keys["ours"]), "--label", "changed=yes")
        assert failed.returncode == 1, failed.stderr[-3000:]
        assert "signing" in failed.stderr and "failed" in failed.stderr and "no tag was changed" in failed.stderr
        assert digest_at(registry.port, "faulty/app", "1") == old  # where it was
        assert PASSWORD not in failed.stderr + failed.stdout
    finally:
        proxy.stop()


def test_signing_is_refused_before_building_when_it_cannot_work(tmp_path: Path) -> None:
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64", "-t", "localhost:5000/x:1",
                  "--sign", "--sign-key", str(tmp_path / "missing.key"), "--push", "--dry-run")
    if shutil.which("cosign") is None:
        assert result.returncode == 3 and "signing needs cosign" in result.stderr
    else:
        assert result.returncode == 2 and f'--sign-key "{tmp_path / "missing.key"}" is not a file' in result.stderr
    unpushed = orch("build", "-f", "Dockerfile.example", "--platform", "linux/amd64", "-t", "x:1", "--sign",
                    "--dry-run")
    assert unpushed.returncode in (2, 3) and "Traceback" not in unpushed.stderr


@pytest.mark.engine
def test_required_attestations_are_checked_per_platform_and_inspect_summarises_them(registry: Registry) -> None:
    tag = registry.ref("attested/app", "1")
    built = build(tag)
    assert built.returncode == 0, built.stderr[-3000:]
    ok = orch("verify", tag, "--platform", "linux/amd64,linux/arm64", "--require-attestations", "provenance")
    assert ok.returncode == 0 and "provenance attestation present" in ok.stdout, ok.stdout
    missing = orch("verify", tag, "--platform", "linux/amd64,linux/arm64", "--require-attestations", "provenance,sbom")
    assert missing.returncode == 1 and missing.stdout.count("no sbom attestation") == 2, missing.stdout
    shown = orch("inspect", tag)
    # The source is the checkout's remote when it has one (a clone), else the Dockerfile.
    summary = next(line for line in shown.stdout.splitlines() if line.strip().startswith("linux/arm64: provenance:"))
    assert "builder BuildKit, source " in summary and " materials" in summary, shown.stdout
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert f"revision {head[:12]}" in summary
    bare = registry.ref("attested/app", "2")
    assert build(bare, "--provenance", "false").returncode == 0
    none = orch("verify", bare, "--platform", "linux/amd64,linux/arm64", "--require-attestations", "provenance")
    assert none.returncode == 1 and "no provenance attestation" in none.stdout


def test_a_statement_naming_another_image_fails_the_platform() -> None:
    from orchestrator.image.attestations import required_findings
    from orchestrator.image.model import Attestation, Entry, Inspection
    from orchestrator.model.platform_parse import parse

    image, other, att, layer = ("sha256:" + c * 64 for c in "abcd")
    entry = Entry(position=1, digest=image, media_type="application/vnd.oci.image.manifest.v1+json", size=1,
                  platform=parse("linux/amd64"), config=parse("linux/amd64"), config_raw={})
    inspection = Inspection("r/a:1", "application/vnd.oci.image.index.v1+json", "sha256:" + "e" * 64, (entry,),
                            (Attestation(att, 1, image),))

    class Source:
        def manifest(self, digest: str) -> dict:
            return {"layers": [{"digest": layer, "annotations": {"in-toto.io/predicate-type":
                                                                 "https://slsa.dev/provenance/v0.2"}}]}

        def config(self, digest: str) -> dict:
            return {"subject": [{"name": "x", "digest": {"sha256": other.removeprefix("sha256:")}}], "predicate": {}}

    (finding,) = required_findings(inspection, Source(), ("provenance",))
    assert finding.level.value == "fail" and f"names {other[:19]}, not {image[:19]}" in finding.message


@pytest.mark.engine
def test_a_profile_signs_recursively_and_a_kill_during_signing_moves_no_tag(registry: Registry, keys,
                                                                             tmp_path: Path) -> None:
    import signal

    from .waiting import Watched

    profile = tmp_path / "signed.yaml"
    profile.write_text(f"platforms: [linux/amd64, linux/arm64]\ndockerfile: Dockerfile.example\n"
                       f"build_args: {{{BASE_ARG.replace('=', ': ', 1)}}}\n"
                       f"signing: {{sign: true, key: {keys['ours']}, recursive: true}}\n")
    tag = registry.ref("profiled/app", "1")
    built = orch("build", "--profile", str(profile), "-t", tag, "--push", "--json")
    assert built.returncode == 0, built.stderr[-3000:]
    digest = json.loads(built.stdout)["digest"]
    for platform in json.loads(built.stdout)["platforms"]:  # --sign-recursive: each platform's manifest too
        assert cosign_verify(f"{registry.host}/profiled/app@{platform['digest']}", keys["ours.pub"]).returncode == 0

    # A kill while cosign signs: no tag has moved yet, and none moves.
    proxy = FaultProxy(registry.port).start()
    try:
        moved = proxy.ref("profiled/app", "1")
        run = Watched([sys.executable, "-m", "orchestrator", "build", "--profile", str(profile), "-t", moved,
                       "--push", "--label", "changed=yes"], cwd=REPO, start_new_session=True,
                      env={**os.environ, "COSIGN_PASSWORD": PASSWORD})

        def kill(_method: str, _path: str) -> None:
            os.killpg(run.pid, signal.SIGKILL)
            proxy.down = True

        proxy.add(Rule("PUT", r"/manifests/sha256-[0-9a-f]+\.sig$", "hook", hook=kill))
        returncode, _, _ = run.finish()
        assert returncode == -signal.SIGKILL
    finally:
        proxy.stop()
    assert digest_at(registry.port, "profiled/app", "1") == digest  # where it was


@pytest.mark.engine
def test_a_bake_release_and_a_manifest_list_are_signed_before_their_tags_move(registry: Registry, keys,
                                                                                tmp_path: Path) -> None:
    from .registry_api import push_image
    from .test_bake import BAKE_FILE, DOCKERFILE

    for name in ("app", "worker"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "docker-bake.hcl").write_text(BAKE_FILE)
    released = subprocess.run([sys.executable, "-m", "orchestrator", "build", "--bake", "docker-bake.hcl", "release",
                               "--push", "--sign", "--sign-key", str(keys["ours"]), "--json"], capture_output=True,
                              text=True, cwd=tmp_path, timeout=900,
                              env={**os.environ, "COSIGN_PASSWORD": PASSWORD, "REG": registry.host})
    assert released.returncode == 0, released.stderr[-3000:]
    for name, target in json.loads(released.stdout)["targets"].items():
        assert cosign_verify(f"{registry.host}/team/{name}@{target['digest']}", keys["ours.pub"]).returncode == 0

    push_image(registry.port, "legacy/x86", "1", {"architecture": "amd64", "os": "linux"})
    spec = tmp_path / "list.yaml"
    spec.write_text(f"image: {registry.ref('listed/app', '1')}\nmanifests:\n"
                    f"  - image: {registry.ref('legacy/x86', '1')}\n    platform: {{os: linux, architecture: amd64}}\n")
    listed = orch("manifest", "create", "--spec", str(spec), "--sign", "--sign-key", str(keys["ours"]), "--json")
    assert listed.returncode == 0, listed.stderr[-3000:]
    checked = orch("verify", registry.ref("listed/app", "1"), "--platform", "linux/amd64", "--key",
                   str(keys["ours.pub"]))
    assert "a valid cosign signature covers" in checked.stdout, checked.stdout


@pytest.mark.engine
def test_tags_in_other_repositories_and_registries_each_point_at_a_signed_index(registry: Registry, keys,
                                                                                tmp_path: Path) -> None:
    """cosign keeps a signature beside the image and looks only there: an index whose tags are in
    two repositories of two registries is signed in each before any tag moves, so `cosign verify`
    and `orch verify --key` find it at every tag."""
    from .conftest import start_registry

    other = start_registry(tmp_path / "second")
    try:
        tags = [registry.ref("signed/app", "7"), registry.ref("mirror/app", "7"), other.ref("team/app", "7")]
        built = build(tags[0], "-t", tags[1], "-t", tags[2], "--sign", "--sign-key", str(keys["ours"]))
        assert built.returncode == 0, built.stderr[-3000:]
        result = json.loads(built.stdout)
        digest = result["digest"]
        assert sorted(result["signatures"]) == sorted(
            f"{host}/{repository}:{digest.replace(':', '-')}.sig" for host, repository in
            ((registry.host, "signed/app"), (registry.host, "mirror/app"), (other.host, "team/app")))
        for tag in tags:
            repository = tag.rpartition(":")[0]
            assert cosign_verify(f"{repository}@{digest}", keys["ours.pub"]).returncode == 0, tag
            checked = orch("verify", tag, "--platform", "linux/amd64,linux/arm64", "--key", str(keys["ours.pub"]))
            assert checked.returncode == 0 and f"a valid cosign signature covers {digest}" in checked.stdout, \
                checked.stdout
    finally:
        other.stop()
