"""`orch init`: a profile, a Makefile include and a CI workflow, written from the Dockerfile."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List

import typer

from orchestrator.cli.output import print_json

if TYPE_CHECKING:
    from orchestrator.authoring.ci_callers import Block
    from orchestrator.authoring.ci_file_settings import CiSettings
    from orchestrator.authoring.scaffold import Proposal
    from orchestrator.profiles.model import Profile


def init(
    directory: Path = typer.Argument(Path("."), help="The project directory (with its Dockerfile)."),
    profile: str | None = typer.Option(None, "--profile", help="Profile name (default: the directory's)."),
    image: str | None = typer.Option(
        None, "--image", help="Repository to publish to (default: localhost:5000/NAME for the profile and orch.mk; in "
        "CI files the CI's own registry: ghcr.io/OWNER/REPO on GitHub, $CI_REGISTRY_IMAGE on GitLab)."),
    dockerfile: str = typer.Option("Dockerfile", "--file", "-f", help="The Dockerfile, relative to the directory."),
    platform: List[str] = typer.Option(
        [], "--platform", help="Platforms to build (default: what every base image publishes, of linux/amd64, "
        "linux/arm64 and linux/arm/v7; the others are named)."),
    ci: str | None = typer.Option(None, "--ci", help="Also write a CI workflow: github or gitlab."),
    runners: str = typer.Option("single", "--runners", help="With --ci: single (one job builds every platform) or "
                                "native (one job per platform on a runner that runs it, then one orch release)."),
    install: str | None = typer.Option(
        None, "--install", help="With --ci: what the CI installs orch from: a pinned requirement, a wheel URL or a "
        "git URL at a commit (default: orch-multiarch at this orch's version, when it is a release)."),
    sign: str | None = typer.Option(
        None, "--sign", help="With --ci: the job that moves tags signs the image with cosign: keyless (the CI's "
        "identity token; the certificate names the workflow) or key (a key pair in the CI's secrets "
        "COSIGN_PRIVATE_KEY and COSIGN_PASSWORD). See docs/ci.md for the matching verify commands."),
    use: str = typer.Option(
        "inline", "--use", help="With --ci: what the CI file runs: inline (orch installed and run in the file), "
        "or a short caller of orch's building block: action or reusable (GitHub), component (GitLab); with --from."),
    pin: str | None = typer.Option(
        None, "--from", help="With --use action|reusable|component: the repository and commit the caller pins, "
        "OWNER/REPO@SHA (40 hex), the release tag after # for the comment beside it (OWNER/REPO@SHA#v1.2.0)."),
    makefile: bool = typer.Option(False, "--makefile", help="Also write orch.mk (image, push, verify, inspect)."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist (with --ci, the profile too: "
                               "without it, --ci adds the CI's runners table to an existing profile, the rest kept)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Write profiles/NAME.yaml (platforms: what every base image publishes), and with --makefile and --ci the
    Makefile include and workflow that run it. Never overwrites without --force; --ci on a project whose
    profile exists adds that CI's file and runners table, the profile's platforms and the rest kept."""
    from orchestrator.authoring import scaffold
    from orchestrator.authoring.ci_file_settings import secret_ids
    from orchestrator.errors import BadInput

    source = directory / dockerfile
    if not source.is_file():
        raise BadInput(f'no Dockerfile at "{source}"', fix="run orch init in a directory with a Dockerfile, or pass -f")
    _check_ci_options(ci, runners, install, sign)
    block = _block(ci, runners, install, sign, use, pin)
    name = scaffold.check_name(profile or directory.resolve().name.lower())
    text = source.read_text()
    path = directory / "profiles" / f"{name}.yaml"
    current = _current(path) if ci is not None and not force and path.is_file() else None
    proposal = _kept(path, current, tuple(platform)) if current else scaffold.propose(text, tuple(platform))
    files = _files(directory, name, proposal, dockerfile, image, makefile, secret_ids(text))
    if current is not None:
        del files[path]
    if ci is not None:
        settings = _settings(directory, ci, name, image, install if block is None else "", text, sign)
        files.update(_ci_files(directory, ci, runners, settings, proposal, dockerfile, image, current, block))
    scaffold.write_all(files, force, replaced={path} if current else set())
    _report(name, proposal, files, image or scaffold.default_image(name), makefile, as_json)


def _current(path: Path) -> Profile:
    """The profile `orch init --ci` adds a CI to, as written (its `extends` not merged)."""
    from orchestrator.profiles import load_file

    return load_file(path)


def _kept(path: Path, current: Profile, asked: tuple[str, ...]) -> Proposal:
    """The platforms of an existing profile (or --platform's): no base image is read."""
    from orchestrator.authoring.scaffold import Proposal
    from orchestrator.errors import BadInput
    from orchestrator.model.platform_match import order
    from orchestrator.model.platform_parse import parse_all

    if asked:
        return Proposal(tuple(order(parse_all(asked))), (), "asked with --platform")
    if not current.platforms:
        raise BadInput(f'"{path}" names no platforms: the CI file builds the profile\'s platforms',
                       fix=f"add platforms: to {path}, or pass --platform")
    return Proposal(current.platforms, (), f"the platforms of {path}")


