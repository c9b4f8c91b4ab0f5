"""Bake files in (`orch build --bake`: every target verified before any tag of any target moves,
then all their tags together) and out (`orch profiles export-bake`), against the real engine."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import BadInput
from orchestrator.model.platform import format_platform
from orchestrator.model.platform_parse import parse
from orchestrator.profiles import load
from orchestrator.release.bake_files import attributes, export_bake, targets_from
from orchestrator.release.bake_release import failed_targets

from . import orch_processes
from .conftest import ONE_CALL, REPO, TEST_BUILDER, Registry
from .faultproxy import FaultProxy, Rule
from .registry_api import digest_at, raw_manifest

BASE = "localhost:5000/orch/busybox:stable"  # seeded by `make engine`


def _printed(**target: object) -> dict:
    return {"target": {"app": {"context": ".", "dockerfile": "Dockerfile", "tags": ["r.test/app:1"], **target}}}


def test_resolved_targets_become_orch_builds_in_orchs_order() -> None:
    (target,) = targets_from(_printed(platforms=["linux/arm/v7", "linux/amd64", "linux/arm/v6"],
                                      output=["type=registry"]))
    assert [format_platform(p) for p in target.platforms] == ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]
    staged = target.staged("/tmp/layout")
    assert staged["output"] == ["type=oci,dest=/tmp/layout,tar=false"]  # the target's own output is replaced
    assert staged["platforms"] == ["linux/amd64", "linux/arm/v6", "linux/arm/v7"]
    (defaulted,) = targets_from(_printed(), host=parse("linux/arm64"))  # bake builds for the host by default
    assert defaulted.platforms == (parse("linux/arm64"),)


def test_on_a_builder_of_several_nodes_each_platform_is_a_bake_target_pushed_by_digest() -> None:
    from orchestrator.release.bake_release import ReleasePlan

    (target,) = targets_from(_printed(platforms=["linux/arm64", "linux/amd64"], annotations=[
        "index:org.opencontainers.image.description=demo", "manifest:org.opencontainers.image.vendor=acme",
        "index,manifest:org.opencontainers.image.title=app"]))
    plan = ReleasePlan((target,), ("docker-bake.hcl",), "/tmp/stage",
                       nodes={"linux/amd64": ("n1", True), "linux/arm64": ("n2", True)})
    resolved = plan.resolved()
    assert list(resolved["target"]) == ["app--linux-amd64", "app--linux-arm64"]  # orch's order
    one = resolved["target"]["app--linux-arm64"]
    assert one["platforms"] == ["linux/arm64"] and one["tags"] == []  # no tag: buildx would write it
    assert one["output"] == ["type=image,name=r.test/app,push-by-digest=true,name-canonical=true,push=true"]
    assert plan.failure("app--linux-arm64", "at RUN make") == "target app: linux/arm64 at RUN make"
    # The list orch merges carries the index-level annotations.
    assert target.index_annotations() == {"org.opencontainers.image.description": "demo",
                                          "org.opencontainers.image.title": "app"}


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ({"output": ["type=local,dest=out"]}, 'bake target "app" writes to "type=local"'),
        ({"output": ["type=docker"]}, '"type=docker"'),
        ({"output": ["type=image,push=false"]}, '"type=image"'),
        ({"tags": []}, 'bake target "app" has no tags'),
        ({"platforms": ["linux/armv9"]}, 'bake target "app": unknown platform "linux/armv9"'),
    ],
)
def test_targets_orch_cannot_publish_are_refused_saying_why(target: dict, says: str) -> None:
    with pytest.raises(BadInput) as caught:
        targets_from(_printed(**target))
    assert says in caught.value.message and caught.value.fix


def test_an_image_output_that_pushes_is_a_registry_output() -> None:
    assert targets_from(_printed(output=["type=image,push=true"]))[0].name == "app"


@pytest.mark.parametrize("output", ["./bin", "type=local,dest=./bin", {"type": "local", "dest": "./bin"}])
def test_a_bare_path_is_a_local_output_in_either_print_form(output: object) -> None:
    with pytest.raises(BadInput) as caught:
        targets_from(_printed(output=[output]))
    assert 'writes to "type=local"' in caught.value.message


# -- what bake prints, as each buildx prints it ---------------------------------------
# tests/fixtures/bake: bake files from public projects (README.md there), and what
# `docker buildx bake --print` gave for each with buildx 0.13.1 (entries as strings,
# `type=registry`) and 0.30.1 (entries as objects, {"type": "registry"}); print.sh records them.

FIXTURES = Path(__file__).parent / "fixtures" / "bake"
BUILDX = ("0.13.1", "0.30.1")
LISTS = ("output", "attest", "cache-from", "cache-to", "secret", "ssh")


def _fixture(name: str, version: str) -> dict[str, Any]:
    printed: dict[str, Any] = json.loads((FIXTURES / f"{name}.buildx-{version}.json").read_text())
    return printed


def _fixtures() -> list[str]:
    return sorted({path.name.split(".buildx-")[0] for path in FIXTURES.glob("*.buildx-*.json")})


def test_each_buildx_prints_the_lists_its_own_way() -> None:
    """The oracle for the tests below: 0.13.1 printed strings, 0.30.1 objects (else they test one form)."""
    for name in _fixtures():
        for version, form in zip(BUILDX, (str, dict), strict=True):
            if not (FIXTURES / f"{name}.buildx-{version}.json").exists():
                continue
            entries = [e for t in _fixture(name, version)["target"].values() for key in LISTS for e in t.get(key, [])]
            assert entries and all(isinstance(e, form) for e in entries), (name, version, entries)


def _verdict(printed: dict[str, Any], target: str) -> str:
    """What orch makes of one printed target: the platforms it builds, or why it refuses."""
    try:
        (built,) = targets_from({"target": {target: printed["target"][target]}}, host=parse("linux/amd64"))
    except BadInput as exc:
        return exc.message
    return ",".join(format_platform(p) for p in built.platforms)


REFUSED = '": orch publishes to a registry, and only after verifying what was built'


@pytest.mark.parametrize("version", BUILDX)
@pytest.mark.parametrize(
    ("fixture", "target", "verdict"),
    [
        ("apme-implicare", "app", "linux/amd64"),  # output = ["type=registry"], registry and gha caches
        ("apme-implicare", "app-local", 'bake target "app-local" writes to "type=docker' + REFUSED),
        ("buildx-read-targets-mixed", "image-release", "linux/amd64"),  # type=image,push=true
        ("buildx-read-targets-mixed", "image", 'bake target "image" writes to "type=docker' + REFUSED),
        ("bakeme", "default", "linux/amd64,linux/arm64,linux/riscv64"),  # attest, no output
        ("bakeme", "test", 'bake target "test" writes to "type=cacheonly' + REFUSED),
        ("buildkit-caching", "app", 'bake target "app" writes to "type=image' + REFUSED),  # no push
        ("buildkit-caching", "base", 'bake target "base" writes to "type=cacheonly' + REFUSED),
        ("buildkit-secrets", "build", 'bake target "build" writes to "type=cacheonly' + REFUSED),
    ],
)
def test_both_print_forms_are_accepted_and_refused_alike(fixture: str, target: str, verdict: str, version: str) -> None:
    assert _verdict(_fixture(fixture, version), target) == verdict


def test_attestations_written_as_objects_print_under_0_30_only() -> None:
    """sumologic's attest = [{type = "provenance", disabled = true}]: 0.13.1 refuses the file (orch
    says so, exit 2, from bake's error); 0.30.1 prints it, and orch builds the target."""
    assert "element 0: string required" in (FIXTURES / "sumologic-containers.buildx-0.13.1.error.txt").read_text()
    printed = _fixture("sumologic-containers", "0.30.1")
    assert _verdict(printed, "standard") == "linux/amd64"
    assert [attributes(e) for e in printed["target"]["standard"]["attest"]] == [
        {"type": "provenance", "disabled": "true"}, {"type": "sbom", "disabled": "true"}]


