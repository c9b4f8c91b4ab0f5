"""`orch build`: parse options into a BuildRequest, plan, then run the plan (or print it)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.builds.options import BuilderOptions, OutputOptions, SigningOptions, TagOptions, VerificationOptions
from orchestrator.cli.build_options import (
    Annotations,
    Arguments,
    AsJson,
    Bake,
    BakeSet,
    BuildArgs,
    BuildContexts,
    Cache,
    CacheFrom,
    CacheTo,
    DryRun,
    File,
    Jobs,
    Labels,
    Merge,
    Meta,
    NoCache,
    OciLayout,
    Part,
    Platforms,
    ProfileName,
    Progress,
    Provenance,
    Push,
    Reproducible,
    Sbom,
    Secrets,
    Strategy,
    given_buildx,
    with_buildx_options,
    with_groups,
)
from orchestrator.cli.output import print_json, print_table, stdout_failure, unwritten_error
from orchestrator.errors import OrchError
from orchestrator.logging import get_logger

if TYPE_CHECKING:
    from orchestrator.builds.plan import BuildPlan
    from orchestrator.builds.request import BuildRequest
    from orchestrator.builds.result import BuildResult


# The groups (tags, builder, outputs, verification, signing) are defined once in cli/options.py:
# with_groups puts their options where their parameters stand, and passes their dataclasses.
@with_buildx_options
@with_groups
def build(ctx: typer.Context, *, arguments: Arguments = None, profile: ProfileName = None, file: File = None,
          tags: TagOptions, meta: Meta = None, platform: Platforms = [], build_arg: BuildArgs = [],  # noqa: B006
          secret: Secrets = [], push: Push = False, builder: BuilderOptions, oci_layout: OciLayout = None,  # noqa: B006
          strategy: Strategy = None, merge: Merge = None, jobs: Jobs = None, no_cache: NoCache = False,
          dry_run: DryRun = False, outputs: OutputOptions, progress: Progress = "auto", as_json: AsJson = False,
          verification: VerificationOptions, label: Labels = [], annotation: Annotations = [],  # noqa: B006
          cache_from: CacheFrom = [], cache_to: CacheTo = [], cache: Cache = None,  # noqa: B006
          build_context: BuildContexts = [], provenance: Provenance = None, sbom: Sbom = None,  # noqa: B006
          bake: Bake = [], bake_set: BakeSet = [], part: Part = None, signing: SigningOptions,  # noqa: B006
          reproducible: Reproducible = False, **buildx: Any) -> None:
    """Build every platform in ONE buildx invocation (or one per platform, merged); with --push, verify before any
    tag moves."""
    if bake:  # first, while the only names here are the options
        _release(ctx, {k: v for k, v in locals().items() if k not in ("ctx", "buildx")}, buildx)
        return
    from orchestrator.builds.request import BuildRequest
    from orchestrator.cli import passthrough

    _refuse_alone(arguments, bake_set)
    if push and not dry_run:
        from orchestrator.workers import preload

        preload("orchestrator.registry.client")  # for the registry check, while the plan is made
    request = BuildRequest(
        profile=profile or os.environ.get("ORCH_PROFILE") or None, context=arguments[0] if arguments else None,
        dockerfile=file, platforms=tuple(platform or [p for p in [os.environ.get("ORCH_PLATFORMS")] if p]),
        build_args=tuple(build_arg), push=push, oci_layout=str(oci_layout) if oci_layout else None,
        strategy=strategy, merge=merge, jobs=jobs, no_cache=no_cache, secrets=tuple(secret),
        buildx=given_buildx(buildx), labels=tuple(label), annotations=tuple(annotation),
        cache_from=tuple(cache_from), cache_to=tuple(cache_to), cache=cache, build_contexts=tuple(build_context),
        provenance=provenance, sbom=sbom, extra_args=passthrough.BUILDX_ARGS, meta=meta,
        part=str(part) if part is not None else None, tags=tags, builder=builder, outputs=outputs,
        verification=verification, signing=signing, reproducible=reproducible)
    _build(ctx, request, dry_run=dry_run, as_json=as_json, progress=progress)


def _release(ctx: typer.Context, given: dict[str, Any], buildx: dict[str, Any]) -> None:
    """`--bake`: a release of the bake files' targets; options that only a single build takes are named."""
    from orchestrator.cli import passthrough
    from orchestrator.cli.options import TAGS
    from orchestrator.cli.release import release
    from orchestrator.errors import BadInput

    if passthrough.BUILDX_ARGS:
        raise BadInput("words after -- go to buildx build, not to bake", fix="put them in the bake file")
    if given["reproducible"]:
        raise BadInput("--reproducible is not yet taken with --bake", fix="build each target with orch build "
                       "--reproducible (set SOURCE_DATE_EPOCH for all of them), or drop --reproducible")
    taken = ("arguments", "bake", "bake_set", "push", "dry_run", "as_json", "verification", "no_cache", "builder",
             "outputs", "progress", "signing")
    ignored: dict[str, Any] = {}
    for name, value in given.items():
        if name == "tags":
            ignored.update(TAGS.given(value))
        elif name not in taken:
            ignored[f"--{name.replace('_', '-')}"] = value
    ignored.update({f"--{key.replace('_', '-')}": value for key, value in buildx.items()})
    release(ctx, tuple(given["bake"]), tuple(given["arguments"] or ()), tuple(given["bake_set"]),
            push=given["push"], dry_run=given["dry_run"], as_json=given["as_json"],
            deep=given["verification"].deep, no_cache=given["no_cache"], builder=given["builder"],
            outputs=given["outputs"], ignored=ignored, signing=given["signing"].signing())


