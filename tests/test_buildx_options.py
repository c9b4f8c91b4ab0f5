"""Every buildx option a build needs, from the CLI and from profiles, and anything else after `--`:
rendered into every buildx call, refused where orch owns the option, secrets masked where shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.builds.request import BuildRequest, plan_build
from orchestrator.errors import BadInput
from orchestrator.model.buildx_options import BY_KEY

from . import orch_processes
from .conftest import REPO

BASE = "localhost:5000/orch/busybox:stable"


def orch(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd,
                              timeout=600, env={k: v for k, v in os.environ.items() if not k.startswith("ORCH_P")})


def _argv(**request: object) -> str:
    """The build command for a request; buildx's pass-through options (model.buildx_options) by their key."""
    buildx = tuple((key, value) for key, value in request.items() if key in BY_KEY)
    fields = {key: value for key, value in request.items() if key not in BY_KEY}
    plan = plan_build(BuildRequest(**{"dockerfile": "Dockerfile.example", "platforms": ("linux/arm64",), **fields,
                                      "buildx": buildx}), cwd=REPO)
    return plan.commands()[0]


@pytest.mark.parametrize(
    ("request_fields", "expected"),
    [
        ({"target": "final"}, "--target final"),
        ({"labels": ("team=infra",)}, "--label team=infra"),
        ({"annotations": ("k=v",)}, "--annotation index:k=v --annotation manifest:k=v"),
        ({"annotations": ("index:k=v",)}, "--annotation index:k=v --provenance"),  # the level as given
        ({"cache_from": ("type=registry,ref=r/c:1",)}, "--cache-from type=registry,ref=r/c:1"),
        ({"cache_to": ("type=inline",)}, "--cache-to type=inline"),
        ({"ssh": ("default",)}, "--ssh default"),
        ({"build_contexts": ("base=docker-image://alpine",)}, "--build-context base=docker-image://alpine"),
        ({"pull": True}, "--pull"),
        ({"network": "none"}, "--network none"),
        ({"add_hosts": ("db:10.0.0.5",)}, "--add-host db:10.0.0.5"),
        ({"allow": ("network.host",)}, "--allow network.host"),
        ({"shm_size": "1g"}, "--shm-size 1g"),
        ({"ulimits": ("nofile=1024:1024",)}, "--ulimit nofile=1024:1024"),
        ({"provenance": "mode=max"}, "--provenance=mode=max"),
        ({"sbom": True}, "--sbom=true"),
        ({"extra_args": ("--no-cache-filter", "build")}, "--progress plain --no-cache-filter build ."),
    ],
)
def test_each_option_reaches_the_buildx_command(request_fields: dict, expected: str) -> None:
    assert expected in _argv(**request_fields)


def test_profile_keys_give_the_same_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPM_TOKEN", "npm-secret-value")  # a secret by reference: its variable must be set
    profile = tmp_path / "p.yaml"
    profile.write_text("platforms: [linux/arm64]\nssh: [default]\nbuild_contexts: {base: docker-image://alpine}\n"
                       "pull: true\nnetwork: host\nadd_hosts: ['db:10.0.0.5']\nallow: [network.host]\n"
                       "shm_size: 2g\nulimits: ['nofile=1024:1024']\nsecrets: ['id=npm,env=NPM_TOKEN']\n")
    line = _argv(profile=str(profile), platforms=())
    for expected in ("--ssh default", "--build-context base=docker-image://alpine", "--pull", "--network host",
                     "--add-host db:10.0.0.5", "--allow network.host", "--shm-size 2g", "--ulimit nofile=1024:1024",
                     "--secret id=npm,env=NPM_TOKEN"):
        assert expected in line
    assert "npm-secret-value" not in line
    # The CLI adds to a profile's lists and replaces its single values.
    both = _argv(profile=str(profile), platforms=(), ssh=("key=/k",), network="none")
    assert "--ssh default --ssh key=/k" in both and "--network none" in both


