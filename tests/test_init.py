"""`orch init` (profile from what the base images publish, orch.mk, CI workflows) and shell
completion: the generated Makefile targets are run for real, the workflows parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.authoring.scaffold import base_images

from . import orch_processes
from .conftest import REPO, Registry
from .registry_api import digest_at

ORCH = str(Path(sys.executable).parent / "orch")
SEED = "localhost:5000/orch/busybox:stable"


def orch(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return orch_processes.run([ORCH, *args], cwd=cwd, env={**os.environ, **(env or {})}, timeout=900)


def test_base_images_are_the_stages_that_run_on_the_target_platform() -> None:
    dockerfile = ("ARG BASE=debian:12\nARG GO=golang:1.22\n"
                  "FROM --platform=$BUILDPLATFORM ${GO} AS build\nRUN go build\n"
                  "FROM ${BASE} AS runtime\nCOPY --from=build /app /app\n"
                  "FROM runtime AS final\n"
                  "FROM scratch AS export\n"
                  "FROM \\\n  alpine:3.20\n")
    assert base_images(dockerfile) == ["debian:12", "alpine:3.20"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "webapp"
    directory.mkdir()
    (directory / "Dockerfile").write_text(
        f"ARG BASE={SEED}\nFROM --platform=$BUILDPLATFORM ${{BASE}} AS tools\nRUN true\n"
        "FROM ${BASE}\nRUN uname -m > /etc/built-on\nCMD [\"cat\", \"/etc/built-on\"]\n")
    return directory


@pytest.mark.engine
def test_init_proposes_what_the_base_image_publishes_and_never_overwrites(project: Path) -> None:
    result = orch("init", str(project), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    # The seeded base publishes nine linux platforms: the three most images ship are proposed (orch's
    # order), the others named.
    assert document["platforms"] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert document["left_out"] == ["linux/arm/v5", "linux/arm/v6", "linux/386", "linux/ppc64le", "linux/s390x",
                                    "linux/riscv64"]
    assert document["why"] == f"every platform {SEED} publishes, of linux/amd64, arm64 and arm/v7"
    shown = orch("init", str(project), "--profile", "shown")
    assert "left out: linux/arm/v5,linux/arm/v6,linux/386,linux/ppc64le,linux/s390x,linux/riscv64 (the base " \
        "images publish them too: add them under platforms: in profiles/shown.yaml, or pass --platform)" in shown.stdout
    asked = json.loads(orch("init", str(project), "--platform", "linux/s390x,linux/amd64", "--profile", "asked",
                            "--json").stdout)
    assert asked["platforms"] == ["linux/amd64", "linux/s390x"] and asked["why"] == "asked with --platform"
    profile = project / "profiles" / "webapp.yaml"
    assert yaml.safe_load(profile.read_text())["platforms"] == document["platforms"]
    before = profile.read_text()
    profile.write_text(before + "# edited\n")
    again = orch("init", str(project), "--makefile")
    assert again.returncode == 2 and "exists; orch init does not overwrite it" in again.stderr
    assert profile.read_text().endswith("# edited\n") and not (project / "orch.mk").exists()  # nothing written
    assert orch("init", str(project), "--force").returncode == 0 and profile.read_text() == before


@pytest.mark.engine
def test_the_generated_makefile_builds_pushes_verifies_and_inspects(registry: Registry, project: Path) -> None:
    assert orch("init", str(project), "--makefile", "--image", registry.ref("team/webapp").rsplit(":", 1)[0]
                ).returncode == 0
    variables = [f"ORCH={ORCH}", "TAG=1", "PLATFORMS=linux/amd64,linux/arm64"]
    for target in ("push", "verify", "inspect"):
        ran = subprocess.run(["make", "-f", "orch.mk", target, *variables], capture_output=True, text=True,
                             cwd=project, timeout=900)
        assert ran.returncode == 0, f"{target}:\n{ran.stdout}\n{ran.stderr[-3000:]}"
        if target == "inspect":
            assert "linux/arm64" in ran.stdout and "config linux/arm64" in ran.stdout
    assert digest_at(registry.port, "team/webapp", "1") is not None


def test_the_generated_ci_workflows_are_what_their_runners_read(tmp_path: Path) -> None:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    assert orch("init", str(directory), "--ci", "github", "--image", "ghcr.io/acme/svc",
                "--install", "orch-multiarch==0.1.0").returncode == 0
    workflow = yaml.safe_load((directory / ".github" / "workflows" / "image.yml").read_text())
    steps = workflow["jobs"]["image"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses[:6] == ["actions/checkout", "actions/setup-python", "", "docker/setup-qemu-action",
                        "docker/setup-buildx-action", "docker/login-action"]  # orch installed before any login
    assert steps[2]["run"] == 'pip install "$ORCH_INSTALL"'
    assert workflow["env"] == {"ORCH_INSTALL": "orch-multiarch==0.1.0", "ORCH_IMAGE": "ghcr.io/acme/svc"}
    assert steps[-2]["run"].splitlines()[-1] == 'orch build --profile svc --image "$ORCH_IMAGE" --report orch-report.html "$@"'
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads `on` as true, as PyYAML does

    other = tmp_path / "svc2"
    other.mkdir()
    (other / "Dockerfile").write_text("FROM scratch\n")
    assert orch("init", str(other), "--ci", "gitlab", "--install", "orch-multiarch==0.1.0").returncode == 0
    pipeline = yaml.safe_load((other / ".gitlab-ci.yml").read_text())
    job = pipeline["image-build"]
    assert pipeline[".orch"]["services"] == ["docker:27-dind"] and job["artifacts"]["reports"]["dotenv"] == "build.env"
    assert pipeline["variables"]["ORCH_IMAGE"] == "$CI_REGISTRY_IMAGE"
    assert any(line.startswith('orch build --profile svc2 --image "$ORCH_IMAGE"') for line in job["script"])
    bad = orch("init", str(other), "--ci", "jenkins")
    assert bad.returncode == 2 and '--ci "jenkins" is not github or gitlab' in bad.stderr
    missing = orch("init", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no Dockerfile at" in missing.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"_ORCH_COMPLETE": "complete_bash", "COMP_WORDS": "orch build --profile ar", "COMP_CWORD": "3"}, "arm-all"),
        ({"_ORCH_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "orch verify r/a:1 --profile p"}, "pi"),
        ({"_ORCH_COMPLETE": "complete_fish", "_TYPER_COMPLETE_ARGS": "orch build --profile com",
          "_TYPER_COMPLETE_FISH_ACTION": "get-args"}, "common"),
        ({"_ORCH_COMPLETE": "complete_bash", "COMP_WORDS": "orch build --platform linux/amd64,linux/arm",
          "COMP_CWORD": "3"}, "linux/amd64,linux/arm/v7"),
    ],
)
def test_shells_complete_profile_and_platform_names(env: dict[str, str], expected: str) -> None:
    result = orch(env=env)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_completion_scripts_install_for_each_shell() -> None:
    for shell in ("bash", "zsh", "fish"):
        shown = orch("--show-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
        assert shown.returncode == 0 and "_ORCH_COMPLETE" in shown.stdout, shown.stderr
