"""`orch release DIR...`: the parts that runners built (each platform on its own runner,
`orch build --part`) merged into one index, verified, and then every tag moved or none.

Docker's multi-runner recipe (each runner pushes by digest and uploads the digest; a merge
job runs `imagetools create`) trusts whatever digests arrive. Here the release is planned
before the registry is read, and refuses to publish what it cannot vouch for:

* every file must be a part record (publish.parts), and all of them for one repository and one
  revision; otherwise exit 2;
* the platforms must be the ones expected (the profile's, or --platform): a missing one is
  exit 1 naming it (its runner failed, or its artifact was not downloaded), an unexpected one
  exit 2;
* two parts for one platform are exit 2, unless both come from the same CI job and one is a
  later attempt (a re-run job): the later replaces the earlier, and the release says so;
* parts built with --reproducible: every part or none, all at one SOURCE_DATE_EPOCH (exit 2
  naming them); the BuildKit version of each is said, not compared (release.reproducible_parts);
* the labels orch set on each runner (from the same rules) must agree, the build time aside;
* each part's digest must be in the repository (exit 1 otherwise).

A failed release names where it failed, for the CI outputs `failed-platform` and `failed-step`:
the platforms of the parts concerned (every platform of the release when the failure is the
release's), and the step (`no part`, `part not in the registry`, `reading the parts`, `merging
the parts`, `verifying and signing the merged index`, `moving the tags`); the error keeps its
exit code (an unreachable registry is exit 3).

The merged index lists the parts in orch's order (the expected platforms made first-match
safe), is staged by digest, verified from the registry (--deep when asked), and only then are
the tags moved, with the tag rules applied here, to the revision the parts were built from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.builds.merge import MergeEntry, index_of
from orchestrator.ci_facts import inert
from orchestrator.errors import BadInput, BuildStepFailed, OrchError
from orchestrator.image.verify import VerifyOptions
from orchestrator.interrupts import phase
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_match import order
from orchestrator.model.references import Reference, parse_reference
from orchestrator.profiles.model import Profile
from orchestrator.publish.parts import PartRecord, read_parts
from orchestrator.publish.pipeline import publish_staged
from orchestrator.publish.signing import Signing
from orchestrator.publish.stage import stage_index
from orchestrator.registry.client import ManifestBytes, Registry
from orchestrator.registry.errors import ImageNotFound
from orchestrator.release.reproducible_parts import reproducible_lines, reproducible_release
from orchestrator.workers import parallel_map

BUILD_TIME_LABEL = "org.opencontainers.image.created"  # each runner's own clock: never compared
BUILDKIT_LABEL = "dev.orch.reproducible.buildkit"  # each runner's builder's: said, not compared (reproducible_parts)
REVISION_LABEL = "org.opencontainers.image.revision"
VERSION_LABEL = "org.opencontainers.image.version"


@dataclass(frozen=True)
class ReleaseRequest:
    """What `orch release` was asked: the part directories, the platforms expected, the profile,
    the tags and how to verify and sign."""

    directories: tuple[str, ...]
    platforms: tuple[Platform, ...]  # expected: --platform, else the profile's
    profile: Profile
    tags: tuple[str, ...] = ()  # -t: literal tags
    tag_rules: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # repositories the rules tag (default: the parts')
    flavor: tuple[str, ...] = ()
    deep: bool = False
    signing: Signing | None = None


@dataclass(frozen=True)
class PartsPlan:
    """What `orch release` will do, planned before the registry is read: the parts to merge into
    one index, the platforms it must hold, and the tags moved together, or none."""

    repository: Reference
    parts: tuple[PartRecord, ...]  # one per platform group, in index order
    platforms: tuple[Platform, ...]  # expected, in index order
    tags: tuple[Reference, ...]
    annotations: dict[str, str]
    replaced: tuple[str, ...]  # what a later attempt replaced, said to the user
    revision: str | None
    deep: bool = False
    signing: Signing | None = None  # --sign: cosign signs the merged, verified index before any tag moves
    reproducible: dict[str, Any] | None = None  # every part built --reproducible: the epoch, each platform's BuildKit

    def commands(self) -> list[str]:
        lines = [f"# {p.label}: {self.repository.name}@{p.digest} ({inert(p.runner)})" for p in self.parts]
        lines += [f"# merge into one index in {self.repository.name} by digest (no tag), verify it"
                  + (" (--deep)" if self.deep else ""),
                  f"# then move {', '.join(str(t) for t in self.tags)} together, or none"]
        lines += [f"# {line.strip()}" for line in reproducible_lines(self.reproducible)]
        return lines + [f"# note: {note}" for note in self.replaced]

    def to_json(self) -> dict[str, Any]:
        return {"repository": self.repository.name, "revision": self.revision,
                "platforms": [format_platform(p) for p in self.platforms],
                "parts": [_part_json(p) for p in self.parts], "replaced": list(self.replaced),
                "tags": [str(t) for t in self.tags], "annotations": self.annotations, "deep": self.deep,
                "reproducible": self.reproducible, "commands": self.commands()}


def _part_json(part: PartRecord) -> dict[str, Any]:
    """A part as the release shows it: what a person reads (runner, builder) made inert for a log."""
    return {"platforms": [format_platform(p) for p in part.platforms], "digest": part.digest, "file": part.path,
            "runner": inert(part.runner), "builder": inert(part.builder) if part.builder else None,
            "seconds": part.seconds, "ci": part.ci}


def plan_release(request: ReleaseRequest, *, now: datetime, cwd: Path | None = None) -> PartsPlan:
    """Read and check the parts; the tags from the rules. Reads files and git, not the registry."""
    if not request.platforms:
        raise BadInput("orch release needs the platforms the release must hold, to notice a runner that "
                       "failed", fix="pass --platform linux/amd64,linux/arm64 (or --profile P)")
    expected = tuple(order(request.platforms))
    records = read_parts(request.directories)
    repository = _one(records, lambda p: p.repository.name, "repository", "parts of one image")
    revision = _one([p for p in records if p.revision], lambda p: p.revision or "", "revision",
                    "parts of one commit: rerun the runners that built an older one")
    chosen, replaced = choose_parts(records, expected)
    reproducible = reproducible_release(chosen)  # before the labels: a mix is named as such
    _labels_agree(chosen)
    tag_names, annotations = _tags(request, repository, revision, chosen, now, cwd or Path.cwd())
    tags = tuple(parse_reference(t) for t in tag_names)
    if not tags:
        raise BadInput("orch release has no tag to move",
                       fix=f"pass -t {repository}:TAG, or --tag-rule RULE (tags {repository})")
    for tag in tags:
        if tag.digest:
            raise BadInput(f'tag "{tag}" has a digest; a release moves tags', fix="drop the @sha256:... part")
    return PartsPlan(parse_reference(repository, default_tag=None), chosen, expected, tags, annotations,
                     replaced, revision, request.deep, request.signing, reproducible)


def _tags(request: ReleaseRequest, repository: str, revision: str | None, chosen: Sequence[PartRecord],
          now: datetime, cwd: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """The tags to move and the index annotations. -t alone is taken as written; rules and the
    profile's tags (templates too) read where the release stands: this checkout when it is at
    the parts' revision (and the CI's variables), else the checkout facts the parts recorded."""
    profile_tags = () if request.tags or request.tag_rules else tuple(request.profile.tags or ())
    if not request.tag_rules and not profile_tags and not request.images:
        return request.tags, dict(request.profile.annotations or {})
    from orchestrator.tags.gitinfo import git_from_record
    from orchestrator.tags.tagging import plan_tags

    git = _release_git(cwd, revision) or git_from_record(chosen[0].git)
    tagging = plan_tags(literal=request.tags, rules=request.tag_rules,
                        images=request.images or ((repository,) if request.tag_rules else ()),
                        flavor=request.flavor, meta=None, profile=request.profile, git=git, now=now)
    return tagging.tags, {**tagging.annotations, **(request.profile.annotations or {})}


def _one(records: Sequence[PartRecord], key: Callable[[PartRecord], str], what: str, fix: str) -> str:
    """The value every part shares; BadInput naming two that differ."""
    values: dict[str, PartRecord] = {}
    for record in records:
        values.setdefault(key(record), record)
    if len(values) > 1:
        (a, first), (b, second) = list(values.items())[:2]
        raise BadInput(f'the parts are of more than one {what}: "{a}" ({first.path}) and "{b}" ({second.path})',
                       fix=f"a release merges {fix}")
    return next(iter(values), "")


def choose_parts(records: Sequence[PartRecord], expected: tuple[Platform, ...]
                 ) -> tuple[tuple[PartRecord, ...], tuple[str, ...]]:
    """One part per platform, in the order of `expected`; later attempts of one CI job replace
    earlier ones. BadInput for unexpected or doubled platforms, JobFailed for missing ones."""
    by_platform: dict[Platform, PartRecord] = {}
    replaced: list[str] = []
    for record in records:
        for platform in record.platforms:
            if platform not in expected:
                raise BadInput(f"part {record.path} is for {format_platform(platform)}, which this release does "
                               f"not expect ({', '.join(format_platform(p) for p in expected)})",
                               fix="pass --platform with every platform the runners build, or leave that part out")
            earlier = by_platform.get(platform)
            if earlier is None or earlier is record:
                by_platform[platform] = record
                continue
            if earlier.job is None or earlier.job != record.job or earlier.attempt == record.attempt:
                raise BadInput(f"two parts for {format_platform(platform)}: {earlier.path} and {record.path}",
                               fix="give each platform one runner; a re-run of the same CI job replaces its "
                                   "earlier attempt")
            later, older = (record, earlier) if record.attempt > earlier.attempt else (earlier, record)
            by_platform[platform] = later
            replaced.append(f"{format_platform(platform)}: {inert(later.runner)} replaces attempt {older.attempt} "
                            f"({older.digest[:19]})")
    missing = [format_platform(p) for p in expected if p not in by_platform]
    if missing:
        raise BuildStepFailed(f"no part for {', '.join(missing)}: its runner failed or its part was not downloaded; "
                              "no tag was changed", failed={m: "no part" for m in missing},
                              fix="rerun the failed runner job, then the release")
    chosen = list({id(by_platform[p]): by_platform[p] for p in expected}.values())  # a part of two platforms once
    return tuple(chosen), tuple(dict.fromkeys(replaced))


def _labels_agree(parts: Sequence[PartRecord]) -> None:
    first = parts[0]
    for part in parts[1:]:
        for key in sorted(set(first.labels) | set(part.labels)):
            if key not in (BUILD_TIME_LABEL, BUILDKIT_LABEL) and first.labels.get(key) != part.labels.get(key):
                raise BadInput(f'the parts disagree on label {key}: "{first.labels.get(key)}" ({first.label}) and '
                               f'"{part.labels.get(key)}" ({part.label})',
                               fix="build every part from the same profile, rules and --label options")


def released_labels(parts: Sequence[PartRecord]) -> dict[str, str]:
    """The labels every part carries (they agree, _labels_agree checked), as the release reports them;
    the build time is each runner's own, so the earliest is given."""
    labels = dict(parts[0].labels)
    times = sorted(p.labels[BUILD_TIME_LABEL] for p in parts if p.labels.get(BUILD_TIME_LABEL))
    if times:
        labels[BUILD_TIME_LABEL] = times[0]
    return labels


