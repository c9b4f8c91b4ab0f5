"""`orch verify REF --reproduce CONTEXT`: build each platform again from CONTEXT as the image
records it (builds.reproducible: the epoch, build args, target, BuildKit version) and compare.

Each platform is built on its own into an OCI layout (one call goes to one node, so a builder of
several nodes takes it too), then its manifest digest is compared with the image's. Where they
differ, the first layer that differs is read from both sides and compared file by file
(image.layerdiff). Refused (exit 2) before anything is built: an image not built reproducibly,
a checkout at another commit than the image's, a builder of another BuildKit version.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.builds.options import BuilderOptions
from orchestrator.builds.reproducible import (
    ARGS_LABEL,
    BUILDKIT_LABEL,
    EPOCH_LABEL,
    REVISION_LABEL,
    TARGET_LABEL,
    buildkit_name,
    recorded_args,
)
from orchestrator.errors import BadInput
from orchestrator.image.layerdiff import Change, diff_layers
from orchestrator.image.layers import LayerStream
from orchestrator.image.model import Entry, Inspection
from orchestrator.image.read import Source, read_image, read_layout
from orchestrator.model.references import Reference

NOT_REPRODUCIBLE_FIX = "rebuild it with orch build --reproducible (or reproducible: true in its profile)"


@dataclass
class PlatformCheck:
    """One platform of a `verify --reproduce`: the digest the image holds beside the rebuild's and,
    when they differ, the first differing layer and what changed in it."""

    platform: str
    recorded: str  # the image's manifest digest
    rebuilt: str
    layer: str | None = None  # "2 of 3: sha256:... (image) vs sha256:... (rebuilt)"; None: config or count
    changes: list[Change] = field(default_factory=list)
    note: str | None = None

    @property
    def equal(self) -> bool:
        return self.recorded == self.rebuilt


@dataclass
class Reproduction:
    """What `orch verify --reproduce` found: the image rebuilt from its context on a named builder,
    each platform's digest compared with the one published."""

    ref: str
    builder: str
    buildkit: str
    commit: str | None
    platforms: list[PlatformCheck]

    @property
    def ok(self) -> bool:
        return all(p.equal for p in self.platforms)

    def lines(self) -> list[str]:
        head = [f"{self.ref}: rebuilt on {self.builder} (BuildKit {self.buildkit})"
                + (f" at commit {self.commit[:12]}" if self.commit else "")]
        for check in self.platforms:
            if check.equal:
                head.append(f"  ok    {check.platform:<14} {check.recorded}")
                continue
            head.append(f"  FAIL  {check.platform:<14} the image holds {check.recorded}, the rebuild gives {check.rebuilt}")
            if check.layer:
                head.append(f"        first differing layer {check.layer}")
            head += [f"          {change.line()}" for change in check.changes]
            if check.note:
                head.append(f"        {check.note}")
        head.append("reproduced: every platform's digest is equal" if self.ok else
                    f"not reproduced: {sum(not p.equal for p in self.platforms)} platform(s) differ")
        return head


def _labels(entry: Entry) -> dict[str, str]:
    config = (entry.config_raw or {}).get("config") or {}
    labels = config.get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def recorded(inspection: Inspection) -> dict[str, str]:
    """The labels of the image's first platform, refused (exit 2) when it was not built reproducibly."""
    if not inspection.entries:
        raise BadInput(f"{inspection.ref} holds no image to rebuild", fix="name an image index or manifest")
    labels = _labels(inspection.entries[0])
    if EPOCH_LABEL not in labels or BUILDKIT_LABEL not in labels:
        raise BadInput(f"{inspection.ref} was not built reproducibly (no {EPOCH_LABEL} label): its digests cannot "
                       "be expected to match a rebuild", fix=NOT_REPRODUCIBLE_FIX)
    return labels


