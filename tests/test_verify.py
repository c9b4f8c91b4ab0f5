"""orch inspect / orch verify against images built with raw docker and buildx."""

import json
import subprocess
import sys

import pytest

from orchestrator.image.model import Inspection, inspection_of
from orchestrator.image.verify import VerifyOptions, verify
from orchestrator.model.platform_parse import parse
from orchestrator.status import Status

from . import orch_processes
from .conftest import REPO, buildx_push, sh


def orch(*args: str) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, timeout=300)


def findings(result: subprocess.CompletedProcess) -> list[dict]:
    return json.loads(result.stdout)["findings"]


@pytest.fixture
def good_index(registry, busybox_context) -> str:
    ref = registry.ref("fixtures/good", "1")
    buildx_push(busybox_context(platforms=["linux/amd64", "linux/arm64", "linux/arm/v7"]),
                "linux/amd64,linux/arm64,linux/arm/v7", f"type=registry,name={ref}")
    return ref


@pytest.mark.engine
def test_good_index_verifies_and_inspects(good_index: str) -> None:
    result = orch("verify", good_index, "--platform", "linux/amd64,arm64", "--platform", "armhf", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {f["platform"] for f in findings(result) if f["check"] == "platforms"} == {
        "linux/amd64", "linux/arm64", "linux/arm/v7"}
    shown = orch("inspect", good_index, "--json")
    doc = json.loads(shown.stdout)
    assert doc["kind"] == "OCI image index"
    assert [e["platform"] for e in doc["entries"]] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    # Attestations are listed apart and tied to their image, never as unknown/unknown.
    assert all(e["platform"] != "unknown" for e in doc["entries"])
    assert {a["for_platform"] for a in doc["attestations"]} == {"linux/amd64", "linux/arm64", "linux/arm/v7"}


@pytest.mark.engine
def test_missing_platform_fails_with_exit_1(good_index: str) -> None:
    result = orch("verify", good_index, "--profile", "arm-all", "--json")
    assert result.returncode == 1
    missing = [f for f in findings(result) if f["level"] == "fail"]
    assert [(f["platform"], f["message"]) for f in missing] == [("linux/arm/v6", "missing from the index")]
    extra = [f for f in findings(result) if f["message"] == "present but not expected"]
    assert [f["platform"] for f in extra] == ["linux/amd64"] and extra[0]["level"] == "warn"
    strict = orch("verify", good_index, "--platform", "linux/arm64,linux/arm/v7", "--strict")
    assert strict.returncode == 1 and "present but not expected" in strict.stdout


@pytest.fixture
def mislabelled_list(registry, busybox_context) -> str:
    """A manifest list whose entry says arm64 while the image config says amd64:
    an amd64-built image annotated by hand, as users did with `docker manifest`."""
    amd64 = registry.ref("fixtures/single", "amd64")
    arm64 = registry.ref("fixtures/single", "arm64")
    ctx = busybox_context(platforms=["linux/amd64", "linux/arm64"], binary_for={"linux/amd64": "linux/arm64"})
    for ref, platform in ((amd64, "linux/amd64"), (arm64, "linux/arm64")):
        buildx_push(ctx, platform, f"type=registry,name={ref},oci-mediatypes=false", "--provenance=false")
    listed = registry.ref("fixtures/list", "1")
    subprocess.run(["docker", "manifest", "rm", listed], capture_output=True)  # a stale local list, if any
    sh("docker", "manifest", "create", "--insecure", listed, arm64, amd64)
    sh("docker", "manifest", "annotate", listed, amd64, "--os", "linux", "--arch", "riscv64")
    sh("docker", "manifest", "push", "--insecure", "--purge", listed)
    return listed


@pytest.mark.engine
def test_config_that_contradicts_the_list_fails_or_warns(mislabelled_list: str) -> None:
    result = orch("verify", mislabelled_list, "--platform", "linux/arm64,linux/riscv64", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    bad = [f for f in findings(result) if f["check"] == "config" and f["level"] == "fail"]
    assert len(bad) == 1
    assert bad[0]["platform"] == "linux/riscv64"
    assert "index says linux/riscv64 but the image config says linux/amd64" in bad[0]["message"]
    assert "rebuild" in bad[0]["fix"]
    relaxed = orch("verify", mislabelled_list, "--platform", "linux/arm64,linux/riscv64",
                   "--config-mismatch", "warn")
    assert relaxed.returncode == 0, relaxed.stdout
    assert "WARN  config" in relaxed.stdout
    shown = json.loads(orch("inspect", mislabelled_list, "--json").stdout)
    assert shown["kind"] == "Docker manifest list"
    assert shown["attestations"] == []


@pytest.mark.engine
def test_single_manifest_is_inspected_by_its_config(registry, busybox_context) -> None:
    ref = registry.ref("fixtures/one", "s390x")
    buildx_push(busybox_context(platforms=["linux/s390x"]), "linux/s390x", f"type=registry,name={ref}",
                "--provenance=false")
    doc = json.loads(orch("inspect", ref, "--json").stdout)
    assert doc["is_index"] is False
    assert doc["entries"][0]["config_platform"]["architecture"] == "s390x"
    ok = orch("verify", ref, "--platform", "s390x")
    assert ok.returncode == 0, ok.stdout


@pytest.mark.engine
def test_missing_tag_and_unreachable_registry(registry) -> None:
    missing = orch("verify", registry.ref("nothing/here", "1"), "--platform", "arm64")
    assert missing.returncode == 1
    assert "does not exist in the registry" in missing.stderr
    registry.stop()
    gone = orch("verify", registry.ref("nothing/here", "1"), "--platform", "arm64")
    assert gone.returncode == 3
    assert "cannot reach the registry" in gone.stderr and "Traceback" not in gone.stderr


@pytest.mark.parametrize("ref, says", [("Bad/Name:1", "invalid repository"), ("a/b:-x", "invalid tag"),
                                       ("a/b@sha256:zz", "invalid digest")])
def test_malformed_reference_exits_2(ref: str, says: str) -> None:
    result = orch("verify", ref, "--platform", "arm64")
    assert result.returncode == 2
    assert says in result.stderr


def test_verify_needs_something_to_compare_with() -> None:
    result = orch("verify", "localhost:5000/a/b:1")
    assert result.returncode == 2 and "--profile NAME or --platform LIST" in result.stderr


# -- pure logic on recorded documents ---------------------------------------

def _inspection(entries: list[tuple[dict, dict | None]], attest_for: list[str] = ()) -> Inspection:
    """An index as a registry holds it: its document, and each image's config by manifest digest."""
    manifests = []
    configs = {}
    for i, (platform, config) in enumerate(entries):
        digest = f"sha256:{i:064x}"
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
                          "platform": platform})
        configs[digest] = config
    for i, refers in enumerate(attest_for):
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{i + 90:064x}",
                          "size": 1, "platform": {"os": "unknown", "architecture": "unknown"},
                          "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                          "vnd.docker.reference.digest": refers}})
    index_type = "application/vnd.oci.image.index.v1+json"
    return inspection_of("r/x:1", index_type, "sha256:" + "f" * 64, {"mediaType": index_type, "manifests": manifests},
                         configs)


