"""The test harness's forked orch runs (tests/orch_processes.py) answer what new interpreters
answer: the same exit code, stdout and stderr, whatever the run before them set (environment,
working directory, orch's own state), for `python -m orchestrator` and the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import orch_processes
from .conftest import REPO

ORCH = [sys.executable, "-m", "orchestrator"]


def real(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          **kwargs)  # type: ignore[call-overload]


def same(forked: subprocess.CompletedProcess[str], fresh: subprocess.CompletedProcess[str]) -> None:
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


@pytest.mark.slow  # a new interpreter for each comparison
def test_a_forked_run_answers_what_a_new_interpreter_answers_whatever_ran_before(tmp_path: Path) -> None:
    on_actions = {**os.environ, "GITHUB_ACTIONS": "true", "ORCH_LOG_FORMAT": "json"}
    bad = [*ORCH, "platforms", "resolve", "armv7h"]
    first = orch_processes.run(bad, env=on_actions, cwd=tmp_path, timeout=120)
    assert first.returncode == 2 and "::error" in first.stderr
    same(first, real(bad, env=on_actions, cwd=tmp_path))
    # The next run has none of that environment or directory: nothing of the first is left.
    second = orch_processes.run(bad, cwd=REPO, timeout=120)
    assert "::error" not in second.stderr
    same(second, real(bad, cwd=REPO))
    for argv in ([*ORCH, "--version"], [*ORCH, "build", "--help"], [orch_processes.ORCH_SCRIPT, "--help"],
                 [*ORCH, "-v", "-q", "doctor"], [*ORCH, "release", str(tmp_path / "none"), "--platform", "linux/amd64"]):
        same(orch_processes.run(argv, cwd=REPO, timeout=120), real(argv, cwd=REPO))
    assert orch_processes.run([orch_processes.ORCH_SCRIPT, "--help"]).stdout.startswith("Usage: orch ")


def test_a_run_in_another_python_setting_gets_a_new_interpreter() -> None:
    """PYTHON* variables are read when an interpreter starts: a fork of the server cannot honour them."""
    run = orch_processes.run([*ORCH, "--version"], env={**os.environ, "PYTHONWARNINGS": "error"})
    assert run.returncode == 0 and run.stdout.startswith("orch ")
    assert not orch_processes._server().serves({**os.environ, "PYTHONWARNINGS": "error"})
