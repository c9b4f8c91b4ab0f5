"""The one engine-facts probe: what a daemon says about itself (`docker info`), its builders
(`buildx ls`) and what a builder can do (docker.capabilities), each asked at most once per run,
as plain processes started early so the asking overlaps planning.

Everything else is given these facts: capabilities complete the plan, the builders are ensured
from the listing, doctor reports them, and the registry client is handed the daemon's registry
settings (registry.reach) instead of running docker itself. `docker info` is asked once per
daemon, whoever asks first (the capability probe, doctor, a node check, the registry's TLS
fallback); the listing is asked again only after orch changed a builder (`builders_changed`).

The daemon's own builder (docker driver) is what buildx uses when no builder is named: no
--builder, no BUILDX_BUILDER, and `docker buildx use` has recorded none (buildx's `current` file
names no builder). Its facts need no `buildx inspect`: the driver is docker and its one node is
the daemon, and `docker info` says which image store it has. A BuildKit builder (docker-container,
remote, kubernetes) that a build runs on is read from the configuration buildx keeps of it
(`instances/NAME` in buildx's config directory): driver, nodes and the platforms each was given
are all a plan needs, so no process runs before buildx, and no `docker info` either (buildx
itself says when the daemon a docker-container builder needs is not there). Anything else, and
whatever needs what only the nodes say (a dry run shows their status, --reproducible records
their BuildKit version), is asked with `buildx inspect NAME` (no bootstrap: it changes nothing).
`buildx version` is asked only where the version decides something (bake's filesystem
entitlements) or is shown (a dry run).

What a local daemon says of itself is kept in the state directory (`daemon-info.json`) with what
identifies that daemon's life: its unix socket (device, inode, change time) and the pid file
beside it (pid, change time). Both are made anew when the daemon starts, and the image store and
the version can only change with a restart (the registry settings with a reload after daemon.json
changed, whose modification time is part of the key), so a later run on the same
daemon reads the record instead of starting `docker info`. Another daemon (a context, a host
other than a unix socket, no pid file beside the socket) is asked every run, as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

from orchestrator.docker.capabilities import Capabilities, Node, capabilities_configured, capabilities_from, parse_version
from orchestrator.docker.facts import BuilderInfo, EngineFacts, checked_info, parse_builders
from orchestrator.docker.runner import NO_DOCKER_CLI, Engine
from orchestrator.errors import BadInput

INFO = ["info", "--format", "{{json .}}"]
LIST = ["buildx", "ls", "--format", "json"]

_started: dict[tuple[str, ...], _Probe] = {}
_daemons: dict[tuple[str, ...], _Daemon] = {}
_lock = threading.RLock()  # a probe started under it asks for its daemon's record


def engine_facts(engine: Engine) -> EngineFacts:
    """The daemon's `docker info` (EnvironmentMissing when no daemon answers)."""
    return _daemon(engine).facts()


def builders(engine: Engine) -> list[BuilderInfo]:
    """The builders `buildx ls` lists on this daemon's context (the daemon asked first: `buildx ls`
    exits 0 without one, showing the builder as "error")."""
    return _daemon(engine).builders()


def builders_changed(engine: Engine) -> None:
    """orch created or removed a builder: the next `builders` asks again."""
    _daemon(engine).forget_builders()


def forget() -> None:
    """Drop every answer (a long-lived process whose daemons may have changed since)."""
    with _lock:
        _started.clear()
        _daemons.clear()


def prefetch(engine: Engine, builder: str | None, *, version: bool = False, listing: bool = False,
             nodes: bool = True) -> None:
    """Start asking now; `capabilities` with the same arguments collects the answer (and
    `builders`, with `listing`, the builders)."""
    key = _key(engine, builder, version, nodes)
    with _lock:
        if key not in _started:
            _started[key] = _Probe(engine, builder, version, nodes)
    if listing:
        _daemon(engine).start_listing()


def capabilities(engine: Engine, builder: str | None = None, *, version: bool = False,
                 nodes: bool = True) -> Capabilities:
    """What `builder` (None: the one buildx would use) can do. `nodes=False`: what its
    configuration says is enough (a build that records no BuildKit version), so a BuildKit
    builder is read from buildx's configuration and not asked."""
    key = _key(engine, builder, version, nodes)
    with _lock:
        probe = _started.pop(key, None) or _Probe(engine, builder, version, nodes)
    return probe.collect()


