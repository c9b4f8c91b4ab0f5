"""The one engine-facts probe (docker.probe), over what docker and buildx really print
(tests/data/docker and tests/data/buildx, see SOURCE there): one `docker info` per daemon
answers the image store and the registry settings, one `buildx ls` the builders, one
`buildx inspect` a builder's capabilities, whoever asks and however often; the registry client
goes by the settings it is given and runs no docker itself."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.docker import probe, runner
from orchestrator.docker.facts import EngineFacts
from orchestrator.docker.runner import Daemon, Engine
from orchestrator.errors import EnvironmentMissing
from orchestrator.registry import reach

DATA = Path(__file__).parent / "data"
INFO = {name: DATA / "docker" / f"info-{name}.json" for name in ("containerd-store", "node-insecure", "no-daemon")}

# Stands in for both `docker` on PATH and the buildx plugin orch runs directly: logs its words,
# prints what docker and buildx printed on the engine machine.
FAKE = """#!/bin/sh
printf '%s\\n' "$*" >> "$PROBE_LOG"
while [ "$1" = --context ] || [ "$1" = --host ]; do shift 2; done
[ "$1" = buildx ] && shift
case "$1" in
  info) cat "$PROBE_INFO"
        if [ -n "$PROBE_NO_DAEMON" ]; then
          echo "Cannot connect to the Docker daemon at unix:///nonexistent.sock. Is the docker daemon running?" >&2
          exit 1
        fi ;;
  ls) cat "$PROBE_BUILDX/ls-0.30.1.jsonl" ;;
  inspect) cat "$PROBE_BUILDX/inspect-remote-2-nodes-0.30.1.txt" ;;
  version) cat "$PROBE_BUILDX/version-0.30.1.txt" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


class FakeDocker:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log = tmp_path / "asked.log"
        self.log.touch()
        self.monkeypatch = monkeypatch
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "docker"
        fake.write_text(FAKE)
        fake.chmod(0o755)
        monkeypatch.setattr(runner, "_plugin", [str(fake)])  # buildx calls run "the plugin": the fake too
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
        monkeypatch.setenv("PROBE_LOG", str(self.log))
        monkeypatch.setenv("PROBE_BUILDX", str(DATA / "buildx"))
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "config"))  # no builder recorded by `buildx use`
        for name in ("BUILDX_BUILDER", "DOCKER_HOST", "DOCKER_CONTEXT", "PROBE_NO_DAEMON"):
            monkeypatch.delenv(name, raising=False)
        self.daemon("containerd-store")

    def daemon(self, recorded: str) -> None:
        self.monkeypatch.setenv("PROBE_INFO", str(INFO[recorded]))
        if recorded == "no-daemon":
            self.monkeypatch.setenv("PROBE_NO_DAEMON", "1")

    def asked(self) -> Counter[str]:
        """What was run, without docker's --format argument: `info`, `ls`, `inspect tfarm`."""
        return Counter(line.replace(" --format {{json .}}", "").replace(" --format json", "")
                       for line in self.log.read_text().splitlines())


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDocker]:
    probe.forget()
    reach.given_daemon_config(None)
    yield FakeDocker(tmp_path, monkeypatch)
    probe.forget()
    reach.given_daemon_config(None)


def test_one_docker_info_answers_capabilities_builders_and_registry_settings(docker: FakeDocker) -> None:
    engine = Engine()
    probe.prefetch(engine, "tfarm", version=True, listing=True)
    caps = probe.capabilities(engine, "tfarm", version=True)
    assert (caps.builder, caps.driver, caps.buildx_version) == ("tfarm", "remote", (0, 30, 1))
    assert [(n.name, n.given) for n in caps.nodes] == [("n1", ("linux/amd64", "linux/386")),
                                                     ("n2", ("linux/arm64", "linux/arm/v7", "linux/arm/v6"))]
    assert [b.name for b in probe.builders(engine)] == ["default", "tfarm"]
    facts = probe.engine_facts(engine)
    assert facts.containerd_store is True and facts.insecure_registries == ("127.0.0.0/8",)
    assert probe.capabilities(Engine(), None).containerd_store is True  # the daemon's own builder: no inspect
    assert [b.name for b in probe.builders(Engine())] == ["default", "tfarm"]
    assert docker.asked() == {"info": 1, "ls": 1, "inspect tfarm": 1, "version": 1}


def test_a_build_reads_a_buildkit_builder_from_buildx_configuration_and_asks_nothing(docker: FakeDocker,
                                                                                     tmp_path: Path) -> None:
    """What buildx keeps of a builder (its driver, nodes, endpoints and given platforms) is what
    `buildx inspect` says of them; a build that records no BuildKit version reads it and starts no
    process. Whatever needs the nodes' own answers still asks them."""
    instances = tmp_path / "config" / "buildx" / "instances"
    instances.mkdir(parents=True)
    (instances / "tfarm").write_text((DATA / "buildx" / "instance-remote-2-nodes.json").read_text())
    configured = probe.capabilities(Engine(), "tfarm", nodes=False)
    assert docker.asked() == {}
    asked = probe.capabilities(Engine(), "tfarm")
    assert docker.asked() == {"info": 1, "inspect tfarm": 1}
    assert (configured.builder, configured.driver) == (asked.builder, asked.driver) == ("tfarm", "remote")
    assert [(n.name, n.endpoint, n.given) for n in configured.nodes] == \
        [(n.name, n.endpoint, n.given) for n in asked.nodes]
    assert (configured.push_by_digest, configured.multi_node, configured.export_oci) == \
        (asked.push_by_digest, asked.multi_node, asked.export_oci)
    assert [n.buildkit for n in asked.nodes] == ["v0.26.3", "v0.26.3"]  # what only the nodes say
    (instances / "tfarm").write_text("{not json")
    assert probe.capabilities(Engine(), "tfarm", nodes=False).nodes == asked.nodes  # asked again, as before
    assert probe.configured("TFARM") is None and probe.configured(None) is None


