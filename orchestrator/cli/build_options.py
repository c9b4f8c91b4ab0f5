"""`orch build`'s options, each declared once as a typed alias the command lists, and buildx's
pass-through options added from their table (model.buildx_options) by `with_buildx_options`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, List, TypeVar

import typer

from orchestrator.cli import complete
from orchestrator.model.buildx_options import BUILDX_OPTIONS, BuildxOption

F = TypeVar("F", bound=Callable[..., Any])

# typing machinery that typer uses (UP006/UP007 would rewrite them).
Arguments = Annotated[List[str] | None, typer.Argument(  # noqa: UP006
    metavar="[CONTEXT | TARGET...]", help="Build context (default: the profile's, else .); with --bake, the targets "
    "and groups to release (default: bake's default group).")]
ProfileName = Annotated[str | None, typer.Option(
    "--profile", "-p", help="Profile name or YAML path.", autocompletion=complete.profile_names)]
File = Annotated[str | None, typer.Option("--file", "-f", help="Dockerfile (relative to the current directory).")]
Tags = Annotated[List[str], typer.Option(  # noqa: UP006
    "--tag", "-t", help="Image tag to publish, as written; may be repeated.")]
Images = Annotated[List[str], typer.Option(  # noqa: UP006
    "--image", help="A repository the tag rules tag (metadata-action's images); may be repeated.")]
TagRules = Annotated[List[str], typer.Option(  # noqa: UP006
    "--tag-rule", help="A metadata-action tag rule, e.g. type=semver,pattern={{major}}.{{minor}}; may be repeated "
    "(with --image; without rules, metadata-action's defaults: branch, tag, pr, schedule).")]
Flavor = Annotated[List[str], typer.Option(  # noqa: UP006
    "--flavor", help="A metadata-action flavor line: latest=auto|true|false, prefix=..., suffix=....")]
Meta = Annotated[str | None, typer.Option(
    "--meta", metavar="env|FILE", help="Tags, labels and annotations from docker/metadata-action's output: env "
    "reads $DOCKER_METADATA_OUTPUT_JSON, FILE its JSON or bake file.")]
Platforms = Annotated[List[str], typer.Option(  # noqa: UP006
    "--platform", autocompletion=complete.platform_names,
    help="Platforms, comma-separated; may be repeated. Overrides the profile's.")]
BuildArgs = Annotated[List[str], typer.Option(  # noqa: UP006
    "--build-arg", help="KEY=VALUE; may be repeated. Values of names that look secret (PASSWORD, TOKEN, KEY...) "
    "are masked in output; use --secret for them.")]
Secrets = Annotated[List[str], typer.Option(  # noqa: UP006
    "--secret", help="A build secret, as buildx takes it: id=NAME,env=VAR or id=NAME,src=FILE (read with RUN "
    "--mount=type=secret,id=NAME); may be repeated.")]
Push = Annotated[bool, typer.Option("--push", help="Build, verify, stage by digest, verify again, then move the tags.")]
Builder = Annotated[str | None, typer.Option("--builder", help="buildx builder to use.")]
InstallEmulators = Annotated[bool | None, typer.Option(
    "--install-emulators/--no-install-emulators",
    help="Install missing QEMU handlers (privileged tonistiigi/binfmt run) instead of stopping.")]
OciLayout = Annotated[Path | None, typer.Option(
    "--oci-layout", metavar="DIR", help="Without --push: write the multi-platform image to this OCI layout "
    "directory (read it with orch inspect oci-layout://DIR).")]
Strategy = Annotated[str | None, typer.Option(
    "--strategy", help="single: one buildx call for every platform; per-arch: one per platform, merged; auto "
    "(default): single, falling back to per-arch when only some platforms fail or the builder takes one platform "
    "per call.")]
Merge = Annotated[str | None, typer.Option(
    "--merge", help="Per-arch merge: imagetools (OCI index, keeps attestations; default) or manifest (docker "
    "manifest create/annotate/push: a Docker manifest list, no attestations).")]
Jobs = Annotated[int | None, typer.Option(
    "--jobs", "-j", help="Per-arch builds at once (default: 2 per builder node, at least 2).")]
NoCache = Annotated[bool, typer.Option(
    "--no-cache", help="Build without BuildKit's cache, and rebuild every platform on the per-arch path.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan as the exact commands; run nothing.")]
MetadataFile = Annotated[Path | None, typer.Option(
    "--metadata-file", help="Write the result JSON here.")]
Progress = Annotated[str, typer.Option(
    "--progress", help="auto (a live view per platform on a terminal, plain lines in CI and when piped), tty, "
    "plain or quiet.")]
Report = Annotated[Path | None, typer.Option(
    "--report", metavar="FILE.html", help="Write a self-contained HTML report: a timeline per platform (emulated "
    "steps marked), the verification, the tags before and after.")]
OutputEnv = Annotated[Path | None, typer.Option(
    "--output-env", metavar="FILE", help="Write ORCH_DIGEST, ORCH_IMAGE, ORCH_TAGS, ORCH_PLATFORMS as a dotenv "
    "file (GitLab's artifacts:reports:dotenv). On GitHub Actions the step outputs and summary are written anyway.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the plan (with --dry-run) or the result as JSON.")]
Part = Annotated[Path | None, typer.Option(
    "--part", metavar="DIR", help="One runner's part of a release: stage the verified result by digest in the "
    "--image repository, move no tag, and write its record into DIR for `orch release` to merge.")]
Sign = Annotated[bool, typer.Option(
    "--sign", help="Sign the verified index with cosign before any tag moves (a key pair: --sign-key, password in "
    "COSIGN_PASSWORD; without a key, keyless with the CI's identity token and --tlog).")]
SignKey = Annotated[str | None, typer.Option(
    "--sign-key", metavar="KEY", envvar="ORCH_SIGN_KEY",
    help="The cosign private key (a file `cosign generate-key-pair` wrote, or a KMS URI) for --sign.")]
SignRecursive = Annotated[bool, typer.Option(
    "--sign-recursive", help="With --sign: sign each platform's manifest too, not only the index (cosign's "
    "--recursive).")]
Tlog = Annotated[bool | None, typer.Option(
    "--tlog/--no-tlog", help="Upload the signature to the transparency log (default: off with a key, since it "
    "publishes the registry name and digest; keyless signing needs it).")]
Deep = Annotated[bool, typer.Option("--deep", help="Verify down to each image's binaries before any tag moves.")]
Labels = Annotated[List[str], typer.Option("--label", help="KEY=VALUE image label; may be repeated.")]  # noqa: UP006
Annotations = Annotated[List[str], typer.Option(  # noqa: UP006
    "--annotation", help="[LEVEL:]KEY=VALUE; without a level, on the index and each manifest.")]
CacheFrom = Annotated[List[str], typer.Option("--cache-from", help="Cache source, as buildx takes it.")]  # noqa: UP006
CacheTo = Annotated[List[str], typer.Option("--cache-to", help="Cache export, as buildx takes it.")]  # noqa: UP006
Cache = Annotated[str | None, typer.Option(
    "--cache", metavar="REF", help="A registry cache read and written (mode=max) at REF; builds of one platform "
    "use REF-OS-ARCH[-VARIANT] of their own, so nodes never overwrite each other's. Replaces the profile's cache.")]
BuildContexts = Annotated[List[str], typer.Option(  # noqa: UP006
    "--build-context", help="NAME=PATH or NAME=docker-image://REF: a named context.")]
Provenance = Annotated[str | None, typer.Option(
    "--provenance", help="true, false, mode=min or mode=max (default: the profile's, else mode=min).")]
Sbom = Annotated[bool | None, typer.Option("--sbom/--no-sbom", help="Attach an SBOM attestation.")]
Bake = Annotated[List[str], typer.Option(  # noqa: UP006
    "--bake", metavar="FILE", help="Bake file(s) (HCL, JSON, compose), resolved by `docker buildx bake --print`: "
    "every target is built, verified, and then all their tags move together, or none.")]
BakeSet = Annotated[List[str], typer.Option(  # noqa: UP006
    "--set", help="With --bake: override a target value, as bake's --set (e.g. app.platform=linux/arm64, "
    "*.args.V=1).")]


def _parameter(option: BuildxOption) -> inspect.Parameter:
    kinds: dict[str, tuple[Any, Any]] = {"text": (str | None, None), "list": (List[str], []),  # noqa: UP006
                                         "flag": (bool, False)}
    annotation, default = kinds[option.kind]
    declared = typer.Option(option.flag, help=option.help, metavar=option.metavar)
    return inspect.Parameter(option.key, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, declared])


def with_buildx_options(command: F) -> F:
    """`command` also takes every pass-through buildx option, as keyword arguments named by the
    option's key (its `**buildx` collects them)."""
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    command.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*kept, *(_parameter(option) for option in BUILDX_OPTIONS)])
    return command


def given_buildx(values: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """The pass-through options the command line set, by key (lists as tuples)."""
    return tuple((key, tuple(value) if isinstance(value, list) else value) for key, value in values.items()
                 if value not in (None, False, [], ()))
