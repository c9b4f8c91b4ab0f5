"""orch as CI building blocks: the composite action (action.yml), the reusable workflow
(.github/workflows/orch.yml) and the GitLab CI/CD component (templates/orch.yml). Each is checked
by the CI's own rules (zizmor, actionlint, GitLab's schema: tests/test_ci_files.py's tools) and run
step by step as a runner runs it (tests/ci_runners.py), with this checkout as the action's or the
workflow's own repository and the project's venv as the orch it installs.

Input and output names carried from the peers' action.yml: docker/build-push-action at
cb941d0b895b09c17fa011d41c411b33c752cf28, docker/metadata-action at
dc802804100637a589fabce1cb79ff13a1411302; the reusable workflow's `distribute` and `runner`
mapping from docker/github-builder's build.yml at 58cb9f5b71b1836d6f690c1e95effdeb9b98cb8a."""

from __future__ import annotations

import base64
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .ci_runners import Pipeline, Run, component, expand
from .conftest import REPO, Registry
from .test_ci_files import actionlint, schema_check, zizmor
from .test_ci_reruns import lose_flaky, rerun_registry, tags  # noqa: F401 (a fixture)
from .test_init import orch
from .test_signing import PASSWORD, cosign_verify, keys  # noqa: F401 (a fixture)

ACTION = REPO / "action.yml"
WORKFLOW = REPO / ".github" / "workflows" / "orch.yml"
TEMPLATE = REPO / "templates" / "orch.yml"
PLATFORMS = "linux/amd64,linux/arm64"
SELF_SHA = "89abcdef0123456789abcdef0123456789abcdef"
TAG_PUSH = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_REPOSITORY": "acme/svc"}
BUILD_PUSH_INPUTS = {"context", "file", "platforms", "tags", "push", "build-args", "secrets", "labels", "annotations"}
METADATA_INPUTS = {"images", "flavor"}  # and its `tags`, as tag-rules
PEER_OUTPUTS = {"imageid", "digest", "metadata", "tags", "labels", "annotations", "json", "version"}


def test_the_action_speaks_the_docker_actions_names() -> None:
    action = yaml.safe_load(ACTION.read_text())
    inputs = set(action["inputs"])
    assert BUILD_PUSH_INPUTS | METADATA_INPUTS | {"tag-rules", "profile", "sign", "deep", "part"} <= inputs
    assert set(action["outputs"]) == PEER_OUTPUTS | {"result"}
    assert action["runs"]["using"] == "composite"
    install = next(step for step in action["runs"]["steps"] if "pip" in step.get("run", ""))
    assert '"$GITHUB_ACTION_PATH"' in install["run"]  # this repository at the caller's pin, no index
    assert all("${{" not in step.get("run", "") for step in action["runs"]["steps"])


