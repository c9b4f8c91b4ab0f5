"""One profile for both CIs: `orch init --ci gitlab` after `--ci github` (and the other way round)
adds the CI's file and runners table, the rest of the profile and the other CI's file as they
were; a flat runners table (as orch init wrote before) is the table of the CI whose file exists."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from .test_init import orch

RELEASED = ("--install", "orch-multiarch==0.1.0")
GITHUB = {"linux/amd64": ("ubuntu-latest", False), "linux/arm64": ("ubuntu-24.04-arm", False),
          "linux/arm/v7": ("ubuntu-latest", True)}
GITLAB = {"linux/amd64": ("saas-linux-small-amd64", False), "linux/arm64": ("saas-linux-small-arm64", False),
          "linux/arm/v7": ("saas-linux-small-amd64", True)}
FLAT = """# Written by an older orch init.
name: svc
platforms:
  - linux/amd64
  - linux/arm64
  - linux/arm/v7
# our runners
runners:
  linux/amd64: ubuntu-latest
  # the Pi in the office
  linux/arm/v7: rpi-4
tags: ["type=sha"]  # only sha tags
attestations: {provenance: mode=max}
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A project whose origin is on GitHub (what made GitLab's file push to ghcr.io)."""
    directory = tmp_path / "svc"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    subprocess.run(["git", "init", "-q", str(directory)], check=True)
    subprocess.run(["git", "-C", str(directory), "remote", "add", "origin", "https://github.com/acme/svc.git"],
                   check=True)
    return directory


def init(directory: Path, ci: str, *extra: str) -> subprocess.CompletedProcess:
    return orch("init", str(directory), "--ci", ci, "--runners", "native", *RELEASED, *extra)


def runners(directory: Path, ci: str) -> dict[str, tuple[str, bool]]:
    shown = orch("profiles", "runners", "svc", "--ci", ci, "--json", cwd=directory)
    assert shown.returncode == 0, shown.stderr
    return {m["platform"]: (m["runner"], m["qemu"]) for m in json.loads(shown.stdout)["include"]}


@pytest.mark.parametrize(("first", "second"), [("github", "gitlab"), ("gitlab", "github")])
def test_the_second_ci_is_added_beside_the_first_without_force(checkout: Path, first: str, second: str) -> None:
    assert init(checkout, first, "--platform", "linux/amd64,linux/arm64,linux/arm/v7").returncode == 0
    profile = checkout / "profiles" / "svc.yaml"
    mine = profile.read_text().replace("name: svc\n", "# mine, kept\nname: svc\n").replace("mode=min", "mode=max")
    profile.write_text(mine)
    files = {"github": checkout / ".github" / "workflows" / "image.yml", "gitlab": checkout / ".gitlab-ci.yml"}
    before = files[first].read_text()
    added = init(checkout, second)
    assert added.returncode == 0, added.stderr
    assert files[first].read_text() == before and files[second].is_file()
    after = profile.read_text()
    # Every line the user had is still there, in order; only the new CI's table is new.
    assert [line for line in after.splitlines() if line in mine.splitlines()] == mine.splitlines()
    assert yaml.safe_load(after)["runners"] == {
        "github": {"linux/amd64": "ubuntu-latest", "linux/arm64": "ubuntu-24.04-arm"},
        "gitlab": {"linux/amd64": "saas-linux-small-amd64", "linux/arm64": "saas-linux-small-arm64"}}
    assert runners(checkout, "github") == GITHUB and runners(checkout, "gitlab") == GITLAB
    pipeline = yaml.safe_load(files["gitlab"].read_text())
    assert pipeline["variables"]["ORCH_IMAGE"] == "$CI_REGISTRY_IMAGE"  # where its jobs log in, whatever the remote
    assert [m["RUNNER_TAG"] for m in pipeline["image-build"]["parallel"]["matrix"]] == \
        ["saas-linux-small-amd64", "saas-linux-small-arm64", "saas-linux-small-amd64"]
    assert yaml.safe_load(files["github"].read_text())["env"]["ORCH_IMAGE"] == "ghcr.io/acme/svc"
    again = init(checkout, second)
    assert again.returncode == 2 and "exists; orch init does not overwrite it" in again.stderr


def test_a_flat_table_is_the_table_of_the_ci_whose_file_exists(checkout: Path) -> None:
    profiles = checkout / "profiles"
    profiles.mkdir()
    (profiles / "svc.yaml").write_text(FLAT)
    mine = {"linux/amd64": ("ubuntu-latest", False), "linux/arm64": None, "linux/arm/v7": ("rpi-4", False)}
    # Neither file: GitHub's.
    assert runners(checkout, "github") == {**GITHUB, **{k: v for k, v in mine.items() if v}}
    assert runners(checkout, "gitlab") == GITLAB
    # Only GitLab's file: GitLab's.
    (checkout / ".gitlab-ci.yml").write_text("stages: [build]\n")
    assert runners(checkout, "gitlab")["linux/arm/v7"] == ("rpi-4", False) and runners(checkout, "github") == GITHUB
    # Adding GitHub: the flat table moves under gitlab:, its comment kept; the rest as it was.
    added = init(checkout, "github")
    assert added.returncode == 0, added.stderr
    text = (profiles / "svc.yaml").read_text()
    assert "runners:\n  gitlab:\n    linux/amd64: ubuntu-latest\n    # the Pi in the office\n    linux/arm/v7: rpi-4\n" \
        "  github:\n" in text
    assert text.startswith(FLAT.split("runners:")[0]) and text.endswith(FLAT.split("rpi-4\n")[1])
    assert runners(checkout, "gitlab")["linux/arm/v7"] == ("rpi-4", False) and runners(checkout, "github") == GITHUB


def test_platforms_come_from_the_profile_unless_asked(checkout: Path) -> None:
    profiles = checkout / "profiles"
    profiles.mkdir()
    (profiles / "svc.yaml").write_text("name: svc\nplatforms: [linux/arm64, linux/s390x]\n")
    assert init(checkout, "gitlab").returncode == 0
    matrix = yaml.safe_load((checkout / ".gitlab-ci.yml").read_text())["image-build"]["parallel"]["matrix"]
    assert [m["PLATFORM"] for m in matrix] == ["linux/arm64", "linux/s390x"]
    text = (profiles / "svc.yaml").read_text()
    assert text.startswith("name: svc\nplatforms: [linux/arm64, linux/s390x]\n")
    assert yaml.safe_load(text)["tags"][0] == "type=semver,pattern={{version}}"  # it had none: the CI's rules
    assert init(checkout, "github", "--platform", "linux/amd64").returncode == 0
    assert yaml.safe_load((profiles / "svc.yaml").read_text())["runners"]["github"] == {"linux/amd64": "ubuntu-latest"}


def test_a_runners_table_names_only_the_two_cis(checkout: Path) -> None:
    profiles = checkout / "profiles"
    profiles.mkdir()
    (profiles / "svc.yaml").write_text("name: svc\nplatforms: [linux/amd64]\nrunners:\n  github: {linux/amd64: x}\n"
                                       "  jenkins: {linux/amd64: y}\n")
    bad = orch("profiles", "runners", "svc", cwd=checkout)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert 'runners.jenkins: "jenkins" is not a CI' in bad.stderr and "move it under runners.github" in bad.stderr
