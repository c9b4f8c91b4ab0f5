import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator import __version__
from orchestrator.cli.app import app

from . import orch_processes

runner = CliRunner()


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"orch {__version__}"


def test_the_console_script_answers_version_before_loading_the_cli() -> None:
    """`orch --version` is what scripts ask most: the same line, with nothing of the CLI imported,
    and a reader that went away is no error."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "orchestrator", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout == f"orch {__version__}\n"
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in ("typer", "click", "structlog", "threading")}, imported
    gone = subprocess.run(f"{sys.executable} -m orchestrator --version | true; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert gone.returncode == 0 and gone.stderr == "", gone.stderr


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
    out = orch_processes.run([sys.executable, "-m", "orchestrator", "-v", "-q", "doctor"])
    assert out.returncode == 2, out.stderr
    assert "--verbose and --quiet" in out.stderr
    assert "Traceback" not in out.stderr


def test_doctor_without_a_daemon_exits_3_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # A real docker CLI pointed at a socket nobody listens on: exactly what a
    # user without a running daemon sees.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    out = orch_processes.run([sys.executable, "-m", "orchestrator", "doctor"])
    assert out.returncode == 3, out.stdout + out.stderr
    assert "FAIL  docker daemon" in out.stdout
    assert "fix: start the Docker daemon" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_doctor_json_without_a_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    out = orch_processes.run([sys.executable, "-m", "orchestrator", "doctor", "--json"])
    assert out.returncode == 3, out.stderr
    report = json.loads(out.stdout)
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert report["ok"] is False
    assert statuses["docker daemon"] == "fail"
    assert statuses["builders"] == "skip"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    from .conftest import REPO

    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO,
                              env={**{k: v for k, v in os.environ.items() if not k.startswith(("ORCH_P", "GITHUB_"))},
                                   **(env or {})}, timeout=60)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["build", ".", "-q"], ["-q", "build", "."]),
        (["build", "--log-format", "json", "-t", "r/a:1"], ["--log-format", "json", "build", "-t", "r/a:1"]),
        (["verify", "r/a:1", "--log-format=console", "-v"], ["--log-format=console", "-v", "verify", "r/a:1"]),
        (["build", ".", "--", "-q"], ["build", ".", "--", "-q"]),  # after --, words belong to buildx
        (["-q", "build"], ["-q", "build"]),
    ],
)
def test_orchs_own_options_are_read_after_the_subcommand_too(argv: list[str], expected: list[str]) -> None:
    from orchestrator.cli.entry import global_options_first

    assert global_options_first(argv) == expected


def test_quiet_after_the_subcommand_works_end_to_end() -> None:
    result = run("platforms", "resolve", "armhf", "-q")
    assert result.returncode == 0, result.stderr
    assert "linux/arm/v7" in result.stdout


def test_a_failure_with_json_prints_a_json_error_object_on_stdout() -> None:
    result = run("platforms", "resolve", "armv9z", "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert document["exit_code"] == 2 and 'unknown platform "armv9z"' in document["error"] and document["fix"]
    fast = run("verify", "localhost:9/a/b:1", "--platform", "linux/armv9", "--json")  # the typer-free path too
    assert fast.returncode == 2 and json.loads(fast.stdout)["exit_code"] == 2


def test_logs_are_lines_for_people_when_piped_and_annotations_on_github_actions() -> None:
    args = ("build", "-f", "Dockerfile.example", "--platform", "linux/arm/v4", "--dry-run")
    piped = run(*args)
    assert piped.returncode == 0, piped.stderr
    warning = next(line for line in piped.stderr.splitlines() if "build.check_this" in line)
    assert not warning.lstrip().startswith("{")  # not JSON unless asked
    assert json.loads(run("--log-format", "json", *args).stderr.splitlines()[0])["event"] == "build.check_this"
    on_actions = run(*args, env={"GITHUB_ACTIONS": "true"})
    assert any(line.startswith("::warning title=orch::build.check_this advice=") for line in
               on_actions.stderr.splitlines()), on_actions.stderr


@pytest.mark.slow
def test_environment_defaults_for_platforms_and_profile() -> None:
    built = run("build", "-f", "Dockerfile.example", "--dry-run", env={"ORCH_PLATFORMS": "linux/arm64,linux/arm/v6"})
    assert built.returncode == 0 and "--platform linux/arm64,linux/arm/v6 " in built.stdout
    profiled = run("build", "-f", "Dockerfile.example", "--dry-run", env={"ORCH_PROFILE": "arm-all"})
    assert "--platform linux/arm64,linux/arm/v6,linux/arm/v7 " in profiled.stdout
    # verify finds something to check against (and then cannot reach the registry: exit 3, not 2).
    assert run("verify", "localhost:9/a/b:1").returncode == 2
    assert run("verify", "localhost:9/a/b:1", env={"ORCH_PLATFORMS": "linux/arm64"}).returncode == 3


def test_profiles_validate_reports_every_problem_with_its_line(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: bad\nplatforms: [linux/arm64, linux/armv9]\nstrategy: fastest\ncolour: blue\n'
                   'tags: ["{nope}"]\n')
    result = run("profiles", "validate", str(bad))
    assert result.returncode == 2
    assert "4 problems in" in result.stderr
    for line, key in ((2, "platforms[1]"), (3, "strategy"), (4, "colour"), (5, "tags[0]")):
        assert f"bad.yaml:{line}: {key}: " in result.stderr


ENDING_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("atexit ran\\n"))
from orchestrator.cli.entry import main
sys.argv = ["orch", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize(("words", "code"), [
    (("build", "--dry-run", "--json", "--platform", "linux/amd64,linux/arm64", "-t", "localhost:5000/end/app:1",
      "--push", "."), 0),
    (("build", "--dry-run", "--platform", "linux/notanarch", "-t", "localhost:5000/end/app:1", "."), 2),
    (("nosuchcommand",), 2),
])
def test_orch_ends_with_its_code_its_output_whole_and_atexit_run(tmp_path: Path, words: tuple[str, ...],
                                                                 code: int) -> None:
    """orch ends without freeing its objects one by one (cli.entry._end), after all a program's
    end owes: atexit's calls, every buffered byte written (stdout a pipe, so block-buffered),
    the exit code of sys.exit."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = subprocess.run([sys.executable, "-c", ENDING_PROBE, *words], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "ORCH_STATE_HOME": str(tmp_path / "state")},
                            timeout=120)
    assert result.returncode == code, result.stderr[-2000:]
    assert result.stderr.endswith("atexit ran\n"), result.stderr[-2000:]
    if code == 0:
        assert json.loads(result.stdout)["platforms"], result.stdout[-2000:]  # the whole document
