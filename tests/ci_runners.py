"""The generated CI files run as GitHub's and GitLab's runners run them, step by step, on this
machine: for the re-run tests (tests/test_ci_reruns.py).

GitHub (what a job's steps get, from GitHub's docs on workflow syntax and the runner's env files):
each `run:` step is `bash --noprofile --norc -eo pipefail` on the step's script, with the
workflow's, job's and step's `env:` (expressions evaluated), GITHUB_ACTIONS, GITHUB_RUN_ID,
GITHUB_RUN_ATTEMPT, GITHUB_JOB, GITHUB_REF, GITHUB_SHA, GITHUB_EVENT_NAME, GITHUB_REPOSITORY, and
fresh GITHUB_ENV, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files; lines a step adds to GITHUB_ENV are
in the environment of the steps after it. A step runs when its `if:` holds (success() when none).
`uses:` steps are stand-ins that behave as the actions do for what the files use:
upload-artifact fails on a name already uploaded in the run (any attempt) unless `overwrite:
true` (actions/upload-artifact@bbbca2dd action.yml, input `overwrite`); download-artifact with
`pattern` and `merge-multiple` puts every matching artifact's files in `path`; checkout gives a
fresh copy of the project; the others (setup-python, QEMU, buildx, login) change nothing here:
orch is the project's own venv, the builder is the engine's, the registry needs no login.

GitLab: a job is `before_script` then `script`, each line in one shell that stops at the first
failure, with the file's `variables:` and those of the first `rules:` entry that holds; a retried
job is a new job (a new, larger CI_JOB_ID) whose artifacts replace the earlier ones for `needs:`.
The lines that install orch, log in or set up QEMU and buildx are left to the stand-ins.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BIN = str(Path(sys.executable).parent)


class Conflict(Exception):
    """upload-artifact's answer to a name already used in the run: HTTP 409."""


@dataclass
class Run:
    """One workflow run: its artifacts outlive attempts, as GitHub keeps them."""

    workflow: dict[str, Any]
    project: Path
    work: Path
    event: dict[str, str]  # GITHUB_EVENT_NAME, GITHUB_REF, GITHUB_SHA, GITHUB_REPOSITORY
    env: dict[str, str] = field(default_factory=dict)  # what this machine adds (registry, builder)
    artifacts: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job -> its outputs (last attempt)
    results: dict[str, str] = field(default_factory=dict)  # job (leg) -> success | failure | skipped
    run_id: str = "4242"
    secrets: dict[str, str] = field(default_factory=dict)  # the repository's secrets (GITHUB_TOKEN aside)

    def job(self, name: str, attempt: int, matrix: dict[str, Any] | None = None,
            prepare: Any = None) -> JobResult:
        """Run one job (one leg of a matrix) as attempt `attempt`."""
        spec = self.workflow["jobs"][name]
        context = self._context(attempt, matrix, name)
        leg = f"{name} {matrix['platform']}" if matrix else name
        if "if" in spec and not evaluate(spec["if"], context):
            self.results[leg] = "skipped"
            return JobResult("skipped", {}, [], "")
        workspace = self.work / f"{leg.replace('/', '-').replace(' ', '-')}-{attempt}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(self.project, workspace)
        if prepare:
            prepare(workspace)
        files = {key: workspace.parent / f"{workspace.name}.{key.lower()}" for key in
                 ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
        for path in files.values():
            path.write_text("")
        env = {**os.environ, **self.env, **self.event, "GITHUB_ACTIONS": "true", "CI": "true",
               "GITHUB_RUN_ID": self.run_id, "GITHUB_RUN_ATTEMPT": str(attempt), "GITHUB_JOB": name,
               "GITHUB_WORKSPACE": str(workspace), "RUNNER_NAME": leg,
               "PATH": BIN + os.pathsep + os.environ["PATH"], **{k: str(v) for k, v in files.items()}}
        env.update(expand_env(self.workflow.get("env") or {}, context))
        env.update(expand_env(spec.get("env") or {}, context))
        status, logs = "success", []
        for step in spec["steps"]:
            context["job"] = {"status": status}
            if not evaluate(step.get("if", "success()"), context):
                continue
            try:
                ok, log = self._step(step, env, context, workspace, files)
            except Conflict as exc:
                ok, log = False, str(exc)
            logs.append(log)
            env.update(read_env_file(files["GITHUB_ENV"]))
            outputs = read_env_file(files["GITHUB_OUTPUT"])
            if step.get("id"):
                context["steps"][step["id"]] = {"outputs": outputs}
            files["GITHUB_OUTPUT"].write_text("")
            if not ok:
                status = "failure"
        job_outputs = expand(spec.get("outputs") or {}, context)
        self.outputs[name] = {"outputs": job_outputs, "result": status}
        self.results[leg] = status
        return JobResult(status, job_outputs, logs, files["GITHUB_STEP_SUMMARY"].read_text())

    def _context(self, attempt: int, matrix: dict[str, Any] | None, name: str) -> dict[str, Any]:
        github = {"event_name": self.event["GITHUB_EVENT_NAME"], "ref": self.event["GITHUB_REF"],
                  "sha": self.event["GITHUB_SHA"], "repository": self.event["GITHUB_REPOSITORY"],
                  "actor": "acme-bot", "run_attempt": str(attempt), "run_id": self.run_id}
        return {"github": github, "matrix": matrix or {}, "steps": {}, "secrets": {"GITHUB_TOKEN": "token", **self.secrets},
                "needs": {need: self.outputs.get(need, {}) for need in _needs(self.workflow["jobs"][name])},
                "job": {"status": "success"}}

    def _step(self, step: dict[str, Any], env: dict[str, str], context: dict[str, Any], workspace: Path,
              files: dict[str, Path]) -> tuple[bool, str]:
        step_env = {**env, **expand_env(step.get("env") or {}, context)}
        if "run" in step:
            script = step["run"]
            if "${{" in script:
                raise AssertionError(f"an expression inside run: {script!r}")
            if "pip install" in script:  # orch is the project's own venv here
                return True, "(installed: the project's venv)"
            ran = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                 cwd=workspace, env=step_env, capture_output=True, text=True, timeout=900)
            return ran.returncode == 0, f"$ {script}\n{ran.stdout}{ran.stderr}"
        action = step["uses"].split("@", 1)[0]
        given = expand(step.get("with") or {}, context)
        if action == "actions/checkout":
            assert given.get("persist-credentials") is False, step
            return True, "checkout"
        if action == "actions/upload-artifact":
            return self._upload(given, workspace)
        if action == "actions/download-artifact":
            target = workspace / given["path"]
            matching = [name for name in sorted(self.artifacts) if fnmatch.fnmatch(name, given["pattern"])]
            for name in matching:
                destination = target if given.get("merge-multiple") else target / name
                shutil.copytree(self.artifacts[name], destination, dirs_exist_ok=True)
            return True, f"downloaded {matching}"
        return True, f"{action} (stand-in)"

    def _upload(self, given: dict[str, Any], workspace: Path) -> tuple[bool, str]:
        name = given["name"]
        source = workspace / given["path"]
        if not source.exists():
            if given.get("if-no-files-found") == "error":
                return False, f"no files at {given['path']}"
            return True, f"nothing to upload for {name}"
        if name in self.artifacts and given.get("overwrite") is not True:
            raise Conflict(f"Failed to CreateArtifact: (409) Conflict: an artifact with this name already "
                           f"exists on the workflow run: {name}")
        stored = self.work / "artifacts" / name
        shutil.rmtree(stored, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, stored)
        else:
            stored.mkdir(parents=True)
            shutil.copy(source, stored)
        self.artifacts[name] = stored
        return True, f"uploaded {name}"


