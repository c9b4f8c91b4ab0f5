"""Secret values a build is given (a secret-looking build arg, each --secret's file and variable)
never appear in anything orch prints or writes, even when a step prints them and fails on every
platform: buildx's log passed through, the failure lines and their `::error` annotation, --json,
--metadata-file, --report, GITHUB_OUTPUT and the step summary, --output-env; nor, when the build
succeeds, in the step timings orch keeps in its state directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, Registry
from .test_build import BASE_ARG

FILE_SECRET = "file-secret-Qx7Lm2"
ENV_SECRET = "env-secret-Vb93Kd"
ARG_SECRET = "arg-secret-Hz81Pw"


@pytest.mark.engine
@pytest.mark.parametrize("fails, platforms", [(True, "linux/amd64,linux/arm64"), (False, "linux/amd64")])
def test_secret_values_printed_by_a_step_appear_nowhere(registry: Registry, tmp_path: Path, daemons_own_builder: None,
                                                         fails: bool, platforms: str) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TOKEN\n"
        "RUN --mount=type=secret,id=tok --mount=type=secret,id=tok2 "
        'cat /run/secrets/tok; echo; cat /run/secrets/tok2; echo; echo "token=$TOKEN"' + ("; exit 1" if fails else "")
        + "\n")
    (tmp_path / "tok").write_text(FILE_SECRET + "\n")
    files = {name: tmp_path / name for name in ("output", "summary", "metadata.json", "report.html", "out.env")}
    for path in files.values():
        path.write_text("")
    env = {**os.environ, "TOK_VALUE": ENV_SECRET, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(files["output"]),
           "GITHUB_STEP_SUMMARY": str(files["summary"])}
    env.pop("CI", None)  # the GitHub annotations on, without the suite's own CI settings
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "build", str(context), "--platform", platforms,
         "--build-arg", BASE_ARG, "--build-arg", f"TOKEN={ARG_SECRET}",
         "--secret", f"id=tok,src={tmp_path / 'tok'}", "--secret", "id=tok2,env=TOK_VALUE",
         "-t", registry.ref("secret/app", "1"), "--push", "--json", "--no-cache",  # the step runs, and is timed
         "--metadata-file", str(files["metadata.json"]), "--report", str(files["report.html"]),
         "--output-env", str(files["out.env"])],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert done.returncode == (1 if fails else 0), done.stderr[-3000:]
    # The step ran and printed them (and failed on both platforms): what was masked was there.
    assert "*****" in done.stderr and all(platform in done.stderr for platform in platforms.split(","))
    if fails:
        assert "::error" in done.stderr and '"error"' in done.stdout
    written = {name: path.read_text() for name, path in files.items()}
    assert all(written.values()), [name for name, text in written.items() if not text]
    kept = {str(path): path.read_text() for path in Path(os.environ["ORCH_STATE_HOME"]).rglob("*.json")}
    assert fails or any("token=" in text for text in kept.values()), kept  # the step's time, kept
    for secret in (FILE_SECRET, ENV_SECRET, ARG_SECRET):
        for where, text in {"stdout": done.stdout, "stderr": done.stderr, **written, **kept}.items():
            assert secret not in text, f"{secret} in {where}:\n{text[-3000:]}"
