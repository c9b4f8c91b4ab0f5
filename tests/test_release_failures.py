"""`orch release` that fails, as CI sees it: `failed-platform` and `failed-step` say where, whatever
failed, and an unreachable registry is exit 3 (README, "Exit codes"), also when it is the registry
of a tag rather than of the parts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from . import test_release_parts as parts
from .test_release_parts import THREE, part, release, three_parts


def outputs(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    written = tmp_path / "outputs"
    ran = release(*args, env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(written), "CI": "true"})
    lines = written.read_text().splitlines() if written.exists() else []
    return ran, dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith((" ", "{", "}")))


@pytest.mark.slow  # orch retries a registry that does not answer, with backoff: two seconds
def test_an_unreachable_registry_is_exit_3_and_names_every_platform_and_the_step(tmp_path: Path) -> None:
    three_parts(tmp_path / "parts")  # in localhost:5999, where nothing listens
    ran, said = outputs(tmp_path, str(tmp_path / "parts"), "--platform", THREE, "-t", f"{parts.REPO_NAME}:1")
    assert ran.returncode == 3, ran.stderr
    assert "cannot reach the registry localhost:5999" in ran.stderr and "Traceback" not in ran.stderr
    assert said["result"] == "failure"
    assert said["failed-platform"] == THREE and said["failed-step"] == "reading the parts"


def test_parts_refused_before_the_registry_is_read_name_the_step_too(tmp_path: Path) -> None:
    part(tmp_path / "parts", "linux/amd64", parts.A)
    part(tmp_path / "parts", "linux/arm64", parts.B)
    ran, said = outputs(tmp_path, str(tmp_path / "parts"), "--platform", "linux/amd64", "-t", f"{parts.REPO_NAME}:1")
    assert ran.returncode == 2, ran.stderr
    assert said["failed-platform"] == "linux/amd64" and said["failed-step"] == "checking the parts"
    ran, said = outputs(tmp_path, str(tmp_path / "parts"), "--platform", THREE, "-t", f"{parts.REPO_NAME}:1")
    assert ran.returncode == 1  # a missing part names its platform, as before
    assert said["failed-platform"] == "linux/arm/v7" and said["failed-step"] == "no part"


@pytest.mark.engine
def test_a_tag_on_an_unreachable_registry_is_exit_3_and_moves_no_tag(tmp_path: Path, engine_ready: None) -> None:
    """The parts are in the running registry; one tag names a registry nothing answers for."""
    import json
    import urllib.request

    repository = "localhost:5000/orch-release-failures/app"
    copied = subprocess.run(["docker", "buildx", "imagetools", "create", "-t", f"{repository}:src",
                             "localhost:5000/orch/busybox:stable"], capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stderr
    request = urllib.request.Request(f"http://localhost:5000/v2/{repository.split('/', 1)[1]}/manifests/src",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.list.v2+json,"
                                                        "application/vnd.oci.image.index.v1+json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        entries = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
                   for m in json.load(answer)["manifests"] if "variant" not in m["platform"]}
    for platform in ("linux/amd64", "linux/arm64"):
        part(tmp_path / "parts", platform, entries[platform], repository=repository)
    ran, said = outputs(tmp_path, str(tmp_path / "parts"), "--platform", "linux/amd64,linux/arm64",
                        "-t", f"{repository}:released", "-t", "localhost:5999/elsewhere/app:1")
    assert ran.returncode == 3, ran.stderr
    assert "cannot reach the registry localhost:5999" in ran.stderr and "no tag was changed" in ran.stderr
    assert said["failed-platform"] == "linux/amd64,linux/arm64" and said["failed-step"]
    with pytest.raises(urllib.error.HTTPError):  # the tag in the reachable registry did not move either
        urllib.request.urlopen(f"http://localhost:5000/v2/{repository.split('/', 1)[1]}/manifests/released",
                               timeout=30)
