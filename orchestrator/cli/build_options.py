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

from orchestrator.cli import complete, options
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
File = Annotated[str | None, declared(options.FILE)]
Meta = Annotated[str | None, declared(options.META)]
BuildArgs = Annotated[List[str], declared(options.BUILD_ARGS)]
Secrets = Annotated[List[str], declared(options.SECRETS)]
Push = Annotated[bool, declared(options.PUSH)]
OciLayout = Annotated[Path | None, declared(options.OCI_LAYOUT)]
Strategy = Annotated[str | None, declared(options.STRATEGY)]
Merge = Annotated[str | None, declared(options.MERGE)]
Jobs = Annotated[int | None, declared(options.JOBS)]
NoCache = Annotated[bool, declared(options.NO_CACHE)]
Progress = Annotated[str, declared(options.PROGRESS)]
Part = Annotated[Path | None, declared(options.PART)]
Labels = Annotated[List[str], declared(options.LABELS)]
Annotations = Annotated[List[str], declared(options.ANNOTATIONS)]
CacheFrom = Annotated[List[str], declared(options.CACHE_FROM)]
CacheTo = Annotated[List[str], declared(options.CACHE_TO)]
Cache = Annotated[str | None, declared(options.CACHE)]
BuildContexts = Annotated[List[str], declared(options.BUILD_CONTEXTS)]
Provenance = Annotated[str | None, declared(options.PROVENANCE)]
Sbom = Annotated[bool | None, declared(options.SBOM)]
Bake = Annotated[List[str], declared(options.BAKE)]
BakeSet = Annotated[List[str], declared(options.BAKE_SET)]


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
        parameters=[*kept, *(parameter(option) for option in options.BUILDX)])
    return command
