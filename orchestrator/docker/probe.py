"""Asking a builder what it can do (docker.capabilities), once per run, as cheaply as the answer
allows, and started early so the asking overlaps planning.

The daemon's own builder (docker driver) is what buildx uses when no builder is named: no
--builder, no BUILDX_BUILDER, and `docker buildx use` has recorded none (buildx's `current` file
names no builder). Its facts need no `buildx inspect`: the driver is docker and its one node is
the daemon, and `docker info` says which image store it has. Any other builder is asked with
`buildx inspect NAME` (no bootstrap: it changes nothing). `buildx version` is asked only where
the version decides something (bake's filesystem entitlements) or is shown (a dry run).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

from orchestrator.docker.capabilities import Capabilities, Node, capabilities_from, parse_version
from orchestrator.docker.facts import checked_info, uses_containerd_image_store
from orchestrator.docker.runner import NO_DOCKER_CLI, Engine
from orchestrator.errors import BadInput

_started: dict[tuple[str, ...], _Probe] = {}
_lock = threading.Lock()


def prefetch(engine: Engine, builder: str | None, *, version: bool = False) -> None:
    """Start asking now; `capabilities` with the same arguments collects the answer."""
    key = _key(engine, builder, version)
    with _lock:
        if key not in _started:
            _started[key] = _Probe(engine, builder, version)


def capabilities(engine: Engine, builder: str | None = None, *, version: bool = False) -> Capabilities:
    """What `builder` (None: the one buildx would use) can do."""
    key = _key(engine, builder, version)
    with _lock:
        probe = _started.pop(key, None) or _Probe(engine, builder, version)
    return probe.collect()


def _key(engine: Engine, builder: str | None, version: bool) -> tuple[str, ...]:
    return (*engine.docker_command(), builder or "", str(version))


def recorded_builder() -> str | None:
    """The builder buildx uses when none is named: BUILDX_BUILDER, else what `docker buildx use`
    recorded (its `current` file: {"Key": ENDPOINT, "Name": BUILDER, ...}); None for the daemon's own."""
    if os.environ.get("BUILDX_BUILDER"):
        return os.environ["BUILDX_BUILDER"]
    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    try:
        current = json.loads((config / "buildx" / "current").read_text())
    except (OSError, ValueError):
        return None
    name = current.get("Name") if isinstance(current, dict) else None
    return name if isinstance(name, str) and name else None


class _Probe:
    """The processes of one probe, running; `collect` waits for them."""

    def __init__(self, engine: Engine, builder: str | None, version: bool) -> None:
        self.engine, self.builder = engine, builder
        self.daemon_builder = builder is None and recorded_builder() is None
        # buildx runs as the plugin itself (Engine.process_command): no docker CLI start in between.
        self.commands = {"info": engine.process_command(["info", "--format", "{{json .}}"])}
        if not self.daemon_builder:
            self.commands["inspect"] = engine.process_command(["buildx", "inspect", *([builder] if builder else [])])
        if version:
            self.commands["version"] = engine.process_command(["buildx", "version"])
        try:
            self.running = {name: subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                   text=True, stdin=subprocess.DEVNULL, env=env)
                            for name, (command, env) in self.commands.items()}
        except FileNotFoundError:
            self.running = {}

    def collect(self) -> Capabilities:
        if not self.running:
            raise NO_DOCKER_CLI
        out = {name: process.communicate() for name, process in self.running.items()}
        if self.running["info"].returncode != 0:  # "no daemon" is the error to show first
            raise self.engine.classify(self.engine.docker_command() + ["info"], self.running["info"].returncode,
                                       out["info"][1])
        info = checked_info(json.loads(out["info"][0]))
        version = out["version"][0] if "version" in out else ""
        if self.daemon_builder:
            return Capabilities("default", "docker", parse_version(version), (Node("default", "default", "running"),),
                                uses_containerd_image_store(info))
        inspect, inspect_err = out["inspect"]
        if self.running["inspect"].returncode != 0:
            if "no builder" in inspect_err and "found" in inspect_err:
                name = self.builder or recorded_builder()
                source = "" if self.builder else (" (BUILDX_BUILDER)" if os.environ.get("BUILDX_BUILDER") else
                                                  " (recorded by `docker buildx use`)")
                raise BadInput(f'unknown builder "{name}"{source}', fix="see `docker buildx ls`, or create it: "
                               f"docker buildx create --name {name}")
            raise self.engine.classify(self.engine.docker_command() + ["buildx", "inspect"],
                                       self.running["inspect"].returncode, inspect_err)
        return capabilities_from(inspect, version, info)
