"""Every thread orch starts has an owner that ends it (orchestrator.workers): a helper blocked on a
registry socket is cancelled, not waited out; a command that fails fast ends fast, with its
documented exit code and never by a signal; a registry check that fails late is still the error
the user reads."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import workers
from orchestrator.model.references import Reference
from orchestrator.registry.client import Registry

from .conftest import REPO, free_port
from .faultproxy import FaultProxy, Rule
from .test_build import BASE_ARG
from .waiting import Watched

FAST_FAILURE = 2.0  # seconds the end of a failed command may add: the bound for a fast failure


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """A loopback port that accepts connections and never answers: a registry check there blocks
    in a read until orch's stall limit (20 s), unless it is cancelled."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"localhost:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    server.close()


def orch_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def startup_seconds() -> float:
    """The slowest of a few `orch --help` runs now: what merely starting orch's CLI costs on this
    machine under its current load, the part of a fast failure no fix can remove (`--version` is
    answered before the CLI is imported, so it no longer measures that)."""
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run(orch_argv("--help"), capture_output=True, cwd=REPO, timeout=120, check=True)
        times.append(time.monotonic() - started)
    return max(times)


def test_a_helper_blocked_on_a_registry_socket_is_cancelled_not_waited_out(silent_registry: str) -> None:
    registry = Registry(Reference(silent_registry, "app"))
    with workers.command():
        check = workers.Helper(lambda: registry.check_push_access("app"), "test-check")
        assert not check.join(0.5), "the silent registry answered"  # blocked in a read, as meant
        started = time.monotonic()
        check.close()
        took = time.monotonic() - started
    assert took < FAST_FAILURE, f"closing a blocked check took {took:.1f} s"
    with pytest.raises(workers.Cancelled):
        check.result()


def test_the_command_ends_its_pool_and_helpers_on_every_path() -> None:
    ran = []
    with pytest.raises(RuntimeError), workers.command():
        workers.parallel_map(ran.append, [1, 2, 3], 3)
        workers.Helper(lambda: workers.pause(600), "test-sleeper")
        raise RuntimeError("a command failing")
    assert sorted(ran) == [1, 2, 3]
    alive = [t.name for t in threading.enumerate() if t.name.startswith(("orch-", "test-"))]
    assert alive == [], f"threads left running: {alive}"


def test_a_pool_task_handing_work_to_the_pool_gets_threads_for_it() -> None:
    """A publish reads the tags beside the index (workers.both), and the index read fetches its
    children in parallel on the same pool. Eight outer tasks fill the pool; each waits for two
    inner ones that must run at the same moment (a barrier): before, the inner tasks had no
    thread and the barrier broke; the half-busy case (both) waited for the tag read to end."""
    def outer(number: int) -> list[int]:
        meeting = threading.Barrier(2, timeout=30)  # broken (an error) if the two never run at once
        return workers.parallel_map(lambda part: meeting.wait() * 0 + number * 10 + part, [0, 1], 2)

    found: list[list[int]] = []

    def publish_like() -> None:
        with workers.command():
            found.extend(workers.parallel_map(outer, list(range(workers.POOL_SIZE)), workers.POOL_SIZE))

    command = threading.Thread(target=publish_like, daemon=True)
    command.start()
    command.join(60)  # a bound on a deadlock (it hung for good before), not a timing
    assert not command.is_alive(), "the outer tasks still wait for inner ones that have no thread"
    assert found == [[n * 10, n * 10 + 1] for n in range(workers.POOL_SIZE)]
    alive = [t.name for t in threading.enumerate() if t.name.startswith("orch-")]
    assert alive == [], f"threads left running: {alive}"