def check_commit(labels: dict[str, str], context: Path) -> str | None:
    """The checkout's commit, refused (exit 2) when it is not the one the image records."""
    from orchestrator.tags.gitinfo import read_git

    git = read_git(context)
    wanted = labels.get(REVISION_LABEL)
    if wanted and git is not None and git.sha != wanted:
        raise BadInput(f'"{context}" is checked out at {git.sha[:12]}, but the image was built from {wanted[:12]}',
                       fix=f"check out the image's commit first (git -C {context} checkout {wanted}), or verify "
                           "an image of this commit")
    return git.sha if git else None


def check_buildkit(labels: dict[str, str], builder: str | None) -> tuple[str, str, Any]:
    """The builder's name and BuildKit, refused (exit 2) when it is not the version the image records."""
    from orchestrator.docker import probe
    from orchestrator.docker.runner import Engine

    caps = probe.capabilities(Engine(), builder, version=True)
    versions = sorted({buildkit_name(n.buildkit, caps.driver, caps.server_version) for n in caps.nodes})
    wanted = labels[BUILDKIT_LABEL]
    if versions != [wanted]:
        raise BadInput(f'builder "{caps.builder}" runs BuildKit {" and ".join(versions)}, but the image was built by '
                       f"BuildKit {wanted}: another version may write other bytes",
                       fix=f"pass --builder with a builder of BuildKit {wanted} (docker buildx ls shows each one's)")
    return caps.builder, wanted, caps


def reproduce(ref: Reference, context: str, builder: str | None, platforms: tuple[str, ...] = ()) -> Reproduction:
    """Rebuild every platform of `ref` (or those of `platforms`) from `context` and compare (exit 2
    for the refusals above, and for platforms built by different BuildKit versions)."""
    from orchestrator.registry.client import Registry, RepositoryView

    root = Path(context)
    if not root.is_dir():
        raise BadInput(f'--reproduce "{context}" is not a directory', fix="pass the build context the image came from")
    inspection = _chosen(read_image(ref), platforms)
    labels = recorded(inspection)
    _one_buildkit(inspection)
    commit = check_commit(labels, root)
    name, version, _ = check_buildkit(labels, builder)
    view = RepositoryView(Registry.of(ref), ref.repository)
    checks = [_rebuild(entry, view, root, name) for entry in inspection.entries]
    return Reproduction(str(ref), name, version, commit, checks)


def _chosen(inspection: Inspection, platforms: tuple[str, ...]) -> Inspection:
    """The image's platforms that --platform names (all of them when none is named)."""
    if not platforms:
        return inspection
    from orchestrator.model.platform import format_platform
    from orchestrator.model.platform_parse import parse_all

    wanted = {format_platform(p) for p in parse_all(platforms)}
    entries = [entry for entry in inspection.entries if entry.label in wanted]
    missing = sorted(wanted - {entry.label for entry in entries})
    if missing:
        raise BadInput(f"{inspection.ref} holds no {', '.join(missing)} (it holds "
                       f"{', '.join(e.label for e in inspection.entries)})", fix="pass --platform with platforms it holds")
    return replace(inspection, entries=tuple(entries))


def _one_buildkit(inspection: Inspection) -> None:
    """Refused (exit 2): platforms built by different BuildKit versions (parts of runners whose
    builders differ), which no one builder rebuilds to the same bytes."""
    versions: dict[str, list[str]] = {}
    for entry in inspection.entries:
        versions.setdefault(_labels(entry).get(BUILDKIT_LABEL) or "unknown", []).append(entry.label)
    if len(versions) > 1:
        by = "; ".join(f"BuildKit {version}: {', '.join(labels)}" for version, labels in sorted(versions.items()))
        first = next(iter(sorted(versions.items())))
        raise BadInput(f"{inspection.ref}'s platforms were built by different BuildKit versions ({by}); another "
                       "version writes other bytes, so no one builder can rebuild them all the same",
                       fix=f"verify each version's platforms on a builder of that version, e.g. --platform "
                           f"{','.join(first[1])} --builder B (a builder of BuildKit {first[0]})")


