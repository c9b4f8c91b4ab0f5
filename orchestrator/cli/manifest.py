"""`orch manifest create`: lists from images that already exist (manifest-tool's spec)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List

import typer

from orchestrator.cli.output import print_json, print_table

if TYPE_CHECKING:
    from orchestrator.publish.manifest_spec import ManifestSpec

app = typer.Typer(help="Assemble lists from images that already exist (manifest-tool's spec).",
                  no_args_is_help=True)


@app.command("create")
def create(
    spec: Path | None = typer.Option(  # noqa: UP007
        None, "--spec", help="manifest-tool YAML: image, tags, manifests (each image + platform: os, architecture, "
        "variant, os.version, features)."),
    from_args: bool = typer.Option(False, "--from-args", help="Build the spec from --platforms, --template and "
                                   "--target instead of a file."),
    platforms: List[str] = typer.Option([], "--platforms", help="With --from-args: platforms, comma-separated."),  # noqa: UP006
    template: str | None = typer.Option(  # noqa: UP007
        None, "--template", help="With --from-args: each image's reference, with OS, ARCH and VARIANT replaced."),
    target: str | None = typer.Option(None, "--target", help="With --from-args: the list's reference."),  # noqa: UP007
    tags: List[str] = typer.Option([], "--tags", help="With --from-args: more tags for the list."),  # noqa: UP006
    deep: bool = typer.Option(False, "--deep", help="Also check each image's binary against its listed platform."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (or, with --dry-run, the plan) as JSON."),
) -> None:
    """Push a list of existing images, each listed as the platform the spec says (annotating mislabelled ones),
    verified before the target tag moves."""
    from orchestrator.errors import BadInput
    from orchestrator.publish.manifest_spec import load_spec, spec_from_args

    if bool(spec) == from_args:
        raise BadInput("pass either --spec FILE or --from-args", fix="e.g. orch manifest create --spec list.yaml")
    if from_args:
        if not (platforms and template and target):
            raise BadInput("--from-args needs --platforms, --template and --target",
                           fix="e.g. --platforms linux/amd64,linux/arm/v7 --template reg/app:1.0-ARCHVARIANT "
                               "--target reg/app:1.0")
        loaded = spec_from_args(platforms, template, target, tags)
    else:
        loaded = load_spec(spec)  # type: ignore[arg-type]
    if dry_run:
        lines = _plan_lines(loaded)
        if as_json:
            print_json({"commands": lines})
        else:
            typer.echo("\n".join(lines))
        return
    _run(loaded, deep, as_json)


def _plan_lines(spec: ManifestSpec) -> list[str]:
    from orchestrator.model.platform import format_platform
    from orchestrator.publish.merge import MergeEntry, merge_lines
    from orchestrator.publish.promote import promotion_lines

    lines = [f"# copy {entry.image} (registry-side, by digest) into {spec.target.name}" for entry in spec.entries]
    entries = [MergeEntry(spec.target.with_digest(f"<{format_platform(e.platform)} digest>"), e.platform)
               for e in spec.entries]
    lines += merge_lines("manifest", spec.target, entries)
    platforms = ",".join(format_platform(e.platform) for e in spec.entries)
    lines.append(f"orch verify {spec.target.name}@<list digest> --platform {platforms} --config-mismatch warn")
    return lines + promotion_lines(spec.target, (spec.target, *spec.tags))


def _run(spec: ManifestSpec, deep: bool, as_json: bool) -> None:
    from orchestrator.cli.verify_run import print_findings
    from orchestrator.docker.runner import Engine
    from orchestrator.errors import ExitCode
    from orchestrator.publish.manifest_list import publish_list
    from orchestrator.publish.pipeline import VerificationFailed

    try:
        published = publish_list(Engine(), spec, deep=deep)
    except VerificationFailed as failed:
        document = {**failed.verdict.to_json(), "digest": failed.verdict.digest, "tags": [], "staged": failed.staged}
        if as_json:
            print_json(document)
        else:
            print_findings(failed.verdict)
            typer.echo(f"no tag was changed; the list is staged (by digest) at {failed.staged}", err=True)
        raise typer.Exit(int(ExitCode.FAILED)) from None
    document = {**published.verdict.to_json(), "digest": published.staged.index.digest,
                "tags": [str(t) for t in published.tags], "staged": str(published.staged.ref),
                "promotion": published.promotion.to_json()}
    if as_json:
        print_json(document)
        return
    print_findings(published.verdict)
    typer.echo(f"published {published.staged.index.digest}")
    print_table([[e.label, e.digest] for e in published.inspection.entries])
    for tag in published.tags:
        typer.echo(f"  tag {tag}")
