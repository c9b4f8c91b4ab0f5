"""Part records: what one runner of a release built, verified and staged by digest, for
`orch release` to merge.

A runner (`orch build --part DIR`) writes one small JSON file into DIR, the directory its CI
job uploads as an artifact. Its name holds the platforms and the digest, so runners never
write the same file, and a rerun that built the same bytes writes the same one. The file is
written whole or not at all (a temporary file renamed), so a runner killed mid-write leaves
no half record for the release to trip on.

The release reads every `*.json` under the directories it is given (download-artifact puts
each artifact in a folder of its own, or all in one): each must be a part record, at most
1 MiB, with the fields below of the right types, or the release stops before reading the
registry. A platform is written as `linux/arm/v7`; a record may also give it as an object of
os, architecture and variant (how an index descriptor spells it).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_platform, platform_slug
from orchestrator.model.platform_parse import parse
from orchestrator.model.references import Reference, parse_reference
from orchestrator.publish.part_check import check_record

KIND = "orch-part"
FORMAT = 1
MAX_BYTES = 1 << 20  # a record is a few KB; anything larger is not one
FIX = "pass the directories `orch build --part DIR` wrote (as the CI artifacts hold them), and nothing else"


@dataclass(frozen=True)
class PartRecord:
    """One runner's part, as read back."""

    path: str  # the file it was read from, for messages
    repository: Reference  # REGISTRY/REPO, no tag
    digest: str  # what the runner staged: an index (usually) or a manifest
    platforms: tuple[Platform, ...]
    revision: str | None  # the commit the runner built
    labels: dict[str, str] = field(default_factory=dict)  # the labels orch set in each image's config
    ci: dict[str, Any] | None = None  # provider, pipeline, job, attempt, runner (ci_facts.ci_job)
    git: dict[str, Any] | None = None  # the checkout's facts (tags.gitinfo.git_record)
    builder: str | None = None
    seconds: float = 0.0  # the runner's build, verify and stage
    entries: tuple[dict[str, Any], ...] = ()  # the build result's platforms: digest, node, steps
    # --reproducible: {"source_date_epoch": N, "buildkit": {platform: version}}; None when built without it
    reproducible: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return ",".join(format_platform(p) for p in self.platforms)

    @property
    def job(self) -> tuple[str, str, str] | None:
        """The CI job that wrote it, attempts aside (provider, pipeline, job name)."""
        if not self.ci or not self.ci.get("pipeline"):
            return None
        return str(self.ci.get("provider")), str(self.ci.get("pipeline")), str(self.ci.get("job"))

    @property
    def attempt(self) -> int:
        return int((self.ci or {}).get("attempt") or 0)

    @property
    def runner(self) -> str:
        """Who built it, for the release's summary."""
        ci = self.ci or {}
        if ci.get("job"):
            return f"{ci.get('provider')} job {ci.get('job')} (attempt {self.attempt})" + (
                f" on {ci['runner']}" if ci.get("runner") else "")
        return Path(self.path).name


def part_file_name(platforms: Iterable[Platform], digest: str) -> str:
    return f"orch-part-{'+'.join(platform_slug(p) for p in platforms)}-{digest.removeprefix('sha256:')[:12]}.json"


