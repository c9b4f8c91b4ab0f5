"""Builders of several BuildKit nodes in real release cycles: a local build (or an OCI layout)
whose platforms all go to one node runs as buildx runs it, only one that spans nodes is refused;
a node that stops answering mid-build is named as such, and once restarted a rerun builds only
its platforms. The rules are read from what buildx 0.13.1 and 0.30.1 did on the two-node remote
builder of scripts/buildkit-up.sh (orch-farm: farm-amd64 given linux/amd64, linux/386; farm-arm
given linux/arm64, linux/arm/v7, linux/arm/v6)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.builds.buildx_run import NodeStopped, node_stopped
from orchestrator.builds.complete import complete
from orchestrator.builds.nodes import call_nodes
from orchestrator.builds.options import TagOptions
from orchestrator.builds.perarch import failure_error
from orchestrator.builds.request import BuildRequest, plan_build
from orchestrator.builds.result import PlatformOutcome
from orchestrator.docker.capabilities import Capabilities, capabilities_from
from orchestrator.errors import BuildStepFailed, EnvironmentMissing, ExitCode
from orchestrator.model.platform_match import order
from orchestrator.model.platform_parse import parse, parse_all

from .conftest import ENGINE_STATE, REPO
from .test_build import BASE_ARG, NOW
from .test_faults import tags_in
from .waiting import Watched, wait_until

DATA = Path(__file__).parent / "data" / "buildx"
BASE = "localhost:5000/orch/busybox:stable"


def _farm(version: str) -> Capabilities:
    """The recorded two-node remote builder: n1 given linux/amd64, linux/386; n2 given linux/arm64,
    linux/arm/v7, linux/arm/v6."""
    return capabilities_from((DATA / f"inspect-remote-2-nodes-{version}.txt").read_text(),
                             (DATA / f"version-{version}.txt").read_text(), None)


# -- which nodes one buildx call runs on (no engine) -------------------------------------------

# What buildx 0.13.1 and 0.30.1 did on orch-farm (nodes named n1, n2 here, as in the recording):
# the nodes that built (seen in each node's build history) and whether --load / type=oci worked.
ROUTES = [
    (("linux/arm64",), {"n2": ("linux/arm64",)}),
    (("linux/amd64",), {"n1": ("linux/amd64",)}),
    (("linux/arm64", "linux/arm/v7"), {"n2": ("linux/arm64", "linux/arm/v7")}),
    (("linux/386", "linux/amd64"), {"n1": ("linux/amd64", "linux/386")}),
    # a platform no node is given sends the WHOLE call to the first node, under QEMU
    (("linux/riscv64",), {"n1": ("linux/riscv64",)}),
    (("linux/riscv64", "linux/arm64"), {"n1": ("linux/arm64", "linux/riscv64")}),
    # only these span nodes: buildx refuses "oci for multi-node builds currently not supported"
    (("linux/amd64", "linux/arm64"), {"n1": ("linux/amd64",), "n2": ("linux/arm64",)}),
    (("linux/386", "linux/arm/v6"), {"n1": ("linux/386",), "n2": ("linux/arm/v6",)}),
]


@pytest.mark.parametrize("version", ["0.13.1", "0.30.1"])
@pytest.mark.parametrize(("platforms", "routed"), ROUTES)
def test_one_call_goes_to_the_nodes_buildx_sends_it_to(version, platforms, routed) -> None:
    assert call_nodes(tuple(order(parse_all(platforms))), _farm(version)) == routed


def test_a_builder_of_one_node_builds_every_call_and_none_is_routed_without_nodes() -> None:
    one = Capabilities("ci", "docker-container", (0, 30, 1), _farm("0.30.1").nodes[:1])
    assert call_nodes((parse("linux/arm64"),), one) == {"n1": ("linux/arm64",)}
    assert call_nodes((parse("linux/arm64"),), Capabilities("x", "remote", (0, 30, 1))) == {}


def _local_plan(platforms: tuple[str, ...], layout: str | None):
    return plan_build(BuildRequest(platforms=platforms, dockerfile="Dockerfile.example", tags=TagOptions(("orch-local/a:1",)),
                                   build_args=(BASE_ARG,), oci_layout=layout), now=NOW, cwd=REPO)


@pytest.mark.parametrize("version", ["0.13.1", "0.30.1"])
@pytest.mark.parametrize(("platforms", "layout", "output"), [
    (("linux/arm64",), None, "type=docker,"),
    (("linux/arm64", "linux/arm/v7"), None, "type=docker,"),
    (("linux/arm64", "linux/arm/v7"), "/tmp/orch-layout", "type=oci,dest=/tmp/orch-layout,"),
    (("linux/s390x", "linux/arm64"), "/tmp/orch-layout", "type=oci,dest=/tmp/orch-layout,"),
])
def test_a_local_build_on_one_node_of_several_is_one_buildx_call(version, platforms, layout, output) -> None:
    completed = complete(_local_plan(platforms, layout), _farm(version))
    [command] = completed.commands()
    assert f"--output '{output}" in command and not completed.push


@pytest.mark.parametrize(("layout", "what"), [(None, "load one image into the daemon"),
                                              ("/tmp/orch-layout", "write one OCI layout")])
def test_a_local_build_that_spans_nodes_is_refused_naming_what_each_node_would_build(layout, what) -> None:
    with pytest.raises(EnvironmentMissing) as refused:
        complete(_local_plan(("linux/386", "linux/arm64", "linux/arm/v7"), layout), _farm("0.30.1"))
    assert refused.value.exit_code == ExitCode.ENVIRONMENT
    assert refused.value.message == (f'builder "tfarm" has 2 nodes, and buildx cannot {what} from several nodes '
                                     "(n1 would build linux/386; n2 would build linux/arm64, linux/arm/v7)")
    assert refused.value.fix is not None and refused.value.fix.startswith(
        "build only platforms of one node (n1: linux/amd64, linux/386; n2: linux/arm64, linux/arm/v7, linux/arm/v6)")


# -- a node that stops answering (no engine) ---------------------------------------------------

# buildx's last lines, as printed when farm-arm's buildkitd was killed during a RUN step
# (SIGKILL), and when a build started with it already gone; a failed step and a registry's 503
# are not a node stopping.
KILLED_0_13 = ['#5 [2/2] RUN echo "waiting-383" && sleep 600', "#5 0.126 waiting-383",
               "ERROR: failed to receive status: rpc error: code = Unavailable desc = error reading from server: EOF"]
KILLED_0_30 = ['#5 [2/2] RUN echo "waiting-16165" && sleep 40', "#5 0.088 waiting-16165",
               "ERROR: failed to build: failed to receive status: rpc error: code = Unavailable desc = error "
               "reading from server: EOF"]
GONE = ["#0 building with \"orch-farm\" instance using remote driver", "", "#1 [internal] waiting for connection",
        "#1 ERROR: context deadline exceeded", "------", " > [internal] waiting for connection:", "------"]
STEP_FAILED = ["#5 [2/2] RUN exit 3",
               '#5 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3',
               'ERROR: failed to build: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: '
               "exit code: 3"]
REGISTRY_503 = ["ERROR: failed to solve: failed to push localhost:5000/a/b: unexpected status from PUT request to "
                "http://localhost:5000/v2/a/b/manifests/sha256:1: 503 Service Unavailable"]


@pytest.mark.parametrize(("lines", "said"), [
    (KILLED_0_13, "failed to receive status: rpc error: code = Unavailable desc = error reading from server: EOF"),
    (KILLED_0_30, "failed to receive status: rpc error: code = Unavailable desc = error reading from server: EOF"),
    # the solve call can break before the status stream does (0.13.1 under orch, killed mid-step)
    (["ERROR: failed to solve: Unavailable: error reading from server: EOF"],
     "failed to solve: Unavailable: error reading from server: EOF"),
    ([*GONE, "ERROR: context deadline exceeded"], "waiting for connection: context deadline exceeded"),
    ([*GONE, "ERROR: failed to build: context deadline exceeded"], "waiting for connection: context deadline exceeded"),
    (STEP_FAILED, None),
    (REGISTRY_503, None),
    (["ERROR: failed to build: context deadline exceeded"], None),  # no connection step: not known to be the node
])
def test_a_node_that_stopped_answering_is_read_from_what_buildx_printed(lines, said) -> None:
    assert node_stopped(lines) == said


def _failed(node: str, failure: str) -> PlatformOutcome:
    return PlatformOutcome("failed", node=node, failure=failure)


def test_platforms_whose_node_stopped_are_the_environments_with_the_node_and_its_restart() -> None:
    arm64 = parse("linux/arm64")
    error = failure_error({arm64: _failed("farm-arm", "the node stopped answering (buildx: EOF)")}, {arm64}, 2,
                          ["linux/amd64"], "orch-farm")
    assert isinstance(error, NodeStopped) and error.exit_code == ExitCode.ENVIRONMENT
    assert error.message == ("node farm-arm stopped answering: 1 of 2 platform builds did not finish, no step "
                             "failed; no tag was changed\n  linux/arm64 on node farm-arm: the node stopped answering "
                             "(buildx: EOF)\n  kept for the next run: linux/amd64")
    assert error.fix == ("check or restart node farm-arm (`docker buildx inspect orch-farm` shows each node's "
                         "status), then rerun the same command: only linux/arm64 is built again")
    assert error.failed == {"linux/arm64": "node farm-arm stopped answering"}


def test_a_failed_step_beside_a_stopped_node_is_the_jobs_and_says_both() -> None:
    amd64, arm64 = parse("linux/amd64"), parse("linux/arm64")
    error = failure_error({amd64: _failed("farm-amd64", "failed at RUN make"),
                           arm64: _failed("farm-arm", "the node stopped answering (buildx: EOF)")},
                          {arm64}, 2, None, "orch-farm")
    assert type(error) is BuildStepFailed and error.exit_code == ExitCode.FAILED
    assert error.message.startswith("2 of 2 platform builds failed; no tag was changed\n")
    assert error.fix == ("fix the failing step, check or restart node farm-arm (`docker buildx inspect orch-farm` "
                         "shows each node's status), and rerun the same command")
    assert error.failed == {"linux/amd64": "RUN make", "linux/arm64": "node farm-arm stopped answering"}


# -- on the engine: orch-farm ------------------------------------------------------------------

def _orch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=900)


def _context(tmp_path: Path, run: str) -> Path:
    """A context whose RUN step no node has cached (a fresh token)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nARG TARGETARCH\nRUN echo {uuid.uuid4().hex} > /token && {run}\n")
    return ctx


