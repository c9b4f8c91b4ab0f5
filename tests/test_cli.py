import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from orchestrator import __version__
from orchestrator.cli.app import app

runner = CliRunner()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"orch {__version__}"


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "doctor" in result.output


def test_help_does_not_import_python_on_whales() -> None:
    # python-on-whales costs ~250 ms to import; `orch --help` must not pay for it.
    code = "import sys; from orchestrator.cli.app import app; print('python_on_whales' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_verbose_and_quiet_together_is_bad_input() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "-v", "-q", "doctor"], capture_output=True, text=True
    )
    assert out.returncode == 2, out.stderr
    assert "--verbose and --quiet" in out.stderr
    assert "Traceback" not in out.stderr


def test_doctor_without_a_daemon_exits_3_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # A real docker CLI pointed at a socket nobody listens on: exactly what a
    # user without a running daemon sees.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    out = subprocess.run([sys.executable, "-m", "orchestrator", "doctor"], capture_output=True, text=True)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "FAIL  docker daemon" in out.stdout
    assert "fix: start the Docker daemon" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_doctor_json_without_a_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "doctor", "--json"], capture_output=True, text=True
    )
    assert out.returncode == 3, out.stderr
    report = json.loads(out.stdout)
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert report["ok"] is False
    assert statuses["docker daemon"] == "fail"
    assert statuses["builders"] == "skip"
