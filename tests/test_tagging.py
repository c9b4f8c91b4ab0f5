"""Tags, labels and annotations a build gets from metadata-action rules, CI variables, a detached
checkout, and metadata-action's own output: seen in `orch build --dry-run --json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import orch_processes
from .conftest import REPO


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository with one commit tagged v1.2.3, on branch main, with a GitHub remote."""
    repo = tmp_path / "app"
    repo.mkdir()
    (repo / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "git@github.com:acme/app.git")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one")
    git(repo, "tag", "v1.2.3")
    return repo


def plan(checkout: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "ORCH_P", "DOCKER_META"))}
    result = orch_processes.run([sys.executable, "-m", "orchestrator", "build", str(checkout), "--platform", "linux/amd64",
                                 "--dry-run", "--json", *args], cwd=REPO, env={**clean, **(env or {})}, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


SEMVER = ("--image", "ghcr.io/acme/app", "--tag-rule", "type=semver,pattern={{version}}",
          "--tag-rule", "type=semver,pattern={{major}}.{{minor}}", "--tag-rule", "type=sha")


def test_rules_on_a_tagged_checkout_give_metadata_actions_tags_and_labels(checkout: Path) -> None:
    document = plan(checkout, *SEMVER)
    sha = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert document["tags"] == ["ghcr.io/acme/app:1.2.3", "ghcr.io/acme/app:1.2", f"ghcr.io/acme/app:sha-{sha[:7]}",
                                "ghcr.io/acme/app:latest"]
    labels = document["labels"]
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    assert labels["org.opencontainers.image.source"] == labels["org.opencontainers.image.url"] == \
        "https://github.com/acme/app"
    assert labels["org.opencontainers.image.title"] == "app" and labels["org.opencontainers.image.revision"] == sha


def test_a_detached_checkout_in_github_actions_reads_the_ref_from_the_environment(checkout: Path) -> None:
    git(checkout, "checkout", "-q", "--detach")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/feature/login", "GITHUB_EVENT_NAME": "push",
           "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REPOSITORY": "acme/app"}
    document = plan(checkout, "--image", "ghcr.io/acme/app", env=env)  # metadata-action's default rules
    assert document["tags"] == ["ghcr.io/acme/app:feature-login"]
    # The {branch} template works there too (it failed on a detached HEAD before), and {version}
    # is the tag being built, without its v.
    profile = checkout / "p.yaml"
    profile.write_text("platforms: [linux/amd64]\ntags: ['r.example/app:{branch}']\n")
    assert plan(checkout, "--profile", str(profile), env=env)["tags"] == ["r.example/app:feature-login"]
    profile.write_text("platforms: [linux/amd64]\ntags: ['r.example/app:{version}']\n")
    on_tag = plan(checkout, "--profile", str(profile), env={**env, "GITHUB_REF": "refs/tags/v2.0.0"})
    assert on_tag["tags"] == ["r.example/app:2.0.0"]


def test_gitlab_variables_and_a_profile_with_rules_flavor_and_images(checkout: Path) -> None:
    profile = checkout / "p.yaml"
    profile.write_text("platforms: [linux/amd64]\nimages: [registry.gitlab.com/acme/app, docker.io/acme/app]\n"
                       "tags: ['type=semver,pattern={{major}}', 'type=ref,event=branch']\n"
                       "flavor: ['latest=false', 'suffix=-slim']\n")
    env = {"GITLAB_CI": "true", "CI_COMMIT_TAG": "v3.1.0", "CI_COMMIT_SHA": "f" * 40,
           "CI_PROJECT_URL": "https://gitlab.com/acme/app", "CI_PROJECT_NAME": "app"}
    document = plan(checkout, "--profile", str(profile), env=env)
    assert document["tags"] == ["registry.gitlab.com/acme/app:3-slim", "docker.io/acme/app:3-slim"]
    assert document["labels"]["org.opencontainers.image.url"] == "https://gitlab.com/acme/app"


