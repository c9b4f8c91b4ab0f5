"""`orch init`: a profile, a Makefile include and a CI workflow, written from the Dockerfile."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List

import typer

from orchestrator.cli.output import print_json

if TYPE_CHECKING:
    from orchestrator.authoring.ci_file_settings import CiSettings
    from orchestrator.authoring.scaffold import Proposal


def init(
    directory: Path = typer.Argument(Path("."), help="The project directory (with its Dockerfile)."),
    profile: str | None = typer.Option(None, "--profile", help="Profile name (default: the directory's)."),  # noqa: UP007
    image: str | None = typer.Option(  # noqa: UP007
        None, "--image", help="Repository to publish to (default: localhost:5000/NAME for the profile and orch.mk; in "
        "CI files the CI's own registry: ghcr.io/OWNER/REPO on GitHub, $CI_REGISTRY_IMAGE on GitLab)."),
    dockerfile: str = typer.Option("Dockerfile", "--file", "-f", help="The Dockerfile, relative to the directory."),
    platform: List[str] = typer.Option(  # noqa: UP006
        [], "--platform", help="Platforms to build (default: what every base image publishes, of linux/amd64, "
        "linux/arm64 and linux/arm/v7; the others are named)."),
    ci: str | None = typer.Option(None, "--ci", help="Also write a CI workflow: github or gitlab."),  # noqa: UP007
    runners: str = typer.Option("single", "--runners", help="With --ci: single (one job builds every platform) or "
                                "native (one job per platform on a runner that runs it, then one orch release)."),
    install: str | None = typer.Option(  # noqa: UP007
        None, "--install", help="With --ci: what the CI installs orch from: a pinned requirement, a wheel URL or a "
        "git URL at a commit (default: orch-multiarch at this orch's version, when it is a release)."),
    makefile: bool = typer.Option(False, "--makefile", help="Also write orch.mk (image, push, verify, inspect)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write profiles/NAME.yaml (platforms: what every base image publishes), and with --makefile and --ci the
    Makefile include and workflow that run it. Never overwrites without --force."""
    from orchestrator.authoring import scaffold
    from orchestrator.authoring.ci_file_settings import secret_ids
    from orchestrator.errors import BadInput

    source = directory / dockerfile
    if not source.is_file():
        raise BadInput(f'no Dockerfile at "{source}"', fix="run orch init in a directory with a Dockerfile, or pass -f")
    _check_ci_options(ci, runners, install)
    name = scaffold.check_name(profile or directory.resolve().name.lower())
    text = source.read_text()
    proposal = scaffold.propose(text, tuple(platform))
    files = _files(directory, name, proposal, dockerfile, image, makefile, secret_ids(text))
    if ci is not None:
        settings = _settings(directory, name, image, install, text)
        files.update(_ci_files(directory, ci, runners, settings, proposal, dockerfile, image))
    scaffold.write_all(files, force)
    _report(name, proposal, files, image or scaffold.default_image(name), makefile, as_json)


def _check_ci_options(ci: str | None, runners: str, install: str | None) -> None:
    from orchestrator.authoring import scaffold
    from orchestrator.authoring.ci_file_settings import check_install, default_install
    from orchestrator.errors import BadInput

    if ci is not None and ci not in scaffold.CI_KINDS:
        raise BadInput(f'--ci "{ci}" is not github or gitlab', fix="pass --ci github or --ci gitlab")
    if runners not in ("single", "native"):
        raise BadInput(f'--runners "{runners}" is not single or native',
                       fix="pass --runners native for one runner per platform, or leave it out")
    for given, option in ((runners == "native", "--runners native"), (install is not None, "--install")):
        if given and ci is None:
            raise BadInput(f"{option} says how the CI workflow builds; no --ci was given",
                           fix="add --ci github or --ci gitlab")
    if install is not None:
        check_install(install)
    elif ci is not None:
        default_install()  # a development build has no version to pin: it says so before anything is read


def _settings(directory: Path, name: str, image: str | None, install: str | None, dockerfile: str) -> CiSettings:
    from orchestrator.authoring.ci_file_settings import CiSettings, default_install, github_image, secret_ids

    return CiSettings(name, image or github_image(directory), install or default_install(), secret_ids(dockerfile))


def _files(directory: Path, name: str, proposal: Proposal, dockerfile: str, image: str | None,
           makefile: bool, secrets: tuple[str, ...]) -> dict[Path, str]:
    from orchestrator.authoring import scaffold

    files = {directory / "profiles" / f"{name}.yaml": scaffold.profile_yaml(name, proposal, dockerfile, image)}
    if makefile:
        files[directory / "orch.mk"] = scaffold.makefile(name, image or scaffold.default_image(name), secrets)
    return files


def _ci_files(directory: Path, ci: str, runners: str, settings: CiSettings, proposal: Proposal, dockerfile: str,
              image: str | None) -> dict[Path, str]:
    """The workflow, and the profile again with the runners table (native) and the tag rules the
    CI's --image applies."""
    from orchestrator.authoring import ci_file_github, ci_file_gitlab, scaffold
    from orchestrator.authoring.runners import runner_jobs
    from orchestrator.model.platform import format_platform

    native = runner_jobs(proposal.platforms, ci, None) if runners == "native" else None
    table = {format_platform(j.platform): j.runner for j in native if not j.qemu} if native else None
    profile = scaffold.profile_yaml(settings.profile, proposal, dockerfile, image, runners=table, rules=True)
    files = {directory / "profiles" / f"{settings.profile}.yaml": profile}
    if ci == "github":
        files[directory / ".github" / "workflows" / "image.yml"] = \
            ci_file_github.github_native(settings) if native else ci_file_github.github_single(settings)
    else:
        files[directory / ".gitlab-ci.yml"] = \
            ci_file_gitlab.gitlab_native(settings, native) if native else ci_file_gitlab.gitlab_single(settings)
    return files


def _report(name: str, proposal: Proposal, files: dict[Path, str], repository: str, makefile: bool,
            as_json: bool) -> None:
    from orchestrator.authoring import scaffold

    document: dict[str, Any] = {
        "profile": name, "platforms": scaffold.platform_list(proposal.platforms).split(","), "why": proposal.note,
        "left_out": scaffold.platform_list(proposal.left_out).split(",") if proposal.left_out else [],
        "bases": [{"image": b.reference, "problem": b.problem} for b in proposal.bases],
        "written": [str(path) for path in files]}
    if as_json:
        print_json(document)
        return
    typer.echo(f"platforms: {scaffold.platform_list(proposal.platforms)} ({proposal.note})")
    if proposal.left_out:
        typer.echo(f"left out: {scaffold.platform_list(proposal.left_out)} (the base images publish them too: add "
                   f"them under platforms: in profiles/{name}.yaml, or pass --platform)")
    for path in files:
        typer.echo(f"wrote {path}")
    typer.echo(f"next: orch build --profile {name} -t {repository}:dev" + (" (or make -f orch.mk image)" if makefile else ""))
