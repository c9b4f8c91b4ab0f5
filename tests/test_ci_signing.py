"""`orch init --ci ... --sign keyless|key`: the job that moves tags signs the verified index with
cosign, and only that job gets what signing needs. Keyless needs Sigstore's public services and a
CI's identity token, so it is checked by the files' content (and the CIs' checkers); a key pair
is signed and verified for real: the generated job run step by step (tests/ci_runners.py) with a
key `cosign generate-key-pair` made, publishing to a loopback registry, then `cosign verify`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.authoring.ci_file_actions import ACTIONS

from .conftest import IN_CI, Registry, start_registry
from .test_ci_files import RELEASED, actionlint, schema_check, zizmor
from .test_init import orch

PASSWORD = "correct horse"
PUSH = "${{ github.event_name != 'pull_request' }}"
COSIGN = f"sigstore/cosign-installer@{ACTIONS['sigstore/cosign-installer'].sha} # " \
         f"{ACTIONS['sigstore/cosign-installer'].tag}"


def written(tmp_path: Path, ci: str, runners: str, sign: str, *extra: str) -> tuple[Path, str]:
    directory = tmp_path / f"svc-{ci}-{runners}-{sign}"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    made = orch("init", str(directory), "--ci", ci, "--runners", runners, "--sign", sign, *RELEASED, *extra)
    assert made.returncode == 0, made.stderr
    path = directory / (".github/workflows/image.yml" if ci == "github" else ".gitlab-ci.yml")
    return directory, path.read_text()


def signing_job(ci: str, runners: str) -> str:
    return {("github", "single"): "image", ("github", "native"): "release",
            ("gitlab", "single"): "image-build", ("gitlab", "native"): "image-release"}[ci, runners]


@pytest.mark.parametrize("runners", ["single", "native"])
def test_github_keyless_gives_the_identity_token_to_the_signing_job_alone(tmp_path: Path, runners: str) -> None:
    _, text = written(tmp_path, "github", runners, "keyless")
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {"contents": "read"}  # never at the workflow's level
    signer = signing_job("github", runners)
    holders = {name: job["permissions"] for name, job in workflow["jobs"].items() if "id-token" in job.get("permissions", {})}
    assert holders == {signer: {"contents": "read", "packages": "write", "id-token": "write"}}
    steps = workflow["jobs"][signer]["steps"]
    installer = [s for s in steps if s.get("uses", "").startswith("sigstore/cosign-installer@")]
    assert len(installer) == 1 and f"uses: {COSIGN}" in text  # pinned by SHA, from the one table
    assert text.count("sigstore/cosign-installer") == 1  # no other job installs cosign
    command = next(s for s in steps if s.get("id") in ("build", "release"))["run"]
    assert "--sign" in command and "--sign-key" not in command and "COSIGN_PRIVATE_KEY" not in text
    if runners == "single":  # a pull request builds, pushes and signs nothing
        assert 'if [ "$PUSHING" = true ]; then set -- --push --cache "$ORCH_IMAGE:buildcache" --sign; fi' in command
        assert installer[0]["if"] == PUSH
    else:
        assert command.endswith("--report orch-report.html --sign")
        assert all("--sign" not in s.get("run", "") for s in workflow["jobs"]["build"]["steps"])


@pytest.mark.parametrize("runners", ["single", "native"])
def test_github_key_mode_reads_the_key_pair_from_secrets_through_env_only(tmp_path: Path, runners: str) -> None:
    _, text = written(tmp_path, "github", runners, "key")
    workflow = yaml.safe_load(text)
    assert "id-token" not in text
    signer = signing_job("github", runners)
    step = next(s for s in workflow["jobs"][signer]["steps"] if s.get("id") in ("build", "release"))
    if runners == "single":  # empty on pull requests, which sign nothing
        assert step["env"]["COSIGN_PRIVATE_KEY"] == \
            "${{ github.event_name != 'pull_request' && secrets.COSIGN_PRIVATE_KEY || '' }}"
        assert step["env"]["COSIGN_PASSWORD"] == \
            "${{ github.event_name != 'pull_request' && secrets.COSIGN_PASSWORD || '' }}"
    else:
        assert step["env"] == {"COSIGN_PRIVATE_KEY": "${{ secrets.COSIGN_PRIVATE_KEY }}",
                               "COSIGN_PASSWORD": "${{ secrets.COSIGN_PASSWORD }}"}
    assert "--sign --sign-key env://COSIGN_PRIVATE_KEY" in step["run"] and "${{" not in step["run"]
    assert text.count("secrets.COSIGN_PRIVATE_KEY") == 1 and text.count("secrets.COSIGN_PASSWORD") == 1


@pytest.mark.parametrize("runners", ["single", "native"])
@pytest.mark.parametrize("sign", ["keyless", "key"])
def test_gitlab_signs_in_the_job_that_moves_tags(tmp_path: Path, runners: str, sign: str) -> None:
    _, text = written(tmp_path, "gitlab", runners, sign)
    pipeline = yaml.safe_load(text)
    signer = signing_job("gitlab", runners)
    tokens = {name: job["id_tokens"] for name, job in pipeline.items() if isinstance(job, dict) and "id_tokens" in job}
    assert tokens == ({signer: {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}} if sign == "keyless" else {})
    job = pipeline[signer]
    assert job["script"][0] == "apk add --no-cache cosign"
    command = next(line for line in job["script"] if line.startswith("orch "))
    assert command.endswith("$ORCH_SIGN") or "$ORCH_SIGN --output-env" in command
    options = "--sign --sign-key env://COSIGN_PRIVATE_KEY" if sign == "key" else "--sign"
    rules = job.get("rules") or pipeline[".orch"]["rules"]
    assert rules[0]["variables"]["ORCH_SIGN"] == options  # only where pushing
    assert all("ORCH_SIGN" not in rule.get("variables", {}) for rule in rules[1:])
    if runners == "native":
        assert all("ORCH_SIGN" not in line for line in pipeline["image-build"]["script"])


def test_sign_takes_keyless_or_key_and_needs_a_ci(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    bad = orch("init", str(tmp_path), "--ci", "github", "--sign", "yes", *RELEASED)
    assert bad.returncode == 2 and '--sign "yes" is not keyless or key' in bad.stderr, bad.stderr
    alone = orch("init", str(tmp_path), "--sign", "key")
    assert alone.returncode == 2 and "--sign key says how the CI workflow builds" in alone.stderr, alone.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]


@pytest.mark.slow
@pytest.mark.parametrize("runners", ["single", "native"])
@pytest.mark.parametrize("sign", ["keyless", "key"])
@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_signing_files_stay_clean_under_the_cis_checkers(tmp_path: Path, ci: str, runners: str, sign: str) -> None:
    directory, _ = written(tmp_path, ci, runners, sign, "--image", "registry.example.com/acme/svc")
    path = directory / (".github/workflows/image.yml" if ci == "github" else ".gitlab-ci.yml")
    checked = schema_check("vendor.github-workflows" if ci == "github" else "vendor.gitlab-ci", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    if ci == "github":
        assert actionlint(path) == []
        found = zizmor(path)
        assert found.returncode == 0 and "No findings to report" in found.stdout + found.stderr, \
            found.stdout + found.stderr


# -- a key pair, for real ------------------------------------------------------------------------

@pytest.fixture
def key_pair(tmp_path: Path) -> dict[str, Path]:
    if shutil.which("cosign") is None:
        message = "cosign is not installed (make engine installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path / "keys"
    folder.mkdir()
    subprocess.run(["cosign", "generate-key-pair"], cwd=folder, check=True, capture_output=True,
                   env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    return {"key": folder / "cosign.key", "pub": folder / "cosign.pub"}


@pytest.fixture
def sign_registry(tmp_path: Path, engine_ready: None) -> Iterator[Registry]:
    registry = start_registry(tmp_path)
    yield registry
    registry.stop()


def cosign_verify(ref: str, pub: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["cosign", "verify", "--key", str(pub), "--insecure-ignore-tlog=true", ref],
                          capture_output=True, text=True, timeout=120)


def key_project(tmp_path: Path, ci: str, image: str) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    made = orch("init", str(directory), "--ci", ci, "--sign", "key", "--image", image,
                "--platform", "linux/amd64,linux/arm64", *RELEASED)
    assert made.returncode == 0, made.stderr
    path = directory / (".github/workflows/image.yml" if ci == "github" else ".gitlab-ci.yml")
    return directory, yaml.safe_load(path.read_text())


def signed_digest(registry: Registry, pub: Path, tag: str) -> str:
    from .registry_api import digest_at

    digest = digest_at(registry.port, "acme/svc", tag)
    assert digest is not None, f"no tag {tag}"
    verified = cosign_verify(f"{registry.host}/acme/svc@{digest}", pub)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    orch_verified = orch("verify", f"{registry.host}/acme/svc:{tag}", "--platform", "linux/amd64,linux/arm64",
                         "--key", str(pub))
    assert orch_verified.returncode == 0 and f"a valid cosign signature covers {digest}" in orch_verified.stdout, \
        orch_verified.stdout + orch_verified.stderr
    return digest


@pytest.mark.engine
def test_the_github_job_signs_with_the_key_pair_from_its_secrets(tmp_path: Path, sign_registry: Registry,
                                                                  key_pair: dict[str, Path]) -> None:
    from .ci_runners import Run

    directory, workflow = key_project(tmp_path, "github", f"{sign_registry.host}/acme/svc")
    work = tmp_path / "runner"
    work.mkdir()
    event = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_REPOSITORY": "acme/svc",
             "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567"}
    run = Run(workflow, directory, work, event, secrets={"COSIGN_PRIVATE_KEY": key_pair["key"].read_text(),
                                                         "COSIGN_PASSWORD": PASSWORD},
              env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state")})
    job = run.job("image", 1)
    assert job.status == "success", job.why()
    signed_digest(sign_registry, key_pair["pub"], "1.2.3")
    assert not any(key_pair["key"].read_text().strip() in log for log in job.logs)  # the key never printed


@pytest.mark.engine
def test_the_gitlab_job_signs_with_the_key_pair_from_its_variables(tmp_path: Path, sign_registry: Registry,
                                                                    key_pair: dict[str, Path]) -> None:
    from .ci_runners import Pipeline

    directory, document = key_project(tmp_path, "gitlab", f"{sign_registry.host}/acme/svc")
    work = tmp_path / "gitlab"
    work.mkdir()
    pipeline = Pipeline(document, directory, work,
                        {"CI_PIPELINE_ID": "77", "CI_COMMIT_TAG": "v1.2.3",
                         "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567", "CI_COMMIT_REF_NAME": "v1.2.3",
                         "CI_DEFAULT_BRANCH": "main", "CI_PROJECT_URL": "https://gitlab.com/acme/svc",
                         "CI_PIPELINE_SOURCE": "push"},
                        env={"BUILDX_BUILDER": "", "ORCH_STATE_HOME": str(tmp_path / "state"),
                             "COSIGN_PRIVATE_KEY": key_pair["key"].read_text(), "COSIGN_PASSWORD": PASSWORD})
    ok, log = pipeline.job("image-build")
    assert ok, log
    signed_digest(sign_registry, key_pair["pub"], "1.2.3")