def test_keyless_signing_asks_for_the_identity_token_where_it_signs() -> None:
    """Keyless: --sign without a key, in jobs that may mint the CI's identity token."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    for name in ("single", "release"):  # where the index is signed
        assert jobs[name]["permissions"]["id-token"] == "write"
        step = next(s for s in jobs[name]["steps"] if s.get("id") == "orch")
        assert step["env"]["IN_SIGN"] == "${{ inputs.sign }}" and step["env"]["IN_SIGN_KEY"] == "${{ secrets.sign-key }}"
    assert "id-token" not in jobs["build"]["permissions"]  # the legs sign nothing
    script = (REPO / "blocks" / "run-orch.sh").read_text()
    assert 'set -- "$@" --sign' in script and '"") ;;  # keyless' in script
    gitlab = TEMPLATE.read_text()
    assert "SIGSTORE_ID_TOKEN:\n      aud: sigstore" in gitlab


@pytest.mark.slow
def test_zizmor_and_actionlint_find_nothing_and_the_schemas_accept_every_block(tmp_path: Path) -> None:
    checked = zizmor(ACTION)
    assert checked.returncode == 0 and "No findings to report" in checked.stdout + checked.stderr, checked.stdout
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        checked = zizmor(path)
        assert checked.returncode == 0 and "No findings" in checked.stdout + checked.stderr, checked.stdout
        assert actionlint(path) == []
        checked = schema_check("vendor.github-workflows", path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = schema_check("vendor.github-actions", ACTION)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # GitLab: the spec: header, then the jobs as the include makes them (inputs filled in).
    for given in ({"project-url": "https://gitlab.com/acme/orch.git"},
                  {"project-url": "https://gitlab.com/acme/orch.git", "distribute": False, "push": True}):
        header, jobs = component(TEMPLATE, given, {"sha": SELF_SHA, "version": "1.0.0"})
        for name, document in (("header", header), ("jobs", jobs)):
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(document))
            checked = schema_check("vendor.gitlab-ci", path)
            assert checked.returncode == 0, f"{name}: {checked.stdout}{checked.stderr}"
    assert jobs[".orch-setup"]["variables"]["ORCH_INSTALL"] == f"git+https://gitlab.com/acme/orch.git@{SELF_SHA}"
    with pytest.raises(AssertionError, match="project-url"):
        component(TEMPLATE, {}, {"sha": SELF_SHA, "version": "1.0.0"})


def svc(tmp_path: Path) -> Path:
    """A caller's repository: its build needs the file `flaky` (a leg's checkout may lack it)."""
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile flaky /\n")
    (directory / "flaky").write_text("here\n")
    for args in (("init", "-q"), ("add", "."), ("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "svc")):
        subprocess.run(["git", "-C", str(directory), *args], check=True)
    return directory


def head(directory: Path) -> str:
    return subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.engine
def test_the_composite_action_publishes_signed_every_tag_on_attempt_1_and_again_on_2(
        tmp_path: Path, rerun_registry: Registry, keys) -> None:  # noqa: F811
    image = f"{rerun_registry.host}/acme/svc"
    directory = svc(tmp_path)
    caller = {"jobs": {"image": {"runs-on": "ubuntu-latest", "permissions": {"contents": "read"}, "steps": [
        {"uses": "actions/checkout@x", "with": {"persist-credentials": False}},
        {"id": "image", "uses": f"acme/orch@{SELF_SHA}", "with": {
            "platforms": PLATFORMS, "images": image, "tag-rules": "type=semver,pattern={{version}}\n# a comment\n",
            "tags": f"{image}:extra", "labels": "team=core", "push": "true", "sign": "true",
            "sign-key": keys["ours"].read_text(), "sign-password": PASSWORD}},
        {"id": "after", "env": {"DIGEST": "${{ steps.image.outputs.digest }}"}, "run": 'test -n "$DIGEST"'}]}}}
    work = tmp_path / "runner"
    work.mkdir()
    run = Run(caller, directory, work, {**TAG_PUSH, "GITHUB_SHA": head(directory)}, actions={"acme/orch": REPO},
              env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state")})
    first = run.job("image", 1)
    assert first.status == "success", first.why()[-4000:]
    published = tags(rerun_registry, "acme/svc")
    assert [t for t in published if not t.endswith(".sig")] == ["1.2.3", "extra", "latest"]  # latest=auto
    assert first.outputs == {} and "sha256-" in next(t for t in published if t.endswith(".sig"))
    signed = cosign_verify(f"{image}:1.2.3", keys["ours.pub"])
    assert signed.returncode == 0, signed.stderr
    second = run.job("image", 2)  # "re-run all jobs": the same image again, every tag where it was
    assert second.status == "success", second.why()[-4000:]
    verified = orch("verify", f"{image}:1.2.3", "--platform", PLATFORMS)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert not list(work.glob("*.temp/orch-sign-key.*"))  # the key's file is gone after the step


class _TokenService:
    """GitHub's ID token endpoint for the job, as far as the plan job reads it: the claims."""

    def __init__(self, claims: dict[str, str]) -> None:
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        body = json.dumps({"value": f"e30.{payload}.c2ln"}).encode()
        self.seen: list[str] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.path)
                ok = self.headers.get("Authorization") == "bearer request-token"
                self.send_response(200 if ok else 401)
                self.end_headers()
                self.wfile.write(body if ok else b"{}")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.env = {"ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{self.server.server_port}/token?api=1",
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}


