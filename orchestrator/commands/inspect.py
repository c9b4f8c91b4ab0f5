from __future__ import annotations

from typing import List, Optional

import typer

from orchestrator.commands.output import print_json, print_table


def inspect(
    ref: str = typer.Argument(..., help="Image reference: REGISTRY/REPO:TAG, @sha256:..., or oci-layout://DIR[:TAG]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what a reference holds: index or manifest, each entry's platform beside its config's, attestations."""
    from orchestrator.engine import Engine
    from orchestrator.inspection import inspect_image
    from orchestrator.platforms import format_platform
    from orchestrator.references import parse_reference

    from orchestrator.oci_layout import inspect_layout, is_layout_ref

    result = inspect_layout(ref)[0] if is_layout_ref(ref) else inspect_image(Engine(), parse_reference(ref))
    if as_json:
        print_json(result.to_json())
        return
    typer.echo(f"{result.ref}")
    typer.echo(f"  {result.kind} ({result.media_type})")
    typer.echo(f"  digest {result.digest}")
    rows = []
    for e in result.entries:
        config = format_platform(e.config) if e.config else "?"
        mismatch = "" if (e.platform is None or e.config is None or e.platform.key == e.config.key) else "  MISMATCH"
        rows.append([str(e.position), e.label, f"config {config}{mismatch}", str(e.size), e.digest])
    print_table(rows, ["#", "PLATFORM", "CONFIG", "SIZE", "DIGEST"])
    if result.attestations:
        typer.echo("attestations:")
        labels = {e.digest: e.label for e in result.entries}
        for a in result.attestations:
            typer.echo(f"  {a.digest}  for {labels.get(a.refers_to or '', 'MISSING ' + str(a.refers_to))}")


def verify(
    ref: str = typer.Argument(..., help="Image reference to verify (or oci-layout://DIR[:TAG])."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Expect this profile's platforms."),  # noqa: UP007
    platform: Optional[List[str]] = typer.Option(  # noqa: UP006,UP007
        None, "--platform", help="Expected platforms, comma-separated; may be repeated."),
    strict: bool = typer.Option(False, "--strict", help="Unexpected platforms and order problems fail."),
    config_mismatch: str = typer.Option("fail", "--config-mismatch", help="fail or warn when a config disagrees "
                                        "with its index entry."),
    deep: bool = typer.Option(False, "--deep", help="Also read each image's executable from its layers and check "
                              "its ELF machine, class, endianness and ARM CPU level."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check a pushed image against what it should hold. Exit 1 when a check fails."""
    from orchestrator.errors import BadInput, ExitCode
    from orchestrator.inspection import read_image
    from orchestrator.oci_layout import inspect_layout, is_layout_ref
    from orchestrator.platforms import parse_all
    from orchestrator.references import parse_reference
    from orchestrator.status import Status
    from orchestrator.verify import VerifyOptions, verify as run_verify

    if config_mismatch not in ("fail", "warn"):
        raise BadInput(f'--config-mismatch "{config_mismatch}" is not fail or warn', fix="pass fail or warn")
    if platform:
        expected = tuple(parse_all(platform))
    elif profile:
        from orchestrator.profiles import load

        expected = load(profile).platforms
    else:
        raise BadInput("nothing to verify against", fix="pass --profile NAME or --platform LIST")
    if is_layout_ref(ref):
        inspection, source = inspect_layout(ref)
    else:
        from orchestrator import prefetch

        source = parse_reference(ref)
        inspection = prefetch.take(ref) or read_image(source)
    extra = []
    if deep:
        from orchestrator.deep import check_binaries

        extra = check_binaries(inspection, source)
    verdict = run_verify(inspection, VerifyOptions(expected=expected, strict=strict,
                                                   config_mismatch=Status(config_mismatch)), extra)
    if as_json:
        print_json(verdict.to_json())
    else:
        print_findings(verdict)
    if not verdict.ok:
        raise typer.Exit(int(ExitCode.FAILED))


def print_findings(verdict) -> None:  # type: ignore[no-untyped-def]
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
    typer.echo(f"{verdict.ref}  {verdict.digest or ''}")
    for f in verdict.findings:
        typer.echo(f"  {marks[f.level.value]}  {f.check:<12} {f.platform or '':<14} {f.message}")
        if f.fix and f.level.value != "ok":
            typer.echo(f"  {'':32}fix: {f.fix}")
    typer.echo("verified" if verdict.ok else f"{len(verdict.failures)} check(s) failed")
