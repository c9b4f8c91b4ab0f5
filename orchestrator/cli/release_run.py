"""`orch release`'s work, without the CLI framework: the Typer command (cli/release_parts.py) and
the fast path (cli/fast.py) both call `run_release_parts`, so they print the same."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.cli.output import echo, print_json, print_table
from orchestrator.errors import OrchError


@dataclass(frozen=True)
class ReleaseArgs:
    directories: tuple[str, ...]
    profile: str | None = None
    platforms: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    tag_rules: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    flavor: tuple[str, ...] = ()
    deep: bool = False
    dry_run: bool = False
    as_json: bool = False
    report: str | None = None
    output_env: str | None = None
    metadata_file: str | None = None
    quiet: bool = False
    sign: bool = False
    sign_key: str | None = None


def run_release_parts(args: ReleaseArgs) -> int:
    """Plan the release (reading the parts, no registry), print it for --dry-run, else run it."""
    from datetime import datetime, timezone

    from orchestrator.builds.inputs import check_metadata_file
    from orchestrator.model.platform_parse import parse_all
    from orchestrator.profiles.model import Profile
    from orchestrator.release.parts_release import ReleaseRequest, plan_release

    if args.profile:
        from orchestrator.profiles import load

        loaded = load(args.profile)
    else:
        loaded = Profile(name="adhoc", source="(command line)")
    for path, option in ((args.metadata_file, "--metadata-file"), (args.output_env, "--output-env"),
                         (args.report, "--report")):
        if path and not args.dry_run:
            check_metadata_file(path, option)
    signing = None
    if args.sign:
        from orchestrator.publish.signing import Signing

        signing = Signing.asked(args.sign_key or os.environ.get("ORCH_SIGN_KEY"))
    request = ReleaseRequest(args.directories, tuple(parse_all(args.platforms) if args.platforms
                                                     else loaded.platforms or ()),
                             loaded, args.tags, args.tag_rules, args.images, args.flavor, args.deep, signing)
    try:
        plan = plan_release(request, now=datetime.now(timezone.utc))
        if args.dry_run:
            if args.as_json:
                print_json(plan.to_json())
            else:
                echo("\n".join(plan.commands()))
            return 0
        _run(plan, args)
    except OrchError as failed:
        if not args.dry_run:  # CI outputs and the summary say it failed, and where
            _report_failure(failed, args)
        raise
    return 0


def _report_failure(failed: OrchError, args: ReleaseArgs) -> None:
    from orchestrator.report.ci_outputs import report_parts_release

    document = {"ok": False, "digest": None, "tags": [], "asked_tags": list(args.tags), "platforms": [],
                "error": failed.message, "failed": [{"platform": p, "step": s}
                                                    for p, s in (getattr(failed, "failed", None) or {}).items()]}
    report_parts_release(document, output_env=args.output_env)
    if args.report:
        from orchestrator.report.html import html_report

        Path(args.report).write_text(html_report(document).replace("orch build", "orch release"))


def _run(plan: Any, args: ReleaseArgs) -> None:
    from orchestrator.release.parts_release import run_release
    from orchestrator.report.ci_outputs import report_parts_release
    from orchestrator.report.console import Console

    console = Console(quiet=args.quiet)
    for note in plan.replaced:
        console.say(f"orch: {note}")
    document = run_release(plan, console.say)
    report_parts_release(document, output_env=args.output_env)
    if args.report:
        from orchestrator.report.html import html_report

        Path(args.report).write_text(html_report(document))
    if args.metadata_file:
        Path(args.metadata_file).write_text(json.dumps(document, indent=2) + "\n")
    if args.as_json:
        print_json(document)
        return
    echo(f"released {document['digest']}: {len(plan.parts)} parts of {plan.repository.name}, verified")
    print_table([[row["platform"], row["digest"], row["runner"] or "", f"{row['seconds'] or 0:.1f} s"]
                 for row in document["platforms"]])
    for move in document["promotion"]:
        state = f"moved from {move['before']}" if move["state"] == "moved" and move["before"] else \
            "new" if move["state"] == "moved" else "already there"
        echo(f"  tag {move['tag']}: {state}")