def _image_platform(image: str) -> str:
    found = subprocess.run(["docker", "image", "inspect", image, "--format", "{{.Os}}/{{.Architecture}}"],
                           capture_output=True, text=True)
    return found.stdout.strip() or found.stderr.strip()


@pytest.mark.engine
@pytest.mark.parametrize("platform", ["linux/arm64", "linux/amd64"])
def test_a_one_platform_local_build_on_a_builder_of_two_nodes_is_loaded(buildkit_builders, tmp_path,
                                                                         platform) -> None:
    image = f"orch-local/one-node:{uuid.uuid4().hex[:12]}"
    ctx = _context(tmp_path, "uname -m > /built-on")
    try:
        result = _orch("build", str(ctx), "--platform", platform, "-t", image, "--builder",
                       buildkit_builders["remote"])
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"into the local image store: docker.io/{image}" in result.stdout
        assert _image_platform(image) == platform
    finally:
        subprocess.run(["docker", "image", "rm", image], capture_output=True)


def _layout_platforms(layout: Path) -> list[str]:
    """The platforms of the images an OCI layout's index holds, read from the layout's own files."""
    def blob(digest: str) -> dict:
        return json.loads((layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_text())

    [top] = json.loads((layout / "index.json").read_text())["manifests"]
    inner = blob(top["digest"]).get("manifests", [])
    return [f"{m['platform']['os']}/{m['platform']['architecture']}"
            + (f"/{m['platform']['variant']}" if m["platform"].get("variant") else "")
            for m in inner if m["platform"]["architecture"] != "unknown"]  # attestations


@pytest.mark.engine
def test_an_oci_layout_of_platforms_of_one_node_is_written(buildkit_builders, tmp_path) -> None:
    layout = tmp_path / "layout"
    result = _orch("build", str(_context(tmp_path, "uname -m > /built-on")), "--platform", "linux/arm64,linux/arm/v7",
                   "-t", "orch-local/layout:1", "--oci-layout", str(layout), "--builder", buildkit_builders["remote"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert _layout_platforms(layout) == ["linux/arm64", "linux/arm/v7"]


@pytest.mark.engine
def test_an_oci_layout_that_spans_nodes_is_refused_before_building(buildkit_builders, tmp_path) -> None:
    layout = tmp_path / "layout"
    result = _orch("build", str(_context(tmp_path, "true")), "--platform", "linux/386,linux/arm/v6", "-t",
                   "orch-local/layout:1", "--oci-layout", str(layout), "--builder", buildkit_builders["remote"])
    assert result.returncode == 3, result.stderr[-3000:]
    assert ("buildx cannot write one OCI layout from several nodes (farm-amd64 would build linux/386; farm-arm "
            "would build linux/arm/v6)") in result.stderr
    assert "Traceback" not in result.stderr and "[internal] load build definition" not in result.stderr
    assert not layout.exists()


class _Gate(http.server.ThreadingHTTPServer):
    """What the RUN step fetches: the first request for `held` waits until the test opens the
    gate (so the build is mid-step while the node is killed); every other answers at once."""

    daemon_threads = True

    def __init__(self, held: str) -> None:
        self.held = held
        self.reached = threading.Event()
        self.open = threading.Event()
        super().__init__(("127.0.0.1", 0), _GateHandler)


class _GateHandler(http.server.BaseHTTPRequestHandler):
    server: _Gate

    def do_GET(self) -> None:  # http.server's name
        if self.path == self.server.held and not self.server.reached.is_set():
            self.server.reached.set()
            self.server.open.wait(timeout=600)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gate() -> Iterator[_Gate]:
    server = _Gate("/arm64")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.open.set()
    server.shutdown()
    server.server_close()


def _tags(registry, repository: str) -> list[str]:
    """The repository's tags; none when the registry knows no tag of it (404)."""
    try:
        return tags_in(registry, repository)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def _node_answers(node: str) -> bool:
    buildctl = ENGINE_STATE / "buildkit" / "bin" / "buildctl"
    return subprocess.run([str(buildctl), "--addr", f"unix:///run/orch-buildkit-{node}.sock", "debug", "workers"],
                          capture_output=True, timeout=60).returncode == 0


def _restart_nodes() -> None:
    """As the engine starts them: idempotent, it starts only the nodes that do not answer."""
    up = subprocess.run(["bash", str(REPO / "scripts" / "buildkit-up.sh"), "up"], capture_output=True, text=True,
                        timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]


def _killed_mid_step(args: list[str], gate: _Gate, node: str) -> tuple[int, str]:
    """Run orch; once the linux/arm64 RUN step reaches the gate, kill `node`'s buildkitd (SIGKILL),
    as a crash would: orch's exit code and stderr."""
    build = Watched(args, cwd=REPO)
    wait_until(lambda: gate.reached.is_set() or build.process.poll() is not None,
               "the linux/arm64 build's RUN step to reach the test's gate")
    assert gate.reached.is_set(), build.finish()[2][-3000:]
    pid = int((ENGINE_STATE / "buildkit" / node / "buildkitd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _node_answers(node), f"node {node} to stop answering")
    gate.open.set()  # the step's own process outlives its buildkitd: let it end
    code, _out, err = build.finish()
    return code, err


@pytest.mark.engine
def test_a_node_killed_during_a_local_build_is_named_and_the_build_works_once_it_is_back(
        buildkit_builders, tmp_path, gate) -> None:
    if os.geteuid() != 0:
        pytest.skip("killing and restarting a BuildKit node needs root (scripts/buildkit-up.sh)")
    node, image = "farm-arm", f"orch-local/killed:{uuid.uuid4().hex[:12]}"
    ctx = _context(tmp_path, f"wget -q -O /fetched http://127.0.0.1:{gate.server_address[1]}/$TARGETARCH")
    args = [sys.executable, "-m", "orchestrator", "build", str(ctx), "--platform", "linux/arm64", "-t", image,
            "--builder", buildkit_builders["remote"]]
    try:
        code, err = _killed_mid_step(args, gate, node)
        assert code == 3, err[-3000:]
        assert "node farm-arm stopped answering during the build, no step failed (buildx: " in err
        assert "check or restart node farm-arm" in err and "Traceback" not in err
        _restart_nodes()
        rerun = _orch(*args[3:])
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert _image_platform(image) == "linux/arm64"
    finally:
        gate.open.set()
        if not _node_answers(node):
            _restart_nodes()
        subprocess.run(["docker", "image", "rm", image], capture_output=True)


@pytest.mark.engine
def test_a_node_killed_mid_build_is_named_and_a_rerun_after_its_restart_builds_only_its_platforms(
        registry, buildkit_builders, tmp_path, gate) -> None:
    if os.geteuid() != 0:
        pytest.skip("killing and restarting a BuildKit node needs root (scripts/buildkit-up.sh)")
    node = "farm-arm"
    ctx = _context(tmp_path, f"wget -q -O /fetched http://127.0.0.1:{gate.server_address[1]}/$TARGETARCH")
    tag = registry.ref("multinode/killed", "1")
    args = [sys.executable, "-m", "orchestrator", "build", str(ctx), "--platform", "linux/amd64,linux/arm64",
            "-t", tag, "--push", "--builder", buildkit_builders["remote"]]
    try:
        code, err = _killed_mid_step(args, gate, node)
        assert code == 3, err[-3000:]
        assert "node farm-arm stopped answering: 1 of 2 platform builds did not finish, no step failed" in err
        assert "linux/arm64 on node farm-arm: the node stopped answering (buildx: " in err
        assert "kept for the next run: linux/amd64" in err
        assert "check or restart node farm-arm" in err and "only linux/arm64 is built again" in err
        assert "fix the failing step" not in err and "Traceback" not in err
        assert _tags(registry, "multinode/killed") == []  # no tag moved

        _restart_nodes()
        rerun = _orch(*args[3:], "--json")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert [(p["platform"], p["state"], p["node"]) for p in json.loads(rerun.stdout)["platforms"]] == [
            ("linux/amd64", "reused", "farm-amd64"), ("linux/arm64", "built", "farm-arm")]
        assert _tags(registry, "multinode/killed") == ["1"]
    finally:
        gate.open.set()
        if not _node_answers(node):
            _restart_nodes()
