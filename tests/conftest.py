"""Fixtures for the real engine: a Docker daemon with buildx and QEMU, and
registries that each test starts on a free loopback port and stops.

Tests that need the engine carry ``@pytest.mark.engine``. Outside CI they
skip, with the reason, when no engine answers; with CI=true any skip of such
a test is turned into a failure, so CI never passes on tests that did not run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import orch_processes
from .waiting import wait_until

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ENGINE_STATE = Path(os.environ.get("ORCH_STATE_DIR", "/var/lib/orch-engine"))
REPO = Path(__file__).resolve().parent.parent

# OCI platform -> the Debian busybox-static binary engine-up.sh downloaded for it.
BUSYBOX_FOR_PLATFORM = {
    "linux/amd64": "amd64",
    "linux/arm64": "arm64",
    "linux/arm/v7": "armhf",
    "linux/arm/v6": "armel",
    "linux/arm/v5": "armel",
    "linux/386": "i386",
    "linux/ppc64le": "ppc64el",
    "linux/s390x": "s390x",
}


# BuildKit's own builders (scripts/buildkit-up.sh): a remote-driver builder of two buildkitd
# nodes on the host, and a docker-container builder on a BuildKit image made offline.
BUILDKIT_BUILDERS = {"remote": "orch-farm", "docker-container": "orch-container"}
# The builder the engine suite builds on: the daemon's own (docker), or one of BuildKit's own,
# named by kind in ORCH_TEST_BUILDER (`make test-builders` runs each with each buildx).
TEST_BUILDER = os.environ.get("ORCH_TEST_BUILDER") or "docker"
# Whether it builds every platform in one call (a builder of several nodes builds per platform).
ONE_CALL = TEST_BUILDER != "remote"


# The buildx the suite runs: 0.30.1 by default (what setup-buildx-action installs on CI runners
# today), or "system" (the machine's own: Debian's 0.13.1). 0.30.1 is put in the plugin directory of
# a private DOCKER_CONFIG for the session, so the machine's own buildx is never replaced.
TEST_BUILDX = os.environ.get("ORCH_TEST_BUILDX") or "0.30.1"
BUILDX_BINARIES = {"0.30.1": "docker-buildx"}  # version -> the binary's name under ../shared/buildkit
SHARED_BUILDKIT = Path(os.environ.get("ORCH_BUILDKIT_DIR") or REPO.parent / "shared" / "buildkit")


def _buildx_binary(version: str) -> Path:
    """The buildx binary of `version`: where scripts/buildkit-up.sh unpacked it, else unpacked
    here from the project's shared .xz (nothing is downloaded)."""
    import lzma

    name = BUILDX_BINARIES[version]
    for unpacked in (ENGINE_STATE / "buildkit" / "bin" / name,
                     Path.home() / ".cache" / "orch-tests" / f"buildx-{version}" / name):
        if os.access(unpacked, os.X_OK):
            return unpacked
    packed = SHARED_BUILDKIT / f"{name}.xz"
    if not packed.is_file():
        raise pytest.UsageError(f"ORCH_TEST_BUILDX={version}: no {ENGINE_STATE / 'buildkit' / 'bin' / name} and no "
                                f"{packed} to unpack it from; run `make engine`, set ORCH_BUILDKIT_DIR to the folder "
                                "holding docker-buildx.xz, or ORCH_TEST_BUILDX=system")
    unpacked.parent.mkdir(parents=True, exist_ok=True)
    partial = unpacked.with_suffix(f".{os.getpid()}")
    with lzma.open(packed) as source, partial.open("wb") as target:
        shutil.copyfileobj(source, target)
    partial.chmod(0o755)
    partial.replace(unpacked)
    return unpacked


def docker_config_dir(path: Path, *, logins_from: Path | None = None) -> Path:
    """A DOCKER_CONFIG at `path` that keeps the suite's buildx and builders (its plugin directory
    and the builders' state), with the logins of `logins_from` if given, else none."""
    path.mkdir(parents=True, exist_ok=True)
    home = Path.home() / ".docker"
    builders = Path(os.environ.get("ORCH_TEST_BUILDERS_STATE") or home / "buildx")
    if builders.is_dir() and not (path / "buildx").exists():
        (path / "buildx").symlink_to(builders)
    plugin = os.environ.get("ORCH_TEST_BUILDX_PLUGIN")
    if plugin and not (path / "cli-plugins").exists():
        (path / "cli-plugins").mkdir()
        (path / "cli-plugins" / "docker-buildx").symlink_to(plugin)
    if logins_from is not None and (logins_from / "config.json").is_file():
        shutil.copy(logins_from / "config.json", path / "config.json")
    return path


