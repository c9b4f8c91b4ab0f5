"""orch build: plans without an engine, builds against the real one."""

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from orchestrator.builds.options import BuilderOptions, TagOptions
from orchestrator.builds.request import BuildRequest, plan_build
from orchestrator.docker.progress import failed_platforms, is_transient_push_failure
from orchestrator.errors import BadInput
from orchestrator.model.platform_parse import parse, parse_all

from . import orch_processes
from .conftest import ONE_CALL, REPO, sh

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
BASE_ARG = "BASE_IMAGE=localhost:5000/orch/busybox:stable"


def orch(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], env={**os.environ, **(env or {})},
                              cwd=cwd or REPO, timeout=900)


def index_digest(ref: str) -> str:
    out = sh("docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}")
    return json.loads(out.stdout)["digest"]


# -- plans (no engine) ------------------------------------------------------


def test_plan_is_one_buildx_call_into_a_private_layout_in_safe_order() -> None:
    plan = plan_build(BuildRequest(profile="arm-all", dockerfile="Dockerfile.example", tags=TagOptions(("localhost:5000/a/b:1",)),
                                   push=True, build_args=(BASE_ARG,)), now=NOW, cwd=REPO)
    build_commands = [c for c in plan.commands() if c.startswith("docker buildx build")]
    assert len(build_commands) == 1
    args = plan.build_command
    assert args[args.index("--platform") + 1] == "linux/arm64,linux/arm/v6,linux/arm/v7"
    # Nothing is pushed under any tag by buildx: it writes a layout private to this run.
    assert args[args.index("--output") + 1] == f"type=oci,dest={plan.stage_dir}/all,tar=false"
    assert f"-{os.getpid()}-" in plan.stage_dir
    assert "--push" not in args
    assert "--build-arg" in args and BASE_ARG in args
    assert "--metadata-file" in args
    # The layout is verified, uploaded by digest, verified again, and only then does the tag move.
    commands = plan.commands()
    # This run's temporary paths print as placeholders: they differ on every run.
    assert "--output type=oci,dest=<stage-dir>/all,tar=false --metadata-file <metadata>.json" in commands[0]
    assert commands[1].startswith("orch verify oci-layout://<stage-dir>/all ")
    assert commands[2].startswith("# upload <stage-dir>/all to localhost:5000/a/b by digest (no tag)")
    assert commands[3].startswith("orch verify localhost:5000/a/b@")
    assert commands[4].startswith("# promote: PUT the verified index localhost:5000/a/b@<digest> under "
                                  "localhost:5000/a/b:1 ")


def test_cli_platforms_tags_and_args_override_the_profile() -> None:
    plan = plan_build(BuildRequest(profile="arm-all", dockerfile="Dockerfile.example", platforms=("x86_64,aarch64",),
                                   tags=TagOptions(("localhost:5000/a/b:1", "localhost:5000/a/b:latest")),
                                   build_args=("A=1", "A=2")), now=NOW, cwd=REPO)
    assert [str(p) for p in plan.platforms] == ["linux/amd64", "linux/arm64"]
    assert plan.build_args == {"A": "2"}
    assert [str(t) for t in plan.tags] == ["localhost:5000/a/b:1", "localhost:5000/a/b:latest"]
    assert plan.local_image == "localhost:5000/a/b:1,localhost:5000/a/b:latest"


def test_plan_labels_come_from_git() -> None:
    plan = plan_build(BuildRequest(profile="common", dockerfile="Dockerfile.example"), now=NOW, cwd=REPO)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert plan.labels["org.opencontainers.image.revision"] == head
    assert plan.labels["org.opencontainers.image.created"] == "2026-11-23T12:00:00Z"


def test_source_date_epoch_sets_the_created_label(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    plan = plan_build(BuildRequest(profile="common", dockerfile="Dockerfile.example"), cwd=REPO)
    assert plan.labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BadInput, match='SOURCE_DATE_EPOCH "yesterday"'):
        plan_build(BuildRequest(profile="common", dockerfile="Dockerfile.example"), cwd=REPO)