def _rebuild(entry: Entry, view: Source, context: Path, builder: str) -> PlatformCheck:
    from orchestrator.builds.executor import run_plan
    from orchestrator.builds.request import BuildRequest, plan_build
    from orchestrator.docker.runner import Engine
    from orchestrator.report.console import Console

    labels = _labels(entry)
    args, secret = recorded_args(labels)
    if secret:
        raise BadInput(f"the image records the build args {', '.join(secret)} by name only (they look secret)",
                       fix="rebuild with orch build --reproducible and compare digests yourself")
    label_args = tuple(f"{k}={v}" for k, v in labels.items() if k not in (ARGS_LABEL, BUILDKIT_LABEL))
    with tempfile.TemporaryDirectory(prefix="orch-reproduce-") as scratch:
        layout = Path(scratch) / "layout"
        request = BuildRequest(
            context=str(context), platforms=(entry.label,), oci_layout=str(layout), reproducible=True,
            source_date_epoch=int(labels[EPOCH_LABEL]), build_args=tuple(f"{k}={v}" for k, v in args.items()),
            labels=label_args, buildx=(("target", labels[TARGET_LABEL]),) if labels.get(TARGET_LABEL) else (),
            builder=BuilderOptions(name=builder), strategy="single")
        plan = plan_build(request, cwd=context)  # run_plan completes it from the builder, as orch build does
        # Exactly the labels the image holds (the BuildKit one is added from the builder): none of
        # orch's own that it lacks, as an image from a bake file does.
        plan = replace(plan, spec=replace(plan.spec, labels=tuple((k, v) for k, v in labels.items()
                                                                  if k != BUILDKIT_LABEL)))
        run_plan(Engine(secrets=plan.spec.secret_values), plan, Console(quiet=True))
        rebuilt, local = read_layout(f"oci-layout://{layout}")
        mine = next((e for e in rebuilt.entries if e.label == entry.label), None)
        if mine is None:
            return PlatformCheck(entry.label, entry.digest, "(none)", note="the rebuild holds no such platform")
        check = PlatformCheck(entry.label, entry.digest, mine.digest)
        if not check.equal:
            _explain(check, view, entry, local, mine)
        return check


def _explain(check: PlatformCheck, view: Source, entry: Entry, local: Source, mine: Entry) -> None:
    """The first layer that differs, compared file by file; else what in the config differs."""
    before, after = view.manifest(entry.digest), local.manifest(mine.digest)
    old, new = before.get("layers") or [], after.get("layers") or []
    old_ids = ((entry.config_raw or {}).get("rootfs") or {}).get("diff_ids") or []
    new_ids = ((mine.config_raw or {}).get("rootfs") or {}).get("diff_ids") or []
    for number, (a, b) in enumerate(zip(old, new, strict=False)):
        if a.get("digest") == b.get("digest"):
            continue
        check.layer = f"{number + 1} of {len(old)}: {a['digest'][:19]} (image) vs {b['digest'][:19]} (rebuilt)"
        first = LayerStream(view.open_blob(a["digest"]), a.get("mediaType", ""), a["digest"],
                            old_ids[number] if number < len(old_ids) else None)
        second = LayerStream(local.open_blob(b["digest"]), b.get("mediaType", ""), b["digest"],
                             new_ids[number] if number < len(new_ids) else None)
        try:
            check.changes = diff_layers(first, second)  # type: ignore[arg-type]
        finally:
            first.close()
            second.close()
        if not check.changes:
            check.note = "the files are the same; the tar headers or compression differ (another BuildKit writes them)"
        return
    if len(old) != len(new):
        check.note = f"the image has {len(old)} layers, the rebuild {len(new)}"
        return
    config_a, config_b = entry.config_raw or {}, mine.config_raw or {}
    keys = sorted(k for k in set(config_a) | set(config_b) if config_a.get(k) != config_b.get(k))
    inner_a, inner_b = config_a.get("config") or {}, config_b.get("config") or {}
    inner = sorted(k for k in set(inner_a) | set(inner_b) if inner_a.get(k) != inner_b.get(k))
    check.note = ("every layer is the same; the config differs in " + ", ".join(
        [*(k for k in keys if k != "config"), *(f"config.{k}" for k in inner)]) or "its bytes")
