"""`orch build`: parse options into a BuildRequest, plan, then run the plan (or print it)."""
from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from orchestrator.cli import complete
from orchestrator.cli.output import print_json, print_table


def build(
    ctx: typer.Context,
    arguments: List[str] = typer.Argument(  # noqa: UP006
        None, metavar="[CONTEXT | TARGET...]", help="Build context (default: the profile's, else .); with --bake, "
        "the targets and groups to release (default: bake's default group)."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Profile name or YAML path.",  # noqa: UP007
                                       autocompletion=complete.profile_names),
    file: str | None = typer.Option(None, "--file", "-f", help="Dockerfile (relative to the current directory)."),  # noqa: UP007
    tag: List[str] = typer.Option([], "--tag", "-t", help="Image tag to publish, as written; may be repeated."),  # noqa: UP006
    image: List[str] = typer.Option(  # noqa: UP006
        [], "--image", help="A repository the tag rules tag (metadata-action's images); may be repeated."),
    tag_rule: List[str] = typer.Option(  # noqa: UP006
        [], "--tag-rule", help="A metadata-action tag rule, e.g. type=semver,pattern={{major}}.{{minor}}; may be "
        "repeated (with --image; without rules, metadata-action's defaults: branch, tag, pr, schedule)."),
    flavor: List[str] = typer.Option([], "--flavor", help="A metadata-action flavor line: latest=auto|true|false, "  # noqa: UP006
                                     "prefix=..., suffix=...."),
    meta: str | None = typer.Option(  # noqa: UP007
        None, "--meta", metavar="env|FILE", help="Tags, labels and annotations from docker/metadata-action's output: "
        "env reads $DOCKER_METADATA_OUTPUT_JSON, FILE its JSON or bake file."),
    platform: List[str] = typer.Option([], "--platform", autocompletion=complete.platform_names,  # noqa: UP006
                                       help="Platforms, comma-separated; may be repeated. "
                                       "Overrides the profile's."),
    build_arg: List[str] = typer.Option([], "--build-arg", help="KEY=VALUE; may be repeated. Values of names that look "  # noqa: UP006
                                        "secret (PASSWORD, TOKEN, KEY...) are masked in output; use --secret for them."),
    secret: List[str] = typer.Option([], "--secret", help="A build secret, as buildx takes it: id=NAME,env=VAR or "  # noqa: UP006
                                     "id=NAME,src=FILE (read with RUN --mount=type=secret,id=NAME); may be repeated."),
    push: bool = typer.Option(False, "--push", help="Push to a staging tag, verify, then move the tags."),
    builder: str | None = typer.Option(None, "--builder", help="buildx builder to use."),  # noqa: UP007
    install_emulators: bool | None = typer.Option(  # noqa: UP007
        None, "--install-emulators/--no-install-emulators",
        help="Install missing QEMU handlers (privileged tonistiigi/binfmt run) instead of stopping."),
    oci_layout: Path | None = typer.Option(  # noqa: UP007
        None, "--oci-layout", metavar="DIR", help="Without --push: write the multi-platform image to this OCI "
        "layout directory (read it with orch inspect oci-layout://DIR)."),
    strategy: str | None = typer.Option(  # noqa: UP007
        None, "--strategy", help="single: one buildx call for every platform; per-arch: one per platform, merged; "
        "auto (default): single, falling back to per-arch when only some platforms fail or the builder takes one "
        "platform per call."),
    merge: str | None = typer.Option(  # noqa: UP007
        None, "--merge", help="Per-arch merge: imagetools (OCI index, keeps attestations; default) or manifest "
        "(docker manifest create/annotate/push: a Docker manifest list, no attestations)."),
    jobs: int | None = typer.Option(  # noqa: UP007
        None, "--jobs", "-j", help="Per-arch builds at once (default: 2 per builder node, at least 2)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build without BuildKit's cache, and rebuild every "
                                  "platform on the per-arch path."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan as the exact commands; run nothing."),
    metadata_file: Path | None = typer.Option(None, "--metadata-file", help="Write the result JSON here."),  # noqa: UP007
    progress: str = typer.Option("auto", "--progress", help="auto (a live view per platform on a terminal, plain "
                                 "lines in CI and when piped), tty, plain or quiet."),
    report: Path | None = typer.Option(  # noqa: UP007
        None, "--report", metavar="FILE.html", help="Write a self-contained HTML report: a timeline per platform "
        "(emulated steps marked), the verification, the tags before and after."),
    output_env: Path | None = typer.Option(  # noqa: UP007
        None, "--output-env", metavar="FILE", help="Write ORCH_DIGEST, ORCH_IMAGE, ORCH_TAGS, ORCH_PLATFORMS as a "
        "dotenv file (GitLab's artifacts:reports:dotenv). On GitHub Actions the step outputs and summary are "
        "written anyway."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan (with --dry-run) or the result as JSON."),
    deep: bool = typer.Option(False, "--deep", help="Verify down to each image's binaries before any tag moves."),
    target: str | None = typer.Option(None, "--target", help="Dockerfile stage to build."),  # noqa: UP007
    label: List[str] = typer.Option([], "--label", help="KEY=VALUE image label; may be repeated."),  # noqa: UP006
    annotation: List[str] = typer.Option(  # noqa: UP006
        [], "--annotation", help="[LEVEL:]KEY=VALUE; without a level, on the index and each manifest."),
    cache_from: List[str] = typer.Option([], "--cache-from", help="Cache source, as buildx takes it."),  # noqa: UP006
    cache_to: List[str] = typer.Option([], "--cache-to", help="Cache export, as buildx takes it."),  # noqa: UP006
    ssh: List[str] = typer.Option([], "--ssh", help="SSH agent socket or keys: default, or ID=PATH."),  # noqa: UP006
    build_context: List[str] = typer.Option(  # noqa: UP006
        [], "--build-context", help="NAME=PATH or NAME=docker-image://REF: a named context."),
    pull: bool = typer.Option(False, "--pull", help="Always pull the base images."),
    network: str | None = typer.Option(None, "--network", help="Network for RUN steps."),  # noqa: UP007
    add_host: List[str] = typer.Option([], "--add-host", help="HOST:IP for /etc/hosts in RUN steps."),  # noqa: UP006
    allow: List[str] = typer.Option([], "--allow", help="Entitlement: network.host, security.insecure."),  # noqa: UP006
    shm_size: str | None = typer.Option(None, "--shm-size", help="Size of /dev/shm for RUN steps."),  # noqa: UP007
    ulimit: List[str] = typer.Option([], "--ulimit", help="Ulimit for RUN steps, e.g. nofile=1024:1024."),  # noqa: UP006
    provenance: str | None = typer.Option(  # noqa: UP007
        None, "--provenance", help="true, false, mode=min or mode=max (default: the profile's, else mode=min)."),
    sbom: bool | None = typer.Option(None, "--sbom/--no-sbom", help="Attach an SBOM attestation."),  # noqa: UP007
    bake: List[str] = typer.Option(  # noqa: UP006
        [], "--bake", metavar="FILE", help="Bake file(s) (HCL, JSON, compose), resolved by `docker buildx bake "
        "--print`: every target is built, verified, and then all their tags move together, or none."),
    bake_set: List[str] = typer.Option([], "--set", help="With --bake: override a target value, as bake's --set "  # noqa: UP006
                                       "(e.g. app.platform=linux/arm64, *.args.V=1)."),
) -> None:
    """Build every platform in ONE buildx invocation (or one per platform, merged); with --push, verify before any
    tag moves."""
    from orchestrator.build.executor import run_plan
    from orchestrator.build.request import BuildRequest, plan_build
    from orchestrator.cli import passthrough
    from orchestrator.docker.runner import Engine
    from orchestrator.errors import BadInput
    from orchestrator.report.console import Console
    from orchestrator.workers import preload

    if bake:
        if passthrough.BUILDX_ARGS:
            raise BadInput("words after -- go to buildx build, not to bake", fix="put them in the bake file")
        from orchestrator.cli.release import release

        release(ctx, tuple(bake), tuple(arguments or ()), tuple(bake_set), push=push, dry_run=dry_run,
                as_json=as_json, deep=deep, no_cache=no_cache, builder=builder,
                install_emulators=bool(install_emulators), metadata_file=metadata_file, output_env=output_env,
                report=report,
                ignored={"--profile": profile, "--file": file, "--tag": tag, "--platform": platform,
                         "--build-arg": build_arg, "--secret": secret, "--oci-layout": oci_layout,
                         "--strategy": strategy, "--merge": merge, "--jobs": jobs, "--target": target,
                         "--label": label, "--annotation": annotation, "--cache-from": cache_from,
                         "--cache-to": cache_to, "--ssh": ssh, "--build-context": build_context, "--pull": pull,
                         "--network": network, "--add-host": add_host, "--allow": allow, "--shm-size": shm_size,
                         "--ulimit": ulimit, "--provenance": provenance, "--sbom": sbom is not None,
                         "--image": image, "--tag-rule": tag_rule, "--flavor": flavor, "--meta": meta})
        return
    if bake_set:
        raise BadInput("--set goes with --bake", fix="pass --bake FILE, or use the profile's keys")
    import os

    profile = profile or os.environ.get("ORCH_PROFILE") or None
    platform = platform or [p for p in [os.environ.get("ORCH_PLATFORMS")] if p]
    if arguments and len(arguments) > 1:
        raise BadInput(f"one build context, not {len(arguments)} ({' '.join(arguments)})",
                       fix="pass one directory; targets are named with --bake FILE TARGET...")
    context = arguments[0] if arguments else None
    if push and not dry_run:
        preload("orchestrator.registry.client")  # for the registry check, while the plan is made
    request = BuildRequest(profile=profile, context=context, dockerfile=file, tags=tuple(tag),
                           platforms=tuple(platform), build_args=tuple(build_arg), push=push, builder=builder,
                           install_emulators=install_emulators, oci_layout=str(oci_layout) if oci_layout else None,
                           strategy=strategy, merge=merge, jobs=jobs, no_cache=no_cache, secrets=tuple(secret),
                           metadata_file=str(metadata_file) if metadata_file else None, deep=deep,
                           target=target, labels=tuple(label), annotations=tuple(annotation),
                           cache_from=tuple(cache_from), cache_to=tuple(cache_to), ssh=tuple(ssh),
                           build_contexts=tuple(build_context), pull=pull, network=network, add_hosts=tuple(add_host),
                           allow=tuple(allow), shm_size=shm_size, ulimits=tuple(ulimit), provenance=provenance,
                           sbom=sbom, extra_args=passthrough.BUILDX_ARGS, images=tuple(image),
                           tag_rules=tuple(tag_rule), flavor=tuple(flavor), meta=meta)
    plan = plan_build(request)
    from orchestrator.build.inputs import check_metadata_file

    for path, option in ((output_env, "--output-env"), (report, "--report")):
        if path and not dry_run:
            check_metadata_file(str(path), option)
    if plan.warnings:
        from orchestrator.logging import get_logger

        for warning in plan.warnings:
            get_logger().warning("build.check_this", advice=warning)
    if dry_run:
        from orchestrator.build.complete import completed_for_dry_run

        plan = completed_for_dry_run(Engine(secrets=plan.spec.secret_values), plan)
        if as_json:
            print_json(plan.to_json())
        else:
            for command in (*plan.builder_lines(), *plan.commands()):
                typer.echo(command)
        return
    import time
    from contextlib import nullcontext

    from orchestrator.cli.live import LiveConsole, progress_mode

    mode = "quiet" if ctx.obj and ctx.obj.get("quiet") else progress_mode(progress)
    console = LiveConsole(plan.platforms, secrets=plan.spec.secret_values) if mode == "tty" else \
        Console(quiet=mode == "quiet", secrets=plan.spec.secret_values)
    started = time.monotonic()
    with console if isinstance(console, LiveConsole) else nullcontext():
        result = run_plan(Engine(secrets=plan.spec.secret_values), plan, console)
    document = result.to_json()
    from orchestrator.report.ci import report_build

    report_build(document, output_env=str(output_env) if output_env else None, seconds=time.monotonic() - started)
    if report:
        from orchestrator.report.html import html_report

        report.write_text(html_report(document))
    if metadata_file:
        import json

        metadata_file.write_text(json.dumps(document, indent=2) + "\n")
    if as_json:
        print_json(document)
        return
    if plan.push:
        how = f" (per-arch, merged with {plan.merge})" if result.strategy == "per-arch" else ""
        typer.echo(f"published {result.digest}{how}")
        if result.fallback_reason:
            typer.echo(f"  built per platform because {result.fallback_reason}")
        rows = []
        for p in result.platforms:
            row = [p.platform, p.digest]
            if p.state:
                row.append(p.state + (f" on {p.node}" if p.node else ""))
            rows.append(row)
        print_table(rows)
        for move in result.promotion:
            typer.echo(f"  tag {move['tag']}: " + (f"moved from {move['before']}" if move["before"] else "new")
                       if move["state"] == "moved" else f"  tag {move['tag']}: already there")
        for kept in result.staging_kept:
            typer.echo(f"  staging tag {kept} kept: the registry cannot delete tags, and the classic image store "
                       "pushes only to a name (the containerd image store stages by digest and leaves nothing)")
    else:
        where = "the OCI layout" if plan.local_image and plan.local_image.startswith("oci-layout://") \
            else "the local image store"
        typer.echo(f"built {', '.join(str(p) for p in plan.platforms)} into {where}: {plan.local_image}")
        typer.echo("nothing was pushed" + (f" (add --push to verify and publish {plan.tags[0]})" if plan.tags
                                           else " (pass -t REGISTRY/IMAGE:TAG --push to publish)"))
