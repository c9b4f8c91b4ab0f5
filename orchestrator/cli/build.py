"""`orch build` as a Typer command: its options (defined once in cli/options.py) read into a
BuildRequest, then cli/build_run.py plans and runs it, as the fast path (cli/fast.py) does; with
--bake, a release of the bake files' targets."""
from __future__ import annotations

from typing import Any

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
    with_buildx_options,
    with_groups,
)


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
    from orchestrator.cli.build_run import build_request, run_build

    given = {k: v for k, v in locals().items() if k not in ("ctx", "buildx")}
    run_build(ctx.obj or {}, build_request(given, buildx), dry_run=dry_run, as_json=as_json, progress=progress)


def _release(ctx: typer.Context, given: dict[str, Any], buildx: dict[str, Any]) -> None:
    """`--bake`: a release of the bake files' targets; options that only a single build takes are named."""
    from orchestrator.cli import passthrough
    from orchestrator.cli.options import TAGS
    from orchestrator.cli.release import release
    from orchestrator.errors import BadInput

    if passthrough.BUILDX_ARGS:
        raise BadInput("words after -- go to buildx build, not to bake", fix="put them in the bake file")
    taken = ("arguments", "bake", "bake_set", "push", "dry_run", "as_json", "verification", "no_cache", "builder",
             "outputs", "progress", "signing", "reproducible")
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
            outputs=given["outputs"], ignored=ignored, signing=given["signing"].signing(),
            reproducible=given["reproducible"])
