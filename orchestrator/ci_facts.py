"""CI facts (bottom layer, beside processes): which CI service runs orch, read from the environment here and nowhere else, and the one
format GitHub's runner reads from a step's output: workflow commands (annotations, groups)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from orchestrator.patterns import on_first_use

_CONTROL = on_first_use(r"[\x00-\x1f\x7f-\x9f]")


def on_github(environ: Mapping[str, str] | None = None) -> bool:
    """GitHub Actions sets GITHUB_ACTIONS=true in every step."""
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def on_gitlab(environ: Mapping[str, str] | None = None) -> bool:
    """GitLab CI sets GITLAB_CI=true in every job."""
    return (os.environ if environ is None else environ).get("GITLAB_CI") == "true"


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Any CI service: they set CI (GitHub, GitLab, most others), or one of the two above."""
    env = os.environ if environ is None else environ
    return bool(env.get("CI")) or on_github(env) or on_gitlab(env)


def escape_workflow(text: str) -> str:
    """A message as a workflow command's data: %, CR and LF escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def inert(text: object) -> str:
    """Text from outside (a part record, a registry) made safe to print in a CI log: control
    characters (newlines, CR, ESC: terminal escapes) become spaces, so it never starts a line, and
    a leading `::` is broken, so GitHub's runner never reads it as a workflow command."""
    flat = _CONTROL.sub(" ", str(text))
    return "\u200b" + flat if flat.lstrip().startswith("::") else flat


def workflow_command(kind: str, message: str, title: str = "orch") -> str:
    """`::error title=orch::...` (or warning, notice): the runner shows it as an annotation,
    whether it is read from stdout or stderr."""
    return f"::{kind} title={title}::{escape_workflow(message)}"


def ci_job(environ: Mapping[str, str] | None = None) -> dict[str, str | int] | None:
    """The CI job this runs in, as a part record keeps it: the provider, the pipeline (one run of
    the workflow), the job's name and its attempt. A retried job keeps its pipeline and name and
    has a later attempt: GitHub counts re-runs in GITHUB_RUN_ATTEMPT; GitLab gives a retried job a
    new, larger CI_JOB_ID. None outside those two."""
    env = os.environ if environ is None else environ
    if on_github(env) and env.get("GITHUB_RUN_ID"):
        return {"provider": "github", "pipeline": env["GITHUB_RUN_ID"], "job": env.get("GITHUB_JOB", ""),
                "attempt": _number(env.get("GITHUB_RUN_ATTEMPT")), "runner": env.get("RUNNER_NAME", "")}
    if on_gitlab(env) and env.get("CI_PIPELINE_ID"):
        return {"provider": "gitlab", "pipeline": env["CI_PIPELINE_ID"], "job": env.get("CI_JOB_NAME", ""),
                "attempt": _number(env.get("CI_JOB_ID")), "runner": env.get("CI_RUNNER_DESCRIPTION", "")}
    return None


def _number(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0
