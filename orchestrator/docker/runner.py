"""The one place orch runs docker: which daemon, the CLI calls, their errors. What the engine
says about itself is asked once per run by docker.probe, through `process_command`.

Every docker call goes through :class:`Engine`, which uses python-on-whales
and fills its gaps (flags it lacks, output it drops) with raw CLI calls made
through the same python-on-whales runner; the long build streams are plain
processes orch owns (started at once, stopped on an interrupt). Failures
become ``OrchError`` subclasses with the command and stderr redacted.

python-on-whales costs ~250 ms to import, and neither ``orch --help`` nor a
build's critical path may pay for it: the build stream and the engine facts
(docker.probe) are plain processes, and python-on-whales is imported on first use (builder
management, merges, doctor), under a lock (per-arch builds call from several
threads).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from orchestrator.docker.facts import NO_DAEMON_FIX, BuilderInfo, BuilderNodeInfo, parse_builders
from orchestrator.errors import DockerCommandFailed, EnvironmentMissing
from orchestrator.redact import redact, redact_command

T = TypeVar("T")

NO_DAEMON_MARKERS = (
    "Cannot connect to the Docker daemon",
    "Is the docker daemon running",
    "error during connect",
    "permission denied while trying to connect",
)
NO_DOCKER_CLI = EnvironmentMissing(
    "the `docker` command was not found on PATH",
    fix="install the Docker CLI (Debian: `make engine`), or set PATH so `docker` is found",
)
_IMPORT_LOCK = threading.Lock()
# Streamed docker processes still running, so an interrupt can stop them all (per-arch builds
# run them from worker threads, which signals never reach).
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
STOP_GRACE = 10.0  # seconds buildx gets to cancel cleanly before it is killed


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_all() -> None:
    """Stop every streamed docker process orch started (after an interrupt)."""
    with _LIVE_LOCK:
        running = list(_LIVE)
    for process in running:
        _stop(process)


# Called on the starting thread each time a streamed process has started (and is in _LIVE, so
# stop_all reaches it): the registry check starts beside the first build and stops any it must.
_ON_START: list[Callable[[], None]] = []


@contextmanager
def on_each_start(call: Callable[[], None]) -> Iterator[None]:
    """`call` after each streamed docker process starts, for the `with` block."""
    with _LIVE_LOCK:
        _ON_START.append(call)
    try:
        yield
    finally:
        with _LIVE_LOCK:
            _ON_START.remove(call)


# Where the docker CLI looks for its plugins, in its order, after the user's own directory
# ($DOCKER_CONFIG/cli-plugins, else ~/.docker/cli-plugins: one or the other, never both).
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
_plugin: list[str | None] = []


def buildx_plugin() -> str | None:
    """The docker-buildx plugin binary the docker CLI would run, or None."""
    if not _plugin:
        config = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
        dirs = [f"{config}/cli-plugins", *PLUGIN_DIRS]
        _plugin.append(next((f"{d}/docker-buildx" for d in dirs if os.access(f"{d}/docker-buildx", os.X_OK)), None))
    return _plugin[0]


class DockerStreamFailed(Exception):
    """A streamed docker call exited non-zero; its output was already yielded."""

    def __init__(self, return_code: int) -> None:
        super().__init__(f"exit code {return_code}")
        self.return_code = return_code


@dataclass(frozen=True)
class Daemon:
    """Which daemon a docker call talks to: a docker context, or an endpoint (unix://, tcp://, ssh://)."""

    context: str | None = None
    host: str | None = None

    @classmethod
    def at(cls, endpoint: str) -> Daemon:
        """A node's endpoint as profiles write it: a URL is a host, anything else a context name."""
        return cls(host=endpoint) if "://" in endpoint else cls(context=endpoint)

    def flags(self) -> tuple[str, ...]:
        if self.host:
            return ("--host", self.host)
        return ("--context", self.context) if self.context else ()

    def __str__(self) -> str:
        return " ".join(self.flags()) or "the current context"


class Engine:
    """A Docker client bound to one daemon (the current context by default)."""

    def __init__(self, daemon: Daemon | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.daemon = daemon or Daemon()
        self._secrets = secrets
        self._client: Any = None

    @property
    def context(self) -> str | None:
        return self.daemon.context

    @property
    def client(self) -> Any:
        with _IMPORT_LOCK:
            if self._client is None:
                from python_on_whales import DockerClient

                if self.daemon.host:
                    self._client = DockerClient(host=self.daemon.host)
                else:
                    self._client = DockerClient(context=self.daemon.context) if self.daemon.context else DockerClient()
            return self._client

    # -- error translation -------------------------------------------------

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        from python_on_whales.client_config import ClientNotFoundError
        from python_on_whales.exceptions import DockerException

        try:
            yield
        except ClientNotFoundError:
            raise NO_DOCKER_CLI from None
        except DockerException as exc:
            raise self.classify([str(a) for a in exc.docker_command], exc.return_code, exc.stderr or "") from None

    def classify(self, command_args: list[str], return_code: int,
                 stderr_text: str) -> DockerCommandFailed | EnvironmentMissing:
        """A failed docker call as the error a user should see (no daemon, no buildx, or the command's own)."""
        stderr = redact(stderr_text, self._secrets)
        command = redact_command(command_args, self._secrets)
        if any(marker in stderr for marker in NO_DAEMON_MARKERS):
            first_line = stderr.strip().splitlines()[0] if stderr.strip() else ""
            return EnvironmentMissing(f"no Docker daemon answers: {first_line}", fix=NO_DAEMON_FIX)
        if "'buildx' is not a docker command" in stderr or ("unknown command" in stderr and "buildx" in stderr):
            return EnvironmentMissing(
                "the docker buildx plugin is not installed",
                fix="install it (Debian trixie: apt-get install docker-buildx; or `make engine`)",
            )
        return DockerCommandFailed(command, return_code, stderr)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a python-on-whales method with orch's error translation."""
        with self._translated_errors():
            return fn(*args, **kwargs)

    def cli(self, *args: str) -> str:
        """A raw docker CLI call, as a plain process: a publish that needs nothing else of
        python-on-whales (a merge on the per-arch path, a builder's inspect) does not pay for
        importing it. Output stripped, as python-on-whales gives it."""
        command, env = self.process_command(list(args))
        try:
            done = subprocess.run(command, capture_output=True, stdin=subprocess.DEVNULL, env=env)
        except FileNotFoundError:
            raise NO_DOCKER_CLI from None
        if done.returncode != 0:
            raise self.classify(self.docker_command() + list(args), done.returncode,
                                done.stderr.decode(errors="replace"))
        return done.stdout.decode(errors="replace").strip()

    def stream(self, *args: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
        """A long docker call whose output is shown as it comes (buildx progress), stdout and
        stderr merged, with `env` added to its environment. A plain process, so it starts before
        python-on-whales is imported and stops with orch: when the caller stops reading (an
        interrupt, an error), it is terminated.

        Yields lines; raises DockerStreamFailed carrying the return code when
        the command fails, so the caller can read the lines it has already seen.
        """
        command, process_env = self.process_command(list(args))
        if env:
            process_env = {**(process_env if process_env is not None else os.environ), **env}
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=process_env)
        except FileNotFoundError:
            raise NO_DOCKER_CLI from None
        with _LIVE_LOCK:
            _LIVE.add(process)
            started = list(_ON_START)
        try:
            for call in started:
                call()
            assert process.stdout is not None
            for raw in process.stdout:
                yield raw.decode(errors="replace").rstrip("\n")
            code = process.wait()
            if code != 0:
                raise DockerStreamFailed(code)
        finally:
            _stop(process)
            with _LIVE_LOCK:
                _LIVE.discard(process)

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args))

    # -- facts for doctor and for planning ---------------------------------

    def client_version(self) -> str:
        from python_on_whales.utils import run

        # `docker version` exits 1 without a daemon but still prints the client part.
        with self._translated_errors():
            try:
                return str(run(self.client.client_config.docker_cmd + ["version", "--format", "{{.Client.Version}}"]))
            except Exception as exc:  # re-raised below unless stdout helps
                stdout = (getattr(exc, "stdout", None) or "").strip()
                if stdout:
                    return stdout.splitlines()[0]
                raise

    def buildx_version(self) -> str:
        return self.cli("buildx", "version").strip()

    def docker_command(self) -> list[str]:
        """`docker` with this engine's --context/--host, without importing python-on-whales."""
        return ["docker", *self.daemon.flags()]

    def process_command(self, args: list[str]) -> tuple[list[str], dict[str, str] | None]:
        """How to run `docker ARGS`. A buildx call runs the buildx plugin directly, as buildx
        supports standalone (the daemon given by DOCKER_CONTEXT / DOCKER_HOST): it skips the
        docker CLI's start and its plugin lookup, ~35 ms of every build. Anything else, or no
        plugin where docker looks for one, goes through `docker`."""
        plugin = buildx_plugin() if args[:1] == ["buildx"] else None
        env = dict(os.environ)
        if self.daemon.flags():
            # A build sent to a node's own daemon runs on that daemon's builder (or the --builder it
            # names): a BUILDX_BUILDER meant for the current context would send it somewhere else.
            env.pop("BUILDX_BUILDER", None)
        if plugin is None or os.environ.get("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND"):
            return self.docker_command() + args, (env if self.daemon.flags() else None)
        if self.daemon.host:
            env["DOCKER_HOST"] = self.daemon.host
            env.pop("DOCKER_CONTEXT", None)
        elif self.daemon.context:
            env["DOCKER_CONTEXT"] = self.daemon.context
            env.pop("DOCKER_HOST", None)
        return [plugin, *args[1:]], env

    def builders(self) -> list[BuilderInfo]:
        """`buildx ls`, asked now (docker.probe.builders asks once per run and is what callers use)."""
        try:
            return parse_builders(self.cli("buildx", "ls", "--format", "json"))
        except DockerCommandFailed as exc:
            if "--format" not in exc.stderr:  # buildx before 0.13 has no JSON listing
                raise
        builders = self.call(lambda: self.client.buildx.list())
        return [
            BuilderInfo(
                name=b.name,
                driver=b.driver or "",
                nodes=tuple(
                    BuilderNodeInfo(
                        name=n.name or "",
                        endpoint=n.endpoint or "",
                        status=n.status or "unknown",
                        platforms=tuple(n.platforms or ()),
                    )
                    for n in (b.nodes or ())
                ),
            )
            for b in sorted(builders, key=lambda b: b.name)  # buildx ls order is not stable
        ]

