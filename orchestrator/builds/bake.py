"""The per-platform builds of a builder of several BuildKit nodes as ONE `docker buildx bake`.

On such a builder each platform is built on its own, on the node given it, pushed by digest
(builds.complete: one buildx call over the nodes would tag the merged index `latest`). Started as
one `buildx build` process each, they cost a buildx start and a connection to every node apiece:
~1.36x the raw one-call push before any of orch's own work. A bake of one target per platform is
one process that builds them all at once, each target still one platform, still pushed by digest
with no tag (nothing is merged by buildx), and costs what the raw push costs.

A target says what `buildx build` would be told (`bake_target` of the job's spec); a spec that
bake cannot be told the same way (words after `--`, buildx options bake spells otherwise or not
at all, a value bake would read as a variable) gives None, and the jobs run one process each, as
before. The per-arch run falls back to one process per platform when the bake fails, so each
platform's failure is its own (perarch.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Sequence
from typing import Any

from orchestrator.builds.argv import ANNOTATION_LEVELS
from orchestrator.builds.spec import BuildSpec
from orchestrator.model.platform import platform_slug

# buildx options (model.buildx_options keys) a bake target takes under another name.
BAKE_KEYS = {"target": "target", "pull": "pull", "ssh": "ssh", "network": "network"}


def target_name(spec: BuildSpec) -> str:
    """The bake target of a one-platform spec: its platform (`linux-arm-v7`)."""
    return platform_slug(spec.platforms[0])


def _local(path: str) -> str:
    """A local path as buildx build reads it (from orch's working directory); anything else as it is."""
    if "://" in path or path.startswith(("git@", "docker-image:", "target:")) or path == "-":
        return path
    return os.path.abspath(path)


def bake_target(spec: BuildSpec) -> dict[str, Any] | None:
    """`spec` (one platform, pushed by digest) as a bake target that builds exactly what
    `docker buildx build` would; None when bake cannot be told the same."""
    if spec.extra_args or spec.daemon is not None or len(spec.platforms) != 1 or spec.context == "-":
        return None
    if any(key not in BAKE_KEYS for key, _ in spec.buildx):
        return None
    annotations = []
    for key, value in spec.annotations:
        levels = [""] if key.partition(":")[0] in ANNOTATION_LEVELS else [f"{level}:" for level in spec.annotation_levels]
        annotations += [f"{level}{key}={value}" for level in levels]
    attest = [f"type=provenance,{spec.provenance}" if spec.provenance.startswith("mode=") else
              "type=provenance" if spec.provenance == "true" else "type=provenance,disabled=true"]
    if spec.sbom is not None:
        attest.append("type=sbom" if spec.sbom else "type=sbom,disabled=true")
    target: dict[str, Any] = {
        "context": _local(spec.context), "platforms": spec.platform_texts,
        "args": dict(spec.build_args), "labels": dict(spec.labels), "annotations": annotations,
        "secret": list(spec.secrets), "contexts": {name: _local(source) for name, source in spec.build_contexts},
        "cache-from": [entry.render() for entry in spec.cache_from],
        "cache-to": [entry.render() for entry in spec.cache_to], "attest": attest,
        "output": [spec.output.render() + (",rewrite-timestamp=true" if spec.rewrite_timestamp else "")],
    }
    if spec.dockerfile:
        target["dockerfile"] = os.path.abspath(spec.dockerfile)  # buildx build reads it from the working directory
    if spec.no_cache:
        target["no-cache"] = True
    for key, value in spec.buildx:
        target[BAKE_KEYS[key]] = list(value) if isinstance(value, tuple) else value
    if "${" in json.dumps(target):
        return None  # bake would read it as a variable
    return target


def bake_file(specs: Sequence[BuildSpec]) -> dict[str, Any] | None:
    """The bake file of one-platform specs, one target each; None when any cannot be baked."""
    targets = {}
    for spec in specs:
        target = bake_target(spec)
        if target is None or target_name(spec) in targets:
            return None
        targets[target_name(spec)] = target
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}


def bake_argv(builder: str | None, file: str, metadata_file: str) -> tuple[str, ...]:
    """The words after `docker`."""
    return ("buildx", "bake", *(("--builder", builder) if builder else ()), "--file", file, "--metadata-file",
            metadata_file, "--progress", "plain")


def bake_line(builder: str | None, file: str, metadata_file: str) -> str:
    return "docker " + shlex.join(bake_argv(builder, file, metadata_file))


def write_private(path: str, text: str) -> None:
    """The bake file (build args in it): readable by this user only."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w") as file:
        file.write(text)


def read_digests(metadata_file: str, names: list[str]) -> dict[str, str] | None:
    """Each target's pushed digest from bake's metadata file; None when any is missing."""
    metadata = json.loads(open(metadata_file).read())
    digests = {name: (metadata.get(name) or {}).get("containerimage.digest") for name in names}
    return digests if all(isinstance(d, str) and d.startswith("sha256:") for d in digests.values()) else None  # type: ignore[return-value]


_VERTEX = re.compile(r"^#(?P<vertex>\d+) ")
# `#9 [linux-arm64 2/3] RUN make`, `#3 [linux-arm64 internal] load ...`, `#19 [linux-arm64] exporting to image`
_NAMED = re.compile(r"^#(?P<vertex>\d+) \[(?P<target>[\w.-]+)(?P<alone>\])? (?P<rest>.*)$")


class BakeLines:
    """Bake's progress, line by line: bake names the target first in each step (`#9 [linux-arm64
    2/3] RUN make`); that step's lines go to its target's step log without the name, and are
    shown as that platform's (`[linux/arm64] #9 [2/3] RUN make`), as one-platform builds show
    theirs. Lines of no target (bake's own, or shared) go to every log and are shown as they are."""

    def __init__(self, steps: dict[str, Any], prefixes: dict[str, str]) -> None:
        self.steps, self.prefixes = steps, prefixes
        self.owners: dict[str, str] = {}  # step number -> target

    def feed(self, line: str) -> str:
        """Feed `line` to its step log; the line as shown."""
        named, vertex = _NAMED.match(line), _VERTEX.match(line)
        target = None
        if named and named.group("target") in self.steps:
            target, number = named.group("target"), named.group("vertex")
            self.owners[number] = target
            line = f"#{number} {'' if named.group('alone') else '['}{named.group('rest')}"
        elif vertex:
            target = self.owners.get(vertex.group("vertex"))
        if target is None:
            for log in self.steps.values():
                log.feed(line)
            return line
        self.steps[target].feed(line)
        return self.prefixes.get(target, "") + line
