"""`orch release DIR...`: the parts native runners built (`orch build --part`, one runner per
platform) merged into one index, verified, then every tag moved or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, List

import typer

from orchestrator.cli.build_options import (
    AsJson,
    Deep,
    DryRun,
    Flavor,
    Images,
    MetadataFile,
    OutputEnv,
    Platforms,
    ProfileName,
    Report,
    TagRules,
    Tags,
)
from orchestrator.cli.output import print_json, print_table

PartDirs = Annotated[List[Path], typer.Argument(  # noqa: UP006
    help="Directories of part records (`orch build --part DIR` on each runner; CI artifacts, downloaded).",
    show_default=False)]


def release_parts(ctx: typer.Context, directories: PartDirs, profile: ProfileName = None,
                  platform: Platforms = [], tag: Tags = [], tag_rule: TagRules = [],  # noqa: B006
                  image: Images = [], flavor: Flavor = [], deep: Deep = False, dry_run: DryRun = False,  # noqa: B006
                  as_json: AsJson = False, report: Report = None, output_env: OutputEnv = None,
                  metadata_file: MetadataFile = None) -> None:
    """Merge the parts native runners built (one per platform) into one index, verify it, then move every tag
    or none. A missing platform moves nothing."""
    from datetime import datetime, timezone

    from orchestrator.builds.inputs import check_metadata_file
    from orchestrator.model.platform_parse import parse_all
    from orchestrator.profiles import Profile, load
    from orchestrator.release.parts_release import ReleaseRequest, plan_release

    loaded = load(profile) if profile else Profile(name="adhoc", source="(command line)")
    for path, option in ((metadata_file, "--metadata-file"), (output_env, "--output-env"), (report, "--report")):
        if path and not dry_run:
            check_metadata_file(str(path), option)
    request = ReleaseRequest(tuple(str(d) for d in directories),
                             tuple(parse_all(platform) if platform else loaded.platforms or ()), loaded,
                             tuple(tag), tuple(tag_rule), tuple(image), tuple(flavor), deep)
    plan = plan_release(request, now=datetime.now(timezone.utc))
    if dry_run:
        if as_json:
            print_json(plan.to_json())
        else:
            typer.echo("\n".join(plan.commands()))
        return
    _run_parts(ctx, plan, as_json=as_json, report=report, output_env=output_env, metadata_file=metadata_file)


def _run_parts(ctx: typer.Context, plan: Any, *, as_json: bool, report: Path | None, output_env: Path | None,
               metadata_file: Path | None) -> None:
    import json

    from orchestrator.docker.runner import Engine
    from orchestrator.release.parts_release import run_release
    from orchestrator.report.ci import report_parts_release
    from orchestrator.report.console import Console

    console = Console(quiet=bool(ctx.obj and ctx.obj.get("quiet")))
    for note in plan.replaced:
        console.say(f"orch: {note}")
    document = run_release(Engine(), plan, console.say)
    report_parts_release(document, output_env=str(output_env) if output_env else None)
    if report:
        from orchestrator.report.html import html_report

        report.write_text(html_report(document))
    if metadata_file:
        metadata_file.write_text(json.dumps(document, indent=2) + "\n")
    if as_json:
        print_json(document)
        return
    typer.echo(f"released {document['digest']}: {len(plan.parts)} parts of {plan.repository.name}, verified")
    print_table([[row["platform"], row["digest"], row["runner"] or "", f"{row['seconds'] or 0:.1f} s"]
                 for row in document["platforms"]])
    for move in document["promotion"]:
        state = f"moved from {move['before']}" if move["state"] == "moved" and move["before"] else \
            "new" if move["state"] == "moved" else "already there"
        typer.echo(f"  tag {move['tag']}: {state}")