def _refuse_alone(arguments: list[str] | None, bake_set: list[str]) -> None:
    from orchestrator.errors import BadInput

    if bake_set:
        raise BadInput("--set goes with --bake", fix="pass --bake FILE, or use the profile's keys")
    if arguments and len(arguments) > 1:
        raise BadInput(f"one build context, not {len(arguments)} ({' '.join(arguments)})",
                       fix="pass one directory; targets are named with --bake FILE TARGET...")


def _build(ctx: typer.Context, request: BuildRequest, *, dry_run: bool, as_json: bool, progress: str) -> None:
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
                typer.echo(command)
        return
    try:
        result, seconds = _run(ctx, plan, progress)
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


def _run(ctx: typer.Context, plan: BuildPlan, progress: str) -> tuple[BuildResult, float]:
    import time
    from contextlib import nullcontext

    from orchestrator.builds.executor import run_plan
    from orchestrator.cli.live import LiveConsole, log_to_file, progress_mode
    from orchestrator.docker.runner import Engine
    from orchestrator.report.console import Console

    mode = "quiet" if ctx.obj and ctx.obj.get("quiet") else progress_mode(progress)
    console = LiveConsole(plan.platforms, secrets=plan.spec.secret_values) if mode == "tty" else \
        Console(quiet=mode == "quiet", secrets=plan.spec.secret_values)
    # The live view at default verbosity: info lines go to a file, named once the build ends.
    full_log = log_to_file() if mode == "tty" and not (ctx.obj and ctx.obj.get("verbose")) else None
    started = time.monotonic()
    try:
        with console if isinstance(console, LiveConsole) else nullcontext():
            result = run_plan(Engine(secrets=plan.spec.secret_values), plan, console)
    finally:
        if full_log:
            typer.echo(f"orch: the full log is in {full_log}", err=True)
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
        typer.echo(f"built {', '.join(str(p) for p in plan.platforms)} into {where}: {plan.local_image}")
        typer.echo("nothing was pushed" + (f" (add --push to verify and publish {plan.tags[0]})" if plan.tags
                                           else " (pass -t REGISTRY/IMAGE:TAG --push to publish)"))
        return
    how = f" (per-arch, merged with {plan.merge})" if result.strategy == "per-arch" else ""
    if result.part:
        typer.echo(f"part {result.digest} staged in {plan.repository.name if plan.repository else ''} by digest, "
                   f"verified; no tag moved (orch release merges it): {result.part}")
    else:
        typer.echo(f"published {result.digest}{how}")
    if result.fallback_reason:
        typer.echo(f"  built per platform because {result.fallback_reason}")
    print_table([[p.platform, p.digest, *([p.state + (f" on {p.node}" if p.node else "")] if p.state else [])]
                 for p in result.platforms])
    for signature in result.signatures:
        typer.echo(f"  signed with cosign before any tag moved: {signature}")
    if result.promotion and all(move.get("note") and move["state"] == "unchanged" for move in result.promotion):
        typer.echo("  nothing moved: every platform's manifest is what the tags already hold (an unchanged commit, "
                   "built reproducibly; only the attestations differ)")
    for move in result.promotion:
        typer.echo(f"  tag {move['tag']}: " + (f"moved from {move['before']}" if move["before"] else "new")
                   if move["state"] == "moved" else f"  tag {move['tag']}: already there"
                   + (f" ({move['before']})" if move.get("note") else ""))
    for kept in result.staging_kept:
        typer.echo(f"  staging tag {kept} kept: the registry cannot delete tags, and the classic image store "
                   "pushes only to a name (the containerd image store stages by digest and leaves nothing)")
