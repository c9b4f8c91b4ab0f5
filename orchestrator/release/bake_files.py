"""Bake files in and out.

In: `docker buildx bake --print` resolves the files (HCL, JSON, compose; variables,
functions, `inherits`, matrix, `--set`) as the engine itself does; orch reads the resolved
targets it prints, never the HCL. Each target keeps its own definition; orch only points
its output at a layout private to the run and puts its platforms in orch's order
(release.bake_release builds, verifies and promotes them). Of the lists of `type=...`
entries bake prints (output, attest, cache-from, cache-to, secret, ssh), orch reads only
output, in either print form (`attributes`); the others go back to the same buildx as it
printed them, a form it reads (0.30.1 reads its objects back).

Out: `export_bake` writes profiles as a docker-bake.json that `docker buildx bake --push`
builds as orch would (platforms in orch's order, args, labels, annotations, cache,
attestations), so a team can leave orch and keep its configuration.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.buildx_options import BY_KEY
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_match import order
from orchestrator.model.platform_parse import host_arch, parse, parse_all
from orchestrator.model.references import Reference, parse_reference
from orchestrator.profiles import Profile
from orchestrator.redact import MASK, looks_secret

# Outputs a target may name: orch replaces them with its staging (it publishes to the registry).
PUBLISHING_OUTPUTS = ("registry",)


@dataclass(frozen=True)
class BakeTarget:
    """A bake target orch publishes: its definition as `bake --print` gave it, its tags and
    platforms, and when built reproducibly the epoch and each platform's BuildKit."""

    name: str
    definition: dict[str, Any]  # as `bake --print` gave it
    tags: tuple[Reference, ...]
    platforms: tuple[Platform, ...]  # in orch's order
    # --reproducible (release.bake_reproducible): the epoch its definition builds at, and the
    # BuildKit version of the node each platform goes to (recorded in the image as a label)
    epoch: int | None = None
    buildkit: tuple[tuple[str, str], ...] = ()

    @property
    def repository(self) -> Reference:
        return self.tags[0]

    def _output(self, output: str, platform: Platform | None) -> dict[str, Any]:
        """The output, with rewrite-timestamp and the BuildKit label when built reproducibly."""
        if self.epoch is None:
            return {"output": [output]}
        versions = dict(self.buildkit)
        version = versions.get(format_platform(platform or self.platforms[0]), "unknown")
        return {"output": [f"{output},rewrite-timestamp=true"],
                "labels": {**(self.definition.get("labels") or {}), "dev.orch.reproducible.buildkit": version}}

    def staged(self, layout: str) -> dict[str, Any]:
        """The definition bake builds: the same, written to `layout`, platforms in orch's order."""
        return {**self.definition, "platforms": [format_platform(p) for p in self.platforms],
                **self._output(f"type=oci,dest={layout},tar=false", None)}

    def pushed_by_digest(self, platform: Platform) -> dict[str, Any]:
        """One platform of the definition, pushed by digest to the target's repository with no
        tag: what a builder of several nodes builds, each platform on the node given it (one bake
        target over several nodes would tag the merged index `latest`)."""
        return {**self.definition, "platforms": [format_platform(platform)], "tags": [],
                **self._output(f"type=image,name={self.repository.name},push-by-digest=true,name-canonical=true,"
                               "push=true", platform)}

    def index_annotations(self) -> dict[str, str]:
        """The definition's annotations meant for the index (`index:KEY=VALUE`, `index,manifest:...`),
        which a list merged by orch carries."""
        found = {}
        for entry in self.definition.get("annotations") or []:
            head, _, value = str(entry).partition("=")
            levels, colon, key = head.partition(":")
            if colon and "index" in (level.split("[")[0].strip() for level in levels.split(",")):
                found[key] = value
        return found

    def shown(self) -> dict[str, Any]:
        """For --dry-run and --json: secret-looking args masked."""
        args = {k: (MASK if looks_secret(k) else v) for k, v in (self.definition.get("args") or {}).items()}
        return {"name": self.name, "tags": [str(t) for t in self.tags],
                "platforms": [format_platform(p) for p in self.platforms],
                "context": self.definition.get("context", "."), "dockerfile": self.definition.get("dockerfile"),
                **({"args": args} if args else {}),
                **({"reproducible": {"source_date_epoch": self.epoch, "buildkit": dict(self.buildkit)}}
                   if self.epoch is not None else {})}


def print_argv(files: tuple[str, ...], targets: tuple[str, ...], sets: tuple[str, ...]) -> tuple[str, ...]:
    return ("buildx", "bake", *(a for f in files for a in ("-f", f)), "--print",
            *(a for s in sets for a in ("--set", s)), *targets)


def resolve(engine: Any, files: tuple[str, ...], targets: tuple[str, ...], sets: tuple[str, ...]) -> dict[str, Any]:
    """What bake makes of the files: {"group": ..., "target": {name: definition}}."""
    from orchestrator.errors import DockerCommandFailed

    for name in files:
        if not Path(name).is_file():
            raise BadInput(f'bake file "{name}" not found', fix="pass the path of a docker-bake.hcl (or .json, "
                           "compose.yaml) with --bake")
    try:
        printed = engine.cli(*print_argv(files, targets, sets))
    except DockerCommandFailed as exc:
        reason = [line for line in str(exc.stderr).splitlines() if "ERROR" in line] or [str(exc.stderr).strip()]
        raise BadInput(f"docker buildx bake could not resolve {', '.join(files)}: {reason[-1]}",
                       fix="fix the bake file (or the target and --set names); `docker buildx bake --print` "
                           "shows the same error") from None
    try:
        resolved: dict[str, Any] = json.loads(printed[printed.index("{"):])
        return resolved
    except ValueError:
        raise BadInput(f"docker buildx bake --print gave no JSON for {', '.join(files)}",
                       fix="check the bake file with `docker buildx bake --print`") from None


