"""orch's console log lines are structlog's ConsoleRenderer's, written without importing structlog:
side by side on the same events, in colour and without, and a default-verbosity build imports it not."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import structlog

from orchestrator import logging as orch_logging

EVENTS: list[dict[str, Any]] = [
    {"event": "build.start", "level": "info", "timestamp": "2026-12-07T17:25:35.046292Z",
     "output": "localhost:5000/spd/small", "platforms": ["linux/amd64", "linux/arm64"], "profile": "adhoc"},
    {"event": "build.check_this", "level": "warning", "timestamp": "2026-12-07T17:25:35Z",
     "advice": "a value with spaces = and 'quotes'", "n": 3, "none": None, "flag": True},
    {"event": "an event name longer than the thirty columns it is padded to", "level": "error", "why": "x\ny"},
    {"event": "x", "level": "debug", "timestamp": "t", "logger": "orch", "z": 1.5, "a": {"k": "v"}},
    {"event": "odd level", "level": "notice", "b": ""},
]


@pytest.mark.parametrize("colors", [False, True])
@pytest.mark.parametrize("event", EVENTS, ids=lambda event: str(event["event"])[:12])
def test_a_console_line_is_what_structlog_writes(event: dict[str, Any], colors: bool) -> None:
    expected = structlog.dev.ConsoleRenderer(colors=colors)(None, "info", dict(event))
    assert orch_logging.render_console(dict(event), colors=colors) == expected


def test_a_warning_on_github_is_also_an_annotation(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setattr(orch_logging, "_pending", {"level": orch_logging.INFO,
                                                   "log_format": orch_logging.LogFormat.console})
    orch_logging.get_logger(profile="p").warning("build.check_this", advice="look")
    orch_logging.get_logger().info("build.start", method="imagetools", self="any name")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "::warning title=orch::build.check_this profile=p advice=look"
    assert "[warning  ] build.check_this               advice=look profile=p" in lines[1]
    assert "[info     ] build.start                    method=imagetools self='any name'" in lines[2]
    assert len(lines) == 3


def test_a_build_at_default_verbosity_logs_without_importing_structlog(tmp_path: Any) -> None:
    """A dry run logs its warnings as a build does (a --build-arg that looks secret), in console lines."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "orchestrator", "build", str(tmp_path),
                             "--platform", "linux/amd64", "--build-arg", "API_TOKEN=hunter2", "--dry-run"],
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent",
                                 "ORCH_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert any("[warning  ] build.check_this" in line for line in logged), logged
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in ("structlog", "rich", "pygments")}, imported
