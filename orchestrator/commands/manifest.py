from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from orchestrator.commands.output import print_json, print_table

app = typer.Typer(help="Assemble lists from images that already exist (manifest-tool's spec).",
                  no_args_is_help=True)


@app.command("create")
def create(
    spec: Optional[Path] = typer.Option(  # noqa: UP007
        None, "--spec", help="manifest-tool YAML: image, tags, manifests (each image + platform: os, architecture, "
        "variant, os.version, features)."),
    from_args: bool = typer.Option(False, "--from-args", help="Build the spec from --platforms, --template and "
                                   "--target instead of a file."),
    platforms: List[str] = typer.Option([], "--platforms", help="With --from-args: platforms, comma-separated."),  # noqa: UP006
    template: Optional[str] = typer.Option(  # noqa: UP007
        None, "--template", help="With --from-args: each image's reference, with OS, ARCH and VARIANT replaced."),
    target: Optional[str] = typer.Option(None, "--target", help="With --from-args: the list's reference."),  # noqa: UP007
    tags: List[str] = typer.Option([], "--tags", help="With --from-args: more tags for the list."),  # noqa: UP006
    deep: bool = typer.Option(False, "--deep", help="Also check each image's binary against its listed platform."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the commands; run nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (or, with --dry-run, the plan) as JSON."),
) -> None:
    """Push a list of existing images, each listed as the platform the spec says (annotating mislabelled ones),
    verified before the target tag moves."""
    from orchestrator.errors import BadInput
    from orchestrator.manifest_spec import load_spec, spec_from_args

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


def _plan_lines(spec) -> list[str]:  # type: ignore[no-untyped-def]
    import shlex

    from orchestrator.merge import MergeEntry, imagetools_create, manifest_commands
    from orchestrator.platforms import format_platform

    lines = []
    for position, entry in enumerate(spec.entries):
        lines.append(f"# copy {entry.image} (registry-side) to {spec.child_staging(position, entry)}")
    entries = [MergeEntry(spec.child_staging(i, e), e.platform) for i, e in enumerate(spec.entries)]
    lines += ["docker " + shlex.join(c) for c in manifest_commands(spec.staging, entries)]
    platforms = ",".join(format_platform(e.platform) for e in spec.entries)
    lines.append(f"orch verify {spec.staging} --platform {platforms} --config-mismatch warn")
    lines.append("docker " + shlex.join(imagetools_create([spec.target, *spec.tags], [f"{spec.staging.name}@<digest>"])))
    return lines


def _run(spec, deep: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.build import promote_tags
    from orchestrator.commands.inspect import print_findings
    from orchestrator.engine import Engine
    from orchestrator.errors import ExitCode
    from orchestrator.inspection import read_image
    from orchestrator.manifest_spec import create as create_list
    from orchestrator.status import Status
    from orchestrator.verify import VerifyOptions, verify

    engine = Engine()
    digest = create_list(engine, spec)
    staged = spec.staging.with_digest(digest)
    inspection = read_image(staged)
    extra = []
    if deep:
        from orchestrator.deep import check_binaries

        extra = check_binaries(inspection, staged)
    # A list assembled from existing images may list a mislabelled image as what it really is.
    verdict = verify(inspection, VerifyOptions(expected=tuple(e.platform for e in spec.entries),
                                               config_mismatch=Status.warn), extra)
    tags = (spec.target, *spec.tags)
    staging_removed = None
    if verdict.ok:
        from orchestrator.registry_api import delete_tag

        promote_tags(engine, staged, tags)
        # Registries that only delete by digest keep these; the next run overwrites them.
        children = [spec.child_staging(i, e) for i, e in enumerate(spec.entries)]
        staging_removed = all([delete_tag(spec.staging), *(delete_tag(c) for c in children)])
    document = {**verdict.to_json(), "digest": digest, "tags": [str(t) for t in tags] if verdict.ok else [],
                "staging": str(spec.staging), "staging_removed": staging_removed}
    if as_json:
        print_json(document)
    else:
        print_findings(verdict)
        if verdict.ok:
            typer.echo(f"published {digest}")
            print_table([[e.label, e.digest] for e in inspection.entries])
            for tag in tags:
                typer.echo(f"  tag {tag}")
            if staging_removed is False:
                typer.echo(f"  staging tags {spec.staging}[-NN-PLATFORM] kept (the registry does not delete tags)")
        else:
            typer.echo(f"no tag was changed; the list is at {staged}", err=True)
    if not verdict.ok:
        raise typer.Exit(int(ExitCode.FAILED))