def attributes(entry: object, bare: str = "id") -> dict[str, str]:
    """One entry of a list `bake --print` gives (output, attest, cache-from, cache-to, secret,
    ssh) as its fields. buildx 0.13.1 prints the entry as written, `type=registry,ref=r/app:c`
    (CSV, as buildx reads it); buildx 0.30.1 prints an object, {"type": "registry", "ref":
    "r/app:c"}, its true and false sometimes JSON booleans. A word with no `=` is the field
    `bare` (ssh's `default` is its id)."""
    if isinstance(entry, dict):
        return {str(key): str(value).lower() if isinstance(value, bool) else str(value)
                for key, value in entry.items()}
    fields = {}
    for field in next(csv.reader([str(entry)]), []):
        key, equals, value = field.partition("=")
        if equals:
            fields[key.strip().lower()] = value
        elif field.strip():
            fields[bare] = field.strip()
    return fields


def _outputs(definition: dict[str, Any]) -> list[str]:
    """The output types a definition names; an image output that pushes is a registry output.
    A bare path is a local output (`-`: a tar on stdout), as buildx reads it."""
    types = []
    for output in definition.get("output") or []:
        fields = attributes(output, bare="dest")
        kind = fields.get("type", "")
        if not kind and list(fields) == ["dest"]:
            kind = "tar" if fields["dest"] == "-" else "local"
        if kind == "image" and fields.get("push", "").lower() == "true":
            kind = "registry"
        types.append(kind)
    return types


def targets_from(printed: dict[str, Any], *, host: Platform | None = None) -> list[BakeTarget]:
    """The resolved targets as orch builds them. Refused (exit 2): an output other than a
    registry, no tag to publish to, a platform orch cannot read."""
    out = []
    for name, definition in sorted((printed.get("target") or {}).items()):
        refused = [kind for kind in _outputs(definition) if kind not in PUBLISHING_OUTPUTS]
        if refused:
            raise BadInput(f'bake target "{name}" writes to "type={refused[0]}": orch publishes to a registry, '
                           "and only after verifying what was built",
                           fix=f"drop the target's output (or make it type=registry), or build {name} with "
                               "`docker buildx bake` itself")
        if not definition.get("tags"):
            raise BadInput(f'bake target "{name}" has no tags: nothing to publish it to',
                           fix=f'add tags = ["REGISTRY/IMAGE:TAG"] to the target, or --set {name}.tags=REGISTRY/IMAGE:TAG')
        tags = tuple(parse_reference(t) for t in definition["tags"])
        try:
            platforms = parse_all(definition["platforms"]) if definition.get("platforms") else [
                host or parse(f"linux/{host_arch()}")]
        except BadInput as exc:
            raise BadInput(f'bake target "{name}": {exc.message}', fix=exc.fix) from None
        out.append(BakeTarget(name, definition, tags, tuple(order(platforms))))
    if not out:
        raise BadInput("the bake files define no target to build", fix="name a target or group that exists")
    return out


# -- out ------------------------------------------------------------------------


def _attest(profile: Profile) -> list[str]:
    attestations = profile.attestations
    provenance = attestations.provenance if attestations and attestations.provenance else "mode=min"
    out = ["type=provenance,disabled=true" if provenance == "false" else
           "type=provenance" + ("" if provenance == "true" else f",{provenance}")]
    if attestations and attestations.sbom is not None:
        out.append("type=sbom" if attestations.sbom else "type=sbom,disabled=true")
    return out


def export_bake(profiles: list[Profile], *, now: datetime | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """A docker-bake.json with one target per profile (and a default group of them all)."""
    from orchestrator.builds.inputs import build_time, is_remote
    from orchestrator.tags.gitinfo import read_git
    from orchestrator.tags.tagging import plan_tags

    now = now or build_time()
    targets: dict[str, Any] = {}
    for profile in profiles:
        if not profile.platforms:
            raise BadInput(f'profile "{profile.name}" names no platforms', fix="add platforms to the profile")
        context = profile.context or "."
        git = None if is_remote(context) else read_git((cwd or Path.cwd()) / context)
        target: dict[str, Any] = {"context": context, "dockerfile": profile.dockerfile or "Dockerfile",
                                  "platforms": [format_platform(p) for p in order(profile.platforms)]}
        tags = plan_tags(literal=(), rules=(), images=(), flavor=(), meta=None, profile=profile, git=git,
                         now=now).tags
        if tags:
            target["tags"] = list(tags)
        for key, value in (profile.buildx or {}).items():
            bake_key = BY_KEY[key].bake
            if bake_key:
                target[bake_key] = value
        if profile.build_args:
            target["args"] = dict(profile.build_args)
        if profile.labels:
            target["labels"] = dict(profile.labels)
        if profile.annotations:
            # One entry per level: buildx 0.13 reads "index,manifest:" as part of the key.
            target["annotations"] = [f"{level}:{k}={v}" for k, v in profile.annotations.items()
                                     for level in ("index", "manifest")]
        if profile.cache_from:
            target["cache-from"] = list(profile.cache_from)
        if profile.cache_to:
            target["cache-to"] = list(profile.cache_to)
        target["attest"] = _attest(profile)
        targets[profile.name] = target
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}
