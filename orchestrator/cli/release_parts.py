"""`orch release DIR...`: the parts native runners built (`orch build --part`, one runner per
platform) merged into one index, verified, then every tag moved or none."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, List

import typer

from orchestrator.cli.build_options import with_options
from orchestrator.cli.options import RELEASE

PartDirs = Annotated[List[Path], typer.Argument(
    help="Directories of part records (`orch build --part DIR` on each runner; CI artifacts, downloaded).",
    show_default=False)]


@with_options(*RELEASE)  # the fast path (cli/fast.py) parses the same table
def release_parts(ctx: typer.Context, directories: PartDirs, **given: Any) -> None:
    """Merge the parts native runners built (one per platform) into one index, verify it, then move every tag
    or none. A missing platform moves nothing."""
    from orchestrator.cli.release_run import ReleaseArgs, run_release_parts

    run_release_parts(ReleaseArgs.of(directories, given, quiet=bool(ctx.obj and ctx.obj.get("quiet"))))
