"""The engine script and the test fixtures do what the rest of the suite relies on."""

import json
import subprocess

import pytest

from .conftest import REPO, buildx_push, sh


@pytest.mark.engine
def test_engine_up_leaves_a_working_engine_alone() -> None:
    out = subprocess.run(["bash", str(REPO / "scripts/engine-up.sh")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "leaving them as they are" in out.stderr
    assert "ready:" in out.stderr


@pytest.mark.engine
def test_seeded_base_image_is_multi_arch() -> None:
    out = sh("docker", "buildx", "imagetools", "inspect", "localhost:5000/orch/busybox:stable", "--format", "{{json .}}")
    manifests = json.loads(out.stdout)["manifest"]["manifests"]
    platforms = {"/".join(filter(None, [m["platform"]["os"], m["platform"]["architecture"],
                                        m["platform"].get("variant")])) for m in manifests}
    assert {"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6", "linux/386",
            "linux/ppc64le", "linux/s390x"} <= platforms


@pytest.mark.engine
def test_busybox_context_builds_and_runs_under_emulation(registry, busybox_context) -> None:
    ctx = busybox_context(platforms=["linux/arm64", "linux/arm/v7"])
    ref = registry.ref("harness/busybox", "t1")
    buildx_push(ctx, "linux/arm64,linux/arm/v7", f"type=registry,name={ref}")
    ran = sh("docker", "run", "--rm", "--pull=always", "--platform", "linux/arm/v7", ref)
    assert ran.stdout.strip() == "armv7l"


def test_the_tests_ci_legs_leave_out_are_tests_of_the_suite() -> None:
    """A name in conftest's any_builder lists that no test has (renamed, removed) would keep nothing out
    and say nothing: each must name a module of the suite or a test in one, and the tests named there
    must be engine tests (the marker only matters for them)."""
    import ast

    from .conftest import ANY_BUILDER_MODULES, ANY_BUILDER_TESTS

    engine_tests: set[str] = set()
    for path in (REPO / "tests").glob("test_*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and any(
                    "engine" in ast.unparse(d) for d in node.decorator_list):
                engine_tests.add(node.name)
    assert sorted(m for m in ANY_BUILDER_MODULES if not (REPO / "tests" / f"{m}.py").exists()) == []
    assert sorted(ANY_BUILDER_TESTS - engine_tests) == []