def _release_git(cwd: Path, revision: str | None) -> Any:
    """The checkout the release runs in, if any, when it is at the parts' revision (the CI's
    commit counts as this checkout's, as in the runners' labels)."""
    from orchestrator.tags.gitinfo import oci_labels, read_git

    git = read_git(cwd)
    here = oci_labels(git, datetime.now()).get(REVISION_LABEL)
    if here and revision and here != revision:
        raise BadInput(f"the parts were built from {revision[:12]}, and this checkout is at {here[:12]}",
                       fix="run orch release in the same commit's job (the tag rules read it)")
    return git


class DockerOnDemand:
    """The docker CLI, loaded only if a part is not an OCI index (imagetools then merges them)."""

    def cli_json(self, *args: str) -> Any:
        from orchestrator.docker.runner import Engine

        return Engine().cli_json(*args)


def run_release(plan: PartsPlan, say: Callable[[str], None], engine: Any = None) -> dict[str, Any]:
    """Read each part from the registry, merge, verify, then move every tag or none."""
    repository = plan.repository
    registry = Registry.of(repository)

    def read(part: PartRecord) -> ManifestBytes | None:
        try:
            return registry.manifest_bytes(repository.with_digest(part.digest))
        except ImageNotFound:
            return None

    with _step("reading the parts", plan.platforms):
        sources = parallel_map(read, list(plan.parts), 4)
    absent = [part for part, source in zip(plan.parts, sources, strict=True) if source is None]
    if absent:
        raise BuildStepFailed("the registry does not hold " + "; ".join(
            f"{part.label} ({repository.name}@{part.digest}, from {part.path})" for part in absent)
            + "; no tag was changed", failed={part.label: "part not in the registry" for part in absent},
            fix="rerun that runner's job (its push did not land), then the release")
    entries = [MergeEntry(repository.with_digest(part.digest), part.platforms[0]) for part in plan.parts]
    with _step("merging the parts", plan.platforms):
        staged = stage_index(repository, index_of(engine or DockerOnDemand(), [s for s in sources if s is not None], entries,
                                                  plan.annotations))
    with _step("verifying and signing the merged index", plan.platforms):
        published = publish_staged(staged, plan.tags, VerifyOptions(expected=plan.platforms), deep=plan.deep, say=say,
                                   fix="rebuild the part the verification names, then release again",
                                   signing=plan.signing, reproducible=plan.reproducible is not None)
    runners = {platform: part for part in plan.parts for platform in part.platforms}
    labels = released_labels(plan.parts)
    return {"ok": True, "labels": labels, "annotations": dict(plan.annotations),
            "version": labels.get(VERSION_LABEL), "strategy": "release", "repository": repository.name, "digest": staged.index.digest,
            "staged": str(staged.ref), "tags": [t.as_given for t in plan.tags], "revision": plan.revision,
            "platforms": [_platform_row(entry, runners, plan.reproducible) for entry in published.inspection.entries],
            "parts": [_part_json(p) for p in plan.parts], "replaced": list(plan.replaced),
            "verification": published.verdict.to_json(), "promotion": published.promotion.to_json(),
            "signature": published.signature, "signatures": published.signatures, "reproducible": plan.reproducible}