def _daemon_key(engine: Engine) -> tuple[str, ...]:
    # The default daemon is whatever DOCKER_HOST / DOCKER_CONTEXT say when it is asked.
    return (*engine.docker_command(), *(os.environ.get(name, "") for name in ("DOCKER_HOST", "DOCKER_CONTEXT",
                                                                             "DOCKER_CONFIG")))


def _key(engine: Engine, builder: str | None, version: bool, nodes: bool) -> tuple[str, ...]:
    return (*_daemon_key(engine), builder or "", str(version), str(nodes))


def _daemon(engine: Engine) -> _Daemon:
    key = _daemon_key(engine)
    with _lock:
        if key not in _daemons:
            _daemons[key] = _Daemon(engine)
        return _daemons[key]


def buildx_config() -> Path:
    """Where buildx keeps its builders: $BUILDX_CONFIG, else buildx/ in docker's config directory."""
    if os.environ.get("BUILDX_CONFIG"):
        return Path(os.environ["BUILDX_CONFIG"])
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "buildx"


def recorded_builder() -> str | None:
    """The builder buildx uses when none is named: BUILDX_BUILDER, else what `docker buildx use`
    recorded (its `current` file: {"Key": ENDPOINT, "Name": BUILDER, ...}); None for the daemon's own."""
    if os.environ.get("BUILDX_BUILDER"):
        return os.environ["BUILDX_BUILDER"]
    try:
        current = json.loads((buildx_config() / "current").read_text())
    except (OSError, ValueError):
        return None
    name = current.get("Name") if isinstance(current, dict) else None
    return name if isinstance(name, str) and name else None


def configured(builder: str | None) -> Capabilities | None:
    """A BuildKit builder's capabilities as buildx's configuration of it says (capabilities.
    capabilities_configured); None when there is none to read (the daemon's own builder, a docker
    context's, a name buildx would spell otherwise) or it is not a BuildKit builder's."""
    name = builder or recorded_builder()
    if not name or name != name.lower() or "/" in name or name.startswith("."):
        return None
    try:
        document = json.loads((buildx_config() / "instances" / name).read_text())
    except (OSError, ValueError):
        return None
    return capabilities_configured(document)


class _Asked:
    """One docker process, started at once; its answer is read once and kept."""

    def __init__(self, engine: Engine, args: list[str]) -> None:
        # buildx runs as the plugin itself (Engine.process_command): no docker CLI start in between.
        command, env = engine.process_command(args)
        self.shown = engine.docker_command() + args
        self._lock = threading.RLock()  # a probe started under it asks for its daemon's record
        self._answer: tuple[int, str, str] | None = None
        try:
            self._process: subprocess.Popen[str] | None = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, env=env)
        except FileNotFoundError:
            self._process = None

    def answer(self) -> tuple[int, str, str]:
        """(exit code, stdout, stderr); NO_DOCKER_CLI when docker is not there."""
        if self._process is None:
            raise NO_DOCKER_CLI
        with self._lock:
            if self._answer is None:
                out, err = self._process.communicate()
                self._answer = (self._process.returncode, out, err)
            return self._answer


KEPT_INFO = "daemon-info.json"


def daemon_life(engine: Engine) -> list[int] | None:
    """What identifies the current life of the local daemon `engine` talks to: its socket's device,
    inode and change time, and its pid file's pid and change time. None when that cannot be told
    (a context or a host that is not a unix socket, no pid file beside the socket)."""
    if engine.docker_command() != ["docker"] or os.environ.get("DOCKER_CONTEXT"):
        return None
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if not host.startswith("unix://") or _current_context() not in (None, "default"):
        return None
    socket_path = Path(host[len("unix://"):])
    try:
        sock = socket_path.stat()
        pid_file = socket_path.parent / "docker.pid"
        pid = int(pid_file.read_text().strip() or 0)
        written = pid_file.stat()
    except (OSError, ValueError):
        return None
    return [sock.st_dev, sock.st_ino, sock.st_ctime_ns, pid, written.st_ctime_ns, *_settings_written()]


def _settings_written() -> list[int]:
    """When daemon.json was last written, rootful and rootless: `dockerd` reloads some settings
    (insecure registries, mirrors) from it on SIGHUP without a restart, so an edit starts a new life."""
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    written = []
    for path in (Path("/etc/docker/daemon.json"), home / "docker" / "daemon.json"):
        try:
            written.append(path.stat().st_mtime_ns)
        except OSError:
            written.append(0)
    return written