def test_profile_tag_templates_are_rendered(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "p.yaml").write_text("platforms: [arm64]\ntags: ['localhost:5000/x/y:{date}-{profile}']\n")
    plan = plan_build(BuildRequest(profile=str(tmp_path / "p.yaml"), context=str(tmp_path)), now=NOW, cwd=tmp_path)
    assert [str(t) for t in plan.tags] == ["localhost:5000/x/y:20261123-p"]


@pytest.mark.parametrize(
    "request_kwargs, says",
    [
        ({"profile": "arm-al"}, 'unknown profile "arm-al"'),
        ({"profile": "arm-all", "platforms": ("linux/armv9",)}, 'unknown platform "linux/armv9"'),
        ({"profile": "arm-all", "dockerfile": "Dockerfile.example", "push": True}, "--push needs a tag"),
        ({"profile": "arm-all", "dockerfile": "Nope.dockerfile"}, 'Dockerfile "Nope.dockerfile" not found'),
        ({"profile": "arm-all", "context": "no/such/dir"}, 'build context "no/such/dir" is not a directory'),
        ({"profile": "arm-all", "dockerfile": "Dockerfile.example", "tags": TagOptions(("Bad/Name:1",))}, "invalid repository"),
        ({"profile": "arm-all", "dockerfile": "Dockerfile.example", "build_args": ("1X=2",)}, "not a valid argument"),
    ],
)
def test_bad_requests_are_bad_input(request_kwargs: dict, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        plan_build(BuildRequest(**request_kwargs), now=NOW, cwd=REPO)
    assert says in caught.value.message


def test_dry_run_prints_commands_and_touches_nothing() -> None:
    result = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "-t", "localhost:1/a/b:1", "--push",
                  "--dry-run", "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["platforms"] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]
    assert plan["staging"] == "localhost:1/a/b@<digest> (no tag)"


def test_unknown_platform_exits_2_without_traceback() -> None:
    result = orch("build", "--platform", "linux/armv9", "-f", "Dockerfile.example", "--dry-run")
    assert result.returncode == 2
    assert 'unknown platform "linux/armv9"' in result.stderr and "Traceback" not in result.stderr


def test_failed_platforms_are_read_from_plain_progress() -> None:
    log = [
        "#9 [linux/arm64 2/3] RUN echo ok",
        "#10 [linux/arm/v6 2/3] RUN test \"$(uname -m)\" != armv7l",
        "#10 ERROR: process \"/bin/sh -c test\" did not complete successfully: exit code: 1",
        "#9 DONE 0.2s",
    ]
    assert failed_platforms(log) == {parse("linux/arm/v6"): 'RUN test "$(uname -m)" != armv7l'}


@pytest.mark.parametrize(
    "log, transient",
    [
        (["#21 pushing layer c8d6 done",
          "#21 ERROR: unexpected status from HEAD request to http://localhost:5/v2/a/manifests/t: "
          "500 Internal Server Error",
          "ERROR: unexpected status from HEAD request to http://localhost:5/v2/a/manifests/t: "
          "500 Internal Server Error"], True),
        (["#10 [linux/arm/v6 2/3] RUN false", "#10 ERROR: process did not complete successfully: exit code: 1",
          "ERROR: failed to solve: process did not complete successfully"], False),
        (["ERROR: failed to solve: dockerfile parse error on line 3"], False),
        (["#21 ERROR: unexpected status from HEAD request to http://r/v2/a/manifests/t: 401 Unauthorized"], False),
        # Two nodes pushing a layer their platforms share into one repository (seen on the remote builder).
        (["#8 pushing manifest for localhost:5/cache/app 0.0s done",
          "#8 ERROR: failed to push localhost:5/cache/app: errors:",
          "unknown: provided digest did not match uploaded content",
          "unknown: blob unknown to registry - sha256:0070fc942be9e29ea09eff3d1ef2c2373a21c9092b2e79650a4b49470407f48d",
          "ERROR: failed to solve: failed to push localhost:5/cache/app: errors:",
          "unknown: provided digest did not match uploaded content"], True),
        (["#8 ERROR: failed to push localhost:5/cache/app: denied: requested access to the resource is denied",
          "ERROR: failed to solve: failed to push localhost:5/cache/app: denied"], False),
    ],
)
def test_only_registry_stumbles_after_a_good_build_are_retried(log: list[str], transient: bool) -> None:
    assert is_transient_push_failure(log) is transient


# -- against the real engine ------------------------------------------------


@pytest.mark.engine
def test_arm_all_build_publishes_a_verified_index(registry) -> None:
    tag = registry.ref("demo/app", "1.0")
    result = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                  "-t", tag, "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads(result.stdout)
    # Checked independently, with raw buildx.
    raw = json.loads(sh("docker", "buildx", "imagetools", "inspect", tag, "--format", "{{json .}}").stdout)
    assert raw["manifest"]["digest"] == doc["digest"]
    entries = [m for m in raw["manifest"]["manifests"]
               if (m.get("annotations") or {}).get("vnd.docker.reference.type") != "attestation-manifest"]
    platforms = ["/".join(filter(None, [m["platform"]["os"], m["platform"]["architecture"],
                                        m["platform"].get("variant")])) for m in entries]
    assert platforms == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]
    for key, config in raw["image"].items():
        assert "/".join(filter(None, [config["os"], config["architecture"], config.get("variant")])) == key
    assert [p["platform"] for p in doc["platforms"]] == platforms
    ran = sh("docker", "run", "--rm", "--pull=always", "--platform", "linux/arm64", tag)
    assert "running-on=aarch64" in ran.stdout


