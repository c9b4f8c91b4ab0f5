"""`orch doctor`: is this machine ready to publish multi-arch images?"""
from __future__ import annotations

import typer

from orchestrator.cli.output import print_json
from orchestrator.errors import ExitCode


def doctor(
    registry: str | None = typer.Option(
        None, "--registry", metavar="HOST:PORT", help="Also check that this registry answers."
    ),
    context: str | None = typer.Option(None, "--context", help="Docker context to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check the docker daemon, buildx, QEMU emulation, builders and a registry; say how to fix what fails."""
    from orchestrator.docker.runner import Daemon, Engine
    from orchestrator.doctor import run_doctor
    from orchestrator.status import Status

    report = run_doctor(Engine(Daemon(context=context)), registry=registry)
    if as_json:
        print_json(report.to_json())
    else:
        marks = {Status.ok: "ok  ", Status.warn: "WARN", Status.fail: "FAIL", Status.skip: "skip"}
        for check in report.checks:
            typer.echo(f"{marks[check.status]}  {check.name:<14} {check.summary}")
            if check.fix and check.status in (Status.fail, Status.warn):
                typer.echo(f"{'':20}fix: {check.fix}")
    if not report.ok:
        raise typer.Exit(int(ExitCode.ENVIRONMENT))