ARM7 = {"os": "linux", "architecture": "arm", "variant": "v7"}
ARM6 = {"os": "linux", "architecture": "arm", "variant": "v6"}


WIN2019 = {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1879"}
WIN2016 = {"os": "windows", "architecture": "amd64", "os.version": "10.0.14393.4583"}
STRICT = VerifyOptions(strict=True)
LENIENT = VerifyOptions(duplicates=Status.warn)  # --allow-duplicates


@pytest.mark.parametrize(
    "entries, attest_for, options, check, level",
    [
        ([(ARM7, ARM7), (ARM6, ARM6)], [], VerifyOptions(), "order", Status.warn),  # v7 first: Pi Zero gets v7
        ([(ARM7, ARM7), (ARM6, ARM6)], [], STRICT, "order", Status.fail),
        ([(ARM6, ARM6), (ARM7, ARM7)], [], VerifyOptions(), "order", Status.ok),
        ([(ARM7, ARM7)], ["sha256:" + "e" * 64], VerifyOptions(), "attestations", Status.fail),  # points at nothing
        ([(ARM7, None)], [], VerifyOptions(), "config", Status.warn),  # config unreadable
        ([(ARM7, ARM7), (ARM7, ARM7)], [], VerifyOptions(), "platforms", Status.fail),  # duplicates, as manifest-tool
        ([(ARM7, ARM7), (ARM7, ARM7)], [], LENIENT, "platforms", Status.warn),
        ([(WIN2019, WIN2019), (WIN2019, WIN2019)], [], VerifyOptions(), "platforms", Status.fail),
        # Two Windows releases are two platforms, and docker on Windows chooses by os.version: no order problem.
        ([(WIN2019, WIN2019), (WIN2016, WIN2016)], [], STRICT, "order", Status.ok),
    ],
)
def test_verdicts_on_recorded_indexes(entries, attest_for, options, check, level) -> None:
    verdict = verify(_inspection(entries, attest_for), options)
    levels = {f.level for f in verdict.findings if f.check == check}
    assert level in levels, verdict.findings
    assert verdict.ok is (level is not Status.fail)


def test_duplicates_name_the_platform_and_the_positions() -> None:
    verdict = verify(_inspection([(ARM6, ARM6), (ARM7, ARM7), (ARM7, ARM7)]), VerifyOptions())
    duplicate = next(f for f in verdict.findings if f.check == "platforms" and f.level is Status.fail)
    assert (duplicate.platform, duplicate.message) == (
        "linux/arm/v7", "2 entries claim it (positions 1, 2): clients take the first")
    assert "--allow-duplicates" in duplicate.fix


def test_arm64_v8_in_a_config_matches_a_plain_arm64_descriptor() -> None:
    inspection = _inspection([({"os": "linux", "architecture": "arm64"},
                                {"os": "linux", "architecture": "arm64", "variant": "v8"})])
    verdict = verify(inspection, VerifyOptions(expected=(parse("arm64v8"),)))
    assert verdict.ok, verdict.findings


def test_parallel_map_keeps_order_and_reraises_the_first_error() -> None:
    from orchestrator.workers import parallel_map

    assert parallel_map(lambda x: x * x, list(range(20)), 8) == [x * x for x in range(20)]
    assert parallel_map(str, [], 8) == []

    def boom(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        parallel_map(boom, list(range(10)), 4)


@pytest.mark.parametrize("argv, fast", [
    (["verify", "r.io/a:1", "--platform", "linux/amd64,arm64"], True),
    (["verify", "--json", "r.io/a:1", "--platform=arm64", "--platform", "armhf", "--strict"], True),
    (["verify", "r.io/a:1", "-p", "arm-all", "--config-mismatch", "warn", "--deep"], True),
    (["verify", "oci-layout://out", "--profile", "arm-all"], True),
    (["verify", "r.io/a:1", "--platform", "arm64", "--allow-duplicates"], True),
    (["verify", "r.io/a:1", "--help"], False),  # typer prints the help
    (["-q", "verify", "r.io/a:1", "--platform", "arm64"], False),  # a global option: typer
    (["verify", "r.io/a:1", "--platfrom", "arm64"], False),  # a misspelling: typer says so
    (["verify", "r.io/a:1", "--platform"], False),  # a missing value: typer says so
    (["verify", "r.io/a:1", "r.io/b:1", "--platform", "arm64"], False),  # two references
    (["verify", "r.io/a:1", "-p", "a", "-p", "b"], False),
    (["inspect", "r.io/a:1"], False),
    (["verify"], False),
])
def test_only_the_plain_verify_forms_take_the_fast_path(argv: list[str], fast: bool) -> None:
    from orchestrator.cli.fast import verify_args

    assert (verify_args(argv) is not None) is fast


@pytest.mark.slow
def test_the_fast_path_imports_no_cli_framework_and_no_python_on_whales() -> None:
    code = ("import sys; from orchestrator.cli import fast; "
            "fast.run(['verify', 'localhost:9/a/b:1', '--platform', 'arm64']); "
            "print(sorted(m for m in ('typer', 'click', 'python_on_whales', 'structlog') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


@pytest.mark.engine
@pytest.mark.parametrize("extra", [(), ("--json",), ("--strict",)])
def test_the_fast_path_prints_what_the_typer_command_prints(good_index: str, extra: tuple[str, ...]) -> None:
    for platforms in ("linux/amd64,linux/arm64,linux/arm/v7", "linux/arm64,linux/arm/v6"):  # passes, then fails
        fast = orch("verify", good_index, "--platform", platforms, *extra)
        # A global option before the command sends it through typer.
        typed = orch("--log-format", "auto", "verify", good_index, "--platform", platforms, *extra)
        assert (fast.returncode, fast.stdout) == (typed.returncode, typed.stdout), fast.stderr + typed.stderr
    bad = orch("verify", good_index, "--platform", "linux/armv9")
    assert bad.returncode == 2 and 'unknown platform "linux/armv9"' in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.engine
def test_duplicates_fail_verify_unless_allowed_and_inspect_marks_them_and_the_order(registry) -> None:
    from .registry_api import push_image, push_index

    manifests = []
    for _platform, config in (("linux/arm/v7", ARM7), ("linux/arm/v6", ARM6), ("linux/arm/v7", ARM7)):
        digest, size = push_image(registry.port, "dupes", None, {**config, "note": len(manifests)},
                                  "application/vnd.oci.image.manifest.v1+json")
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size,
                          "platform": config})
    push_index(registry.port, "dupes", "1", manifests)
    ref = registry.ref("dupes", "1")

    for through_typer in ((), ("--log-format", "auto")):  # the fast path, then the typer command
        refused = orch(*through_typer, "verify", ref, "--platform", "linux/arm/v6,linux/arm/v7")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "FAIL  platforms    linux/arm/v7   2 entries claim it (positions 0, 2)" in refused.stdout
        allowed = orch(*through_typer, "verify", ref, "--platform", "linux/arm/v6,linux/arm/v7", "--allow-duplicates")
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        assert "WARN  platforms    linux/arm/v7   2 entries claim it" in allowed.stdout

    shown = orch("inspect", ref)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines() if line[:1].isdigit()]
    assert [(row[0], row[1], row[2:3] == ["DUPLICATE"]) for row in rows] == [
        ("0", "linux/arm/v7", True), ("1", "linux/arm/v6", False), ("2", "linux/arm/v7", True)]
    assert "DUPLICATE linux/arm/v7: entries 0, 2 claim it; clients take the first" in shown.stdout
    assert any(line.startswith("ORDER") and "Raspberry Pi" in line and "pulls linux/arm/v7" in line
               for line in shown.stdout.splitlines()), shown.stdout
    as_json = json.loads(orch("inspect", ref, "--json").stdout)
    assert as_json["duplicates"] == {"linux/arm/v7": [0, 2]} and as_json["order_problems"]
