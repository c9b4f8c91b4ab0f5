"""Options as typer declares them: those defined once in cli/options.py (the groups, and whole
commands such as `orch release`) turned into typer parameters by `with_groups` and
`with_options`; `orch build`'s own options, each a typed alias the command lists; and buildx's
pass-through options added from their table (model.buildx_options) by `with_buildx_options`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, List, TypeVar

import typer

from orchestrator.cli import complete
from orchestrator.cli.options import (
    AS_JSON,
    DRY_RUN,
    GROUPS,
    PLATFORMS,
    PROFILE,
    REPRODUCIBLE,
    Group,
    Item,
    Option,
    flat,
)
from orchestrator.model.buildx_options import BUILDX_OPTIONS, BuildxOption

F = TypeVar("F", bound=Callable[..., Any])

# typing machinery that typer uses (UP006/UP007 would rewrite them).
Arguments = Annotated[List[str] | None, typer.Argument(
    metavar="[CONTEXT | TARGET...]", help="Build context (default: the profile's, else .); with --bake, the targets "
    "and groups to release (default: bake's default group).")]
_TYPES: dict[str, Any] = {"text": str | None, "path": Path | None, "int": int | None, "list": List[str],
                          "flag": bool, "switch": bool | None}
_COMPLETIONS = {"profiles": complete.profile_names, "platforms": complete.platform_names}


def declared(option: Option) -> Any:
    """`option` as typer declares it."""
    names = (f"{option.names[0]}/{option.negative}", *option.names[1:]) if option.negative else option.names
    return typer.Option(*names, help=option.help, metavar=option.metavar, envvar=option.envvar,
                        autocompletion=_COMPLETIONS.get(option.complete or ""))


def parameter(option: Option) -> inspect.Parameter:
    """`option` as a keyword parameter of a Typer command, named by its key."""
    annotation = str if option.kind == "text" and option.default is not None else _TYPES[option.kind]
    default = list(option.initial) if option.kind == "list" else option.initial
    return inspect.Parameter(option.key, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, declared(option)])


ProfileName = Annotated[str | None, declared(PROFILE)]
Platforms = Annotated[List[str], declared(PLATFORMS)]
DryRun = Annotated[bool, declared(DRY_RUN)]
AsJson = Annotated[bool, declared(AS_JSON)]
Reproducible = Annotated[bool, declared(REPRODUCIBLE)]
File = Annotated[str | None, typer.Option("--file", "-f", help="Dockerfile (relative to the current directory).")]
Meta = Annotated[str | None, typer.Option(
    "--meta", metavar="env|FILE", help="Tags, labels and annotations from docker/metadata-action's output: env "
    "reads $DOCKER_METADATA_OUTPUT_JSON, FILE its JSON or bake file.")]
BuildArgs = Annotated[List[str], typer.Option(
    "--build-arg", help="KEY=VALUE; may be repeated. Values of names that look secret (PASSWORD, TOKEN, KEY...) "
    "are masked in output; use --secret for them.")]
Secrets = Annotated[List[str], typer.Option(
    "--secret", help="A build secret, as buildx takes it: id=NAME,env=VAR or id=NAME,src=FILE (read with RUN "
    "--mount=type=secret,id=NAME); may be repeated.")]
Push = Annotated[bool, typer.Option("--push", help="Build, verify, stage by digest, verify again, then move the tags.")]
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
Progress = Annotated[str, typer.Option(
    "--progress", help="auto (a live view per platform on a terminal, plain lines in CI and when piped), tty, "
    "plain or quiet.")]
Part = Annotated[Path | None, typer.Option(
    "--part", metavar="DIR", help="One runner's part of a release: stage the verified result by digest in the "
    "--image repository, move no tag, and write its record into DIR for `orch release` to merge.")]
Labels = Annotated[List[str], typer.Option("--label", help="KEY=VALUE image label; may be repeated.")]
Annotations = Annotated[List[str], typer.Option(
    "--annotation", help="[LEVEL:]KEY=VALUE; without a level, on the index and each manifest.")]
CacheFrom = Annotated[List[str], typer.Option("--cache-from", help="Cache source, as buildx takes it.")]
CacheTo = Annotated[List[str], typer.Option("--cache-to", help="Cache export, as buildx takes it.")]
Cache = Annotated[str | None, typer.Option(
    "--cache", metavar="REF", help="A registry cache read and written (mode=max) at REF; builds of one platform "
    "use REF-OS-ARCH[-VARIANT] of their own, so nodes never overwrite each other's. Replaces the profile's cache.")]
BuildContexts = Annotated[List[str], typer.Option(
    "--build-context", help="NAME=PATH or NAME=docker-image://REF: a named context.")]
Provenance = Annotated[str | None, typer.Option(
    "--provenance", help="true, false, mode=min or mode=max (default: the profile's, else mode=min).")]
Sbom = Annotated[bool | None, typer.Option("--sbom/--no-sbom", help="Attach an SBOM attestation.")]
Bake = Annotated[List[str], typer.Option(
    "--bake", metavar="FILE", help="Bake file(s) (HCL, JSON, compose), resolved by `docker buildx bake --print`: "
    "every target is built, verified, and then all their tags move together, or none.")]
BakeSet = Annotated[List[str], typer.Option(
    "--set", help="With --bake: override a target value, as bake's --set (e.g. app.platform=linux/arm64, "
    "*.args.V=1).")]


def _parameter(option: BuildxOption) -> inspect.Parameter:
    kinds: dict[str, tuple[Any, Any]] = {"text": (str | None, None), "list": (List[str], []),
                                         "flag": (bool, False)}
    annotation, default = kinds[option.kind]
    declared = typer.Option(option.flag, help=option.help, metavar=option.metavar)
    return inspect.Parameter(option.key, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, declared])


def with_options(*items: Item) -> Callable[[F], F]:
    """The command also takes `items`' options (after its own), each as a keyword argument named
    by the option's key, collected by its `**given`: the caller turns them into values with
    `options.values`, as the fast path does."""
    def declare(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*kept, *(parameter(option) for option in flat(items))])
        return command
    return declare


def with_groups(command: F) -> F:
    """Each parameter of `command` typed as a group's dataclass (SigningOptions, TagOptions...)
    becomes that group's options, in its place; the command gets the dataclass."""
    signature = inspect.signature(command, eval_str=True)
    groups = {p.name: group for p in signature.parameters.values() if (group := _group(p.annotation))}
    parameters: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        parameters += [parameter(option) for option in groups[p.name].options] if p.name in groups else [p]

    @functools.wraps(command)
    def run(*args: Any, **given: Any) -> Any:
        for name, group in groups.items():
            given[name] = group.of({option.key: given.pop(option.key) for option in group.options})
        return command(*args, **given)

    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def _group(annotation: Any) -> Group | None:
    return next((group for group in GROUPS if group.make is annotation), None)


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