def test_a_local_daemons_info_is_kept_for_its_life_and_asked_again_after_a_restart(
        docker: FakeDocker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a daemon said of itself is kept with its socket and pid file: a later run on the same
    daemon starts no `docker info`; a daemon started again (a new socket, a new pid file) is asked."""
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{run}/docker.sock")
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "state"))

    def started(pid: int) -> None:  # what dockerd makes when it starts
        (run / "docker.sock").unlink(missing_ok=True)
        (run / "docker.sock").write_text("")
        (run / "docker.pid").write_text(f"{pid}\n")

    def info_asked() -> int:
        probe.forget()  # a new run
        assert probe.engine_facts(Engine()).containerd_store is True
        return docker.asked()["info"]

    started(100)
    assert [info_asked(), info_asked()] == [1, 1]
    started(101)
    assert [info_asked(), info_asked()] == [2, 2]
    settings = tmp_path / "config" / "docker" / "daemon.json"  # a rootless daemon's, edited and reloaded
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    settings.parent.mkdir(parents=True)
    settings.write_text('{"insecure-registries": ["registry.lan:5000"]}')
    assert [info_asked(), info_asked()] == [3, 3]
    os.utime(settings, ns=(settings.stat().st_atime_ns, settings.stat().st_mtime_ns + 1_000_000_000))
    assert [info_asked(), info_asked()] == [4, 4]
    docker.daemon("node-insecure")  # another daemon, at another address: asked, not taken for this one
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert [info_asked() for _ in range(2)] == [5, 6]


def test_the_builders_are_listed_again_only_after_orch_changed_one(docker: FakeDocker) -> None:
    engine = Engine()
    probe.builders(engine)
    probe.builders(engine)
    probe.builders_changed(engine)
    probe.builders(engine)
    assert docker.asked() == {"info": 1, "ls": 2}


def test_each_daemon_is_asked_once_with_its_own_flags(docker: FakeDocker) -> None:
    node = Engine(Daemon(context="pi"))
    for _ in range(3):
        probe.engine_facts(node)
        probe.engine_facts(Engine())
    probe.engine_facts(Engine(Daemon.at("ssh://builder@arm")))
    assert docker.asked() == {"info": 1, "--context pi info": 1, "--host ssh://builder@arm info": 1}


def test_no_daemon_is_the_first_error_whoever_asks(docker: FakeDocker) -> None:
    docker.daemon("no-daemon")
    engine = Engine()
    for ask in (lambda: probe.engine_facts(engine), lambda: probe.builders(engine),
                lambda: probe.capabilities(engine, "tfarm")):
        with pytest.raises(EnvironmentMissing, match="no Docker daemon answers: Cannot connect to the Docker daemon"):
            ask()
    assert docker.asked()["info"] == 1


@pytest.mark.parametrize(("recorded", "insecure", "spoken_to_without_tls"), [
    ("containerd-store", ("127.0.0.0/8",), False),
    ("node-insecure", ("192.0.2.0/24", "127.0.0.0/8"), True),  # scripts/engine-node.sh's insecure-registries
])
def test_the_registry_goes_by_the_settings_of_the_daemon_it_was_given(docker: FakeDocker, recorded: str,
                                                                      insecure: tuple[str, ...],
                                                                      spoken_to_without_tls: bool) -> None:
    assert reach.daemon_registry_config() == {}  # nothing given: the registry client runs no docker
    assert docker.asked() == {}
    docker.daemon(recorded)
    engine = Engine(Daemon(context="node"))
    reach.given_daemon_config(lambda: probe.engine_facts(engine).registry_config)
    assert probe.engine_facts(engine).insecure_registries == insecure
    assert reach.insecure_in(reach.daemon_registry_config(), "192.0.2.10:5000") is spoken_to_without_tls
    assert reach.insecure_in(reach.daemon_registry_config(), "registry.example:5000") is False
    assert docker.asked() == {"--context node info": 1}


def test_a_daemon_that_does_not_answer_gives_the_registry_no_insecure_registries(docker: FakeDocker) -> None:
    docker.daemon("no-daemon")
    reach.given_daemon_config(lambda: probe.engine_facts(Engine()).registry_config)
    assert reach.daemon_registry_config() == {}


def test_registries_listed_as_not_secure_and_mirrors_are_read() -> None:
    facts = EngineFacts({"RegistryConfig": {
        "IndexConfigs": {"docker.io": {"Name": "docker.io", "Secure": True, "Mirrors": ["https://mirror.corp/"]},
                         "reg.corp:5000": {"Name": "reg.corp:5000", "Secure": False}},
        "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": ["https://mirror.corp/"]}})
    assert facts.insecure_registries == ("127.0.0.0/8", "reg.corp:5000")
    assert facts.mirrors == ("https://mirror.corp/",)
    assert reach.insecure_in(facts.registry_config, "reg.corp:5000") is True
    assert EngineFacts({}).registry_config == {} and EngineFacts({}).mirrors == ()
