"""Merging per-platform images (already in the repository, by digest) into one list, in orch's order.

Two ways, both ending with the list staged by digest (no tag) for the pipeline:

* ``imagetools``: the merged OCI index ``docker buildx imagetools create
  --dry-run`` prints from the per-platform digests (attestations kept). When
  every per-platform result is an OCI index (BuildKit's, with its
  attestations: the usual case) orch composes the same document itself from
  those indexes, as imagetools does (their descriptors in order, each digest
  once, the index annotations last), and saves starting buildx; otherwise it
  runs imagetools. A test compares the two on the real engine.
* ``manifest``: the classic ``docker manifest create --amend`` and
  ``annotate`` (os, arch, variant, os.version, os.features) on a local list
  that is never pushed; ``docker manifest inspect`` gives the Docker manifest
  list, orch puts its children in the planned order (docker keeps them in the
  order of their names) and stages it. Its children must be plain manifests
  (built without attestations). ``--insecure`` is passed for loopback
  registries, which the docker CLI otherwise refuses with a misleading "no
  such manifest".

The manifest commands run through the raw CLI: python-on-whales spells
``--amend`` as ``ammend`` and passes ``os_features`` as one Python repr.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import DockerCommandFailed, JobFailed
from orchestrator.model.mediatypes import OCI_INDEX
from orchestrator.model.platform import Platform
from orchestrator.model.references import Reference
from orchestrator.publish.stage import Staged, stage_index
from orchestrator.registry.client import ManifestBytes, Registry
from orchestrator.workers import parallel_map


@dataclass(frozen=True)
class MergeEntry:
    """One child of the list: an image by digest and the platform it is listed as."""

    source: Reference  # REPO@sha256:...
    platform: Platform  # os.version and os.features included (Windows)


def imagetools_create(sources: Sequence[Reference | str], annotations: dict[str, str] | None = None
                      ) -> tuple[str, ...]:
    """`docker buildx imagetools create --dry-run`: the merged index, printed, never pushed."""
    args = ["buildx", "imagetools", "create", "--dry-run"]
    for key, value in (annotations or {}).items():
        args += ["--annotation", f"index:{key}={value}"]
    return (*args, *[str(s) for s in sources])


def local_list(repository: Reference) -> Reference:
    """The name of the local list `docker manifest` builds (never pushed)."""
    return repository.with_tag(f"orch-list-{os.getpid()}")


def manifest_commands(target: Reference, entries: Sequence[MergeEntry]) -> list[tuple[str, ...]]:
    """create --amend, one annotate per child with every platform field, then inspect."""
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
    commands.append(("manifest", "inspect", *insecure, str(target)))
    return commands


def merge_lines(method: str, repository: Reference, entries: Sequence[MergeEntry],
                annotations: dict[str, str] | None = None) -> list[str]:
    """The merge as the commands it runs, for --dry-run."""
    stage = f"# stage the list in {repository.name} by digest (no tag)"
    if method == "manifest":
        listed = local_list(repository)
        lines = [f"docker manifest rm {listed}   # a stale local list, if any"]
        lines += ["docker " + shlex.join(c) for c in manifest_commands(listed, entries)]
        return lines + [f"# children put in the planned order; docker manifest rm {listed}", stage]
    return ["docker " + shlex.join(imagetools_create([e.source for e in entries], annotations))
            + "   # its index, composed by orch when every platform's result is an OCI index", stage]


def composed_index(sources: Sequence[dict[str, Any]], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """The index `imagetools create` makes of OCI index sources: every descriptor of each, in
    order, each digest once; the index annotations last."""
    seen: set[str] = set()
    manifests = []
    for source in sources:
        for descriptor in source.get("manifests") or []:
            if descriptor.get("digest") not in seen:
                seen.add(descriptor.get("digest", ""))
                manifests.append(descriptor)
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    if annotations:
        document["annotations"] = dict(annotations)
    return document


def index_of(engine: Any, sources: Sequence[ManifestBytes], entries: Sequence[MergeEntry],
             annotations: dict[str, str] | None = None) -> ManifestBytes:
    """imagetools' merged index of `entries`, whose manifests (`sources`) were read already:
    composed here when each is an OCI index, else printed by `imagetools create --dry-run`."""
    if sources and all(source.media_type == OCI_INDEX for source in sources):
        return ManifestBytes.from_document(composed_index([s.document() for s in sources], annotations))
    return ManifestBytes.from_document(engine.cli_json(*imagetools_create([e.source for e in entries], annotations)))


def merged_index(engine: Any, method: str, repository: Reference, entries: Sequence[MergeEntry],
                 annotations: dict[str, str] | None = None, read: Mapping[str, ManifestBytes] | None = None
                 ) -> ManifestBytes:
    """The merged list's bytes, children in the order of `entries`. `read`: the per-platform
    manifests read from the registry already this run, by digest (not read again)."""
    if method != "manifest":
        registry = Registry.of(repository)
        known = read or {}
        sources = parallel_map(lambda entry: known.get(entry.source.digest or "") or
                               registry.manifest_bytes(entry.source), list(entries), 4)
        return index_of(engine, sources, entries, annotations)
    listed = local_list(repository)
    try:
        engine.cli("manifest", "rm", str(listed))
    except DockerCommandFailed:
        pass  # no stale local list
    try:
        *changes, inspect = manifest_commands(listed, entries)
        for command in changes:
            engine.cli(*command)
        document = engine.cli_json(*inspect)
    finally:
        try:
            engine.cli("manifest", "rm", str(listed))
        except DockerCommandFailed:
            pass
    by_digest = {m["digest"]: m for m in document.get("manifests") or []}
    missing = [str(e.source) for e in entries if e.source.digest not in by_digest]
    if missing:
        raise JobFailed(f"`docker manifest create` left out {', '.join(missing)}",
                        fix="check that each image exists in the registry, then rerun")
    document["manifests"] = [by_digest[e.source.digest] for e in entries]
    return ManifestBytes.from_document(document)


def merge(engine: Any, method: str, repository: Reference, entries: Sequence[MergeEntry],
          annotations: dict[str, str] | None = None, read: Mapping[str, ManifestBytes] | None = None) -> Staged:
    """Make the list and stage it in `repository` by digest."""
    return stage_index(repository, merged_index(engine, method, repository, entries, annotations, read))