@pytest.mark.slow  # four new interpreters, timed: what a fork of a warm one would not show
@pytest.mark.usefixtures("daemons_own_builder")  # BuildKit's builders are read from buildx's config: no daemon asked
def test_a_fast_failure_with_a_check_in_flight_ends_fast_with_no_thread_left(silent_registry: str,
                                                                              tmp_path: Path) -> None:
    """No daemon, and a registry check blocked on a registry that never answers: exit 3 at once,
    the check cancelled. Before, the check was left running and the process skipped the
    interpreter's exit (os._exit): atexit never ran."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    probe = ("import atexit, sys, threading\n"
             "atexit.register(lambda: sys.stderr.write(f'threads at exit: {threading.active_count()}\\n'))\n"
             "from orchestrator.cli.entry import main\nmain()\n")
    bound = startup_seconds() + FAST_FAILURE
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", probe, "build", str(tmp_path), "--platform", "linux/amd64",
                             "--push", "-t", f"{silent_registry}/app:1"], capture_output=True, text=True,
                            cwd=REPO, timeout=120, env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"})
    took = time.monotonic() - started
    assert result.returncode == 3, result.stderr[-2000:]
    assert "no Docker daemon answers" in result.stderr
    assert "threads at exit: 1" in result.stderr, result.stderr[-2000:]
    assert took < bound, f"{took:.1f} s, more than {bound:.1f} s"


@pytest.mark.slow
@pytest.mark.usefixtures("daemons_own_builder")  # "no daemon" is the docker driver's failure
def test_two_hundred_fast_failures_each_end_with_their_exit_code_and_never_by_a_signal(tmp_path: Path) -> None:
    """Each run costs what its kind usually costs on this machine now (interpreter start and
    imports, the failure's own work: a `docker info` refused at once, two connects refused with
    a 0.2 s pause between, a name parsed), and its end may add at most FAST_FAILURE. The usual
    cost is the median of the kind's earlier runs (before any: three `orch --help` starts),
    doubled because a run may queue for the CPU on a busy 2-CPU machine. A thread waited out (the
    stall limit is 20 s) or an exit that hangs still breaks the bound by far."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    closed = f"localhost:{free_port()}"  # nothing listens there
    kinds = [  # (environment, arguments, exit code, what stderr says): README "exit codes"
        ({"DOCKER_HOST": "unix:///nonexistent"}, ("--platform", "linux/amd64", "-t", "localhost:5000/wtt/app:1"),
         3, "no Docker daemon answers"),
        ({}, ("--platform", "linux/amd64", "-t", f"{closed}/app:1"), 3, f"cannot reach the registry {closed}"),
        ({}, ("--platform", "linux/bogus", "-t", "localhost:5000/wtt/app:1"), 2, 'unknown platform "linux/bogus"'),
    ]
    startup = startup_seconds()
    times: dict[int, list[float]] = {kind: [] for kind in range(len(kinds))}
    for run in range(200):
        env, args, code, said = kinds[run % len(kinds)]
        earlier = times[run % len(kinds)]
        bound = 2 * (statistics.median(earlier) if earlier else 3 * startup) + FAST_FAILURE
        started = time.monotonic()
        result = subprocess.run(orch_argv("build", str(tmp_path), "--push", *args), capture_output=True, text=True,
                                cwd=REPO, timeout=120, env={**os.environ, **env})
        took = time.monotonic() - started
        earlier.append(took)
        assert result.returncode >= 0, f"run {run} ended by signal {-result.returncode}: {result.stderr[-2000:]}"
        assert result.returncode == code, f"run {run}: {result.stderr[-2000:]}"
        assert said in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert took < bound, f"run {run} took {took:.1f} s, more than {bound:.1f} s"


@pytest.mark.engine
def test_a_registry_check_that_fails_after_the_builds_started_is_the_error_on_the_per_arch_path(
        registry, tmp_path: Path) -> None:
    """The check of a registry beyond loopback runs beside the builds (they do not wait for it);
    this one is held until both per-arch builds are running, then refused. The user reads the registry's message
    and its exit code (3), not "2 of 2 platform builds failed"; the builds are stopped."""
    host = socket.gethostname()
    try:
        loopback = all(info[4][0].startswith("127.") for info in socket.getaddrinfo(host, None, socket.AF_INET))
    except OSError:
        loopback = False
    if not loopback or host == "localhost":
        pytest.skip(f"needs a host name beside localhost that resolves to loopback (this one: {host})")
    proxy = FaultProxy(registry.port).start()
    building = threading.Event()
    refused = threading.Event()

    def hold_then_refuse(_method: str, _path: str) -> None:
        building.wait(300)
        # The proxy reads the rule's action after its hook: this request is answered 403.
        rule.action, rule.status = "status", 403
        refused.set()

    rule = proxy.add(Rule("POST", r"/blobs/uploads/", "hook", hook=hold_then_refuse))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOUR\n"
                                    "RUN echo \"started $FLAVOUR\" && sleep 600\n")
    target = f"{host}:{proxy.port}/late/app:1"
    watched = Watched(orch_argv("build", str(ctx), "--platform", "linux/amd64,linux/arm64", "--strategy", "per-arch",
                                "--build-arg", BASE_ARG, "--build-arg", f"FLAVOUR={time.time_ns()}", "--push",
                                "-t", target), cwd=REPO)
    try:
        for platform in ("linux/amd64", "linux/arm64"):
            watched.wait_for(rf"\[{platform}\].*started \d+")
        building.set()
        code, _, stderr = watched.finish(timeout=300)  # the builds would take 600 s: they were stopped
    finally:
        building.set()
        if watched.process.poll() is None:
            watched.process.kill()
        proxy.stop()
    assert refused.is_set()
    assert code == 3, stderr[-3000:]
    assert f"registry {host}:{proxy.port} refused the request (unauthorized)" in stderr, stderr[-3000:]
    assert "the build was stopped" in stderr and f"docker login {host}:{proxy.port}" in stderr
    assert "platform builds failed" not in stderr, stderr[-3000:]
