"""`orch build` once its options are read, without the CLI framework: the BuildRequest from the
options (by key, as cli/options.BUILD names them), the plan, the run (or the printed plan), the
reports and the summary. The Typer command (cli/build.py) and the fast path (cli/fast.py) both
come here, so they take the same values and print the same output."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli.output import echo, print_json, print_table, stdout_failure, unwritten_error
from orchestrator.errors import OrchError
from orchestrator.logging import get_logger

if TYPE_CHECKING:
    from orchestrator.builds.plan import BuildPlan
    from orchestrator.builds.request import BuildRequest
    from orchestrator.builds.result import BuildResult


def build_request(given: Mapping[str, Any], buildx: Mapping[str, Any]) -> BuildRequest:
    """The request `orch build` makes of what it was given: its own options by key, the groups'
    dataclasses by group name (tags, builder, outputs, verification, signing), buildx's pass-through
    options by key in `buildx`. Lists may come as lists (typer) or tuples (the fast path)."""
    from orchestrator.builds.request import BuildRequest
    from orchestrator.cli import passthrough
    from orchestrator.errors import BadInput

    arguments, bake_set = given["arguments"], given["bake_set"]
    if bake_set:
        raise BadInput("--set goes with --bake", fix="pass --bake FILE, or use the profile's keys")
    if arguments and len(arguments) > 1:
        raise BadInput(f"one build context, not {len(arguments)} ({' '.join(arguments)})",
                       fix="pass one directory; targets are named with --bake FILE TARGET...")
    push, oci_layout, part = given["push"], given["oci_layout"], given["part"]
    return BuildRequest(
        profile=given["profile"] or os.environ.get("ORCH_PROFILE") or None,
        context=arguments[0] if arguments else None, dockerfile=given["file"],
        platforms=tuple(given["platform"] or [p for p in [os.environ.get("ORCH_PLATFORMS")] if p]),
        build_args=tuple(given["build_arg"]), push=push, oci_layout=str(oci_layout) if oci_layout else None,
        strategy=given["strategy"], merge=given["merge"], jobs=given["jobs"], no_cache=given["no_cache"],
        secrets=tuple(given["secret"]), buildx=given_buildx(buildx), labels=tuple(given["label"]),
        annotations=tuple(given["annotation"]), cache_from=tuple(given["cache_from"]),
        cache_to=tuple(given["cache_to"]), cache=given["cache"], build_contexts=tuple(given["build_context"]),
        provenance=given["provenance"], sbom=given["sbom"], extra_args=passthrough.BUILDX_ARGS, meta=given["meta"],
        part=str(part) if part is not None else None, tags=given["tags"], builder=given["builder"],
        outputs=given["outputs"], verification=given["verification"], signing=given["signing"],
        reproducible=given["reproducible"])


def given_buildx(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The pass-through options the command line set, by key (lists as tuples)."""
    return tuple((key, tuple(value) if isinstance(value, list) else value) for key, value in values.items()
                 if value not in (None, False, [], ()))


def run_build(flags: Mapping[str, bool], request: BuildRequest, *, dry_run: bool, as_json: bool, progress: str) -> None:
    """Plan, then run the plan (or print it): what `orch build` does once its options are read.
    `flags`: the global -q / -v (`quiet`, `verbose`)."""
    from orchestrator.builds.inputs import check_metadata_file
    from orchestrator.builds.request import plan_build
    from orchestrator.docker.runner import Engine

    if progress == "quiet":  # nothing but errors (and what --json asks for)
        from orchestrator.logging import errors_only

        errors_only()
    if not dry_run:
        from orchestrator.docker import probe

        # Asked while the plan is made; a BuildKit builder is read from buildx's configuration
        # unless its nodes' BuildKit version is to be recorded.
        probe.prefetch(Engine(), request.builder.name, nodes=request.reproducible)
    plan = plan_build(request)
    report, output_env, metadata_file = (Path(path) if path else None for path in (
        request.outputs.report, request.outputs.output_env, request.outputs.metadata_file))
    for path, option in ((output_env, "--output-env"), (report, "--report")):
        if path and not dry_run:
            check_metadata_file(str(path), option)
    if dry_run:
        from orchestrator.builds.complete import completed_for_dry_run

        plan = completed_for_dry_run(Engine(secrets=plan.spec.secret_values), plan)
    _warn(plan.warnings)
    if dry_run:
        if as_json:
            print_json(plan.to_json())
        else:
            for command in (*plan.builder_lines(), *plan.commands()):
                echo(command)
        return
    try:
        result, seconds = _run(flags, plan, progress)
    except OrchError as failed:  # a failed build reports too: exactly when people need it
        from orchestrator.builds.result import failure_json

        for what, why in _write_reports(failure_json(plan, failed), None, report=report, output_env=output_env,
                                        metadata_file=metadata_file):
            get_logger().warning("build.report_unwritten", output=what, reason=why.strerror or str(why))
        raise  # the build's failure is the error to show
    unwritten = _write_reports(result.to_json(), seconds, report=report, output_env=output_env,
                               metadata_file=metadata_file)
    if as_json:
        print_json(result.to_json())
        failure = stdout_failure()
        if failure is not None:
            unwritten.append(("--json (stdout)", failure))
    elif progress != "quiet":
        _summary(plan, result)
    if unwritten:
        raise unwritten_error(_done(plan, result), unwritten)


