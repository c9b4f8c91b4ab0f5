"""`orch profiles`: list, show, validate, schema, runners, export-bake."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List

import typer

from orchestrator.cli.output import print_json, print_table

app = typer.Typer(help="Build profiles: list, show, validate, schema, runners, export-bake.", no_args_is_help=True)


@app.command("list")
def list_profiles(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Profiles found ($ORCH_PROFILE_PATH, ./profiles, then the bundled ones), with their platforms."""
    from orchestrator.model.platform import format_all
    from orchestrator.profiles import available, load

    rows: list[dict[str, Any]] = []
    for name, path in available().items():
        profile = load(name)
        platforms = [format_all(p) for p in profile.platforms or ()]
        rows.append({"name": name, "file": str(path), "platforms": platforms,
                     "description": profile.description or ""})
    if as_json:
        print_json(rows)
        return
    print_table([[r["name"], ",".join(r["platforms"]), r["description"]] for r in rows],
                ["NAME", "PLATFORMS", "DESCRIPTION"])


@app.command()
def show(
    name: str = typer.Argument(..., help="Profile name or path to a YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A profile as orch will use it: `extends` resolved, platforms normalized."""
    import yaml

    from orchestrator.profiles import load

    document = load(name).to_json()
    if as_json:
        print_json(document)
        return
    shown = {k: v for k, v in document.items() if v is not None}
    typer.echo(yaml.safe_dump(shown, sort_keys=False, default_flow_style=False).rstrip())


@app.command()
def validate(
    files: List[Path] = typer.Argument(..., help="Profile files (or names) to check."),
) -> None:
    """Check profile files; print each problem with file, line and key. Exit 2 if any is invalid."""
    from orchestrator.errors import BadInput, ExitCode
    from orchestrator.profiles import load

    failed = 0
    for file in files:
        try:
            profile = load(str(file))
        except BadInput as exc:
            failed += 1
            typer.echo(f"invalid  {exc}", err=True)
            continue
        typer.echo(f"ok       {profile.source} ({profile.name}: {len(profile.platforms or ())} platforms)")
    if failed:
        raise typer.Exit(int(ExitCode.BAD_INPUT))


@app.command()
def schema() -> None:
    """Print the JSON Schema for profile files (for editor completion and checks)."""
    from orchestrator.profiles import json_schema

    print_json(json_schema())


@app.command()
def runners(
    name: str = typer.Argument(..., help="Profile name or path to a YAML file."),
    ci: str = typer.Option("github", "--ci", help="github (runs-on labels) or gitlab (runner tags)."),
    as_json: bool = typer.Option(False, "--json", help="Print the matrix a GitHub workflow reads with fromJSON."),
) -> None:
    """The CI runner that builds each of the profile's platforms when each gets a runner of its own: the
    profile's `runners:` table for this CI, else the CI's hosted ones, else its amd64 runner under QEMU."""
    import json

    from orchestrator.authoring.runners import CI_RUNNERS, github_matrix, profile_project, runner_jobs, runner_table
    from orchestrator.errors import BadInput
    from orchestrator.profiles import load

    if ci not in CI_RUNNERS:
        raise BadInput(f'--ci "{ci}" is not github or gitlab', fix="pass --ci github or --ci gitlab")
    profile = load(name)
    if not profile.platforms:
        raise BadInput(f'profile "{profile.name}" names no platforms', fix="add platforms: to the profile")
    jobs = runner_jobs(profile.platforms, ci, runner_table(profile.runners, ci, profile_project(profile.source)))
    if as_json:
        typer.echo(json.dumps(github_matrix(jobs), separators=(",", ":")))  # one line: $GITHUB_OUTPUT
        return
    print_table([[j.to_json()["platform"], j.runner, "QEMU" if j.qemu else "native"] for j in jobs],
                ["PLATFORM", "RUNNER", "BUILDS"])


@app.command("export-bake")
def export_bake(
    names: List[str] = typer.Argument(..., help="Profiles (names or YAML paths); one bake target each."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the docker-bake.json here (default: print it)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write profiles as a docker-bake.json that `docker buildx bake --push` builds as orch would (platforms in
    orch's order, args, labels, annotations, cache, attestations; a default group of them all)."""
    import json

    from orchestrator.errors import BadInput
    from orchestrator.profiles import load
    from orchestrator.release.bake_files import export_bake as to_bake

    text = json.dumps(to_bake([load(name) for name in names]), indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise BadInput(f'"{output}" exists', fix="pass --force to overwrite it, or another -o path")
    output.write_text(text)
    typer.echo(f"wrote {output}: build it with docker buildx bake -f {output} --push")