@dataclass
class JobResult:
    status: str
    outputs: dict[str, Any]
    logs: list[str]
    summary: str

    def why(self) -> str:
        return "\n".join(self.logs)


def _needs(spec: dict[str, Any]) -> list[str]:
    needs = spec.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


# -- GitHub's expressions, as far as the generated files use them ---------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\)|,)|(?P<num>\d+)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.-]*))")


def evaluate(text: Any, context: dict[str, Any]) -> Any:
    if not isinstance(text, str):
        return text
    inner = text.strip()
    if inner.startswith("${{") and inner.endswith("}}"):
        inner = inner[3:-2]
    return _Parser(inner, context).parse()


def expand(values: Any, context: dict[str, Any]) -> Any:
    """Every `${{ }}` in a mapping's values, as the runner fills them in."""
    if isinstance(values, dict):
        return {key: expand(value, context) for key, value in values.items()}
    if not isinstance(values, str) or "${{" not in values:
        return values
    whole = re.fullmatch(r"\$\{\{(.*?)\}\}", values.strip(), re.S)
    if whole:
        return evaluate(whole.group(1), context)
    return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1), context)), values)


def expand_env(values: dict[str, Any], context: dict[str, Any]) -> dict[str, str]:
    """`env:` values as a process gets them: strings (true/false for booleans)."""
    return {key: _text(value) for key, value in expand(values, context).items()}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


