"""`orch platforms`: the naming table, alias resolution, this host."""
from __future__ import annotations

from typing import List

import typer

from orchestrator.cli.output import print_json, print_table

app = typer.Typer(
    help="Platform names: the mapping table, alias resolution, this host.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@app.callback()
def table(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Show every naming scheme for each platform (OCI, image prefix, uname -m, Debian, Go)."""
    if ctx.invoked_subcommand is not None:
        return
    from orchestrator.model.platform_match import sort_key
    from orchestrator.model.platform_table import KNOWN_PLATFORMS

    rows = sorted(KNOWN_PLATFORMS, key=lambda r: sort_key(r.platform))
    if as_json:
        print_json([
            {"oci": r.oci, "official_prefix": r.official_prefix, "uname": list(r.uname), "debian": list(r.debian),
             "go": r.go, "qemu": r.qemu, "devices": list(r.devices), "notes": r.notes}
            for r in rows
        ])
        return
    print_table(
        [[r.oci, r.official_prefix or "", ", ".join(r.uname), ", ".join(r.debian), r.go or "",
          r.qemu and f"qemu-{r.qemu}" or "", "; ".join(r.devices)] for r in rows],
        ["OCI", "IMAGE PREFIX", "UNAME -M", "DEBIAN", "GO", "EMULATOR", "EXAMPLE DEVICES"],
    )
    typer.echo("\nNotes:")
    for r in rows:
        if r.notes:
            typer.echo(f"  {r.oci}: {r.notes}")
    typer.echo("  index order: amd64, arm64, arm v5 < v6 < v7, 386, ...: a client that takes the first")
    typer.echo("  matching entry then gets an ARM build every ARM CPU runs (slower on v7, never a crash on a Pi Zero).")


@app.command()
def resolve(
    names: List[str] = typer.Argument(..., help="Platform names in any scheme; commas allowed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Resolve any alias (arm32v7, armhf, armv7l, aarch64, x86_64, ...) to its OCI platform."""
    from orchestrator.model.platform import format_all
    from orchestrator.model.platform_parse import resolve as resolve_names
    from orchestrator.model.platform_parse import unusual

    pairs = resolve_names(names)
    for note in filter(None, (unusual(p) for _, p in pairs)):
        typer.echo(f"orch: note: {note}", err=True)
    if as_json:
        print_json([
            {"input": text, "platform": format_all(p), "os": p.os, "architecture": p.architecture,
             "variant": p.variant, "os_version": p.os_version, "os_features": list(p.os_features)}
            for text, p in pairs
        ])
        return
    print_table([[text, format_all(p)] for text, p in pairs])


@app.command()
def host(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """This machine's platform, and how it was decided (uname -m, /proc/cpuinfo on ARM)."""
    import platform as host_platform
    from pathlib import Path

    from orchestrator.model.platform import format_all
    from orchestrator.model.platform_match import detect_host

    cpuinfo_path = Path("/proc/cpuinfo")
    cpuinfo = cpuinfo_path.read_text(errors="replace") if cpuinfo_path.exists() else ""
    os_name = host_platform.system().lower() or "linux"
    found = detect_host(host_platform.machine(), cpuinfo, os_name)
    if as_json:
        print_json({"platform": format_all(found.platform), "reasons": list(found.reasons)})
        return
    typer.echo(format_all(found.platform))
    for reason in found.reasons:
        typer.echo(f"  {reason}")