@pytest.mark.engine
def test_a_failing_platform_leaves_the_old_tag_alone(registry, tmp_path: Path) -> None:
    tag = registry.ref("demo/app", "stable")
    good = orch("build", "--platform", "linux/arm64,linux/arm/v7", "-f", "Dockerfile.example",
                "--build-arg", BASE_ARG, "-t", tag, "--push")
    assert good.returncode == 0, good.stderr[-3000:]
    before = index_digest(tag)

    ctx = tmp_path / "breaks-on-v7"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "RUN if [ \"$(uname -m)\" = armv7l ]; then echo broken on purpose >&2; exit 3; fi\n"
    )
    bad = orch("build", str(ctx), "--platform", "linux/arm64,linux/arm/v7", "--build-arg", BASE_ARG,
               "-t", tag, "--push")
    assert bad.returncode == 1, bad.stderr[-3000:]
    assert "no tag was changed" in bad.stderr
    assert re.search(r"linux/arm/v7( on node \S+)?: failed at", bad.stderr), bad.stderr[-3000:]
    assert "Traceback" not in bad.stderr
    assert index_digest(tag) == before


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # into the daemon's store (BuildKit's builders: test_buildkit_builders)
def test_build_without_push_keeps_all_platforms_locally(tmp_path: Path) -> None:
    name = f"orch-test/local-{os.getpid()}:dev"
    result = orch("build", "--platform", "linux/arm64,linux/arm/v7", "-f", "Dockerfile.example",
                  "--build-arg", BASE_ARG, "-t", name)
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "local image store" in result.stdout
        assert f"nothing was pushed (add --push to verify and publish docker.io/{name})" in result.stdout
        ran = sh("docker", "run", "--rm", "--platform", "linux/arm/v7", name)
        assert "running-on=armv7l" in ran.stdout
    finally:
        subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True)


@pytest.mark.engine
def test_unknown_builder_exits_2(registry) -> None:
    result = orch("build", "--builder", "no-such-builder", "--platform", "linux/arm64", "-f", "Dockerfile.example",
                  "--build-arg", BASE_ARG, "-t", registry.ref("x/y", "1"), "--push")
    assert result.returncode == 2, result.stderr
    assert 'unknown builder "no-such-builder"' in result.stderr