@pytest.mark.parametrize("fixture", ["apme-implicare", "bakeme", "buildkit-caching", "buildkit-secrets",
                                     "buildx-read-targets-mixed"])
def test_every_list_reads_the_same_from_either_print_form(fixture: str) -> None:
    old, new = (_fixture(fixture, version)["target"] for version in BUILDX)
    assert sorted(old) == sorted(new)
    for target in old:
        for key in LISTS:
            read = [[attributes(e, bare="dest" if key == "output" else "id") for e in printed[target].get(key, [])]
                    for printed in (old, new)]
            if key == "secret":  # 0.30.1 prints type=env,id=X (no env name) as {"id": X}: the same secret
                read[0] = [{k: v for k, v in fields.items() if (k, v) != ("type", "env")} for fields in read[0]]
            assert read[0] == read[1], (fixture, target, key)


def test_the_failing_target_and_platform_are_read_from_bakes_progress() -> None:
    lines = [  # recorded from a real bake of two targets (buildx 0.13)
        '#12 [app linux/arm64 2/2] RUN if [ "1" = 1 ]; then exit 3; fi',
        '#15 [worker linux/arm/v7 2/2] RUN if [ "1" = 1 ]; then exit 3; fi',
        "#15 0.228 failing on purpose",
        '#15 ERROR: process "/bin/sh -c ..." did not complete successfully: exit code: 3',
    ]
    assert failed_targets(lines) == {"worker": 'linux/arm/v7 at RUN if [ "1" = 1 ]; then exit 3; fi'}
    # A stage FROM scratch names no platform in its steps; the target is still named.
    assert failed_targets(["#9 [worker 3/3] RUN make", "#9 ERROR: exit code: 2"]) == {"worker": "at RUN make"}


