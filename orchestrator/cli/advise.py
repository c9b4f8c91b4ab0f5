"""`orch advise`: the RUN steps that run under QEMU, what they cost, and the rewrite that avoids it;
the steps that break reproducible builds, and their fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import typer

from orchestrator.cli import complete
from orchestrator.cli.output import print_json


def advise(
    file: Path = typer.Option(Path("Dockerfile"), "--file", "-f", help="The Dockerfile to read."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Take the platforms from this profile.",
                                       autocompletion=complete.profile_names),
    platform: List[str] = typer.Option([], "--platform", autocompletion=complete.platform_names,
                                       help="Target platforms, comma-separated (default: the profile's)."),
    write: Path | None = typer.Option(
        None, "--write", metavar="FILE", help="Write the Dockerfile with every rewrite applied to FILE."),
    as_json: bool = typer.Option(False, "--json", help="Print the advice as JSON."),
) -> None:
    """Name every RUN step that runs emulated for the target platforms on this machine, costliest first (by
    earlier builds' times, else by what it does), with a rewrite for its toolchain as a diff; and every step
    that breaks reproducible builds (orch build --reproducible), with its fix."""
    from orchestrator.authoring.advise import advise as make_advice
    from orchestrator.builds.timings import host_platform, load
    from orchestrator.cli.verify_run import chosen_platforms
    from orchestrator.model.platform import format_platform
    from orchestrator.model.platform_match import can_run

    platforms = chosen_platforms(platform, profile, "which platforms?")
    host = host_platform()
    emulated = [format_platform(p) for p in platforms if not can_run(host, p)]
    report = make_advice(file, emulated, load(str(file)))
    reproducible = _reproducible_profile(profile)
    if write is not None and report.rewritten:
        write.write_text(report.rewritten)
    if as_json:
        print_json({**report.to_json(), "host": format_platform(host), "reproducible_profile": reproducible})
        return
    _emulation(file, report, emulated, format_platform(host))
    _reproducibility(file, report, reproducible)
    if write is not None and report.rewritten:
        typer.echo(f"\nwrote {write} with every rewrite applied")


def _emulation(file: Path, report: Any, emulated: list[str], host: str) -> None:
    if not emulated:
        typer.echo(f"nothing runs under QEMU: this machine ({host}) runs every target natively")
        return
    if not report.advice:
        typer.echo(f"{file}: no RUN step runs under QEMU: every RUN is in a stage on the build platform "
                   f"(emulated here: {', '.join(emulated)})")
        return
    typer.echo(f"{file}: {len(report.advice)} RUN step{'s' if len(report.advice) != 1 else ''} run under QEMU for "
               f"{', '.join(emulated)} (this machine: {host})")
    for number, item in enumerate(report.advice, 1):
        cost = f"measured {item.measured_seconds:.0f} s emulated" if item.measured_seconds is not None else \
            "not measured yet"
        saving = f", expected saving {item.expected_saving:.0f} s" if item.expected_saving else ""
        typer.echo(f"\n{number}. [{item.stage}] {file}:{item.line}: {item.instruction}")
        typer.echo(f"   {item.kind}; {cost}{saving}")
        typer.echo(f"   {item.rewrite}")
        if item.diff:
            typer.echo("".join(f"   {line}" for line in item.diff.splitlines(keepends=True)).rstrip())


def _reproducibility(file: Path, report: Any, reproducible: str | None) -> None:
    """The steps that break reproducible builds: always, as a hint; said as breaking the profile's
    builds when it builds reproducibly."""
    hints = report.reproducibility
    why = f'profile "{reproducible}" builds with reproducible: true' if reproducible else \
        "orch build --reproducible"
    if not hints:
        if reproducible:
            typer.echo(f"\n{file}: no step found that breaks reproducible builds ({why})")
        return
    verb = "break" if reproducible else "would break"
    typer.echo(f"\n{file}: {len(hints)} step{'s' if len(hints) != 1 else ''} {verb} reproducible builds ({why}): "
               "each build writes other bytes")
    for hint in hints:
        typer.echo(f"\n- [{hint.stage}] {file}:{hint.line}: {hint.instruction}")
        typer.echo(f"   {hint.problem}")
        typer.echo(f"   fix: {hint.fix}")


def _reproducible_profile(profile: str | None) -> str | None:
    """The profile's name when it builds with `reproducible: true` (--profile, else $ORCH_PROFILE)."""
    import os

    name = profile or os.environ.get("ORCH_PROFILE")
    if not name:
        return None
    from orchestrator.profiles import load

    loaded = load(name)
    return loaded.name if loaded.reproducible else None
