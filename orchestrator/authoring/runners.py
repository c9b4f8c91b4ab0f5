"""Which CI runner builds each platform when every platform gets a runner of its own.

GitHub-hosted runners: `ubuntu-latest` (x86-64) and `ubuntu-24.04-arm` (arm64, free for public
repositories since 2025). GitLab.com's hosted runners are picked by tag:
`saas-linux-small-amd64` and `saas-linux-small-arm64`. A platform neither CI runs natively
(arm/v7, arm/v6, 386 aside from amd64 hosts, ppc64le, s390x...) builds on the amd64 runner
under QEMU. A profile's `runners:` maps platforms to labels (or tags) of its own, runners it
knows run them natively: self-hosted Raspberry Pis, say, one table per CI (`runners: {github:
{...}, gitlab: {...}}`), so one profile serves both. A flat table (no CI level, as orch init
wrote before) is the table of the CI whose file the project holds (`.gitlab-ci.yml` or
`.github/workflows/`), GitHub's where it holds both or neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.model.platform import Platform, format_platform, platform_slug
from orchestrator.model.platform_parse import parse

CI_RUNNERS = {
    "github": {"linux/amd64": "ubuntu-latest", "linux/arm64": "ubuntu-24.04-arm"},
    "gitlab": {"linux/amd64": "saas-linux-small-amd64", "linux/arm64": "saas-linux-small-arm64"},
}
GITHUB_FILE = Path(".github") / "workflows" / "image.yml"
GITLAB_FILE = Path(".gitlab-ci.yml")
EMULATING = "linux/amd64"  # the runner that builds the platforms no runner has natively


@dataclass(frozen=True)
class RunnerJob:
    """One job of a CI file's per-platform matrix: the platform, the runner that builds it, and
    whether that runner emulates it."""

    platform: Platform
    runner: str  # GitHub: runs-on; GitLab: the runner tag
    qemu: bool  # the runner emulates the platform (set QEMU up first)

    def to_json(self) -> dict[str, Any]:
        return {"platform": format_platform(self.platform), "runner": self.runner, "qemu": self.qemu,
                "slug": platform_slug(self.platform)}


def flat_owner(project: Path) -> str:
    """The CI a flat runners table belongs to: GitLab's when only its file is in the project."""
    return "gitlab" if (project / GITLAB_FILE).is_file() and not (project / GITHUB_FILE).parent.is_dir() \
        else "github"


def is_nested(runners: Mapping[str, Any] | None) -> bool:
    return any(key in CI_RUNNERS for key in runners or {})


def runner_table(runners: Mapping[str, Any] | None, ci: str, project: Path) -> Mapping[str, str] | None:
    """One CI's table of a profile's `runners:` (None: it has none)."""
    if is_nested(runners):
        return (runners or {}).get(ci)
    return runners if runners and flat_owner(project) == ci else None


def profile_project(source: str) -> Path:
    """The project a profile file belongs to: the directory of its profiles/ directory (orch
    init's layout), else the current directory."""
    path = Path(source).resolve().parent
    return path.parent if path.name == "profiles" else Path.cwd()


def runner_jobs(platforms: tuple[Platform, ...], ci: str, table: Mapping[str, str] | None = None
                ) -> tuple[RunnerJob, ...]:
    """One job per platform: the profile's runner for it, else the CI's own, else the CI's amd64
    runner under QEMU."""
    given = {parse(key): label for key, label in (table or {}).items()}
    hosted = {parse(key): label for key, label in CI_RUNNERS[ci].items()}
    jobs = []
    for platform in platforms:
        label = given.get(platform) or hosted.get(platform)
        jobs.append(RunnerJob(platform, label or given.get(parse(EMULATING)) or hosted[parse(EMULATING)],
                              qemu=label is None))
    return tuple(jobs)


def github_matrix(jobs: tuple[RunnerJob, ...]) -> dict[str, Any]:
    """The `strategy.matrix` a workflow reads with fromJSON; `caches` names every leg's cache
    suffix (each leg writes its own and reads them all)."""
    caches = " ".join(platform_slug(job.platform) for job in jobs)
    return {"include": [{**job.to_json(), "caches": caches} for job in jobs]}
