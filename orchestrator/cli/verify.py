"""`orch verify`: check a pushed image (or an OCI layout) against the platforms it should hold."""

from __future__ import annotations

from typing import TYPE_CHECKING, List

import typer

from orchestrator.cli.output import print_json

if TYPE_CHECKING:
    from orchestrator.image.verify import Verdict


def verify(
    ref: str = typer.Argument(..., help="Image reference to verify (or oci-layout://DIR[:TAG])."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Expect this profile's platforms."),  # noqa: UP007
    platform: List[str] | None = typer.Option(  # noqa: UP006,UP007
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
    from orchestrator.image.read import is_layout_ref, read_image, read_layout
    from orchestrator.image.verify import VerifyOptions
    from orchestrator.image.verify import verify as run_verify
    from orchestrator.model.platform_parse import parse_all
    from orchestrator.model.references import parse_reference
    from orchestrator.status import Status

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
        inspection, source = read_layout(ref)
    else:
        from orchestrator.cli import prefetch

        source = parse_reference(ref)
        inspection = prefetch.take(ref) or read_image(source)
    extra = []
    if deep:
        from orchestrator.image.deep import check_binaries

        extra = check_binaries(inspection, source)
    verdict = run_verify(inspection, VerifyOptions(expected=expected, strict=strict,
                                                   config_mismatch=Status(config_mismatch)), extra)
    if as_json:
        print_json(verdict.to_json())
    else:
        print_findings(verdict)
    if not verdict.ok:
        raise typer.Exit(int(ExitCode.FAILED))


def print_findings(verdict: Verdict) -> None:
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}
    typer.echo(f"{verdict.ref}  {verdict.digest or ''}")
    for f in verdict.findings:
        typer.echo(f"  {marks[f.level.value]}  {f.check:<12} {f.platform or '':<14} {f.message}")
        if f.fix and f.level.value != "ok":
            typer.echo(f"  {'':32}fix: {f.fix}")
    typer.echo("verified" if verdict.ok else f"{len(verdict.failures)} check(s) failed")