@pytest.fixture
def token_service() -> Iterator[_TokenService]:
    service = _TokenService({"job_workflow_ref": "acme/orch/.github/workflows/orch.yml@refs/tags/v1",
                             "job_workflow_sha": SELF_SHA})
    yield service
    service.server.shutdown()


def reusable_run(tmp_path: Path, directory: Path, inputs: dict[str, Any], token: dict[str, str]) -> Run:
    work = tmp_path / "runner"
    work.mkdir()
    return Run(yaml.safe_load(WORKFLOW.read_text()), directory, work, {**TAG_PUSH, "GITHUB_SHA": head(directory)},
               env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state")}, inputs=inputs,
               repositories={"acme/orch": REPO}, id_token=token)


def workflow_outputs(run: Run) -> dict[str, Any]:
    declared = run.workflow[True]["workflow_call"]["outputs"]  # YAML 1.1 reads the key `on` as true
    context = {"jobs": {name: {"outputs": done["outputs"]} for name, done in run.outputs.items()},
               "job": {"status": "success"}}
    return {name: expand(spec["value"], context) for name, spec in declared.items()}


def test_the_plan_job_knows_its_own_commit_and_a_runner_mapping_moves_a_leg(tmp_path: Path,
                                                                             token_service: _TokenService) -> None:
    directory = svc(tmp_path)
    run = reusable_run(tmp_path, directory, {"platforms": "linux/amd64,linux/arm64,linux/arm/v7",
                                             "runner": "default=big-x86\nlinux/arm/v7=rpi-4"}, token_service.env)
    plan = run.job("plan", 1)
    assert plan.status == "success", plan.why()
    assert plan.outputs["repository"] == "acme/orch" and plan.outputs["sha"] == SELF_SHA
    assert token_service.seen and "audience=orch" in token_service.seen[0]
    legs = {leg["platform"]: (leg["runner"], leg["qemu"]) for leg in json.loads(plan.outputs["matrix"])["include"]}
    assert legs == {"linux/amd64": ("big-x86", False), "linux/arm64": ("big-x86", True),
                    "linux/arm/v7": ("rpi-4", False)}
    # Without id-token: write (a caller that did not grant it) there is no token: the plan fails.
    run.workflow["jobs"]["plan"]["permissions"] = {"contents": "read"}
    assert run.job("plan", 2).status == "failure"