def write_part(directory: str, document: Mapping[str, Any]) -> Path:
    """Write the record whole into `directory` (made if missing); its path."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f'--part "{directory}" cannot be made: {exc.strerror}', fix="pass a directory you can write") from None
    platforms = [parse(p) for p in document["platforms"]]
    target = folder / part_file_name(platforms, document["digest"])
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".orch-part-", suffix=".tmp")
    with os.fdopen(handle, "w") as file:
        json.dump({"kind": KIND, "format": FORMAT, **document}, file, indent=2, sort_keys=True)
        file.write("\n")
    os.replace(temporary, target)
    return target


def read_parts(directories: Iterable[str]) -> list[PartRecord]:
    """Every part record under `directories`, in file-name order; BadInput on anything else."""
    records = []
    for directory in directories:
        folder = Path(directory)
        if not folder.is_dir():
            raise BadInput(f'"{directory}" is not a directory of parts', fix=FIX)
        files = sorted(p for p in folder.rglob("*.json") if p.is_file())
        if not files:
            raise BadInput(f'"{directory}" holds no part records (*.json)', fix=FIX)
        records += [read_part(path) for path in files]
    return records


def read_part(path: Path) -> PartRecord:
    def refuse(why: str) -> BadInput:
        return BadInput(f'part file "{path}" {why}', fix=FIX)

    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise refuse(f"is {size} bytes; a part record is at most {MAX_BYTES}")
        document = json.loads(path.read_bytes(), parse_constant=_no_constant)
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror}") from None
    except RecursionError:
        raise refuse("is damaged: it nests too deeply to be a part record") from None
    except ValueError:
        raise refuse("is not JSON (or holds NaN or Infinity)") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise refuse(f'is not a part record (no "kind": "{KIND}")')
    if document.get("format") != FORMAT:
        raise refuse(f'is format {document.get("format")!r}; this orch reads format {FORMAT}')
    try:
        check_record(document)
        return _record(str(path), document)
    except (KeyError, TypeError, ValueError, BadInput) as exc:
        detail = exc.message if isinstance(exc, BadInput) else f"field {exc} is missing" \
            if isinstance(exc, KeyError) else str(exc)
        raise refuse(f"is damaged: {detail}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a part record holds")


def _record(path: str, document: dict[str, Any]) -> PartRecord:
    repository = parse_reference(_text(document, "repository"), default_tag=None)
    if repository.tag or repository.digest:
        raise ValueError(f'repository "{repository}" has a tag or digest')
    digest = _text(document, "digest")
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise ValueError(f'digest "{digest}" is not sha256:<64 hex>')
    platforms = tuple(_platform(p) for p in document["platforms"])
    if not platforms:
        raise ValueError("no platforms")
    labels = document.get("labels") or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError("labels are not strings")
    entries = document.get("entries") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("entries are not objects")
    return PartRecord(path=path, repository=repository, digest=digest, platforms=platforms,
                      revision=_optional(document, "revision"), labels=dict(labels), ci=_mapping(document, "ci"),
                      git=_mapping(document, "git"), builder=_optional(document, "builder"),
                      seconds=float(document.get("seconds") or 0.0), entries=tuple(entries),
                      reproducible=_reproducible(document, labels))


def _reproducible(document: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any] | None:
    """What the record says of --reproducible; for a record without the field, what the labels
    orch sets say (builds.reproducible: the epoch and the BuildKit version)."""
    given = document.get("reproducible")
    if isinstance(given, dict) and "source_date_epoch" in given:
        return {"source_date_epoch": int(given["source_date_epoch"]), "buildkit": dict(given.get("buildkit") or {})}
    epoch = labels.get("dev.orch.reproducible.source-date-epoch")
    if epoch is None or not epoch.isdigit():
        return None
    version = labels.get("dev.orch.reproducible.buildkit")
    platforms = [format_platform(_platform(p)) for p in document.get("platforms") or ()]
    return {"source_date_epoch": int(epoch), "buildkit": {p: version for p in platforms} if version else {}}


def _platform(value: Any) -> Platform:
    if isinstance(value, str):
        return parse(value)
    if isinstance(value, dict) and isinstance(value.get("os"), str) and isinstance(value.get("architecture"), str):
        variant = value.get("variant")
        return parse("/".join([value["os"], value["architecture"], *([variant] if isinstance(variant, str) else [])]))
    raise ValueError(f"platform {value!r} is neither os/arch[/variant] nor an object of os and architecture")


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _optional(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    return value if isinstance(value, str) and value else None


def _mapping(document: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = document.get(key)
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{key} is not an object")
    return value