def test_build_without_a_daemon_exits_3(tmp_path: Path) -> None:
    result = orch("build", "--platform", "linux/arm64", "-f", "Dockerfile.example", "-t", "localhost:5000/x/y:1",
                  "--push", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert result.returncode == 3, result.stderr
    assert "no Docker daemon answers" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.engine
@pytest.mark.parametrize("strategy", ["single", "per-arch"])  # per-arch: on the merged index
def test_profile_annotations_land_on_the_index_and_each_manifest(registry, tmp_path: Path, strategy: str,
                                                                  request: pytest.FixtureRequest) -> None:
    if strategy == "single" and not ONE_CALL:
        request.getfixturevalue("daemons_own_builder")  # a builder of several nodes makes no single call
    profile = tmp_path / "annotated.yaml"
    profile.write_text(f"platforms: [arm64, armhf]\nstrategy: {strategy}\n"
                       "annotations: {org.opencontainers.image.description: multi-arch demo}\n"
                       f"build_args: {{{BASE_ARG.replace('=', ': ', 1)}}}\n")
    tag = registry.ref("demo/annotated", "1")
    result = orch("build", "--profile", str(profile), "-f", "Dockerfile.example", "-t", tag, "--push")
    assert result.returncode == 0, result.stderr[-3000:]
    index = json.loads(sh("docker", "buildx", "imagetools", "inspect", tag, "--raw").stdout)
    assert index["annotations"]["org.opencontainers.image.description"] == "multi-arch demo"
    child = index["manifests"][0]["digest"]
    manifest = json.loads(sh("docker", "buildx", "imagetools", "inspect", f"{tag.rsplit(':', 1)[0]}@{child}",
                             "--raw").stdout)
    assert manifest["annotations"]["org.opencontainers.image.description"] == "multi-arch demo"


def test_missing_emulators_are_named_with_the_reason() -> None:
    from orchestrator.docker.emulation import BinfmtHandler, install_command, missing_emulators

    arm = BinfmtHandler("qemu-arm", True, "/usr/bin/qemu-arm-static", "OCF")
    s390x = BinfmtHandler("qemu-s390x", True, "/usr/bin/qemu-s390x-static", "")
    wanted = parse_all(["linux/amd64", "linux/386", "linux/arm/v7", "linux/arm64", "linux/s390x"])
    assert missing_emulators(wanted, "x86_64", [arm, s390x]) == {
        parse("linux/arm64"): "no qemu-aarch64 binfmt handler",
        parse("linux/s390x"): "qemu-s390x handler lacks the F flag",
    }
    # On an arm64 host the ARM platforms are native and amd64 needs QEMU.
    assert list(missing_emulators(wanted, "aarch64", [])) == parse_all(["linux/amd64", "linux/386", "linux/s390x"])
    assert missing_emulators([parse("linux/arm64")], "x86_64", None) == {parse("linux/arm64"): "binfmt_misc is not mounted"}
    assert install_command(parse_all(["linux/arm64", "linux/s390x"])) == [
        "run", "--privileged", "--rm", "tonistiigi/binfmt", "--install", "arm64,s390x"]


def test_install_emulators_flag_overrides_the_profile() -> None:
    plan = plan_build(BuildRequest(profile="arm-all", dockerfile="Dockerfile.example",
                                   builder=BuilderOptions(install_emulators=True)),
                      now=NOW, cwd=REPO)
    assert plan.install_emulators is True
    assert plan_build(BuildRequest(profile="arm-all", dockerfile="Dockerfile.example"),
                      now=NOW, cwd=REPO).install_emulators is False


@pytest.mark.engine
def test_a_quiet_publish_imports_neither_python_on_whales_nor_structlog(registry) -> None:
    """The build path runs buildx as a plain process and logs nothing under -q: python-on-whales
    (~0.25 s) and structlog (~0.1 s) would only delay it."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "orchestrator", "-q", "build", "--profile",
                             "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                             "-t", registry.ref("app", "1"), "--push"],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    unwanted = sorted(m for m in imported if m.split(".")[0] in ("python_on_whales", "structlog", "typer.rich_utils",
                                                                 "http"))  # http: the stdlib's client
    assert unwanted == [], unwanted
