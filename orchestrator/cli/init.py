"""`orch init`: a profile, a Makefile include and a CI workflow, written from the Dockerfile."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.output import print_json


def init(
    directory: Path = typer.Argument(Path("."), help="The project directory (with its Dockerfile)."),
    profile: str | None = typer.Option(None, "--profile", help="Profile name (default: the directory's)."),  # noqa: UP007
    image: str | None = typer.Option(  # noqa: UP007
        None, "--image", help="Repository to publish to (default: localhost:5000/NAME)."),
    dockerfile: str = typer.Option("Dockerfile", "--file", "-f", help="The Dockerfile, relative to the directory."),
    ci: str | None = typer.Option(None, "--ci", help="Also write a CI workflow: github or gitlab."),  # noqa: UP007
    runners: str = typer.Option("single", "--runners", help="With --ci: single (one job builds every platform) or "
                                "native (one job per platform on a runner that runs it, then one orch release)."),
    makefile: bool = typer.Option(False, "--makefile", help="Also write orch.mk (image, push, verify, inspect)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write profiles/NAME.yaml (platforms: what every base image publishes), and with --makefile and --ci the
    Makefile include and workflow that run it. Never overwrites without --force."""
    from orchestrator.authoring import native_ci, scaffold
    from orchestrator.authoring.runners import runner_jobs
    from orchestrator.errors import BadInput
    from orchestrator.model.platform import format_platform

    source = directory / dockerfile
    if not source.is_file():
        raise BadInput(f'no Dockerfile at "{source}"', fix="run orch init in a directory with a Dockerfile, or pass -f")
    if ci is not None and ci not in scaffold.CI_KINDS:
        raise BadInput(f'--ci "{ci}" is not github or gitlab', fix="pass --ci github or --ci gitlab")
    if runners not in ("single", "native"):
        raise BadInput(f'--runners "{runners}" is not single or native',
                       fix="pass --runners native for one runner per platform, or leave it out")
    if runners == "native" and ci is None:
        raise BadInput("--runners native says how the CI workflow builds; no --ci was given",
                       fix="add --ci github or --ci gitlab")
    name = scaffold.check_name(profile or directory.resolve().name.lower())
    repository = image or scaffold.default_image(name)
    proposal = scaffold.propose(source.read_text())
    native = runner_jobs(proposal.platforms, ci, None) if ci and runners == "native" else None
    # One runner per platform: the release's tag rules need the repository in the profile.
    files = {directory / "profiles" / f"{name}.yaml": scaffold.profile_yaml(
        name, proposal, dockerfile, image or (repository if native else None),
        runners={format_platform(j.platform): j.runner for j in native if not j.qemu} if native else None)}
    if makefile:
        files[directory / "orch.mk"] = scaffold.makefile(name, repository)
    if ci == "github":
        files[directory / ".github" / "workflows" / "image.yml"] = native_ci.github_native(name, repository) \
            if native else scaffold.github_workflow(name, repository)
    elif ci == "gitlab":
        files[directory / ".gitlab-ci.yml"] = native_ci.gitlab_native(name, repository, native) if native \
            else scaffold.gitlab_ci(name, repository)
    scaffold.write_all(files, force)
    document = {"profile": name, "platforms": scaffold.platform_list(proposal.platforms).split(","),
                "why": proposal.note, "bases": [{"image": b.reference, "problem": b.problem} for b in proposal.bases],
                "written": [str(path) for path in files]}
    if as_json:
        print_json(document)
        return
    typer.echo(f"platforms: {scaffold.platform_list(proposal.platforms)} ({proposal.note})")
    for path in files:
        typer.echo(f"wrote {path}")
    typer.echo(f"next: orch build --profile {name} -t {repository}:dev" + (" (or make -f orch.mk image)" if makefile else ""))