def test_profiles_export_as_bake_targets_as_orch_builds_them() -> None:
    document = export_bake([load("arm-all")])
    target = document["target"]["arm-all"]
    assert document["group"]["default"]["targets"] == ["arm-all"]
    assert target["platforms"] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]  # orch's order
    assert target["attest"] == ["type=provenance,mode=min", "type=sbom,disabled=true"]


def orch(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd,
                              env={**os.environ, **(env or {})}, timeout=900)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--profile", "arm-all", "--push"], "--profile cannot go with --bake"),
        ([], "orch build --bake publishes a release: add --push"),
    ],
)
def test_bake_refuses_what_the_bake_file_decides_and_a_build_without_push(tmp_path: Path, args, says) -> None:
    (tmp_path / "docker-bake.hcl").write_text('target "app" {\n  tags = ["r.test/app:1"]\n}\n')
    result = orch("build", "--bake", str(tmp_path / "docker-bake.hcl"), *args)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr


def test_set_without_bake_and_two_contexts_are_bad_input() -> None:
    assert orch("build", "--set", "app.platform=linux/arm64", "--dry-run").returncode == 2
    two = orch("build", "a", "b", "--dry-run")
    assert two.returncode == 2 and "one build context, not 2" in two.stderr


# -- against the engine ------------------------------------------------------------

BAKE_FILE = """
variable "REG" { default = "localhost:5000" }
variable "TAG" { default = "1" }
variable "FAIL" { default = "0" }
target "_base" {
  args = { FAIL = "${FAIL}" }
}
target "app" {
  inherits = ["_base"]
  context = "app"
  platforms = ["linux/arm64", "linux/amd64"]
  tags = ["${REG}/team/app:${TAG}", "${REG}/team/app:latest"]
}
target "worker" {
  inherits = ["_base"]
  context = "worker"
  platforms = ["linux/arm/v7", "linux/amd64"]
  tags = ["${REG}/team/worker:${TAG}"]
}
group "release" { targets = ["app", "worker"] }
"""
DOCKERFILE = f"""FROM {BASE}
ARG FAIL
ARG REV
RUN if [ "$FAIL" = 1 ] && [ "$(uname -m)" = armv7l ]; then echo failing on purpose; exit 3; fi; \\
    uname -m > /etc/built-on; echo "$REV" > /etc/rev
CMD ["/bin/sh", "-c", "cat /etc/built-on"]
"""