@pytest.mark.parametrize(
    ("word", "use"),
    [("--push", "orch build --push"), ("--output=type=local,dest=x", "--oci-layout"), ("-o", "--oci-layout"),
     ("--load", "without --push"), ("--platform", "orch's --platform"), ("--metadata-file", "--metadata-file"),
     ("-t", "orch's -t/--tag"), ("--tag", "orch's -t/--tag"), ("--builder", "orch's --builder"),
     ("-f", "orch's -f/--file"), ("--progress=tty", "orch's own progress")],
)
def test_options_orch_owns_are_refused_after_the_double_dash(word: str, use: str) -> None:
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/arm64", "--dry-run", "--", word, "x")
    assert result.returncode == 2, result.stderr
    assert f'"{word}" after -- is an option orch sets itself' in result.stderr and use in result.stderr


def test_secret_build_args_after_the_double_dash_are_masked_wherever_shown() -> None:
    shown = orch("build", "-f", "Dockerfile.example", "--platform", "linux/arm64", "--dry-run", "--json", "--",
                 "--build-arg", "API_TOKEN=hunter2", "--build-arg=DB_PASSWORD=s3cret", "--build-arg", "MODE=fast")
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout + shown.stderr and "s3cret" not in shown.stdout + shown.stderr
    command = json.loads(shown.stdout)["commands"][0]
    assert "API_TOKEN=*****" in command and "--build-arg=DB_PASSWORD=*****" in command and "MODE=fast" in command


def test_bad_key_value_options_are_bad_input() -> None:
    with pytest.raises(BadInput, match='--annotation "team" is not KEY=VALUE'):
        _argv(annotations=("team",))
    # Label lines are read as metadata-action reads them: `team` is left out (and said), `team=` is empty.
    plan = plan_build(BuildRequest(dockerfile="Dockerfile.example", platforms=("linux/arm64",),
                                   labels=("team", "tier=")), cwd=REPO)
    assert "team" not in plan.labels and plan.labels["tier"] == ""
    assert any('--label "team" has no "=": left out' in warning for warning in plan.warnings)
    with pytest.raises(BadInput, match='--provenance "maximal"'):
        _argv(provenance="maximal")
    outside = orch("verify", "r/a:1", "--platform", "linux/arm64", "--", "--x")
    assert outside.returncode == 2 and "words after -- are for `orch build`" in outside.stderr


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # a local build, read from the daemon's store
def test_a_named_context_a_target_stage_and_passed_through_args_build_for_real(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "note.txt").write_text("from the named context\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE} AS base\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n"
        "FROM base AS final\nCOPY --from=extra note.txt /note.txt\n"
        'CMD ["/bin/sh", "-c", "cat /greeting /note.txt"]\n'
        "FROM base AS other\nRUN false\n")
    name = f"orch-test/options-{os.getpid()}:1"
    result = orch("build", str(tmp_path), "--platform", "linux/arm64", "-t", name, "--target", "final",
                  "--build-context", f"extra={extra}", "--label", "team=infra", "--", "--build-arg", "GREETING=hello")
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        ran = subprocess.run(["docker", "run", "--rm", "--platform", "linux/arm64", name], capture_output=True,
                             text=True, timeout=300)
        assert ran.stdout.split("\n")[:2] == ["hello", "from the named context"], ran.stdout + ran.stderr
        labels = subprocess.run(["docker", "image", "inspect", name, "--format", "{{json .Config.Labels}}"],
                                capture_output=True, text=True, timeout=60).stdout
        assert json.loads(labels)["team"] == "infra"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True)


def test_the_command_line_takes_every_pass_through_option_once() -> None:
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/arm64", "--dry-run", "--target", "final",
                  "--ssh", "default", "--pull", "--network", "none", "--add-host", "db:10.0.0.5", "--allow",
                  "network.host", "--shm-size", "1g", "--ulimit", "nofile=1024:1024", "--ssh", "key=/k")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("docker "))
    assert ("--target final --ssh default --ssh key=/k --pull --network none --add-host db:10.0.0.5 "
            "--allow network.host --shm-size 1g --ulimit nofile=1024:1024") in line
