"""The user's inputs checked before planning: build args, the build time, context and Dockerfile."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.errors import BadInput

_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_build_args(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            # As docker: `--build-arg NAME` takes NAME from the environment.
            if key not in os.environ:
                raise BadInput(f'--build-arg "{item}" has no value and ${key} is not set',
                               fix=f"write --build-arg {key}=VALUE")
            value = os.environ[key]
        if not _ARG_NAME.match(key):
            raise BadInput(f'--build-arg "{item}": "{key}" is not a valid argument name',
                           fix="names are letters, digits and _, not starting with a digit")
        out[key] = value
    return out


def build_time() -> datetime:
    """Now, or $SOURCE_DATE_EPOCH for reproducible builds (the convention buildx also follows)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return datetime.now(timezone.utc)
    if not epoch.isdigit():
        raise BadInput(f'SOURCE_DATE_EPOCH "{epoch}" is not a number of seconds since 1970',
                       fix="set it to e.g. $(git log -1 --format=%ct), or unset it")
    return datetime.fromtimestamp(int(epoch), timezone.utc)


def is_remote(context: str) -> bool:
    return "://" in context


def resolve_sources(context: str, dockerfile: str | None, *, from_cli: bool, cwd: Path) -> tuple[Path, str | None]:
    """The context directory and the Dockerfile path, checked; remote contexts pass as they are.
    As buildx: -f is relative to the current directory; a profile's is relative to the context."""
    context_path = Path(context) if Path(context).is_absolute() else cwd / context
    if is_remote(context):
        return context_path, dockerfile
    if not context_path.is_dir():
        raise BadInput(f'build context "{context}" is not a directory', fix="pass the directory to build from")
    if dockerfile:
        resolved = (Path(dockerfile) if Path(dockerfile).is_absolute() else cwd / dockerfile) if from_cli \
            else context_path / dockerfile
        if not resolved.is_file():
            raise BadInput(f'Dockerfile "{dockerfile}" not found (looked at {resolved})',
                           fix="pass -f PATH to an existing Dockerfile")
        return context_path, str(resolved)
    if not (context_path / "Dockerfile").is_file():
        raise BadInput(f'no Dockerfile in "{context}"', fix="pass -f PATH, or set dockerfile in the profile")
    return context_path, None
