"""Reproducible builds (`--reproducible`): one commit, one image digest per platform.

What makes two builds of one commit byte for byte the same on BuildKit: every timestamp set
to SOURCE_DATE_EPOCH (the build arg BuildKit reads for the config's and history's times) and
every file's mtime in the layers clamped to it (`rewrite-timestamp=true` on the output); the
created label at that time. What is recorded in the image so `orch verify --reproduce` can
build it again the same way: the epoch, the build args and target, and the BuildKit version
that built it (another version may write other bytes). Pure: no engine, no git.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone

from orchestrator.errors import BadInput

LAST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: the last second an RFC 3339 year can say
PREFIX = "dev.orch.reproducible."
EPOCH_LABEL = PREFIX + "source-date-epoch"
ARGS_LABEL = PREFIX + "build-args"  # JSON: the build args, secret-looking ones by name only
TARGET_LABEL = PREFIX + "target"
BUILDKIT_LABEL = PREFIX + "buildkit"  # the BuildKit that built it: v0.26.3, or "dockerd 26.1.5" (the daemon's own)
CREATED_LABEL = "org.opencontainers.image.created"
REVISION_LABEL = "org.opencontainers.image.revision"
UNKNOWN_BUILDKIT = "v0.0.0+unknown"  # what a daemon's own BuildKit says of itself when built without a version


def resolve_epoch(environ: Mapping[str, str], commit_date: datetime | None, *, where: str = ".") -> int:
    """SOURCE_DATE_EPOCH where it is set, else the commit's time; exit 2 when neither is known."""
    epoch = environ.get("SOURCE_DATE_EPOCH")
    fix = "set it to the commit's time, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct), or unset it"
    if epoch:
        if not epoch.isdigit():
            raise BadInput(f'SOURCE_DATE_EPOCH "{epoch}" is not a number of seconds since 1970', fix=fix)
        if int(epoch) > LAST_EPOCH:
            raise BadInput(f'SOURCE_DATE_EPOCH "{epoch}" is after the year 9999 (at most {LAST_EPOCH})', fix=fix)
        return int(epoch)
    if commit_date is None:
        raise BadInput(f'--reproducible needs a time for every timestamp: "{where}" is not in a git work tree with a '
                       "commit, and SOURCE_DATE_EPOCH is not set",
                       fix="build from a git checkout, or set SOURCE_DATE_EPOCH (seconds since 1970)")
    return int(commit_date.timestamp())


def epoch_time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def recorded_labels(epoch: int, build_args: Mapping[str, str], secret: tuple[str, ...],
                    target: str | None) -> dict[str, str]:
    """What the image records of how it was built (the BuildKit version is added when the
    builder is known: `buildkit_label`). A secret-looking build arg is recorded by name only."""
    args = {key: (None if key in secret else value) for key, value in build_args.items()
            if key != "SOURCE_DATE_EPOCH"}
    labels = {EPOCH_LABEL: str(epoch), ARGS_LABEL: json.dumps(args, sort_keys=True, separators=(",", ":"))}
    if target:
        labels[TARGET_LABEL] = target
    return labels


def buildkit_name(version: str | None, driver: str, server_version: str | None) -> str:
    """The BuildKit a node runs, as recorded: its own version, else (the daemon's own BuildKit,
    which a distribution may build without one) the daemon's version, which fixes it."""
    if version and version != UNKNOWN_BUILDKIT:
        return version
    if driver == "docker" and server_version:
        return f"dockerd {server_version}"
    return version or "unknown"


def recorded_args(labels: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """The build args an image records, and the names of those recorded by name only (secret)."""
    try:
        args = json.loads(labels.get(ARGS_LABEL) or "{}")
    except ValueError:
        args = {}
    if not isinstance(args, dict):
        args = {}
    given = {str(k): str(v) for k, v in args.items() if v is not None}
    return given, tuple(str(k) for k, v in args.items() if v is None)