def _use_buildx(version: str) -> None:
    if version == "system":
        return
    if version not in BUILDX_BINARIES:
        raise pytest.UsageError(f'ORCH_TEST_BUILDX="{version}" is not a buildx the suite has; use '
                                f"{', '.join(BUILDX_BINARIES)} or system")
    import tempfile

    home = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    os.environ["ORCH_TEST_BUILDX_PLUGIN"] = str(_buildx_binary(version))
    os.environ["ORCH_TEST_BUILDERS_STATE"] = str(home / "buildx")
    (home / "buildx").mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=f"orch-buildx-{version}-"))
    os.environ["DOCKER_CONFIG"] = str(docker_config_dir(private, logins_from=home))
    os.environ["ORCH_TEST_PRIVATE_CONFIG"] = str(private)


def pytest_unconfigure(config: pytest.Config) -> None:
    orch_processes.stop()
    private = os.environ.pop("ORCH_TEST_PRIVATE_CONFIG", None)
    if private:
        shutil.rmtree(private, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if TEST_BUILDER not in ("docker", *BUILDKIT_BUILDERS):
        raise pytest.UsageError(f'ORCH_TEST_BUILDER="{TEST_BUILDER}" is not a builder kind; use docker, '
                                f"{', '.join(BUILDKIT_BUILDERS)}")
    # Every orch and buildx call of the suite goes to that builder (buildx reads BUILDX_BUILDER).
    if TEST_BUILDER == "docker":
        os.environ.pop("BUILDX_BUILDER", None)
    else:
        os.environ["BUILDX_BUILDER"] = BUILDKIT_BUILDERS[TEST_BUILDER]
    _use_buildx(TEST_BUILDX)



# Engine tests whose outcome does not hang on the builder kind or the buildx version: they read, verify,
# sign and promote what a registry holds, or drive CI files, reports and terminals around a build. `make
# test` runs them; CI's builder legs (`make test-ci-builders`) leave them out as `any_builder`, and `make
# test-builders` runs everything on every pair. A module is listed whole, or a test by its name.
ANY_BUILDER_MODULES = frozenset({
    "test_verify", "test_hostile_registry", "test_manifest_tool_conformance", "test_manifest_spec", "test_deep",
    "test_signing", "test_ci_signing", "test_ci_blocks", "test_ci_reruns", "test_ci_outputs", "test_report_html",
    "test_live_view", "test_registry_reach", "test_publish_cost", "test_engine_harness", "test_init",
    "test_doctor", "test_owned_threads", "test_platform_conformance", "test_closed_outputs",
})
ANY_BUILDER_TESTS = frozenset({
    # test_faults: what the registry does during and after promotion.
    "test_a_tag_the_registry_keeps_refusing_puts_every_moved_tag_back",
    "test_one_500_on_a_tag_is_retried_and_every_tag_moves",
    "test_registry_gone_during_promotion_leaves_each_tag_where_the_output_says",
    "test_a_signal_during_promotion_finishes_it_and_says_so",
    "test_two_publishes_to_one_tag_at_once_each_publish_their_own_or_say_they_were_raced",
    "test_a_publish_leaves_no_tag_but_the_users_on_a_registry_that_cannot_delete_tags",
    "test_an_index_swapped_for_another_is_a_verification_failure_naming_both_digests",
    "test_a_config_swapped_for_an_empty_one_fails_verification",
    "test_an_image_whose_config_really_is_empty_fails_verification",
    "test_reads_retry_a_503_and_a_cut_off_answer_and_fail_cleanly_when_it_persists",
    "test_a_registry_that_wants_a_login_stops_orch_before_building_with_the_fix",
    "test_tags_in_other_repositories_and_registries_get_the_samemanifest_body",
    "test_kill_9_during_promotion_is_reported_and_repaired_by_the_next_run",
    "test_tags_found_on_different_digests_before_a_publish_are_said",
    # test_emulation: the report in a browser (its build is the report's input, not what is tested).
    "test_the_report_opens_in_a_browser_with_one_lane_per_platform",
})


def _builder_marks(item: pytest.Item) -> list[pytest.MarkDecorator]:
    """`any_builder` for the tests listed above, `named_builder` for those that name BuildKit's own
    builders themselves (the buildkit_builders fixture): ORCH_TEST_BUILDER does not change what they run."""
    module = item.module.__name__.rsplit(".", 1)[-1] if isinstance(item, pytest.Function) else ""
    name = item.originalname if isinstance(item, pytest.Function) else item.name
    marks = [pytest.mark.any_builder] if module in ANY_BUILDER_MODULES or name in ANY_BUILDER_TESTS else []
    return marks + ([pytest.mark.named_builder] if "buildkit_builders" in getattr(item, "fixturenames", ()) else [])


def pytest_report_header(config: pytest.Config) -> str:
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True,
                            timeout=60).stdout.strip() if shutil.which("docker") else ""
    return ("engine builder: " + (os.environ.get("BUILDX_BUILDER") or "the daemon's own (docker driver)")
            + f"; buildx: {buildx or 'none'} (ORCH_TEST_BUILDX={TEST_BUILDX})")


