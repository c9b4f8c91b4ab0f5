"""Per-arch builds: plans and fallback rules without an engine; builds, both
merges, auto fallback, reruns and a two-daemon fan-out against the real one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orchestrator.builds.buildx_run import fallback_reason
from orchestrator.builds.merge import MergeEntry, manifest_commands
from orchestrator.builds.options import TagOptions
from orchestrator.builds.records import context_fingerprint
from orchestrator.builds.request import BuildRequest, plan_build
from orchestrator.docker.builder_plan import plan_builder
from orchestrator.docker.runner import Daemon
from orchestrator.errors import BadInput
from orchestrator.model.platform_parse import parse
from orchestrator.model.references import parse_reference
from orchestrator.profiles import BuilderNode, BuilderSpec

from .conftest import REPO, sh
from .test_build import BASE_ARG, NOW, index_digest, orch

TAG = "localhost:5000/a/b:1"


def per_arch_plan(**overrides):
    request = dict(profile="arm-all", dockerfile="Dockerfile.example", tags=TagOptions((TAG,)), push=True,
                   build_args=(BASE_ARG,), strategy="per-arch")
    request.update(overrides)
    return plan_build(BuildRequest(**request), now=NOW, cwd=REPO)


# -- plans (no engine) ------------------------------------------------------


def test_per_arch_plan_is_one_build_per_platform_each_into_its_own_layout() -> None:
    plan = per_arch_plan()
    assert [job.label for job in plan.per_arch] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]
    for job in plan.per_arch:
        args = job.build_command
        assert args[args.index("--platform") + 1] == job.label
        assert args[args.index("--output") + 1] == f"type=oci,dest={job.layout},tar=false"
        assert job.layout == f"{plan.stage_dir}/{job.label.replace('/', '-')}"
        assert "--provenance=mode=min" in args
    commands = plan.commands()
    assert sum(c.startswith("docker buildx build") for c in commands) == 3
    assert sum(c.startswith("#   then upload ") and c.endswith("to localhost:5000/a/b by digest (no tag)")
               for c in commands) == 3
    # The merge prints the index and pushes nothing; orch stages it by digest.
    merge = next(c for c in commands if "imagetools create" in c)
    assert merge.startswith("docker buildx imagetools create --dry-run 'localhost:5000/a/b@<linux/arm64 digest>' ")
    assert not any("--tag" in c for c in commands)
    assert plan.jobs == 2


def test_manifest_merge_builds_plain_docker_manifests_and_never_pushes_the_list_by_tag() -> None:
    plan = per_arch_plan(merge="manifest")
    for job in plan.per_arch:
        args = job.build_command
        assert "--provenance=false" in args and "--sbom=false" in args
        assert args[args.index("--output") + 1].endswith(",oci-mediatypes=false")
    commands = plan.commands()
    assert any(c.startswith("docker manifest create --insecure --amend localhost:5000/a/b:orch-list-") for c in commands)
    assert any(c.startswith("docker manifest inspect --insecure localhost:5000/a/b:orch-list-") for c in commands)
    assert not any("manifest push" in c for c in commands)


def test_manifest_commands_annotate_every_field_and_use_insecure_only_on_loopback() -> None:
    windows = parse("windows/amd64")
    from dataclasses import replace

    windows = replace(windows, os_version="10.0.17763.1879", os_features=("win32k",))
    entries = [MergeEntry(parse_reference("localhost:5000/a/b@sha256:" + "1" * 64), parse("linux/arm/v7")),
               MergeEntry(parse_reference("localhost:5000/a/b@sha256:" + "2" * 64), windows)]
    commands = manifest_commands(parse_reference("localhost:5000/a/b:1"), entries)
    assert commands[0][:4] == ("manifest", "create", "--insecure", "--amend")
    assert commands[1][-6:] == ("--os", "linux", "--arch", "arm", "--variant", "v7")
    assert commands[2][-8:] == ("--os", "windows", "--arch", "amd64", "--os-version", "10.0.17763.1879",
                                "--os-features", "win32k")
    assert commands[-1] == ("manifest", "inspect", "--insecure", "localhost:5000/a/b:1")
    remote = manifest_commands(parse_reference("registry.example.com/a/b:1"), entries)
    assert all("--insecure" not in command for command in remote)


def test_each_platform_goes_to_the_node_that_serves_it_natively_before_an_emulating_one() -> None:
    builder = plan_builder(BuilderSpec(driver="docker", nodes=(
        BuilderNode("default", name="x86", platforms=(parse("linux/amd64"),)),
        BuilderNode("pi-rack", name="pi", platforms=(parse("linux/arm64"), parse("linux/arm/v7"))),
        BuilderNode("ssh://root@ppc", name="power", platforms=(parse("linux/ppc64le"),)),
    )))
    from orchestrator.builds.nodes import NodeChoice, assign_node

    assert assign_node(parse("linux/arm/v7"), builder) == NodeChoice("pi", True, Daemon(context="pi-rack"))
    assert assign_node(parse("linux/ppc64le"), builder) == NodeChoice("power", True, Daemon(host="ssh://root@ppc"))
    # Served natively by nobody: the first node emulates it.
    assert assign_node(parse("linux/s390x"), builder) == NodeChoice("x86", False, Daemon(context="default"))
    # A node may be an existing buildx builder instead of a daemon.
    with_builder = plan_builder(BuilderSpec(driver="docker", nodes=(
        BuilderNode(builder="arm-farm", name="farm", platforms=(parse("linux/arm64"),)),)))
    assert assign_node(parse("linux/arm64"), with_builder) == NodeChoice("farm", True, None, "arm-farm")


def test_a_node_is_an_endpoint_or_a_builder_never_both_or_neither(tmp_path: Path) -> None:
    from orchestrator.profiles import load

    for nodes, says in [("[{name: a}]", 'give exactly one of "endpoint" or "builder"'),
                        ("[{endpoint: default, builder: b}]", 'give exactly one of "endpoint" or "builder"')]:
        profile = tmp_path / "p.yaml"
        profile.write_text(f"platforms: [arm64]\nbuilder:\n  driver: docker\n  nodes: {nodes}\n")
        with pytest.raises(BadInput, match=says):
            load(str(profile))
    with pytest.raises(BadInput, match="works only when orch sends each platform's build to its node"):
        plan_builder(BuilderSpec(driver="docker-container", nodes=(BuilderNode(builder="x"),)))


@pytest.mark.parametrize(
    ("strategy", "lines", "falls_back"),
    [
        ("auto", ["#7 [linux/arm/v7 2/2] RUN make", "#7 ERROR: process did not complete: exit code: 1"],
         "only linux/arm/v7 failed in the single call"),
        ("auto", ["ERROR: Multi-platform build is not supported for the docker driver."],
         "cannot build several platforms in one call"),
        # Every platform failed at the same step: per-arch would fail the same way.
        ("auto", ["#7 [linux/arm64 2/2] RUN false", "#7 ERROR: exit code: 1",
                  "#8 [linux/arm/v6 2/2] RUN false", "#8 ERROR: exit code: 1",
                  "#9 [linux/arm/v7 2/2] RUN false", "#9 ERROR: exit code: 1"], None),
        # Tied to no platform: a Dockerfile syntax error fails fast.
        ("auto", ["ERROR: failed to solve: dockerfile parse error on line 3: unknown instruction: RUNN"], None),
        ("single", ["#7 [linux/arm/v7 2/2] RUN make", "#7 ERROR: process did not complete: exit code: 1"], None),
    ],
)
def test_auto_falls_back_only_when_per_arch_can_help(strategy: str, lines: list[str], falls_back: str | None) -> None:
    plan = per_arch_plan(strategy=strategy)
    reason = fallback_reason(plan, lines)
    assert (reason is None) == (falls_back is None)
    if falls_back:
        assert falls_back in reason


def test_per_arch_needs_push_and_a_known_strategy_and_merge() -> None:
    with pytest.raises(BadInput, match="need --push"):
        per_arch_plan(push=False, tags=TagOptions())
    with pytest.raises(BadInput, match='--strategy "fastest" is not one of'):
        per_arch_plan(strategy="fastest")
    with pytest.raises(BadInput, match='--merge "oci" is not one of imagetools, manifest'):
        per_arch_plan(merge="oci")
    with pytest.raises(BadInput, match='--jobs "0" must be 1 or more'):
        per_arch_plan(jobs=0)


def test_reuse_fingerprint_ignores_the_timestamp_but_not_the_inputs(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".git").mkdir()
    first = per_arch_plan(dockerfile=None, context=str(tmp_path), profile="arm-all").per_arch[0]
    later = plan_build(BuildRequest(profile="arm-all", context=str(tmp_path), tags=TagOptions((TAG,)), push=True,
                                    strategy="per-arch", build_args=(BASE_ARG,)), cwd=REPO).per_arch[0]
    context = context_fingerprint(str(tmp_path), None)
    assert first.spec.fingerprint(context) == later.spec.fingerprint(context)  # only `created` differs
    changed = per_arch_plan(dockerfile=None, context=str(tmp_path), build_args=("BASE_IMAGE=other",)).per_arch[0]
    assert changed.spec.fingerprint(context) != first.spec.fingerprint(context)
    (tmp_path / ".git" / "index").write_text("moves with every commit")
    assert context_fingerprint(str(tmp_path), None) == context
    (tmp_path / "app.py").write_text("print(1)\n")
    assert context_fingerprint(str(tmp_path), None) != context
    assert context_fingerprint("https://github.com/org/repo.git", None) is None


# -- against the real engine ------------------------------------------------


def raw_index(ref: str) -> dict:
    return json.loads(sh("docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .}}").stdout)


def platform_rows(ref: str) -> list[tuple[str, str]]:
    """(descriptor platform, config os/arch/variant) per image, in index order, as raw buildx reports them."""
    document = raw_index(ref)
    configs = document["image"]
    rows = []
    for m in document["manifest"]["manifests"]:
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        p = m["platform"]
        key = "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)
        c = configs[key]
        rows.append((key, "/".join(x for x in (c["os"], c["architecture"], c.get("variant")) if x)))
    return rows


def flaky_context(tmp_path: Path, fails_on: str = "linux/arm/v7") -> Path:
    """A build whose RUN fails the first time it runs for one platform, then passes: the
    way an emulated step that crashes now and then behaves. The mark survives the failure
    in a cache mount with an id of its own."""
    ctx = tmp_path / "flaky"
    ctx.mkdir()
    # The token is in the command too: BuildKit's cache key leaves out a cache mount's id.
    token = uuid.uuid4().hex
    (ctx / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TARGETPLATFORM\n"
        f"RUN --mount=type=cache,target=/mark,id=orch-flaky-{token} "
        f'if [ "$TARGETPLATFORM" = {fails_on} ] && [ ! -e /mark/seen ]; then touch /mark/seen; '
        f"echo crashed under emulation >&2; exit 139; fi; echo {token} > /ok\n"
    )
    return ctx


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # a single call to compare with
def test_forced_per_arch_gives_the_same_index_as_the_single_build(registry) -> None:
    single, per_arch = registry.ref("demo/app", "single"), registry.ref("demo/app", "per-arch")
    one = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
               "-t", single, "--push", "--strategy", "single")
    assert one.returncode == 0, one.stderr[-3000:]
    many = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                "-t", per_arch, "--push", "--strategy", "per-arch", "--jobs", "3")
    assert many.returncode == 0, many.stderr[-3000:]
    assert "(per-arch, merged with imagetools)" in many.stdout
    # One digest per platform: the progress line names the same image the summary lists.
    summary = dict(line.split()[:2] for line in many.stdout.splitlines() if line.startswith("linux/"))
    for platform, digest in summary.items():
        assert f"orch: {platform:<14} built {digest} in " in many.stderr, (platform, digest, many.stderr[-2000:])
    expected = [("linux/arm64", "linux/arm64"), ("linux/arm/v6", "linux/arm/v6"), ("linux/arm/v7", "linux/arm/v7")]
    assert platform_rows(single) == platform_rows(per_arch) == expected
    # imagetools keeps each platform's provenance.
    attestations = [m for m in raw_index(per_arch)["manifest"]["manifests"]
                    if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"]
    assert len(attestations) == 3
    ran = sh("docker", "run", "--rm", "--platform", "linux/arm/v6", per_arch)
    assert "target=linux/arm/v6" in ran.stdout


@pytest.mark.engine
def test_manifest_merge_gives_a_docker_manifest_list_with_variants_in_order(registry) -> None:
    tag = registry.ref("demo/classic", "1")
    result = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                  "-t", tag, "--push", "--strategy", "per-arch", "--merge", "manifest")
    assert result.returncode == 0, result.stderr[-3000:]
    raw = json.loads(sh("docker", "buildx", "imagetools", "inspect", tag, "--raw").stdout)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert [m["platform"] for m in raw["manifests"]] == [
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v6"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
    ]
    assert all(m["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json" for m in raw["manifests"])
    assert orch("verify", tag, "--profile", "arm-all", "--strict").returncode == 0


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # a single call to fall back from
def test_auto_falls_back_when_one_platform_fails_single_shot_and_says_why(registry, tmp_path: Path) -> None:
    tag = registry.ref("demo/flaky", "1")
    result = orch("build", str(flaky_context(tmp_path)), "--profile", "arm-all", "--build-arg", BASE_ARG,
                  "-t", tag, "--push")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "building each platform on its own: only linux/arm/v7 failed in the single call" in result.stderr
    assert "built per platform because only linux/arm/v7 failed" in result.stdout
    assert [row[0] for row in platform_rows(tag)] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # a single call that fails fast
def test_auto_fails_fast_on_a_dockerfile_error(registry, tmp_path: Path) -> None:
    ctx = tmp_path / "typo"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nRUNN echo\n")
    result = orch("build", str(ctx), "--profile", "arm-all", "-t", registry.ref("demo/typo", "1"), "--push")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "unknown instruction" in result.stderr.lower()
    assert "building each platform on its own" not in result.stderr
    assert "[linux/arm64]" not in result.stderr  # no per-platform build ran


@pytest.mark.engine
def test_a_failed_platform_keeps_the_tag_and_a_rerun_builds_only_it(registry, tmp_path: Path) -> None:
    tag = registry.ref("demo/rerun", "stable")
    good = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                "-t", tag, "--push")
    assert good.returncode == 0, good.stderr[-3000:]
    before = index_digest(tag)

    ctx = flaky_context(tmp_path)
    args = ("build", str(ctx), "--profile", "arm-all", "--build-arg", BASE_ARG, "-t", tag, "--push",
            "--strategy", "per-arch")
    first = orch(*args)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "1 of 3 platform builds failed; no tag was changed" in first.stderr
    assert re.search(r"linux/arm/v7( on node \S+)?: failed at", first.stderr), first.stderr[-3000:]
    assert "kept for the next run: linux/arm64, linux/arm/v6" in first.stderr
    assert index_digest(tag) == before

    second = orch(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "linux/arm64    reused" in second.stderr and "linux/arm/v6   reused" in second.stderr
    assert "linux/arm/v7   building" in second.stderr
    assert "linux/arm64    building" not in second.stderr
    assert index_digest(tag) != before
    assert [row[0] for row in platform_rows(tag)] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]


@pytest.fixture(scope="module")
def classic_node(engine_ready: None):
    """A second daemon with the classic image store: its builder takes one platform per call."""
    import os

    if os.geteuid() != 0:
        pytest.skip("a second daemon needs root (scripts/engine-node.sh)")
    name = "orch-test-classic"
    sh("bash", str(REPO / "scripts" / "engine-node.sh"), "start", name, "--classic-store")
    yield name
    sh("bash", str(REPO / "scripts" / "engine-node.sh"), "stop", name)


@pytest.mark.engine
def test_auto_on_a_builder_that_takes_one_platform_per_call_builds_per_platform(registry, classic_node: str,
                                                                               daemons_own_builder: None) -> None:
    tag = registry.ref("demo/classic-store", "1")
    single = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                  "-t", tag, "--push", "--strategy", "single", env={"DOCKER_CONTEXT": classic_node})
    assert single.returncode == 3, single.stderr[-3000:]
    assert "--strategy per-arch" in single.stderr

    auto = orch("build", "--profile", "arm-all", "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                "-t", tag, "--push", env={"DOCKER_CONTEXT": classic_node})
    assert auto.returncode == 0, auto.stderr[-3000:]
    assert "without the containerd image store) builds one platform per call" in auto.stdout
    assert "cannot attach provenance or SBOM" in auto.stderr  # said, once the builder is known
    assert [row[0] for row in platform_rows(tag)] == ["linux/arm64", "linux/arm/v6", "linux/arm/v7"]


@pytest.mark.engine
@pytest.mark.parametrize("second_as", ["endpoint", "builder"])
def test_two_node_fan_out_builds_each_platform_on_its_node(registry, tmp_path: Path, second_node: str,
                                                          second_as: str) -> None:
    # Each daemon has its own bridge, so a RUN step's address tells which daemon ran it.
    ctx = tmp_path / "where"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        "RUN ip -4 -o addr show eth0 | awk '{print $4}' > /built-in-subnet\n"
        'CMD ["cat", "/built-in-subnet"]\n'
    )
    profile = tmp_path / "farm.yaml"
    profile.write_text(
        "platforms: [linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le]\n"
        "strategy: per-arch\n"
        "builder:\n"
        "  driver: docker\n"
        "  nodes:\n"
        "    - {name: main, endpoint: default, platforms: [linux/amd64, linux/ppc64le]}\n"
        # buildx lists every docker context as a builder of that name, so the node can be named either way.
        f"    - {{name: second, {second_as}: {second_node}, platforms: [linux/arm64, linux/arm/v7]}}\n"
    )
    tag = registry.ref("demo/fanout", "1")
    result = orch("build", str(ctx), "--profile", str(profile), "--build-arg", BASE_ARG, "-t", tag, "--push")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "linux/arm64    building on second (native)" in result.stderr
    assert "linux/amd64    building on main (native)" in result.stderr
    second_subnet = sh("docker", "--context", second_node, "network", "inspect", "bridge", "--format",
                       "{{(index .IPAM.Config 0).Subnet}}").stdout.strip()
    main_subnet = sh("docker", "network", "inspect", "bridge", "--format",
                     "{{(index .IPAM.Config 0).Subnet}}").stdout.strip()
    for platform, subnet in [("linux/arm64", second_subnet), ("linux/arm/v7", second_subnet),
                             ("linux/amd64", main_subnet), ("linux/ppc64le", main_subnet)]:
        address = sh("docker", "run", "--rm", "--platform", platform, tag).stdout.strip()
        assert address_in(address, subnet), (platform, address, subnet)
    assert [row[0] for row in platform_rows(tag)] == ["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/ppc64le"]


def address_in(address: str, subnet: str) -> bool:
    import ipaddress

    return ipaddress.ip_interface(address).ip in ipaddress.ip_network(subnet)


def test_single_strategy_with_daemon_nodes_is_bad_input(tmp_path: Path) -> None:
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nstrategy: single\nbuilder:\n  driver: docker\n"
                       "  nodes: [{endpoint: default}, {endpoint: pi}]\n")
    result = orch("build", "--profile", str(profile), "-f", "Dockerfile.example", "-t", TAG, "--push", "--dry-run")
    assert result.returncode == 2
    assert "one buildx call cannot span them" in result.stderr and "--strategy per-arch" in result.stderr


def test_unreachable_node_exits_3_naming_it(tmp_path: Path) -> None:
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [arm64]\nstrategy: per-arch\nbuilder:\n  driver: docker\n"
                       f"  nodes: [{{name: gone, endpoint: 'unix://{tmp_path}/none.sock', platforms: [arm64]}}]\n")
    result = orch("build", "--profile", str(profile), "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                  "-t", "localhost:5000/x/y:1", "--push")
    assert result.returncode == 3, result.stderr[-2000:]
    assert 'build node "gone"' in result.stderr and "Traceback" not in result.stderr


def test_dry_run_of_a_fan_out_prints_each_build_on_its_node(tmp_path: Path) -> None:
    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nstrategy: per-arch\nbuilder:\n  driver: docker\n"
                       "  nodes: [{name: x86, endpoint: default, platforms: [amd64]},"
                       " {name: pi, endpoint: pi-rack, platforms: [arm64]}]\n")
    result = orch("build", "--profile", str(profile), "-f", "Dockerfile.example", "-t", TAG, "--push", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("docker ")]
    assert lines[0].startswith("docker --context default buildx build --platform linux/amd64 ")
    assert lines[0].endswith("# on x86")
    assert lines[1].startswith("docker --context pi-rack buildx build --platform linux/arm64 ")


def test_the_failed_step_is_read_from_a_single_platform_log() -> None:
    from orchestrator.docker.progress import failed_step

    log = ["#4 [internal] load metadata", "#5 [stage-0 2/2] RUN make", "#5 0.22 crashed",
           "#5 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 139"]
    assert failed_step(log) == "RUN make"
    assert failed_step(["ERROR: failed to solve: dockerfile parse error"]) is None


@pytest.mark.parametrize(("jobs", "nodes", "most_at_once", "most_per_node"), [(1, 2, 1, 1), (2, 2, 2, 1), (4, 2, 4, 2),
                                                                             (3, 0, 3, 3)])
def test_builds_run_at_most_jobs_at_once_with_an_even_share_per_node(jobs, nodes, most_at_once,
                                                                    most_per_node) -> None:
    import threading
    from dataclasses import replace

    from orchestrator.builds.perarch import run_scheduled
    from orchestrator.builds.result import PlatformOutcome

    template = per_arch_plan().per_arch[0]
    names = ["a", "b"] if nodes else [None]  # a's builds first: without a share per node they would take every worker
    todo = [(replace(template, platform=parse(p), node=names[i * len(names) // 8]), None)
            for i, p in enumerate(["linux/arm64", "linux/arm/v6", "linux/arm/v7", "linux/386", "linux/s390x",
                                   "linux/ppc64le", "linux/amd64", "linux/riscv64"])]
    running: dict = {}
    peak = {"all": 0, "node": 0}
    lock = threading.Lock()
    gate = threading.Event()  # opens once as many builds run at once as the limits allow

    def build(job, _fingerprint):
        with lock:
            running[job.node] = running.get(job.node, 0) + 1
            peak["all"] = max(peak["all"], sum(running.values()))
            peak["node"] = max(peak["node"], running[job.node])
            if peak["all"] >= most_at_once:
                gate.set()
        # The first builds hold until the expected number run together: a scheduler that starts
        # fewer leaves them waiting until the deadline, and the peak below shows it.
        if not gate.wait(timeout=20):
            gate.set()
        with lock:
            running[job.node] -= 1
        return PlatformOutcome("built", "sha256:x", job.node)

    results = run_scheduled(todo, jobs, nodes, build)
    assert sorted(map(str, results)) == sorted(job.label for job, _ in todo)
    assert peak["all"] == most_at_once and peak["node"] == most_per_node


def test_no_cache_reaches_every_build_and_turns_reuse_off() -> None:
    plan = per_arch_plan(no_cache=True)
    assert "--no-cache" in plan.build_command
    assert all("--no-cache" in job.build_command for job in plan.per_arch)
    assert plan.reuse is False


def test_builder_nodes_are_checked_and_a_contexts_own_builder_runs_from_that_context(tmp_path: Path) -> None:
    from orchestrator.builds.complete import resolve_builder_nodes
    from orchestrator.docker.facts import BuilderInfo
    from orchestrator.errors import EnvironmentMissing

    profile = tmp_path / "farm.yaml"
    profile.write_text("platforms: [amd64, arm64]\nstrategy: per-arch\nbuilder:\n  driver: docker\n  nodes:\n"
                       "    - {name: x86, builder: ci-amd64, platforms: [amd64]}\n"
                       "    - {name: pi, builder: pi-rack, platforms: [arm64]}\n")
    plan = plan_build(BuildRequest(profile=str(profile), dockerfile="Dockerfile.example", tags=TagOptions((TAG,)),
                                   push=True),
                      now=NOW, cwd=REPO)
    assert all(job.build_command[2] == "--builder" for job in plan.per_arch)
    builders = [BuilderInfo("ci-amd64", "docker-container"), BuilderInfo("pi-rack", "docker")]
    amd64, arm64 = resolve_builder_nodes(plan, builders).per_arch
    assert amd64.build_command[2:4] == ("--builder", "ci-amd64") and amd64.daemon is None
    assert "--builder" not in arm64.build_command and arm64.daemon == Daemon(context="pi-rack")
    with pytest.raises(EnvironmentMissing, match='build node "pi" names the builder "pi-rack", which does not exist'):
        resolve_builder_nodes(plan, builders[:1])


def test_per_arch_builds_export_registry_cache_to_a_ref_of_their_own(tmp_path: Path) -> None:
    profile = tmp_path / "cached.yaml"
    profile.write_text("platforms: [arm64, armhf]\n"
                       "cache_from: ['type=registry,ref=localhost:5000/app:cache']\n"
                       "cache_to: ['type=registry,ref=localhost:5000/app:cache,mode=max', type=gha]\n")
    plan = per_arch_plan(profile=str(profile))
    arm64 = plan.per_arch[0].build_command
    flags = [(arm64[i], arm64[i + 1]) for i in range(len(arm64) - 1) if arm64[i] in ("--cache-from", "--cache-to")]
    assert flags == [
        ("--cache-from", "type=registry,ref=localhost:5000/app:cache"),
        ("--cache-from", "type=registry,ref=localhost:5000/app:cache-linux-arm64"),
        ("--cache-to", "type=registry,ref=localhost:5000/app:cache-linux-arm64,mode=max"),
        ("--cache-to", "type=gha"),
    ]
    # The single call keeps the profile's refs as they are.
    assert "type=registry,ref=localhost:5000/app:cache,mode=max" in plan.build_command



def test_a_part_given_one_cache_ref_writes_a_ref_of_its_own_and_reads_the_shared_one(tmp_path: Path) -> None:
    """Each native runner builds its part with the same `--cache REF` (a profile's `cache:`): each writes
    REF-PLATFORM, so no leg overwrites another's cache manifest, and reads its own and REF."""
    from orchestrator.builds.options import TagOptions as Tags

    plans = [plan_build(BuildRequest(platforms=(platform,), dockerfile="Dockerfile.example", build_args=(BASE_ARG,),
                                     tags=Tags(images=("localhost:5000/parts/app",)), push=True,
                                     part=str(tmp_path / "parts"), cache="localhost:5000/parts/app:buildcache"),
                        now=NOW, cwd=REPO) for platform in ("linux/amd64", "linux/arm64")]
    for plan, slug in zip(plans, ("linux-amd64", "linux-arm64"), strict=True):
        words = plan.build_command
        flags = [(words[i], words[i + 1]) for i in range(len(words) - 1) if words[i] in ("--cache-from", "--cache-to")]
        assert flags == [("--cache-from", f"type=registry,ref=localhost:5000/parts/app:buildcache-{slug}"),
                         ("--cache-from", "type=registry,ref=localhost:5000/parts/app:buildcache"),
                         ("--cache-to", f"type=registry,ref=localhost:5000/parts/app:buildcache-{slug},mode=max")]


def test_how_each_platform_was_built_reaches_entries_that_carry_an_os_version() -> None:
    """A published entry may carry an os.version the plan never named (a Windows node's image);
    its row must still say how it was built. The old join keyed outcomes by "windows/amd64" and
    looked them up by "windows/amd64:10.0.17763.1879", so the row said nothing."""
    from dataclasses import replace

    from orchestrator.builds.result import PlatformOutcome, published_platforms
    from orchestrator.image.model import Entry

    oci = "application/vnd.oci.image.manifest.v1+json"
    arm64, windows = parse("linux/arm64"), parse("windows/amd64")
    server_2019 = replace(windows, os_version="10.0.17763.1879")
    entries = [Entry(0, "sha256:" + "a" * 64, oci, 1, arm64, arm64, {}),
               Entry(1, "sha256:" + "b" * 64, oci, 1, server_2019, server_2019, {})]
    outcomes = {arm64: PlatformOutcome("reused", "sha256:" + "c" * 64, "pi"),
                windows: PlatformOutcome("built", "sha256:" + "d" * 64, "win")}
    rows = published_platforms(entries, outcomes)
    assert [(r.platform, r.state, r.node) for r in rows] == [
        ("linux/arm64", "reused", "pi"), ("windows(10.0.17763.1879)/amd64", "built", "win")]
    # A plan that names the os.version joins only the entry with that version.
    pinned = {replace(windows, os_version="10.0.20348.1"): PlatformOutcome("built", None, "win2022")}
    assert published_platforms(entries[1:], pinned)[0].state is None


@pytest.mark.engine
def test_a_node_on_the_classic_store_stages_its_build_under_a_tag_known_before_building(registry, tmp_path: Path,
                                                                                        classic_node: str) -> None:
    """The node daemons are asked once, with the plan's completion, so the classic node's job is
    planned with a staging tag before any build starts (it was switched while the run held the
    old plan, and built into a layout it could not write)."""
    profile = tmp_path / "mixed.yaml"
    profile.write_text("platforms: [amd64, arm64]\nstrategy: per-arch\nbuilder:\n  driver: docker\n  nodes:\n"
                       "    - {name: x86, endpoint: default, platforms: [amd64]}\n"
                       f"    - {{name: old, endpoint: {classic_node}, platforms: [arm64]}}\n")
    tag = registry.ref("demo/mixed", "1")
    result = orch("build", "--profile", str(profile), "-f", "Dockerfile.example", "--build-arg", BASE_ARG,
                  "-t", tag, "--push", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    staging = [c for c in document["commands"] if f"--context {classic_node} " in c]
    assert len(staging) == 1 and "type=registry,name=" in staging[0] and "orch-staging-" in staging[0], staging
    assert [p["platform"] for p in document["platforms"]] == ["linux/amd64", "linux/arm64"]


@pytest.mark.engine
def test_the_index_orch_composes_is_the_one_imagetools_create_prints(registry, tmp_path: Path) -> None:
    """The per-arch merge composes imagetools' index itself when every platform's result is an OCI
    index; the peer's own tool, given the same sources and annotation, prints the same document."""
    from orchestrator.builds.merge import imagetools_create, merged_index
    from orchestrator.docker.runner import Engine

    from .conftest import buildx_push

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN uname -m > /arch\n")
    entries = []
    for platform in ("linux/arm64", "linux/amd64"):  # not orch's order: the merge keeps the given one
        tag = registry.ref("merge/one", platform.replace("/", "-"))
        buildx_push(ctx, platform, f"type=registry,name={tag}", "--build-arg", BASE_ARG, "--provenance=mode=min")
        entries.append(MergeEntry(parse_reference(tag).with_digest(index_digest(tag)), parse(platform)))
    annotations = {"org.opencontainers.image.description": "a & <b>"}
    repository = parse_reference(registry.ref("merge/one"))
    composed = merged_index(Engine(), "imagetools", repository, entries, annotations)
    printed = Engine().cli_json(*imagetools_create([e.source for e in entries], annotations))
    assert json.loads(composed.body) == printed
    assert list(json.loads(composed.body)) == list(printed)  # the same keys in the same order: the same bytes
    assert len(printed["manifests"]) == 4  # each platform's image and its attestation


def test_the_state_directory_is_a_cache_a_failed_write_is_said_once_and_leaves_nothing(tmp_path, monkeypatch):
    from orchestrator import state

    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(state, "_said", False)
    said: list[str] = []
    monkeypatch.setattr(state, "warn", said.append)
    (tmp_path / "records" / "x.json").mkdir(parents=True)  # where the record goes, a directory: rename fails
    assert state.write_record("records/x.json", {"a": 1}) is False
    assert state.write_record("records/x.json", {"a": 2}) is False
    assert len(said) == 1 and f"the state directory {tmp_path} cannot be written" in said[0]
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["x.json"]  # no temporary file left
    assert state.write_record("records/y.json", {"b": 1}) and state.read_record("records/y.json") == {"b": 1}


@pytest.mark.engine
def test_a_per_arch_publish_with_a_state_directory_that_cannot_be_written(registry, tmp_path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    tag = registry.ref("perarch/readonly-state", "1")
    result = subprocess.run([sys.executable, "-m", "orchestrator", "build", "-f", "Dockerfile.example", "--platform",
                             "linux/amd64,linux/arm64", "--build-arg", BASE_ARG, "-t", tag, "--push", "--strategy",
                             "per-arch"], capture_output=True, text=True, cwd=REPO, timeout=900,
                            env={**os.environ, "ORCH_STATE_HOME": str(blocker / "state")})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("cannot be written (Not a directory); orch goes on") == 1
    assert "Traceback" not in result.stderr and f"tag {tag}: new" in result.stdout