def _current_context() -> str | None:
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        current = json.loads(config.read_text()).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None
    return current if isinstance(current, str) and current else None


class _Kept:
    """`docker info`'s answer as a run before this one had it from the same daemon life."""

    def __init__(self, out: str) -> None:
        self.shown = ["docker", *INFO]
        self._out = out

    def answer(self) -> tuple[int, str, str]:
        return 0, self._out, ""


class _Daemon:
    """What one daemon was asked: `docker info` and `buildx ls`, each started at most once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.RLock()  # a probe started under it asks for its daemon's record
        self._info: _Asked | _Kept | None = None
        self._listing: _Asked | None = None
        self._life: list[int] | None = None

    def start_info(self) -> _Asked | _Kept:
        with self._lock:
            if self._info is None:
                self._life = daemon_life(self.engine)
                kept = _kept_info(self._life) if self._life is not None else None
                self._info = _Kept(kept) if kept is not None else _Asked(self.engine, INFO)
            return self._info

    def start_listing(self) -> _Asked:
        with self._lock:
            if self._listing is None:
                self._listing = _Asked(self.engine, LIST)
            return self._listing

    def forget_builders(self) -> None:
        with self._lock:
            self._listing = None

    def facts(self) -> EngineFacts:
        asked = self.start_info()
        code, out, err = asked.answer()
        if code != 0:
            raise self.engine.classify(asked.shown, code, err)
        facts = EngineFacts(checked_info(json.loads(out)))
        if isinstance(asked, _Asked) and self._life is not None:
            with self._lock:
                life, self._life = self._life, None  # kept once
            if life is not None:
                from orchestrator.state import write_record

                write_record(KEPT_INFO, {"life": life, "info": out})
        return facts

    def builders(self) -> list[BuilderInfo]:
        listing = self.start_listing()
        self.facts()  # "no daemon" is the error to show first
        code, out, err = listing.answer()
        if code == 0:
            return parse_builders(out)
        if "--format" in err:  # buildx before 0.13 has no JSON listing
            return self.engine.builders()
        raise self.engine.classify(listing.shown, code, err)


def _kept_info(life: list[int]) -> str | None:
    from orchestrator.state import read_record

    record = read_record(KEPT_INFO)
    if isinstance(record, dict) and record.get("life") == life and isinstance(record.get("info"), str):
        return str(record["info"])
    return None


class _Probe:
    """The processes of one capability probe, running; `collect` waits for them."""

    def __init__(self, engine: Engine, builder: str | None, version: bool, nodes: bool = True) -> None:
        self.engine, self.builder = engine, builder
        self.daemon = _daemon(engine)
        self.daemon_builder = builder is None and recorded_builder() is None
        self.running: dict[str, _Asked] = {}
        self.configured = None if nodes or version or self.daemon_builder or engine.docker_command() != ["docker"] \
            else configured(builder)
        if self.configured is not None:
            return  # nothing to ask
        self.daemon.start_info()
        if not self.daemon_builder:
            self.running["inspect"] = _Asked(engine, ["buildx", "inspect", *([builder] if builder else [])])
        if version:
            self.running["version"] = _Asked(engine, ["buildx", "version"])

    def collect(self) -> Capabilities:
        if self.configured is not None:
            return self.configured
        facts = self.daemon.facts()  # "no daemon" is the error to show first
        version = self.running["version"].answer()[1] if "version" in self.running else ""
        if self.daemon_builder:
            return Capabilities("default", "docker", parse_version(version), (Node("default", "default", "running"),),
                                facts.containerd_store, server_version=str(facts.info.get("ServerVersion") or "") or None)
        code, inspect, inspect_err = self.running["inspect"].answer()
        if code != 0:
            if "no builder" in inspect_err and "found" in inspect_err:
                name = self.builder or recorded_builder()
                source = "" if self.builder else (" (BUILDX_BUILDER)" if os.environ.get("BUILDX_BUILDER") else
                                                  " (recorded by `docker buildx use`)")
                raise BadInput(f'unknown builder "{name}"{source}', fix="see `docker buildx ls`, or create it: "
                               f"docker buildx create --name {name}")
            raise self.engine.classify(self.running["inspect"].shown, code, inspect_err)
        return capabilities_from(inspect, version, facts.info)