def _check_ci_options(ci: str | None, runners: str, install: str | None, sign: str | None) -> None:
    from orchestrator.authoring import scaffold
    from orchestrator.authoring.ci_file_settings import check_sign
    from orchestrator.errors import BadInput

    if ci is not None and ci not in scaffold.CI_KINDS:
        raise BadInput(f'--ci "{ci}" is not github or gitlab', fix="pass --ci github or --ci gitlab")
    if runners not in ("single", "native"):
        raise BadInput(f'--runners "{runners}" is not single or native',
                       fix="pass --runners native for one runner per platform, or leave it out")
    if sign is not None:
        check_sign(sign)
    for given, option in ((runners == "native", "--runners native"), (install is not None, "--install"),
                          (sign is not None, f"--sign {sign}")):
        if given and ci is None:
            raise BadInput(f"{option} says how the CI workflow builds; no --ci was given",
                           fix="add --ci github or --ci gitlab")


def _block(ci: str | None, runners: str, install: str | None, sign: str | None, use: str,
           source: str | None) -> Block | None:
    """The building block a caller pins (--use, --from), or None for the inline file, whose pin is checked here."""
    from orchestrator import __version__
    from orchestrator.authoring.ci_callers import check_use, parse_from
    from orchestrator.authoring.ci_file_settings import check_install, default_install
    from orchestrator.errors import BadInput

    check_use(use, ci, runners, sign)
    if ci is None or use == "inline":
        if source is not None:
            raise BadInput(f'--from "{source}" names what a caller pins; --use is inline',
                           fix="pass --use action, reusable or component with --from, or leave --from out")
        if install is not None:
            check_install(install)
        elif ci is not None:
            default_install()  # a development build has no version to pin: it says so before anything is read
        return None
    if install is not None:
        raise BadInput(f'--install "{install}" says how the inline file installs orch; --use {use} runs orch\'s '
                       "building block, which installs itself", fix="leave --install out, or pass --use inline")
    if source is None:
        try:
            default_install()
        except BadInput:
            raise BadInput(f'this orch is a development or local build ("{__version__}"): --use {use} can pin '
                           "only a released orch's commit", fix="pass --from OWNER/REPO@SHA (40 hex, #TAG optional): "
                           "the commit of the orch release the caller uses") from None
        raise BadInput(f"--use {use} pins a commit of orch's repository, and this orch records none",
                       fix=f"pass --from OWNER/REPO@SHA (40 hex), the commit of orch {__version__}'s release tag")
    return parse_from(source, ci, use)


def _settings(directory: Path, ci: str, name: str, image: str | None, install: str | None,
              dockerfile: str, sign: str | None = None) -> CiSettings:
    """GitLab's image is $CI_REGISTRY_IMAGE (its jobs log in there) unless --image names one, whatever the remote."""
    from orchestrator.authoring.ci_file_settings import CiSettings, default_install, github_image, secret_ids

    found = image or (github_image(directory) if ci == "github" else None)
    return CiSettings(name, found, default_install() if install is None else install, secret_ids(dockerfile), sign)


def _files(directory: Path, name: str, proposal: Proposal, dockerfile: str, image: str | None,
           makefile: bool, secrets: tuple[str, ...]) -> dict[Path, str]:
    from orchestrator.authoring import scaffold

    files = {directory / "profiles" / f"{name}.yaml": scaffold.profile_yaml(name, proposal, dockerfile, image)}
    if makefile:
        files[directory / "orch.mk"] = scaffold.makefile(name, image or scaffold.default_image(name), secrets)
    return files


def _ci_files(directory: Path, ci: str, runners: str, settings: CiSettings, proposal: Proposal, dockerfile: str,
              image: str | None, current: Profile | None, block: Block | None = None) -> dict[Path, str]:
    """The workflow, and the profile with this CI's runners table (native) and the tag rules the
    CI's --image applies: written anew, or the existing one edited (authoring.profile_edit)."""
    from orchestrator.authoring import ci_file_github, ci_file_gitlab, profile_edit, scaffold
    from orchestrator.authoring.runners import GITHUB_FILE, GITLAB_FILE, runner_jobs, runner_table
    from orchestrator.model.platform import format_platform

    path = directory / "profiles" / f"{settings.profile}.yaml"
    kept = runner_table(current.runners, ci, directory) if current else None
    native = runner_jobs(proposal.platforms, ci, kept) if runners == "native" else None
    table = {format_platform(j.platform): j.runner for j in native if not j.qemu} if native else None
    if current is None:
        profile = scaffold.profile_yaml(settings.profile, proposal, dockerfile, image,
                                        runners={ci: table} if table is not None else None, rules=True)
    else:
        profile = profile_edit.profile_with_ci(path, current, ci, None if kept is not None else table, directory)
    files = {path: profile} if current is None or profile != path.read_text() else {}
    if block is not None:
        files[directory / (GITHUB_FILE if ci == "github" else GITLAB_FILE)] = \
            _caller(ci, settings, block, scaffold.platform_list(proposal.platforms), dockerfile, native is not None)
    elif ci == "github":
        files[directory / GITHUB_FILE] = \
            ci_file_github.github_native(settings) if native else ci_file_github.github_single(settings)
    else:
        files[directory / GITLAB_FILE] = \
            ci_file_gitlab.gitlab_native(settings, native) if native else ci_file_gitlab.gitlab_single(settings)
    return files


def _caller(ci: str, settings: CiSettings, block: Block, platforms: str, dockerfile: str, native: bool) -> str:
    from orchestrator.authoring import ci_callers

    if block.use == "component":
        return ci_callers.gitlab_component(settings, block, platforms, native)
    if block.use == "reusable":
        return ci_callers.github_reusable(settings, block, platforms, native)
    return ci_callers.github_action(settings, block, platforms, dockerfile)


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
