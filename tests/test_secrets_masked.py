"""Secret values a build is given (a secret-looking build arg, each --secret's file and variable)
never appear in anything orch prints or writes, even when a step prints them and fails on every
platform: buildx's log passed through, the failure lines and their `::error` annotation, --json,
--metadata-file, --report, GITHUB_OUTPUT and the step summary, --output-env."""

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
def test_secret_values_printed_by_a_failing_step_appear_nowhere(registry: Registry, tmp_path: Path,
                                                                 daemons_own_builder: None) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TOKEN\n"
        "RUN --mount=type=secret,id=tok --mount=type=secret,id=tok2 "
        'cat /run/secrets/tok; echo; cat /run/secrets/tok2; echo; echo "token=$TOKEN"; exit 1\n')
    (tmp_path / "tok").write_text(FILE_SECRET + "\n")
    files = {name: tmp_path / name for name in ("output", "summary", "metadata.json", "report.html", "out.env")}
    for path in files.values():
        path.write_text("")
    env = {**os.environ, "TOK_VALUE": ENV_SECRET, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(files["output"]),
           "GITHUB_STEP_SUMMARY": str(files["summary"])}
    env.pop("CI", None)  # the GitHub annotations on, without the suite's own CI settings
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "build", str(context), "--platform", "linux/amd64,linux/arm64",
         "--build-arg", BASE_ARG, "--build-arg", f"TOKEN={ARG_SECRET}",
         "--secret", f"id=tok,src={tmp_path / 'tok'}", "--secret", "id=tok2,env=TOK_VALUE",
         "-t", registry.ref("secret/app", "1"), "--push", "--json",
         "--metadata-file", str(files["metadata.json"]), "--report", str(files["report.html"]),
         "--output-env", str(files["out.env"])],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert done.returncode == 1, done.stderr[-3000:]
    # The step ran and printed them, and failed on both platforms: what was masked was there.
    assert "*****" in done.stderr and "linux/amd64" in done.stderr and "linux/arm64" in done.stderr
    assert "::error" in done.stderr and '"error"' in done.stdout
    written = {name: path.read_text() for name, path in files.items()}
    assert all(written.values()), [name for name, text in written.items() if not text]
    for secret in (FILE_SECRET, ENV_SECRET, ARG_SECRET):
        for where, text in {"stdout": done.stdout, "stderr": done.stderr, **written}.items():
            assert secret not in text, f"{secret} in {where}:\n{text[-3000:]}"
