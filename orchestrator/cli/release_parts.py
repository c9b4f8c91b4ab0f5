"""`orch release DIR...`: the parts native runners built (`orch build --part`, one runner per
platform) merged into one index, verified, then every tag moved or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, List

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
    Sign,
    SignKey,
    TagRules,
    Tags,
)

PartDirs = Annotated[List[Path], typer.Argument(  # noqa: UP006
    help="Directories of part records (`orch build --part DIR` on each runner; CI artifacts, downloaded).",
    show_default=False)]


def release_parts(ctx: typer.Context, directories: PartDirs, profile: ProfileName = None,
                  platform: Platforms = [], tag: Tags = [], tag_rule: TagRules = [],  # noqa: B006
                  image: Images = [], flavor: Flavor = [], deep: Deep = False, dry_run: DryRun = False,  # noqa: B006
                  as_json: AsJson = False, report: Report = None, output_env: OutputEnv = None,
                  metadata_file: MetadataFile = None, sign: Sign = False, sign_key: SignKey = None) -> None:
    """Merge the parts native runners built (one per platform) into one index, verify it, then move every tag
    or none. A missing platform moves nothing."""
    from orchestrator.cli.release_run import ReleaseArgs, run_release_parts

    def text(path: Path | None) -> str | None:
        return str(path) if path is not None else None

    run_release_parts(ReleaseArgs(
        tuple(str(d) for d in directories), profile, tuple(platform), tuple(tag), tuple(tag_rule), tuple(image),
        tuple(flavor), deep, dry_run, as_json, text(report), text(output_env), text(metadata_file),
        quiet=bool(ctx.obj and ctx.obj.get("quiet")), sign=sign, sign_key=sign_key))
