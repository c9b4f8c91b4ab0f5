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


LAST_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: the last second an RFC 3339 year can say


def build_time() -> datetime:
    """Now, or $SOURCE_DATE_EPOCH for reproducible builds (the convention buildx also follows)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return datetime.now(timezone.utc)
    fix = "set it to e.g. $(git log -1 --format=%ct), or unset it"
    if not epoch.isdigit():
        raise BadInput(f'SOURCE_DATE_EPOCH "{epoch}" is not a number of seconds since 1970', fix=fix)
    if int(epoch) > LAST_EPOCH:
        raise BadInput(f'SOURCE_DATE_EPOCH "{epoch}" is after the year 9999 (at most {LAST_EPOCH})', fix=fix)
    return datetime.fromtimestamp(int(epoch), timezone.utc)


def check_metadata_file(path: str, option: str = "--metadata-file") -> None:
    """A result file (`--metadata-file`, `--output-env`) must be writable before anything is built
    (it is written at the end)."""
    target = Path(path)
    if target.is_dir():
        raise BadInput(f'{option} "{path}" is a directory', fix="name a file, e.g. build-result.json")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f'{option} "{path}": the directory "{parent}" does not exist',
                       fix=f"create it first (mkdir -p {parent}), or name a file in an existing directory")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise BadInput(f'{option} "{path}" is not writable', fix="name a file you may write")


def check_secret(text: str) -> str:
    """A `--secret` value as buildx takes it: id=NAME with src=FILE or env=VAR (or neither: the
    variable NAME). The secret itself never appears on a command line."""
    fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
    fix = "write --secret id=NAME,env=VAR or --secret id=NAME,src=FILE (read it in a RUN --mount=type=secret,id=NAME)"
    unknown = sorted(set(fields) - {"id", "src", "source", "env", "type", "required"})
    if not fields.get("id") or unknown:
        raise BadInput(f'--secret "{text}" needs id=NAME' + (f' (unknown: {", ".join(unknown)})' if unknown else ""),
                       fix=fix)
    source = fields.get("src") or fields.get("source")
    if source and not Path(source).is_file():
        raise BadInput(f'--secret "{text}": the file "{source}" does not exist', fix=fix)
    variable = fields.get("env") or (None if source else fields["id"])
    if variable and variable not in os.environ:
        raise BadInput(f'--secret "{text}": ${variable} is not set', fix=f"export {variable}, or {fix}")
    return text


SECRET_FILE_READ = 64 * 1024  # what of a --secret file is masked (a key, a token file, an .npmrc)


def secret_value(text: str) -> str:
    """What a checked `--secret` hands the build (its variable's value, or its file's text, the
    first SECRET_FILE_READ bytes), to be masked wherever orch prints it: a step may print it."""
    fields = dict(part.partition("=")[::2] for part in text.split(",") if part)
    source = fields.get("src") or fields.get("source")
    variable = fields.get("env") or (None if source else fields.get("id"))
    if variable:
        return os.environ.get(variable, "")
    try:
        with open(source or "", "rb") as file:
            return file.read(SECRET_FILE_READ).decode("utf-8", errors="ignore")
    except OSError:
        return ""


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