@contextmanager
def _step(what: str, platforms: tuple[Platform, ...]) -> Iterator[None]:
    """A step of the release: an error from it that names no platform names the release's, and
    the step (`moving the tags` when the promotion failed); its class, and exit code, kept."""
    from orchestrator.publish.promote import PromotionFailed

    with phase(what):
        try:
            yield
        except OrchError as exc:
            if not getattr(exc, "failed", None):
                step = "moving the tags" if isinstance(exc, PromotionFailed) else what
                exc.failed = {",".join(format_platform(p) for p in platforms): step}  # type: ignore[attr-defined]
            raise


def _platform_row(entry: Any, runners: dict[Platform, PartRecord], reproducible: dict[str, Any] | None
                  ) -> dict[str, Any]:
    part = next((p for platform, p in runners.items() if entry.shown_platform is not None
                 and platform == entry.shown_platform.without_os_version()), None)
    built = next((e for e in (part.entries if part else ()) if e.get("platform") == entry.label), {})
    return {"platform": entry.label, "digest": entry.digest,
            "config": format_platform(entry.config) if entry.config else None,
            "runner": inert(part.runner) if part else None,
            "builder": inert(part.builder) if part and part.builder else None,
            "node": inert(built["node"]) if built.get("node") else None,
            "seconds": part.seconds if part else None, "steps": built.get("steps") or [],
            "emulated_seconds": built.get("emulated_seconds", 0.0),
            "buildkit": ((reproducible or {}).get("buildkit") or {}).get(entry.label)}