class _Parser:
    def __init__(self, text: str, context: dict[str, Any]) -> None:
        self.tokens = [(m.lastgroup, m.group(m.lastgroup)) for m in _TOKEN.finditer(text) if m.lastgroup]
        self.at = 0
        self.context = context

    def parse(self) -> Any:
        value = self._or()
        assert self.at == len(self.tokens), self.tokens
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str | None, str]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _or(self) -> Any:
        value = self._and()
        while self._peek() == "||":
            self._take()
            other = self._and()
            value = value or other
        return value

    def _and(self) -> Any:
        value = self._compare()
        while self._peek() == "&&":
            self._take()
            other = self._compare()
            value = value and other
        return value

    def _compare(self) -> Any:
        value = self._unary()
        while self._peek() in ("==", "!="):
            op = self._take()[1]
            other = self._unary()
            value = (value == other) if op == "==" else (value != other)
        return value

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not self._unary()
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            value = self._or()
            self._take()
            return value
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return int(text)
        if self._peek() == "(":
            self._take()
            args = []
            while self._peek() != ")":
                args.append(self._or())
                if self._peek() == ",":
                    self._take()
            self._take()
            return self._call(text, args)
        if text in ("true", "false"):
            return text == "true"
        value: Any = self.context
        for part in text.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def _call(self, name: str, args: list[Any]) -> Any:
        status = self.context["job"]["status"]
        if name == "always":
            return True
        if name == "success":
            return status == "success"
        if name == "failure":
            return status == "failure"
        if name == "fromJSON":
            return json.loads(args[0])
        if name == "format":
            return re.sub(r"\{(\d+)\}", lambda m: _text(args[1 + int(m.group(1))]), args[0])
        raise AssertionError(f"expression function {name} is not simulated")


def read_env_file(path: Path) -> dict[str, str]:
    """GITHUB_ENV / GITHUB_OUTPUT: NAME=VALUE lines and NAME<<DELIMITER heredocs."""
    values: dict[str, str] = {}
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            while lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@dataclass
class Pipeline:
    """One GitLab pipeline: each job's artifacts, the latest try of each job name kept for `needs:`."""

    document: dict[str, Any]
    project: Path
    work: Path
    variables: dict[str, str]  # what GitLab predefines for this pipeline (CI_COMMIT_TAG, CI_COMMIT_SHA, ...)
    env: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)  # job name -> its latest try's files
    next_id: int = 1000

    def job(self, name: str, matrix: dict[str, str] | None = None, prepare: Any = None) -> tuple[bool, str]:
        spec = {**self.document[".orch"], **self.document[name]} if self.document[name].get("extends") == ".orch" \
            else self.document[name]
        self.next_id += 1
        job_name = f"{name}: [{', '.join(matrix.values())}]" if matrix else name
        workspace = self.work / f"job-{self.next_id}" / self.project.name  # /builds/GROUP/PROJECT, every job
        shutil.copytree(self.project, workspace)
        for need in spec.get("needs") or []:
            for key, files in self.artifacts.items():
                if key == need or key.startswith(f"{need}: "):
                    shutil.copytree(files, workspace, dirs_exist_ok=True)
        if prepare:
            prepare(workspace)
        variables = {**self.variables, "GITLAB_CI": "true", "CI": "true", "CI_JOB_ID": str(self.next_id),
                     "CI_JOB_NAME": job_name, **{k: str(v) for k, v in (self.document.get("variables") or {}).items()},
                     **(matrix or {})}
        for rule in spec.get("rules") or []:
            if _gitlab_rule(rule["if"], variables):
                variables.update(rule.get("variables") or {})
                break
        variables = {key: _expand_dollars(value, variables) for key, value in variables.items()}
        lines = [line for line in [*spec.get("before_script", []), *spec["script"]] if not _stand_in(line)]
        ran = subprocess.run(["sh", "-ec", "\n".join(lines)], cwd=workspace, capture_output=True, text=True,
                             timeout=900, env={**os.environ, **self.env, **variables,
                                               "PATH": BIN + os.pathsep + os.environ["PATH"]})
        kept = self.work / f"artifacts-{self.next_id}"
        kept.mkdir()
        for pattern in (spec.get("artifacts") or {}).get("paths") or []:
            for found in workspace.glob(pattern.rstrip("/")):
                target = kept / found.relative_to(workspace)
                if found.is_dir():
                    shutil.copytree(found, target)
                else:
                    shutil.copy(found, target)
        self.artifacts[job_name] = kept  # a retry's artifacts replace the earlier try's
        return ran.returncode == 0, ran.stdout + ran.stderr


def _stand_in(line: str) -> bool:
    """Lines the stand-ins cover here: installing orch (the venv), apk, login, QEMU and buildx setup."""
    return any(word in line for word in ("pip install", "apk add", "docker login", "tonistiigi/binfmt",
                                         "docker buildx create"))


def _expand_dollars(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), str(value))


def _gitlab_rule(condition: str, variables: dict[str, str]) -> bool:
    """The `rules: if:` forms the generated files use: `$A || $B == $C`, `$X == "value"`."""
    def term(text: str) -> bool:
        text = text.strip()
        if "==" in text:
            left, right = (part.strip() for part in text.split("==", 1))
            value = right.strip('"') if right.startswith('"') else variables.get(right.lstrip("$"), "")
            return variables.get(left.lstrip("$"), "") == value
        return bool(variables.get(text.lstrip("$")))

    return any(term(part) for part in condition.split("||"))
