"""`orch builder`: ensure (reuse or create), create, ls, rm."""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, List

import typer

from orchestrator.cli.output import print_json, print_table

if TYPE_CHECKING:
    from orchestrator.docker.builder_plan import BuilderPlan
    from orchestrator.docker.builders import EnsureOutcome
    from orchestrator.profiles.model import Profile

app = typer.Typer(help="buildx builders: ensure (reuse or create), create, ls, rm.", no_args_is_help=True)

# Options `ensure` and `create` share, declared once.
BuilderName = Annotated[str | None, typer.Argument(help="Builder name (default: the profile's, else 'orch').")]
ProfileName = Annotated[str | None, typer.Option(
    "--profile", "-p", help="Take the builder (driver, nodes) and platforms from this profile.")]
Driver = Annotated[str | None, typer.Option(
    "--driver", help="docker-container (default), remote or kubernetes; docker = the daemon's own.")]
DriverOpts = Annotated[List[str] | None, typer.Option("--driver-opt", help="KEY=VALUE; may be repeated.")]
BuildkitdConfig = Annotated[str | None, typer.Option(
    "--buildkitd-config", metavar="FILE", help="A buildkitd.toml for the nodes the driver starts (not remote ones).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the commands; run nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")]


def _plan(name: str | None, profile: str | None, driver: str | None,
          driver_opt: List[str] | None, buildkitd_config: str | None = None,
          ) -> tuple[BuilderPlan, Profile | None]:
    from orchestrator.docker.builder_plan import plan_builder
    from orchestrator.errors import BadInput
    from orchestrator.profiles import load

    opts = {}
    for item in driver_opt or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f'--driver-opt "{item}" is not KEY=VALUE', fix="write e.g. --driver-opt image=moby/buildkit:v0.13.1")
        opts[key] = value
    loaded = load(profile) if profile else None
    spec = loaded.builder if loaded else None
    return plan_builder(spec, name=name, driver=driver, driver_opts=opts, buildkitd_config=buildkitd_config), loaded


def _show(outcome: EnsureOutcome, as_json: bool) -> None:
    if as_json:
        print_json(outcome.to_json())
        return
    typer.echo(f"builder {outcome.name} ({outcome.driver}): {outcome.action}")
    if outcome.reason:
        typer.echo(f"  note: {outcome.reason}")
    for node in outcome.nodes:
        typer.echo(f"  node {node['name']}  {node['endpoint']}  {node['status']}  {', '.join(node['platforms'])}")
    for platform, why in outcome.gaps.items():
        typer.echo(f"  cannot build {platform}: {why}")  # Platform prints as os/arch/variant


@app.command("ensure")
def ensure(
    name: BuilderName = None,
    profile: ProfileName = None,
    driver: Driver = None,
    driver_opt: DriverOpts = None,
    buildkitd_config: BuildkitdConfig = None,
    platform: List[str] = typer.Option([], "--platform", help="Platforms it must build (default: the profile's)."),
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Reuse the builder, or create and bootstrap it; check it can build every platform."""
    from orchestrator.docker.builders import BuilderManager
    from orchestrator.docker.runner import Engine
    from orchestrator.errors import ExitCode
    from orchestrator.model.platform_match import order
    from orchestrator.model.platform_parse import parse_all

    plan, loaded = _plan(name, profile, driver, driver_opt, buildkitd_config)
    platforms = tuple(order(parse_all(platform))) if platform else tuple(order(loaded.platforms or ())) if loaded else ()
    if dry_run:
        if as_json:
            print_json(plan.to_json())
        else:
            typer.echo(plan.shell())
        return
    outcome = BuilderManager(Engine()).ensure(plan, platforms)
    _show(outcome, as_json)
    if outcome.gaps:
        raise typer.Exit(int(ExitCode.ENVIRONMENT))


@app.command("create")
def create(
    name: BuilderName = None,
    profile: ProfileName = None,
    driver: Driver = None,
    driver_opt: DriverOpts = None,
    buildkitd_config: BuildkitdConfig = None,
    bootstrap: bool = typer.Option(True, "--bootstrap/--no-bootstrap", help="Start the builder now."),
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Create a builder (one node per profile node) and record it as orch's."""
    import shlex

    from orchestrator.docker.builders import BuilderManager
    from orchestrator.docker.runner import Engine

    plan, _ = _plan(name, profile, driver, driver_opt, buildkitd_config)
    if dry_run:
        if as_json:
            print_json(plan.to_json())
        else:
            for command in plan.create_commands(bootstrap=bootstrap):
                typer.echo("docker " + shlex.join(command))
        return
    _show(BuilderManager(Engine()).create(plan, bootstrap=bootstrap), as_json)


@app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json", help="Print the builders as JSON.")) -> None:
    """List builders, marking the ones orch created (the only ones `orch builder rm` removes)."""
    from orchestrator.docker.builders import BuilderManager
    from orchestrator.docker.runner import Engine

    builders = BuilderManager(Engine()).listing()
    if as_json:
        print_json(builders)
        return
    rows = []
    for builder in builders:
        rows.append([builder["name"], builder["driver"], builder["status"],
                     "yes" if builder["created_by_orch"] else "no", ""])
        rows += [[f"  {node['name']}", node["endpoint"], node["status"], "", _builds(node, len(builder["nodes"]))]
                 for node in builder["nodes"]]
    print_table(rows, ["NAME/NODE", "DRIVER/ENDPOINT", "STATUS", "ORCH", "BUILDS"])


def _builds(node: dict[str, Any], nodes: int) -> str:
    """What a node is sent: everything it runs (a builder's only node), or the platforms it was
    given, the first node also taking the platforms no node was given (under QEMU)."""
    if nodes == 1:
        return ", ".join(node["routed"]) or "(nothing reported: not started)"
    routed = ", ".join(node["routed"])
    if node["takes_unlisted_platforms"]:
        return (routed + "; " if routed else "") + "any platform no node is given (emulated)"
    return routed or "nothing (no platforms given, not the first node)"


@app.command("rm")
def rm(name: str = typer.Argument(..., help="A builder orch created.")) -> None:
    """Remove a builder orch created; never `default`, never one made by someone else."""
    from orchestrator.docker.builders import BuilderManager
    from orchestrator.docker.runner import Engine

    BuilderManager(Engine()).remove(name)
    typer.echo(f"removed builder {name}")