@pytest.mark.engine
def test_the_reusable_workflow_distributes_re_runs_a_failed_leg_then_releases(
        tmp_path: Path, rerun_registry: Registry, token_service: _TokenService) -> None:  # noqa: F811
    image = f"{rerun_registry.host}/acme/svc"
    directory = svc(tmp_path)
    run = reusable_run(tmp_path, directory, {"platforms": PLATFORMS, "images": image, "push": True,
                                             "tag-rules": "type=semver,pattern={{version}}"}, token_service.env)
    assert run.job("plan", 1).status == "success"
    matrix = json.loads(run.outputs["plan"]["outputs"]["matrix"])["include"]
    assert [(leg["platform"], leg["runner"], leg["qemu"]) for leg in matrix] == [
        ("linux/amd64", "ubuntu-latest", False), ("linux/arm64", "ubuntu-24.04-arm", False)]
    # Attempt 1: the arm64 leg fails, so GitHub never starts the release (it needs every leg).
    for leg in matrix:
        done = run.job("build", 1, matrix=leg, prepare=lose_flaky if leg["platform"] == "linux/arm64" else None)
        assert done.status == ("failure" if leg["platform"] == "linux/arm64" else "success"), done.why()[-3000:]
    assert tags(rerun_registry, "acme/svc") == []
    # Attempt 2, "re-run failed jobs": the arm64 leg uploads its part under the same name, then the release.
    again = run.job("build", 2, matrix=matrix[1])
    assert again.status == "success", again.why()[-3000:]
    assert sorted(run.artifacts) == ["orch-part-linux-amd64", "orch-part-linux-arm64"]
    released = run.job("release", 2)
    assert released.status == "success", released.why()[-4000:]
    assert tags(rerun_registry, "acme/svc") == ["1.2.3", "latest"]  # metadata-action's latest=auto
    outputs = workflow_outputs(run)
    assert outputs["digest"].startswith("sha256:") and outputs["result"] == "success"
    assert outputs["tags"].splitlines() == [f"{image}:1.2.3", f"{image}:latest"]
    assert run.job("single", 2).status == "skipped"  # distribute: true never runs the QEMU job
    verified = orch("verify", f"{image}:1.2.3", "--platform", PLATFORMS)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_gitlab_component_runs_the_matrix_or_the_single_job_as_its_inputs_say(tmp_path: Path) -> None:
    given = {"project-url": "https://gitlab.com/acme/orch.git", "push": True}
    _, jobs = component(TEMPLATE, given, {"sha": SELF_SHA, "version": "1.0.0"})
    assert [leg["PLATFORM"] for leg in jobs["orch-build"]["parallel"]["matrix"]] == ["linux/amd64", "linux/arm64"]
    assert jobs["orch-release"]["needs"] == ["orch-build"]
    directory = svc(tmp_path)
    pipeline = Pipeline(jobs, directory, tmp_path / "gitlab", {"CI_COMMIT_TAG": "v1.2.3"})
    (tmp_path / "gitlab").mkdir()
    ok, log = pipeline.job("orch-single")
    assert ok and log.startswith("skipped"), log  # distribute: the single job is not in the pipeline
    _, single = component(TEMPLATE, {**given, "distribute": False}, {"sha": SELF_SHA, "version": "1.0.0"})
    pipeline = Pipeline(single, directory, tmp_path / "gitlab", {"CI_COMMIT_TAG": "v1.2.3"}, next_id=2000)
    for name in ("orch-build", "orch-release"):
        ok, log = pipeline.job(name)
        assert ok and log.startswith("skipped"), (name, log)


@pytest.mark.engine
def test_the_gitlab_component_builds_each_leg_and_releases(tmp_path: Path, rerun_registry: Registry) -> None:  # noqa: F811
    image = f"{rerun_registry.host}/acme/svc"
    directory = svc(tmp_path)
    _, jobs = component(TEMPLATE, {"project-url": "https://gitlab.com/acme/orch.git", "push": True, "image": image,
                                   "tags": f"{image}:1.2.3", "platforms": PLATFORMS}, {"sha": SELF_SHA, "version": "1.0.0"})
    work = tmp_path / "gitlab"
    work.mkdir()
    pipeline = Pipeline(jobs, directory, work, {"CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_SHA": head(directory),
                                                "CI_PIPELINE_ID": "7", "CI_PROJECT_URL": "https://gitlab.com/acme/svc"},
                        env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state")})
    for leg in jobs["orch-build"]["parallel"]["matrix"]:
        ok, log = pipeline.job("orch-build", {k: str(v) for k, v in leg.items()})
        assert ok, log[-3000:]
    ok, log = pipeline.job("orch-release")
    assert ok, log[-3000:]
    # The tag as written, and the image's default rules (metadata-action's: the git tag, latest).
    assert tags(rerun_registry, "acme/svc") == ["1.2.3", "latest", "v1.2.3"]
    dotenv = (work / f"job-{pipeline.next_id}" / "svc" / "release.env").read_text()
    assert "ORCH_RESULT=success" in dotenv
