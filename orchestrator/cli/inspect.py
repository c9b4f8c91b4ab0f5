"""`orch inspect`: what a reference holds, entry by entry."""

from __future__ import annotations

from typing import Any

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

    source: Any
    if is_layout_ref(ref):
        result, source = read_layout(ref)
    else:
        from orchestrator.registry.client import Registry, RepositoryView

        named = parse_reference(ref)
        result, source = read_image(named), RepositoryView(Registry.of(named), named.repository)
    duplicates, order = duplicated(result), order_errors(result)
    said = _attested(result, source)
    if as_json:
        print_json({**result.to_json(), "duplicates": duplicates, "order_problems": [str(p) for p in order],
                    "attested": said})
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
        for label, statements in said.items():
            for statement in statements:
                typer.echo(f"  {label}: {statement['kind']}: {statement['summary']}")


def _attested(result: Any, source: Any) -> dict[str, list[dict[str, Any]]]:
    """Each platform's attestations, summarised (image.attestations); unreadable ones say so."""
    from orchestrator.errors import OrchError
    from orchestrator.image.attestations import statements

    if not result.attestations:
        return {}
    try:
        found = statements(result, source)
    except OrchError as exc:
        return {"(all)": [{"kind": "unreadable", "summary": exc.message}]}
    labels = {e.digest: e.label for e in result.entries}
    return {labels[digest]: [{"kind": s.kind, "summary": s.summary} for s in listed]
            for digest, listed in found.items() if listed}
