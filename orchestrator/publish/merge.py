"""Merging per-platform images into one list, in the order orch chose.

Two ways, both ending at a staging tag that is verified before any user tag
moves:

* ``imagetools``: ``docker buildx imagetools create`` from the per-platform
  digests: a registry-side OCI index that keeps attestations.
* ``manifest``: the classic ``docker manifest create --amend``, ``annotate``
  (os, arch, variant, os.version, os.features) and ``push --purge``: a Docker
  manifest list. Its children must be plain manifests (built without
  attestations). A stale local list of the same name is removed first.
  ``--insecure`` is passed for loopback registries, which the docker CLI
  otherwise refuses with a misleading "no such manifest".

The manifest commands run through the raw CLI: python-on-whales spells
``--amend`` as ``ammend``, has no ``insecure`` on push, and passes
``os_features`` as one Python repr.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import DockerCommandFailed, JobFailed
from orchestrator.model.platform import Platform
from orchestrator.model.references import Reference
from orchestrator.registry.client import Registry


@dataclass(frozen=True)
class MergeEntry:
    """One child of the list: an image by digest and the platform it is listed as."""

    source: Reference  # REPO@sha256:..., or REPO:TAG where the order of names matters (manifest)
    platform: Platform  # os.version and os.features included (Windows)


def imagetools_create(tags: Sequence[Reference], sources: Sequence[Reference | str],
                      annotations: dict[str, str] | None = None) -> tuple[str, ...]:
    """`docker buildx imagetools create`: a registry-side list (or copy) under every tag.
    Used to merge per-platform images and to promote a verified list to the user's tags."""
    args = ["buildx", "imagetools", "create"]
    for tag in tags:
        args += ["--tag", str(tag)]
    for key, value in (annotations or {}).items():
        args += ["--annotation", f"index:{key}={value}"]
    return (*args, *[str(s) for s in sources])


def manifest_commands(target: Reference, entries: Sequence[MergeEntry]) -> list[tuple[str, ...]]:
    """create --amend, one annotate per child with every platform field, then push --purge."""
    insecure = ("--insecure",) if target.is_loopback else ()
    commands: list[tuple[str, ...]] = [
        ("manifest", "create", *insecure, "--amend", str(target), *[str(e.source) for e in entries]),
    ]
    for entry in entries:
        p = entry.platform
        args = ["manifest", "annotate", str(target), str(entry.source), "--os", p.os, "--arch", p.architecture]
        if p.variant:
            args += ["--variant", p.variant]
        if p.os_version:
            args += ["--os-version", p.os_version]
        for feature in p.os_features:
            args += ["--os-features", feature]
        commands.append(tuple(args))
    commands.append(("manifest", "push", *insecure, "--purge", str(target)))
    return commands


def merge_lines(method: str, target: Reference, entries: Sequence[MergeEntry],
                annotations: dict[str, str] | None = None) -> list[str]:
    """The merge as the commands it runs, for --dry-run."""
    if method == "manifest":
        lines = [f"docker manifest rm {target}   # a stale local list, if any"]
        return lines + ["docker " + shlex.join(c) for c in manifest_commands(target, entries)]
    return ["docker " + shlex.join(imagetools_create([target], [e.source for e in entries], annotations))]


def merge(engine: Any, method: str, target: Reference, entries: Sequence[MergeEntry],
          annotations: dict[str, str] | None = None) -> str:
    """Push the merged list to `target`; returns its digest as the registry reports it."""
    if method == "manifest":
        try:
            engine.cli("manifest", "rm", str(target))
        except DockerCommandFailed:
            pass  # no stale local list
        for command in manifest_commands(target, entries):
            engine.cli(*command)
    else:
        engine.cli(*imagetools_create([target], [e.source for e in entries], annotations))
    digest = Registry(target).head_digest(target)
    if not digest:
        raise JobFailed(f"the merged list was pushed, but {target} does not exist in the registry",
                        fix="rerun; if it persists, check the registry log")
    return digest