def _done(plan: BuildPlan, result: BuildResult) -> str:
    """What the build did, for an error that comes after it (an output not written)."""
    if not plan.push:
        return f"built {', '.join(str(p) for p in plan.platforms)} into {plan.local_image}"
    if result.part:
        return f"part {result.digest} staged in {plan.repository.name if plan.repository else ''} by digest"
    moved = [m["tag"] for m in result.promotion if m["state"] == "moved"]
    return (f"published {result.digest}; tags moved: {', '.join(moved) or 'none (all already there)'}"
            + (f"; already there: {', '.join(m['tag'] for m in result.promotion if m['state'] != 'moved')}"
               if len(moved) < len(result.promotion) and moved else ""))


def _warn(warnings: tuple[str, ...]) -> None:
    """What the user should hear before the build starts (the executor adds what completing the
    plan from the builder's capabilities adds)."""
    if warnings:
        from orchestrator.logging import get_logger

        for warning in warnings:
            get_logger().warning("build.check_this", advice=warning)


def _run(flags: Mapping[str, bool], plan: BuildPlan, progress: str) -> tuple[BuildResult, float]:
    import time
    from contextlib import nullcontext

    from orchestrator.builds.executor import run_plan
    from orchestrator.cli.live import LiveConsole, log_to_file, progress_mode
    from orchestrator.docker.runner import Engine
    from orchestrator.report.console import Console

    mode = "quiet" if flags.get("quiet") else progress_mode(progress)
    console = LiveConsole(plan.platforms, secrets=plan.spec.secret_values) if mode == "tty" else \
        Console(quiet=mode == "quiet", secrets=plan.spec.secret_values)
    # The live view at default verbosity: info lines go to a file, named once the build ends.
    full_log = log_to_file() if mode == "tty" and not flags.get("verbose") else None
    started = time.monotonic()
    try:
        with console if isinstance(console, LiveConsole) else nullcontext():
            result = run_plan(Engine(secrets=plan.spec.secret_values), plan, console)
    finally:
        if full_log:
            echo(f"orch: the full log is in {full_log}", err=True)
    return result, time.monotonic() - started


def _write_reports(document: dict[str, Any], seconds: float | None, *, report: Path | None, output_env: Path | None,
                   metadata_file: Path | None) -> list[tuple[str, OSError]]:
    """Every output file written that can be; what could not (a full disk), not raised. The
    secret values the build was given are masked in all of them (redact.keep_secret)."""
    from orchestrator.redact import mask_document
    from orchestrator.report.ci_outputs import attempt, report_build

    document = mask_document(document)
    unwritten = report_build(document, output_env=str(output_env) if output_env else None, seconds=seconds)
    if report:
        from orchestrator.report.html import html_report

        attempt(unwritten, f"--report {report}", lambda: report.write_text(html_report(document, seconds=seconds)))
    if metadata_file:
        import json

        attempt(unwritten, f"--metadata-file {metadata_file}",
                lambda: metadata_file.write_text(json.dumps(document, indent=2) + "\n"))
    return unwritten


def _summary(plan: BuildPlan, result: BuildResult) -> None:
    if not plan.push:
        where = "the OCI layout" if plan.local_image and plan.local_image.startswith("oci-layout://") \
            else "the local image store"
        echo(f"built {', '.join(str(p) for p in plan.platforms)} into {where}: {plan.local_image}")
        echo("nothing was pushed" + (f" (add --push to verify and publish {plan.tags[0]})" if plan.tags
                                           else " (pass -t REGISTRY/IMAGE:TAG --push to publish)"))
        return
    how = f" (per-arch, merged with {plan.merge})" if result.strategy == "per-arch" else ""
    if result.part:
        echo(f"part {result.digest} staged in {plan.repository.name if plan.repository else ''} by digest, "
                   f"verified; no tag moved (orch release merges it): {result.part}")
    else:
        echo(f"published {result.digest}{how}")
    if result.fallback_reason:
        echo(f"  built per platform because {result.fallback_reason}")
    print_table([[p.platform, p.digest, *([p.state + (f" on {p.node}" if p.node else "")] if p.state else [])]
                 for p in result.platforms])
    for signature in result.signatures:
        echo(f"  signed with cosign before any tag moved: {signature}")
    if result.promotion and all(move.get("note") and move["state"] == "unchanged" for move in result.promotion):
        echo("  nothing moved: every platform's manifest is what the tags already hold (an unchanged commit, "
                   "built reproducibly; only the attestations differ)")
    for move in result.promotion:
        echo(f"  tag {move['tag']}: " + (f"moved from {move['before']}" if move["before"] else "new")
                   if move["state"] == "moved" else f"  tag {move['tag']}: already there"
                   + (f" ({move['before']})" if move.get("note") else ""))
    for kept in result.staging_kept:
        echo(f"  staging tag {kept} kept: the registry cannot delete tags, and the classic image store "
                   "pushes only to a name (the containerd image store stages by digest and leaves nothing)")
