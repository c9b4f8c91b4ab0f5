"""`orch build --bake --reproducible`: each bake target built as `orch build --reproducible` builds
one image (builds.reproducible).

Each target gets its epoch: SOURCE_DATE_EPOCH from its own args where the bake file sets it, else
from the environment, else its context's commit time (a target whose context is not a git work
tree, a remote one say, needs SOURCE_DATE_EPOCH: exit 2 naming it). The epoch goes in as the
build arg SOURCE_DATE_EPOCH; the created label is set to it (over one the bake file sets, which
would differ on every build); the image records the epoch, the build args, the Dockerfile target,
the commit (where the bake file sets none) and the BuildKit version of the node each platform goes
to; and every output orch writes for the target (its layout, or each platform pushed by digest)
rewrites timestamps (BakeTarget.staged, BakeTarget.pushed_by_digest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from orchestrator.builds.inputs import is_remote
from orchestrator.builds.reproducible import (
    CREATED_LABEL,
    REVISION_LABEL,
    buildkit_name,
    epoch_time,
    recorded_labels,
    resolve_epoch,
)
from orchestrator.docker.capabilities import Capabilities
from orchestrator.errors import BadInput
from orchestrator.model.platform import format_platform
from orchestrator.redact import looks_secret
from orchestrator.release.bake_files import BakeTarget


def reproducible_targets(targets: tuple[BakeTarget, ...], caps: Capabilities,
                         routes: Mapping[str, tuple[str, bool]] | None) -> tuple[BakeTarget, ...]:
    """Every target made reproducible (exit 2 naming one whose epoch cannot be had)."""
    import os

    versions = node_versions(caps, targets, routes)
    return tuple(reproducible_target(target, versions, os.environ, Path.cwd()) for target in targets)


def node_versions(caps: Capabilities, targets: tuple[BakeTarget, ...],
                  routes: Mapping[str, tuple[str, bool]] | None) -> dict[str, str]:
    """The BuildKit version that builds each platform: its node's (`routes`, on a builder of
    several nodes), else the one node's."""
    versions = {node.name: buildkit_name(node.buildkit, caps.driver, caps.server_version) for node in caps.nodes}
    first = next(iter(versions.values()), "unknown")
    platforms = {format_platform(p) for target in targets for p in target.platforms}
    return {p: versions.get(routes[p][0], first) if routes and p in routes else first for p in sorted(platforms)}


def reproducible_target(target: BakeTarget, versions: Mapping[str, str], environ: Mapping[str, str],
                        cwd: Path) -> BakeTarget:
    """`target` with its definition built at one epoch and its outputs rewriting timestamps."""
    from orchestrator.tags.gitinfo import read_git

    definition = dict(target.definition)
    args = {str(k): str(v) for k, v in (definition.get("args") or {}).items() if v is not None}
    context = str(definition.get("context") or ".")
    git = None if is_remote(context) or context.startswith("git@") else read_git(
        Path(context) if Path(context).is_absolute() else cwd / context)
    where = f'bake target "{target.name}" (context "{context}")'
    try:
        epoch = resolve_epoch({"SOURCE_DATE_EPOCH": args["SOURCE_DATE_EPOCH"]} if args.get("SOURCE_DATE_EPOCH")
                              else environ, git.commit_date if git else None, where=where)
    except BadInput as exc:
        raise BadInput(f"{where}: {exc.message}" if where not in exc.message else exc.message, fix=exc.fix) from None
    args["SOURCE_DATE_EPOCH"] = str(epoch)
    given = {str(k): str(v) for k, v in (definition.get("labels") or {}).items() if v is not None}
    stage = definition.get("target")
    labels = {**recorded_labels(epoch, args, tuple(k for k in args if looks_secret(k)), str(stage) if stage else None),
              **given, CREATED_LABEL: epoch_time(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if git is not None and REVISION_LABEL not in labels:
        labels[REVISION_LABEL] = git.sha
    definition.update(args=args, labels=labels)
    return replace(target, definition=definition, epoch=epoch,
                   buildkit=tuple((format_platform(p), versions.get(format_platform(p), "unknown"))
                                  for p in target.platforms))
