"""`orch release`'s work, without the CLI framework: the Typer command (cli/release_parts.py) and
the fast path (cli/fast.py) both call `run_release_parts`, so they print the same."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.builds.options import OutputOptions, SigningOptions, TagOptions, VerificationOptions
from orchestrator.cli.options import RELEASE, values
from orchestrator.cli.output import echo, print_json, print_table, stdout_failure, unwritten_error
from orchestrator.errors import OrchError


@dataclass(frozen=True)
class ReleaseArgs:
    """`orch release`'s arguments, by option group: what both the Typer command and the fast path
    hand to `run_release_parts`."""

    directories: tuple[str, ...]
    profile: str | None = None
    platforms: tuple[str, ...] = ()
    tags: TagOptions = TagOptions()
    verification: VerificationOptions = VerificationOptions()
    dry_run: bool = False
    as_json: bool = False
    outputs: OutputOptions = OutputOptions()
    signing: SigningOptions = SigningOptions()
    quiet: bool = False

    @classmethod
    def of(cls, directories: Iterable[str | Path], given: Mapping[str, Any], *, quiet: bool = False) -> ReleaseArgs:
        """The arguments from what a parser gave, by option key: the Typer command and the fast
        path both come here, with the options of one table (options.RELEASE)."""
        return cls(tuple(str(d) for d in directories), **values(RELEASE, given), quiet=quiet)


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
    outputs = args.outputs
    for path, option in ((outputs.metadata_file, "--metadata-file"), (outputs.output_env, "--output-env"),
                         (outputs.report, "--report")):
        if path and not args.dry_run:
            check_metadata_file(path, option)
    tags = args.tags
    request = ReleaseRequest(args.directories, tuple(parse_all(args.platforms) if args.platforms
                                                     else loaded.platforms or ()),
                             loaded, tags.literal, tags.rules, tags.images, tags.flavor, args.verification.deep,
                             args.signing.signing(loaded.signing))
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
            _report_failure(failed, args, request.platforms)
        raise
    return 0


def _report_failure(failed: OrchError, args: ReleaseArgs, platforms: tuple[Any, ...]) -> None:
    """The failure in the CI outputs, summary and report: where it failed (release.parts_release
    names the platforms and the step; before the registry is read, the release's platforms and
    `checking the parts`)."""
    from orchestrator.logging import get_logger
    from orchestrator.model.platform import format_platform
    from orchestrator.report.ci_outputs import attempt, report_parts_release

    where = getattr(failed, "failed", None) or {",".join(format_platform(p) for p in platforms): "checking the parts"}
    document = {"ok": False, "digest": None, "tags": [], "asked_tags": list(args.tags.literal), "platforms": [],
                "error": failed.message, "failed": [{"platform": p, "step": s} for p, s in where.items()]}
    unwritten = report_parts_release(document, output_env=args.outputs.output_env)
    if args.outputs.report:
        from orchestrator.report.html import html_report

        report = args.outputs.report
        attempt(unwritten, f"--report {report}",
                lambda: Path(report).write_text(html_report(document, what="orch release")))
    for what, why in unwritten:  # the release's failure is the error to show
        get_logger().warning("release.report_unwritten", output=what, reason=why.strerror or str(why))


def _run(plan: Any, args: ReleaseArgs) -> None:
    from orchestrator.release.parts_release import run_release
    from orchestrator.report.ci_outputs import attempt, report_parts_release
    from orchestrator.report.console import Console

    console = Console(quiet=args.quiet)
    for note in plan.replaced:
        console.say(f"orch: {note}")
    started = time.monotonic()
    document = run_release(plan, console.say)
    seconds = time.monotonic() - started
    unwritten = report_parts_release(document, output_env=args.outputs.output_env)
    if args.outputs.report:
        from orchestrator.report.html import html_report

        report = args.outputs.report
        attempt(unwritten, f"--report {report}", lambda: Path(report).write_text(
            html_report({**document, "commands": plan.commands()}, seconds=seconds, what="orch release")))
    if args.outputs.metadata_file:
        metadata_file = args.outputs.metadata_file
        attempt(unwritten, f"--metadata-file {metadata_file}",
                lambda: Path(metadata_file).write_text(json.dumps(document, indent=2) + "\n"))
    if args.as_json:
        print_json(document)
        failure = stdout_failure()
        if failure is not None:
            unwritten.append(("--json (stdout)", failure))
    else:
        _print(plan, document)
    if unwritten:
        moved = [m["tag"] for m in document["promotion"] if m["state"] == "moved"]
        raise unwritten_error(f"released {document['digest']}; tags moved: {', '.join(moved) or 'none (all already there)'}",
                              unwritten)


def _print(plan: Any, document: dict[str, Any]) -> None:
    echo(f"released {document['digest']}: {len(plan.parts)} parts of {plan.repository.name}, verified")
    print_table([[row["platform"], row["digest"], row["runner"] or "", f"{row['seconds'] or 0:.1f} s"]
                 for row in document["platforms"]])
    from orchestrator.release.reproducible_parts import reproducible_lines

    for line in reproducible_lines(document.get("reproducible")):
        echo(f"  {line}")
    if document["promotion"] and all(move.get("note") and move["state"] == "unchanged"
                                     for move in document["promotion"]):
        echo("  nothing moved: every platform's manifest is what the tags already hold (an unchanged commit, "
             "built reproducibly; only the attestations differ)")
    for move in document["promotion"]:
        state = f"moved from {move['before']}" if move["state"] == "moved" and move["before"] else \
            "new" if move["state"] == "moved" else "already there"
        echo(f"  tag {move['tag']}: {state}")
