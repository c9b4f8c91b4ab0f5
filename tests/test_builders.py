"""Builders: plans without an engine; create, reuse, fall back and remove on the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.docker.builder_plan import BuilderPlan, NodePlan, plan_builder
from orchestrator.docker.builders import platform_gaps
from orchestrator.docker.emulation import parse_handler
from orchestrator.errors import BadInput
from orchestrator.model.platform import format_platform
from orchestrator.model.platform_parse import parse, parse_all
from orchestrator.profiles import BuilderNode, BuilderSpec

from .conftest import REPO, sh
from .test_build import BASE_ARG, index_digest, orch

# An image no daemon here can pull: the docker-container builder cannot start.
UNPULLABLE = "localhost:1/orch/no-such-buildkit:0"


def buildx_names() -> set[str]:
    return set(sh("docker", "buildx", "ls", "--format", "{{.Name}}").stdout.split())


# -- plans (no engine) ------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "kwargs", "name", "driver", "explicit"),
    [
        (None, {}, "orch", "docker-container", False),
        (BuilderSpec(name="ci"), {}, "ci", "docker-container", False),
        (BuilderSpec(name="ci", driver="docker-container"), {}, "ci", "docker-container", True),
        (BuilderSpec(name="ci"), {"name": "mine", "driver": "remote"}, "mine", "remote", True),
        (BuilderSpec(name="default"), {}, "default", "docker", True),
    ],
)
def test_builder_plan_defaults_and_overrides(spec, kwargs, name, driver, explicit) -> None:
    plan = plan_builder(spec, **kwargs)
    assert (plan.name, plan.driver, plan.driver_explicit) == (name, driver, explicit)


@pytest.mark.parametrize(
    ("spec", "kwargs", "says"),
    [
        (BuilderSpec(name="default", driver="docker-container"), {}, "daemon's own builder"),
        (BuilderSpec(name="ci", driver="docker"), {}, "cannot use the docker driver"),
        (None, {"name": "bad name!"}, 'builder name "bad name!" is not valid'),
        (None, {"driver": "podman"}, 'unknown builder driver "podman"'),
    ],
)
def test_bad_builder_requests_are_bad_input(spec, kwargs, says) -> None:
    with pytest.raises(BadInput) as caught:
        plan_builder(spec, **kwargs)
    assert says in str(caught.value)


def test_docker_driver_nodes_are_daemons_orch_routes_to_with_nothing_to_create() -> None:
    spec = BuilderSpec(driver="docker", nodes=(
        BuilderNode("default", platforms=tuple(parse_all(["amd64"]))),
        BuilderNode("ssh://pi@rack-1", name="pi", platforms=tuple(parse_all(["arm64"]))),
    ))
    plan = plan_builder(spec)
    assert plan.routes_by_context and plan.create_commands() == []
    assert [n.name for n in plan.nodes] == ["orch-0", "pi"]


def test_multi_node_plan_is_create_then_append_per_node() -> None:
    spec = BuilderSpec(name="farm", nodes=(
        BuilderNode("default", platforms=tuple(parse_all(["amd64", "i686"]))),
        BuilderNode("pi-rack", name="pi", platforms=tuple(parse_all(["aarch64", "armhf"]))),
    ), driver_opts={"network": "host"})
    assert plan_builder(spec).create_commands() == [
        ("buildx", "create", "--name", "farm", "--driver", "docker-container", "--driver-opt", "network=host",
         "--node", "farm-0", "--platform", "linux/amd64,linux/386", "default"),
        # buildx keeps driver options per node: every node is given them.
        ("buildx", "create", "--name", "farm", "--append", "--driver-opt", "network=host", "--node", "pi",
         "--platform", "linux/arm64,linux/arm/v7", "pi-rack"),
        ("buildx", "inspect", "--bootstrap", "farm"),
    ]


def test_profile_builder_nodes_with_their_own_tls_files_and_a_buildkitd_config(tmp_path: Path) -> None:
    (tmp_path / "buildkitd.toml").write_text('[registry."mirror.local"]\n  http = true\n')
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nbuilder:\n  name: farm\n  driver: docker-container\n"
                       "  buildkitd_config: buildkitd.toml\n  buildkitd_flags: --debug\n"
                       "  driver_opts: {network: host}\n  nodes:\n"
                       "    - {endpoint: default, platforms: [amd64]}\n"
                       "    - endpoint: tcp://arm-box:2376\n      platforms: [arm64]\n"
                       "      driver_opts: {network: bridge, env.TZ: UTC}\n")
    result = orch("builder", "create", "--profile", str(profile), "--dry-run")
    assert result.returncode == 0, result.stderr
    config = str(tmp_path / "buildkitd.toml")  # relative to the profile, wherever orch runs
    assert result.stdout.splitlines()[:2] == [
        "docker buildx create --name farm --driver docker-container --driver-opt network=host "
        f"--buildkitd-config {config} --buildkitd-flags --debug --node farm-0 --platform linux/amd64 default",
        "docker buildx create --name farm --append --driver-opt env.TZ=UTC --driver-opt network=bridge "
        f"--buildkitd-config {config} --buildkitd-flags --debug --node farm-1 --platform linux/arm64 "
        "tcp://arm-box:2376",
    ]


@pytest.mark.parametrize(("builder", "says"), [
    ("  driver: remote\n  buildkitd_config: b.toml\n  nodes: [{endpoint: 'tcp://n:1234'}]\n",
     'builder "farm" sets buildkitd_config, but its driver is remote'),
    ("  buildkitd_config: missing.toml\n", 'buildkitd_config "{dir}/missing.toml" is not a file'),
])
def test_buildkitd_settings_a_builder_cannot_use_are_refused(tmp_path: Path, builder: str, says: str) -> None:
    (tmp_path / "b.toml").write_text("")
    profile = tmp_path / "farm.yaml"
    profile.write_text(f"platforms: [amd64]\nbuilder:\n  name: farm\n{builder}")
    result = orch("builder", "create", "--profile", str(profile), "--dry-run")
    assert result.returncode == 2, result.stderr
    assert says.format(dir=tmp_path) in result.stderr and "Traceback" not in result.stderr


def test_shell_line_reuses_before_it_creates() -> None:
    assert plan_builder(BuilderSpec(name="ci")).shell() == (
        "docker buildx inspect --bootstrap ci >/dev/null 2>&1 || "
        "{ docker buildx create --name ci --driver docker-container && docker buildx inspect --bootstrap ci; }")


HANDLERS = [parse_handler("qemu-aarch64", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n")]


@pytest.mark.parametrize(
    ("nodes", "reported", "gaps"),
    [
        # One local node: binfmt decides; qemu-arm is missing, so arm/v7 is a gap.
        ((), (), {"linux/arm/v7": "no qemu-arm binfmt handler"}),
        # A native node that declares arm/v7 closes the gap.
        ((NodePlan("n0", "default"), NodePlan("n1", "default", (parse("linux/arm/v7"),))), (), {}),
        # A remote node: only declared or reported platforms count.
        ((NodePlan("n0", "tcp://arm-box:2376", (parse("linux/arm64"),)),), ("linux/arm64",),
         {"linux/amd64": "no node declares it and no node's BuildKit reports it",
          "linux/arm/v7": "no node declares it and no node's BuildKit reports it"}),
    ],
)
def test_platform_gaps_are_explained(nodes, reported, gaps) -> None:
    from orchestrator.docker.facts import BuilderInfo, BuilderNodeInfo

    plan = BuilderPlan(name="b", driver="docker-container", nodes=nodes)
    info = BuilderInfo("b", "docker-container", (BuilderNodeInfo("n0", "x", "running", reported),))
    wanted = tuple(parse_all(["amd64", "arm64", "arm/v7"]))
    found = platform_gaps(wanted, plan, info, HANDLERS, machine="x86_64")
    assert {format_platform(p): why for p, why in found.items()} == gaps


def test_builder_create_dry_run_prints_the_exact_commands(tmp_path: Path) -> None:
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nbuilder:\n  name: farm\n  nodes:\n"
                       "    - endpoint: default\n      platforms: [amd64]\n"
                       "    - endpoint: arm-box\n      platforms: [aarch64]\n")
    result = orch("builder", "create", "--profile", str(profile), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "docker buildx create --name farm --driver docker-container --node farm-0 --platform linux/amd64 default",
        "docker buildx create --name farm --append --node farm-1 --platform linux/arm64 arm-box",
        "docker buildx inspect --bootstrap farm",
    ]


# -- the real engine --------------------------------------------------------


@pytest.mark.engine
def test_ensure_falls_back_to_the_daemon_builder_when_buildkit_cannot_be_pulled() -> None:
    result = orch("builder", "ensure", "orch-fallback-test", "--driver-opt", f"image={UNPULLABLE}",
                  "--platform", "linux/arm64,linux/arm/v7", "--json")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["action"] == "fallback"
    assert outcome["builder"] == "default" and outcome["driver"] == "docker"
    assert UNPULLABLE in outcome["reason"]
    assert outcome["gaps"] == {}
    # The half-created builder is gone, and orch does not remember it.
    assert "orch-fallback-test" not in buildx_names()
    assert orch("builder", "ls", "--json").returncode == 0


@pytest.mark.engine
def test_explicit_create_that_cannot_start_exits_3_and_leaves_nothing() -> None:
    result = orch("builder", "create", "orch-nostart-test", "--driver", "docker-container",
                  "--driver-opt", f"image={UNPULLABLE}")
    assert result.returncode == 3, result.stderr
    assert 'builder "orch-nostart-test" (docker-container) did not start' in result.stderr
    assert "fix:" in result.stderr and "Traceback" not in result.stderr
    assert "orch-nostart-test" not in buildx_names()


@pytest.mark.engine
def test_rm_removes_only_builders_orch_created() -> None:
    assert orch("builder", "rm", "default").returncode == 2
    assert orch("builder", "rm", "orch-no-such-builder").returncode == 2
    sh("docker", "buildx", "create", "--name", "orch-test-theirs", "--driver", "docker-container")
    try:
        result = orch("builder", "rm", "orch-test-theirs")
        assert result.returncode == 2
        assert "was not created by orch" in result.stderr and "docker buildx rm orch-test-theirs" in result.stderr
        assert "orch-test-theirs" in buildx_names()
    finally:
        sh("docker", "buildx", "rm", "orch-test-theirs")


@pytest.mark.engine
def test_two_node_builder_is_created_listed_and_removed(tmp_path: Path, second_node: str) -> None:
    profile = tmp_path / "two.yaml"
    profile.write_text("platforms: [amd64, arm64]\nbuilder:\n  name: orch-two-test\n  nodes:\n"
                       "    - endpoint: default\n      platforms: [x86_64]\n"
                       f"    - endpoint: {second_node}\n      platforms: [aarch64]\n")
    created = orch("builder", "create", "--profile", str(profile), "--no-bootstrap", "--json")
    assert created.returncode == 0, created.stderr
    try:
        listed = {b["name"]: b for b in json.loads(orch("builder", "ls", "--json").stdout)}
        builder = listed["orch-two-test"]
        assert builder["created_by_orch"] is True
        assert [(n["name"], n["endpoint"], n["platforms"]) for n in builder["nodes"]] == [
            ("orch-two-test-0", "unix:///var/run/docker.sock", ["linux/amd64"]),
            ("orch-two-test-1", second_node, ["linux/arm64"]),
        ]
        # Its BuildKit image cannot be pulled here; ensure says so and does not fall
        # back to one daemon, which would drop the second node.
        ensured = orch("builder", "ensure", "--profile", str(profile))
        assert ensured.returncode == 3, ensured.stderr
        assert "did not start" in ensured.stderr
        assert "orch-two-test" in buildx_names()  # reused, so not removed
    finally:
        removed = orch("builder", "rm", "orch-two-test")
    assert removed.returncode == 0, removed.stderr
    assert "orch-two-test" not in buildx_names()


@pytest.mark.engine
def test_profile_builder_that_cannot_start_falls_back_and_the_build_publishes(registry, tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("extends: arm-all\nbuilder:\n  name: orch-build-fallback-test\n"
                       f"  driver_opts: {{image: '{UNPULLABLE}'}}\n")
    ref = f"{registry.host}/fallback/app:1"
    result = orch("--log-format", "json", "build", str(REPO), "--profile", str(profile),
                  "-f", str(REPO / "Dockerfile.example"), "--build-arg", BASE_ARG, "-t", ref, "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert document["builder"] == "default"
    assert document["digest"] == index_digest(ref)
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    fallback = [e for e in events if e.get("event") == "builder.fallback"]
    assert fallback and UNPULLABLE in fallback[0]["reason"]


def test_builder_commands_without_a_daemon_exit_3(tmp_path: Path) -> None:
    result = orch("builder", "ls", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert result.returncode == 3, result.stderr
    assert "no Docker daemon answers" in result.stderr and "Traceback" not in result.stderr


def test_buildx_json_listing_is_parsed_into_builders_sorted_by_name() -> None:
    from orchestrator.docker.facts import parse_builders

    text = (
        '{"Name":"orch","Driver":"docker-container","Nodes":[{"Name":"orch0","Endpoint":"unix:///var/run/docker.sock",'
        '"Status":"inactive","Platforms":null}]}\n'
        '{"Name":"default","Driver":"docker","Nodes":[{"Name":"default","Endpoint":"default","Status":"running",'
        '"Platforms":["linux/amd64","linux/arm64"]}]}\n'
    )
    builders = parse_builders(text)
    assert [(b.name, b.driver, b.status) for b in builders] == [("default", "docker", "running"),
                                                                ("orch", "docker-container", "inactive")]
    assert builders[0].platforms == ("linux/amd64", "linux/arm64") and builders[1].platforms == ()


@pytest.mark.engine
def test_ensure_on_a_fan_out_builder_checks_every_node_and_names_the_one_down(tmp_path: Path) -> None:
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nbuilder:\n  driver: docker\n  nodes:\n"
                       "    - {name: x86, endpoint: default, platforms: [amd64]}\n"
                       "    - {name: pi, endpoint: no-such-context, platforms: [arm64]}\n")
    result = orch("builder", "ensure", "--profile", str(profile))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "fan-out" in result.stdout
    assert "node x86  default  running  linux/amd64" in result.stdout
    assert "cannot build linux/arm64: node pi (no-such-context) is not answering" in result.stdout
    dry = orch("builder", "ensure", "--profile", str(profile), "--dry-run")
    assert dry.stdout.strip() == ("docker --context default info >/dev/null && "
                                  "docker --context no-such-context info >/dev/null")