def test_metadata_actions_own_output_gives_tags_labels_and_annotations(checkout: Path) -> None:
    output = {"tags": ["ghcr.io/acme/app:pr-7"], "labels": {"org.opencontainers.image.title": "App"},
              "annotations": ["manifest:org.opencontainers.image.description=desc"]}
    document = plan(checkout, "--meta", "env", env={"DOCKER_METADATA_OUTPUT_JSON": json.dumps(output)})
    assert document["tags"] == ["ghcr.io/acme/app:pr-7"]
    assert document["labels"]["org.opencontainers.image.title"] == "App"
    command = document["commands"][0]
    assert "--annotation manifest:org.opencontainers.image.description=desc" in command
    bake = checkout / "bake.json"
    bake.write_text(json.dumps({"target": {"docker-metadata-action": {"tags": ["ghcr.io/acme/app:edge"]}}}))
    assert plan(checkout, "--meta", str(bake))["tags"] == ["ghcr.io/acme/app:edge"]


def test_rules_without_images_and_a_bad_rule_in_a_profile_are_bad_input(checkout: Path) -> None:
    result = orch_processes.run([sys.executable, "-m", "orchestrator", "build", str(checkout), "--platform",
                                 "linux/amd64", "--dry-run", "--tag-rule", "type=sha"], cwd=REPO, timeout=60)
    assert result.returncode == 2 and "tag rules need the repositories to tag" in result.stderr
    profile = checkout / "bad.yaml"
    profile.write_text("platforms: [linux/amd64]\nimages: [r/app]\ntags:\n  - type=semver\n")
    validated = orch_processes.run([sys.executable, "-m", "orchestrator", "profiles", "validate", str(profile)], timeout=60)
    assert validated.returncode == 2 and "bad.yaml:4: tags[0]: " in validated.stderr and "has no pattern=" in \
        validated.stderr


def test_a_literal_tag_on_the_command_line_replaces_the_profiles_rules_and_images(checkout: Path) -> None:
    profile = checkout / "p.yaml"
    profile.write_text("platforms: [linux/amd64]\nimages: [ghcr.io/acme/app]\ntags: ['type=semver,pattern={{version}}']\n")
    assert plan(checkout, "--profile", str(profile))["tags"] == ["ghcr.io/acme/app:1.2.3", "ghcr.io/acme/app:latest"]
    assert plan(checkout, "--profile", str(profile), "-t", "localhost:5000/x:dev")["tags"] == ["localhost:5000/x:dev"]
    # --tag-rule keeps the profile's images.
    assert plan(checkout, "--profile", str(profile), "--tag-rule", "type=raw,value=nightly")["tags"] == [
        "ghcr.io/acme/app:nightly"]


def test_image_on_the_command_line_replaces_the_profiles_images_and_keeps_its_rules(checkout: Path) -> None:
    """What a generated CI job runs: the profile's rules, the CI's repository (on tag v1.2.3)."""
    profile = checkout / "p.yaml"
    profile.write_text("platforms: [linux/amd64]\nimages: [localhost:5000/app]\ntags:\n"
                       "  - 'type=semver,pattern={{version}}'\n  - 'type=semver,pattern={{major}}.{{minor}}'\n"
                       "  - type=sha\n  - 'localhost:5000/app:{short_sha}-dev'\n")
    sha = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    result = orch_processes.run([sys.executable, "-m", "orchestrator", "build", str(checkout), "--profile", str(profile),
                                 "--image", "ghcr.io/acme/app", "--dry-run", "--json"], cwd=REPO, timeout=60,
                                env={k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tags"] == [
        "ghcr.io/acme/app:1.2.3", "ghcr.io/acme/app:1.2", f"ghcr.io/acme/app:sha-{sha[:7]}", "ghcr.io/acme/app:latest"]
    # The template names its own repository: set aside, with a line saying so.
    assert "the profile's tag templates (localhost:5000/app:{short_sha}-dev) are not used: --image names" \
        in result.stderr
    literal = orch_processes.run([sys.executable, "-m", "orchestrator", "build", str(checkout), "--profile", str(profile),
                                  "-t", "localhost:5000/x:dev", "--dry-run"], cwd=REPO, timeout=60)
    assert "the profile's tags (" in literal.stderr and "are not used: -t names the tags" in literal.stderr
