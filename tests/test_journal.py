"""The promotion journal finds what a killed orch left: whatever process holds its pid now (the
writer is named by host, pid and start time), and under any spelling of its registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.model.references import canonical_registry, parse_reference
from orchestrator.publish import journal

DIGEST = "sha256:" + "1" * 64
BEFORE = "sha256:" + "2" * 64


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path))
    return tmp_path


def left_by(pid: int, tag: str = "localhost:5000/team/app:1", **fields: object) -> None:
    """A record as a killed orch leaves it: written by `begin`, then rewritten as `pid`'s."""
    name = journal.begin([(DIGEST, [(parse_reference(tag), BEFORE)])])
    assert name is not None
    path = journal.state_dir() / name
    record = json.loads(path.read_text())
    record.update(pid=pid, **fields)
    path.write_text(json.dumps(record))


@pytest.mark.parametrize(("spelling", "canonical"), [
    ("localhost:5000", "localhost:5000"), ("127.0.0.1:5000", "localhost:5000"), ("[::1]:5000", "localhost:5000"),
    ("LocalHost:5000", "localhost:5000"), ("registry-1.docker.io", "docker.io"), ("index.docker.io", "docker.io"),
    ("docker.io:443", "docker.io"), ("Ghcr.IO:443", "ghcr.io"), ("registry.example:80", "registry.example"),
    ("registry.example:5000", "registry.example:5000"), ("[::1]", "localhost")])
def test_a_registry_has_one_canonical_name(spelling: str, canonical: str) -> None:
    assert canonical_registry(spelling) == canonical


def test_a_record_for_localhost_is_found_for_127_0_0_1(state: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left_by(int(gone.stdout))
    found = journal.unfinished({"127.0.0.1:5000/team/app"})
    assert [(u.digest, str(u.tags[0][0])) for u in found] == [(DIGEST, "localhost:5000/team/app:1")]
    assert journal.unfinished({"localhost:5001/team/app"}) == []


def test_a_reused_pid_does_not_hide_an_unfinished_promotion(state: Path) -> None:
    """The writer died and its pid now belongs to another live process (here: our parent)."""
    other = os.getppid()
    left_by(other, pid_started=(journal.process_start(other) or 0) + 12345)
    found = journal.unfinished({"localhost:5000/team/app"})
    assert [u.pid for u in found] == [other]
    assert "stopped before its last tag moved" in found[0].describe(lambda tag: BEFORE)


def test_a_promotion_still_at_work_is_not_reported(state: Path) -> None:
    other = os.getppid()
    left_by(other, pid_started=journal.process_start(other))
    assert journal.unfinished({"localhost:5000/team/app"}) == []


def test_a_record_from_another_host_is_reported_as_it_cannot_be_asked(state: Path) -> None:
    left_by(os.getppid(), host="another-runner")
    assert [u.host for u in journal.unfinished()] == ["another-runner"]


def test_a_record_of_an_older_orch_is_judged_by_its_pid(state: Path) -> None:
    left_by(os.getppid(), host=None, pid_started=None)
    assert journal.unfinished() == []  # its pid is alive: taken as at work, as before