@pytest.fixture
def bake_dir(tmp_path: Path) -> Path:
    for name in ("app", "worker"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "docker-bake.hcl").write_text(BAKE_FILE)
    return tmp_path


def release(bake_dir: Path, registry_host: str, *extra: str, fail: bool = False) -> subprocess.CompletedProcess:
    return orch("build", "--bake", "docker-bake.hcl", "release", "--push", *extra, cwd=bake_dir,
                env={"REG": registry_host, "FAIL": "1" if fail else "0"})


@pytest.mark.engine
def test_a_bake_group_is_one_release_all_tags_move_or_none(registry: Registry, bake_dir: Path) -> None:
    first = release(bake_dir, registry.host, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    targets = json.loads(first.stdout)["targets"]
    app, worker = targets["app"]["digest"], targets["worker"]["digest"]
    assert digest_at(registry.port, "team/app", "1") == digest_at(registry.port, "team/app", "latest") == app
    assert digest_at(registry.port, "team/worker", "1") == worker
    # Each image holds its own platforms, in orch's order, verified before anything moved.
    for repository, platforms in (("team/app", ["linux/amd64", "linux/arm64"]),
                                  ("team/worker", ["linux/amd64", "linux/arm/v7"])):
        index, _ = raw_manifest(registry.port, repository, "1")
        listed = [m["platform"] for m in index["manifests"] if m["platform"]["architecture"] != "unknown"]
        assert ["/".join(filter(None, (p["os"], p["architecture"], p.get("variant")))) for p in listed] == platforms
    assert targets["worker"]["verification"]["ok"] is True
    # Step times per target and platform, as for a single build.
    worker_v7 = next(p for p in targets["worker"]["platforms"] if p["platform"] == "linux/arm/v7")
    run = next(s for s in worker_v7["steps"] if s["instruction"].startswith("RUN"))
    # Emulated here; on the two-node builder its arm node is given arm/v7, which orch counts as native.
    assert run["emulated"] is (TEST_BUILDER != "remote") and run["platform"] == "linux/arm/v7"

    # worker's arm/v7 RUN fails: app builds fine, yet no tag of either image moves.
    failed = release(bake_dir, registry.host, "--set", "app.args.REV=2", fail=True)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert "no tag of any target was changed" in failed.stderr
    assert "target worker: linux/arm/v7 at RUN" in failed.stderr and "Traceback" not in failed.stderr
    assert digest_at(registry.port, "team/app", "1") == digest_at(registry.port, "team/app", "latest") == app
    assert digest_at(registry.port, "team/worker", "1") == worker


@pytest.mark.engine
def test_a_tag_refused_in_one_target_puts_back_every_tag_of_every_target(registry: Registry, bake_dir: Path) -> None:
    proxy = FaultProxy(registry.port)
    proxy.start()
    try:
        host = f"localhost:{proxy.port}"
        first = release(bake_dir, host, "--json")
        assert first.returncode == 0, first.stderr[-3000:]
        targets = json.loads(first.stdout)["targets"]
        app, worker = targets["app"]["digest"], targets["worker"]["digest"]
        proxy.add(Rule("PUT", r"/team/worker/manifests/1$", "status", status=500, times=99))
        refused = release(bake_dir, host, "--set", "*.args.REV=3")
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert "the release was not published" in refused.stderr and "no tag was changed" in refused.stderr
        assert f"{host}/team/app:1: put back at {app}" in refused.stderr
        assert digest_at(registry.port, "team/app", "1") == digest_at(registry.port, "team/app", "latest") == app
        assert digest_at(registry.port, "team/worker", "1") == worker
    finally:
        proxy.stop()


@pytest.mark.engine
def test_a_release_report_holds_every_target_and_its_platforms(registry: Registry, bake_dir: Path) -> None:
    result = release(bake_dir, registry.host, "--report", "release.html")
    assert result.returncode == 0, result.stderr[-3000:]
    page = (bake_dir / "release.html").read_text()
    assert page.count('<article class="target">') == 2 and "target app" in page and "target worker" in page
    for platform in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert f'data-platform="{platform}"' in page


@pytest.mark.engine
def test_dry_run_shows_the_resolved_targets_and_every_step(bake_dir: Path) -> None:
    result = orch("build", "--bake", "docker-bake.hcl", "release", "--dry-run", "--set", "worker.platform=linux/s390x",
                  cwd=bake_dir, env={"REG": "localhost:5000"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "# target app: linux/amd64,linux/arm64 -> localhost:5000/team/app:1 localhost:5000/team/app:latest" in lines
    assert "# target worker: linux/s390x -> localhost:5000/team/worker:1" in lines  # --set reached bake
    # buildx 0.18 and later: bake may write only where --allow says (orch's stage directory).
    bake = [line for line in lines if line.startswith("docker buildx bake ")]
    # A builder of several nodes builds each target's platforms as bake targets of their own, each on its node.
    built = "app worker" if ONE_CALL else "app--linux-amd64 app--linux-arm64 worker--linux-s390x"
    assert len(bake) == 1 and " -f " in bake[0] and bake[0].split("#")[0].rstrip().endswith(built)
    if not ONE_CALL:
        assert "#   app--linux-arm64: on farm-arm" in lines
        assert "#   worker--linux-s390x: on farm-amd64 (emulated)" in lines  # given to no node: the first
    version = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True).stdout
    entitled = tuple(int(x) for x in re.search(r"(\d+)\.(\d+)\.\d+", version).groups()) >= (0, 18)
    assert ("--allow=fs.write=" in bake[0]) is entitled, (version, bake[0])
    assert lines[-1].startswith("# promote every target at once")


@pytest.mark.engine
def test_export_bake_gives_a_file_bake_itself_reads_with_orchs_platforms(tmp_path: Path) -> None:
    out = tmp_path / "docker-bake.json"
    written = orch("profiles", "export-bake", "arm-all", "-o", str(out))
    assert written.returncode == 0, written.stderr
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE}\n")
    printed = subprocess.run(["docker", "buildx", "bake", "-f", str(out), "--print"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert printed.returncode == 0, printed.stderr
    target = json.loads(printed.stdout)["target"]["arm-all"]
    assert target["platforms"] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]
    again = orch("profiles", "export-bake", "arm-all", "-o", str(out))
    assert again.returncode == 2 and "--force" in again.stderr


@pytest.mark.engine
def test_a_target_whose_output_is_the_registry_is_released(registry: Registry, tmp_path: Path) -> None:
    """output = ["type=registry"], with attestations and caches that go back to bake as it printed
    them: buildx 0.30.1 prints every one of them as an object ({"type": "registry"})."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "docker-bake.hcl").write_text("""
variable "REG" { default = "localhost:5000" }
target "app" {
  context = "app"
  platforms = ["linux/arm64", "linux/amd64"]
  tags = ["${REG}/team/pushed:1"]
  output = ["type=registry"]
  attest = ["type=provenance,mode=min"]
  cache-from = ["type=registry,ref=${REG}/team/pushed:cache"]
  cache-to = ["type=inline"]
}
""")
    result = orch("build", "--bake", "docker-bake.hcl", "app", "--push", "--json", cwd=tmp_path,
                  env={"REG": registry.host})
    assert result.returncode == 0, result.stderr[-3000:]
    digest = json.loads(result.stdout)["targets"]["app"]["digest"]
    assert digest_at(registry.port, "team/pushed", "1") == digest
    index, _ = raw_manifest(registry.port, "team/pushed", "1")
    listed = [m["platform"] for m in index["manifests"] if m["platform"]["architecture"] != "unknown"]
    assert [f"{p['os']}/{p['architecture']}" for p in listed] == ["linux/amd64", "linux/arm64"]
