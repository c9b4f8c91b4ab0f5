"""`orch inspect`: what a reference holds, entry by entry."""

from __future__ import annotations

import typer

from orchestrator.cli.output import print_json, print_table


def inspect(
    ref: str = typer.Argument(..., help="Image reference: REGISTRY/REPO:TAG, @sha256:..., or oci-layout://DIR[:TAG]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show what a reference holds: index or manifest, each entry's platform beside its config's, attestations."""
    from orchestrator.image.read import is_layout_ref, read_image, read_layout
    from orchestrator.image.verify import duplicated, order_errors
    from orchestrator.model.platform import format_platform
    from orchestrator.model.references import parse_reference

    result = read_layout(ref)[0] if is_layout_ref(ref) else read_image(parse_reference(ref))
    duplicates, order = duplicated(result), order_errors(result)
    if as_json:
        print_json({**result.to_json(), "duplicates": duplicates, "order_problems": [str(p) for p in order]})
        return
    typer.echo(f"{result.ref}")
    typer.echo(f"  {result.kind} ({result.media_type})")
    typer.echo(f"  digest {result.digest}")
    rows = []
    for e in result.entries:
        config = format_platform(e.config) if e.config else "?"
        mismatch = "" if (e.platform is None or e.config is None or e.platform.key == e.config.key) else "  MISMATCH"
        duplicate = "  DUPLICATE" if any(e.position in where for where in duplicates.values()) else ""
        rows.append([str(e.position), e.label + duplicate, f"config {config}{mismatch}", str(e.size), e.digest])
    print_table(rows, ["#", "PLATFORM", "CONFIG", "SIZE", "DIGEST"])
    for shown, where in duplicates.items():
        typer.echo(f"DUPLICATE {shown}: entries {', '.join(map(str, where))} claim it; clients take the first")
    for problem in order:
        typer.echo(f"ORDER     {problem}")
    if result.attestations:
        typer.echo("attestations:")
        labels = {e.digest: e.label for e in result.entries}
        for a in result.attestations:
            typer.echo(f"  {a.digest}  for {labels.get(a.refers_to or '', 'MISSING ' + str(a.refers_to))}")
