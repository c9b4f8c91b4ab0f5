"""`orch build --bake FILE [TARGET]...`: a release of every target of the bake files, verified before
any tag of any of them moves."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from orchestrator.cli.output import print_json, print_table, stdout_failure, unwritten_error

if TYPE_CHECKING:
    from orchestrator.builds.options import BuilderOptions, OutputOptions


def release(ctx: typer.Context, files: tuple[str, ...], targets: tuple[str, ...], sets: tuple[str, ...], *,
            push: bool, dry_run: bool, as_json: bool, deep: bool, no_cache: bool, builder: BuilderOptions,
            outputs: OutputOptions, ignored: dict[str, Any], signing: Any = None, reproducible: bool = False) -> None:
    from orchestrator.builds.inputs import build_time
    from orchestrator.docker import probe
    from orchestrator.docker.runner import Engine
    from orchestrator.errors import BadInput
    from orchestrator.publish.stage import stage_directory
    from orchestrator.release.bake_files import resolve, targets_from
    from orchestrator.release.bake_release import ReleasePlan, node_routes, run_release
    from orchestrator.report.console import Console

    given = [option for option, value in ignored.items() if value]
    if given:
        raise BadInput(f"{', '.join(given)} cannot go with --bake: the bake files say what each target builds",
                       fix="put it in the bake file, or override it with --set TARGET.KEY=VALUE")
    if not (push or dry_run):
        raise BadInput("orch build --bake publishes a release: add --push (or --dry-run to see the plan)",
                       fix="to build locally without publishing, run docker buildx bake itself")
    metadata_file, output_env, report = _output_files(outputs)
    engine = Engine()
    caps = probe.capabilities(engine, builder.name, version=True)
    resolved = tuple(targets_from(resolve(engine, files, targets, sets)))
    routes = node_routes(caps, resolved)
    if reproducible:  # each target at its epoch, every output rewriting timestamps
        from orchestrator.release.bake_reproducible import reproducible_targets

        resolved = reproducible_targets(resolved, caps, routes)
    plan = ReleasePlan(resolved, files, stage_directory(int(build_time().timestamp())), deep=deep,
                       no_cache=no_cache, builder=builder.name, install_emulators=bool(builder.install_emulators),
                       fs_entitlements=caps.bake_needs_fs_entitlements, nodes=routes, signing=signing)
    if dry_run:
        if as_json:
            print_json(plan.to_json())
        else:
            typer.echo("\n".join(plan.commands()))
        return
    quiet = bool(ctx.obj and ctx.obj.get("quiet"))
    started = time.monotonic()
    results = run_release(engine, plan, Console(quiet=quiet))
    seconds = time.monotonic() - started
    document = {"targets": {r.name: r.to_json() for r in results}}
    unwritten = _write_reports(document, output_env=output_env, report=report, metadata_file=metadata_file,
                               seconds=seconds)
    if as_json:
        print_json(document)
        failure = stdout_failure()
        if failure is not None:
            unwritten.append(("--json (stdout)", failure))
    else:
        _summary(results)
    if unwritten:
        moved = [m["tag"] for r in results for m in r.promotion if m["state"] == "moved"]
        raise unwritten_error(f"released {len(results)} image{'s' if len(results) != 1 else ''}; tags moved: "
                              f"{', '.join(moved) or 'none (all already there)'}", unwritten)


def _output_files(outputs: OutputOptions) -> tuple[Path | None, Path | None, Path | None]:
    """--metadata-file, --output-env and --report, each checked writable before anything is built."""
    from orchestrator.builds.inputs import check_metadata_file

    metadata_file, output_env, report = (Path(path) if path else None for path in (
        outputs.metadata_file, outputs.output_env, outputs.report))
    if metadata_file:
        check_metadata_file(str(metadata_file))
    for path, option in ((output_env, "--output-env"), (report, "--report")):
        if path:
            check_metadata_file(str(path), option)
    return metadata_file, output_env, report


def _write_reports(document: dict[str, Any], *, output_env: Path | None, report: Path | None,
                   metadata_file: Path | None, seconds: float | None = None) -> list[tuple[str, OSError]]:
    """Every output file written that can be; what could not (a full disk), not raised; known
    secret values masked (redact.keep_secret)."""
    from orchestrator.redact import mask_document
    from orchestrator.report.ci_outputs import attempt, report_release

    document = mask_document(document)
    unwritten = report_release(document["targets"], output_env=str(output_env) if output_env else None)
    if report:
        from orchestrator.report.html import release_report

        attempt(unwritten, f"--report {report}", lambda: report.write_text(release_report(document["targets"],
                                                                                     seconds=seconds)))
    if metadata_file:
        import json

        attempt(unwritten, f"--metadata-file {metadata_file}",
                lambda: metadata_file.write_text(json.dumps(document, indent=2) + "\n"))
    return unwritten


def _summary(results: list[Any]) -> None:
    typer.echo(f"released {len(results)} image{'s' if len(results) != 1 else ''}; every tag moved together")
    print_table([[r.name, r.digest or "", ",".join(r.platforms)] for r in results], ["TARGET", "DIGEST", "PLATFORMS"])
    for result in results:
        for move in result.promotion:
            state = f"moved from {move['before']}" if move["state"] == "moved" and move["before"] else \
                "new" if move["state"] == "moved" else "already there"
            typer.echo(f"  {result.name}: tag {move['tag']}: {state}")