# Fixtures whose set-up takes a second or more: every test using one is marked slow (`make test`
# runs it, `make unit` does not), whatever module it is in.
SLOW_FIXTURES = {
    "key_pair": "cosign generate-key-pair (scrypt), and cosign decrypting the key again in the test",
}


def _is_slow(item: pytest.Item) -> bool:
    """Slow by rule: a fixture of SLOW_FIXTURES, or a property test (hypothesis runs a hundred
    examples or more of it: seconds, and fuzzing, which the issue puts in `make test`)."""
    return bool(SLOW_FIXTURES.keys() & set(getattr(item, "fixturenames", ()))) or \
        getattr(getattr(item, "obj", None), "is_hypothesis_test", False) is True


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
        for mark in _builder_marks(item):
            item.add_marker(mark)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and item.get_closest_marker("engine") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"engine test skipped under CI=true (engine tests must run in CI): {report.longrepr}"


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no `docker` CLI on PATH (run `make engine`)"
    for args in (["docker", "info"], ["docker", "buildx", "version"]):
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            return f"`{' '.join(args)}` failed: {result.stderr.strip()[:300]} (run `make engine`)"
    if shutil.which("docker-registry") is None:
        return "no `docker-registry` binary for test registries (run `make engine`)"
    builder = os.environ.get("BUILDX_BUILDER")
    if builder and subprocess.run(["docker", "buildx", "inspect", builder], capture_output=True,
                                  timeout=60).returncode:
        return f"ORCH_TEST_BUILDER={TEST_BUILDER}: no builder {builder} (run `bash scripts/buildkit-up.sh up` as root)"
    return None


@pytest.fixture(scope="session")
def engine_ready() -> None:
    problem = _engine_problem()
    if problem:
        pytest.skip(f"no build engine: {problem}")


