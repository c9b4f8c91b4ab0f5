"""`orch manifest create`: lists from images that already exist (manifest-tool's spec)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, List

import typer

from orchestrator.builds.options import SigningOptions, VerificationOptions
from orchestrator.cli.build_options import with_groups
from orchestrator.cli.output import print_json, print_table

if TYPE_CHECKING:
    from orchestrator.lists.manifest_list import ListOptions
    from orchestrator.lists.manifest_spec import ManifestSpec

app = typer.Typer(help="Assemble lists from images that already exist (manifest-tool's spec).",
                  no_args_is_help=True)


# --deep and the signing options are the groups every command that verifies or signs takes
# (cli/options.py), put in place by with_groups.
@app.command("create")
@with_groups
def create(
    spec: Path | None = typer.Option(
        None, "--spec", help="manifest-tool YAML: image, tags, annotations, manifests (each image + platform: os, "
        "architecture, variant, osversion, osfeatures; what is left out comes from the image's config)."),
    from_args: bool = typer.Option(False, "--from-args", help="Build the spec from --platforms, --template and "
                                   "--target instead of a file."),
    platforms: List[str] = typer.Option([], "--platforms", help="With --from-args: platforms, comma-separated."),
    template: str | None = typer.Option(
        None, "--template", help="With --from-args: each image's reference, with ARCH, OS and VARIANT replaced."),
    target: str | None = typer.Option(None, "--target", help="With --from-args: the list's reference."),
    tags: List[str] = typer.Option([], "--tags", help="With --from-args: more tags for the list."),
    annotations: List[str] = typer.Option(
        [], "--annotations", help="With --from-args: key=value annotations of the OCI index."),
    list_type: str | None = typer.Option(
        None, "--type", help="docker (a Docker manifest list) or oci (an OCI index). Default: an OCI index when "
        "every image is OCI or there are annotations, else a Docker list."),
    whole_index: bool = typer.Option(False, "--whole-index", help="A source that is an index gives every image "
                                     "in it (attestations last), as manifest-tool does; by default orch lists its "
                                     "entry for the spec's platform."),
    keep_order: bool = typer.Option(False, "--keep-order", help="Keep the spec's order instead of orch's (lower "
                                    "ARM variants first)."),
    *,
    verification: VerificationOptions,
    signing: SigningOptions,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the steps; read and change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (or, with --dry-run, the plan) as JSON."),
) -> None:
    """Push a list of existing images, each listed as the platform the spec says (annotating mislabelled ones),
    verified before the target tag moves."""
    from orchestrator.errors import BadInput
    from orchestrator.lists.manifest_list import ListOptions, check_options, plan_lines
    from orchestrator.lists.manifest_spec import load_spec, parse_annotations, spec_from_args

    if bool(spec) == from_args:
        raise BadInput("pass either --spec FILE or --from-args", fix="e.g. orch manifest create --spec list.yaml")
    if from_args:
        if not (platforms and template and target):
            raise BadInput("--from-args needs --platforms, --template and --target",
                           fix="e.g. --platforms linux/amd64,linux/arm/v7 --template reg/app:1.0-ARCHVARIANT "
                               "--target reg/app:1.0")
        loaded = spec_from_args(platforms, template, target, tags, parse_annotations(annotations))
    else:
        if annotations:
            raise BadInput("--annotations goes with --from-args", fix="put annotations: in the spec file")
        loaded = load_spec(spec)  # type: ignore[arg-type]
    options = ListOptions(list_type=list_type, whole_index=whole_index, keep_order=keep_order)
    check_options(loaded, options)
    if dry_run:
        lines = plan_lines(loaded, options)
        if as_json:
            print_json({"commands": lines, "notes": list(loaded.notes)})
        else:
            _print_notes(loaded.notes)
            typer.echo("\n".join(lines))
        return
    _run(loaded, options, verification.deep, as_json, signing.signing())


def _print_notes(notes: tuple[str, ...] | list[str]) -> None:
    for note in notes:
        typer.echo(f"note: {note}", err=True)


def _run(spec: ManifestSpec, options: ListOptions, deep: bool, as_json: bool, signing: Any = None) -> None:
    from orchestrator.cli.verify_run import print_findings
    from orchestrator.errors import ExitCode
    from orchestrator.lists.manifest_list import publish_list
    from orchestrator.model.mediatypes import INDEX_TYPES
    from orchestrator.publish.pipeline import VerificationFailed

    try:
        plan, published = publish_list(spec, options, deep=deep, signing=signing)
    except VerificationFailed as failed:
        document = {**failed.verdict.to_json(), "digest": failed.verdict.digest, "tags": [], "staged": failed.staged}
        if as_json:
            print_json(document)
        else:
            print_findings(failed.verdict)
            typer.echo(f"no tag was changed; the list is staged (by digest) at {failed.staged}", err=True)
        raise typer.Exit(int(ExitCode.FAILED)) from None
    document = {**published.verdict.to_json(), "digest": published.staged.index.digest,
                "media_type": plan.manifest.media_type, "notes": list(plan.notes),
                "tags": [str(t) for t in published.tags], "staged": str(published.staged.ref),
                "promotion": published.promotion.to_json()}
    if as_json:
        print_json(document)
        return
    _print_notes(plan.notes)
    print_findings(published.verdict)
    typer.echo(f"published {published.staged.index.digest} ({INDEX_TYPES[plan.manifest.media_type]})")
    print_table([[e.label, e.digest] for e in published.inspection.entries])
    for tag in published.tags:
        typer.echo(f"  tag {tag}")