@pytest.fixture(autouse=True)
def _engine_marker_needs_engine(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("engine"):
        request.getfixturevalue("engine_ready")


FORKING = orch_processes.forking  # ORCH_TEST_FORK=0: every orch run a new interpreter


@pytest.hookimpl(tryfirst=True)  # before the test's fixtures, module-scoped ones too, are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    """orch runs are forked from a warm server (tests/orch_processes.py), except in the engine
    suite: it runs orch as users do, a new interpreter each time."""
    orch_processes.forking = FORKING and not item.get_closest_marker("engine")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Registry:
    host: str  # "localhost:PORT": Docker treats loopback registries as insecure (plain HTTP)
    port: int
    root: Path
    process: subprocess.Popen

    def ref(self, repository: str, tag: str = "latest") -> str:
        return f"{self.host}/{repository}:{tag}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_registry(workdir: Path, htpasswd: Path | None = None) -> Registry:
    port = free_port()
    root = workdir / f"registry-{port}"
    root.mkdir(parents=True)
    auth = (
        f"auth:\n  htpasswd:\n    realm: orch-test\n    path: {htpasswd}\n" if htpasswd is not None else ""
    )
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log = open(root / "registry.log", "wb")  # closed with the process
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    registry = Registry(host=f"localhost:{port}", port=port, root=root, process=process)
    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return True
        except urllib.error.HTTPError as exc:
            return exc.code == 401
        except OSError:
            return process.poll() is not None  # exited: stop waiting, the error below shows its log

    try:
        wait_until(answers, f"the test registry on port {port}")
        if process.poll() is None:
            return registry
    except AssertionError:
        pass
    registry.stop()
    raise RuntimeError(f"test registry did not start: {(root / 'registry.log').read_text()[-500:]}")


@pytest.fixture
def registry(tmp_path: Path, engine_ready: None) -> Iterator[Registry]:
    """A fresh registry on a free loopback port, stopped after the test."""
    reg = start_registry(tmp_path)
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def busybox_binaries(engine_ready: None) -> dict[str, Path]:
    """OCI platform -> a static busybox for it (downloaded by engine-up.sh)."""
    found = {}
    for platform, debian_arch in BUSYBOX_FOR_PLATFORM.items():
        binary = ENGINE_STATE / "busybox" / debian_arch
        if binary.is_file():
            found[platform] = binary
    if len(found) != len(BUSYBOX_FOR_PLATFORM):
        pytest.skip(f"busybox binaries missing under {ENGINE_STATE}/busybox (run `make engine`)")
    return found


def platform_suffix(platform: str) -> str:
    """The $TARGETARCH$TARGETVARIANT buildx gives a platform: linux/arm/v7 -> armv7."""
    return "".join(platform.split("/")[1:])


@pytest.fixture
def busybox_context(tmp_path: Path, busybox_binaries: dict[str, Path]) -> Callable[..., Path]:
    """Make a build context whose image for each platform holds that platform's
    busybox and runs a RUN step on it (under QEMU when foreign).

    ``binary_for`` maps a platform to the platform whose binary it gets, to
    build deliberately mislabelled images.
    """

    def make(name: str = "ctx", run: str = "uname -m > /etc/built-on",
             binary_for: dict[str, str] | None = None, platforms: list[str] | None = None) -> Path:
        ctx = tmp_path / name
        ctx.mkdir()
        for platform in platforms or BUSYBOX_FOR_PLATFORM:
            source = (binary_for or {}).get(platform, platform)
            shutil.copy(busybox_binaries[source], ctx / f"busybox-{platform_suffix(platform)}")
        (ctx / "Dockerfile").write_text(
            "FROM scratch\n"
            "ARG TARGETARCH\nARG TARGETVARIANT\n"
            "COPY busybox-${TARGETARCH}${TARGETVARIANT} /bin/busybox\n"
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            f"RUN {run}\n"
            'CMD ["/bin/sh", "-c", "cat /etc/built-on"]\n'
        )
        return ctx

    return make


def sh(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command for a test fixture; on failure the assertion shows its output."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def buildx_push(ctx: Path, platforms: str, output: str, *extra: str, attempts: int = 6) -> None:
    """A raw buildx build for fixtures, retried when only the registry answered 5xx
    (distribution 2.8's tag-link race; orch build retries the same way). Six attempts: on a busy
    machine three 500s in a row were seen (one fixture in one CI-like run); the build itself is cached."""
    args = ["docker", "buildx", "build", "--progress=plain", "--platform", platforms, *extra,
            "--output", output, str(ctx)]
    for attempt in range(attempts):
        result = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if result.returncode == 0:
            return
        if "500 Internal Server Error" not in result.stderr or attempt == attempts - 1:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")


def copy_image(source: str, target: str, attempts: int = 6) -> None:
    """`imagetools create -t TARGET SOURCE` for fixtures, retried when only the registry answered
    5xx (distribution 2.8's tag-link race, as in buildx_push) or 400 to the PUT of a manifest by
    digest (the same race: a child manifest pushed a moment before is not linked yet; seen once in a
    CI-like run on a busy machine); any other failure shows its stderr."""
    args = ["docker", "buildx", "imagetools", "create", "-t", target, source]
    for attempt in range(attempts):
        result = subprocess.run(args, capture_output=True, text=True, timeout=120)
        if result.returncode == 0:
            return
        raced = "/manifests/sha256:" in result.stderr and "400 Bad Request" in result.stderr
        if not (raced or any(code in result.stderr for code in ("500 Internal Server Error", "502", "503"))) \
                or attempt == attempts - 1:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test records the builders it creates in a state directory of its own."""
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path_factory.mktemp("orch-state")))


@pytest.fixture(scope="session")
def second_node(engine_ready: None) -> Iterator[str]:
    """A second Docker daemon on this machine as a docker context (scripts/engine-node.sh)."""
    if os.geteuid() != 0:
        pytest.skip("a second daemon needs root (scripts/engine-node.sh)")
    name = "orch-test-node"
    context = sh("bash", str(REPO / "scripts" / "engine-node.sh"), "start", name).stdout.strip()
    yield context
    sh("bash", str(REPO / "scripts" / "engine-node.sh"), "stop", name)


@pytest.fixture
def daemons_own_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of the docker driver itself (the classic image store, the daemon's image store,
    daemons as nodes): whatever builder the suite runs on, they build on the daemon's own."""
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)


@pytest.fixture(scope="session")
def buildkit_builders(engine_ready: None) -> dict[str, str]:
    """Builder kind -> the name of a running builder of that kind (skips, naming the fix, when one is
    missing; under CI=true the skip is a failure)."""
    missing = [name for name in BUILDKIT_BUILDERS.values()
               if subprocess.run(["docker", "buildx", "inspect", name], capture_output=True, timeout=60).returncode]
    if missing:
        pytest.skip(f"builders {', '.join(missing)} missing: run `bash scripts/buildkit-up.sh up` (as root)")
    return dict(BUILDKIT_BUILDERS)
