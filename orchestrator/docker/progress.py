"""Reading buildx's plain progress: which platform failed at which step, whether only the
registry stumbled during the push, and the digest it exported."""

from __future__ import annotations

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform
from orchestrator.model.platform_parse import parse
from orchestrator.patterns import on_first_use

MULTI_PLATFORM_REFUSED = "Multi-platform build is not supported"

_REGISTRY_5XX = on_first_use(r"unexpected status from \w+ request to \S+: 5\d\d |: 5\d\d Internal Server Error")
# What distribution 2.8 answers when two pushers write the same blob into one repository at the same
# moment (two nodes pushing a layer their platforms share, a COPY of the same files): the manifest
# PUT of the one that lost the race names the blob unknown, or the upload's digest as not matching.
# Seen on the two-node remote builder; pushing again finds the blob in place.
_CONCURRENT_UPLOAD = on_first_use(r"provided digest did not match uploaded content|blob unknown to registry")


def is_transient_push_failure(log_lines: list[str]) -> bool:
    """The registry failed the push after every build step succeeded, in a way a second push mends.

    distribution 2.8's filesystem storage writes tag links non-atomically; with
    the docker driver BuildKit and the daemon both touch the tag, and a read
    of a half-written link answers 500. Two nodes pushing one layer at once meet
    the same storage mid-write (_CONCURRENT_UPLOAD). Pushing the same content
    again is idempotent and cached, so a retry is safe.
    """
    errors = [line for line in log_lines if "ERROR" in line]
    if not errors or failed_platforms(log_lines):
        return False
    if all(_REGISTRY_5XX.search(e) for e in errors):
        return True
    return all("failed to push" in e for e in errors) and any(_CONCURRENT_UPLOAD.search(line) for line in log_lines)


_PLATFORM_STEP = on_first_use(r"^#\d+ \[(?P<platform>[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9.]+)?)[ \]]")
_STEP_ID = on_first_use(r"^#(?P<id>\d+) ")


def failed_platforms(log_lines: list[str]) -> dict[Platform, str]:
    """From buildx plain progress: {platform: the step that failed}."""
    step_platform: dict[str, tuple[str, str]] = {}
    failed: dict[Platform, str] = {}
    for line in log_lines:
        match = _PLATFORM_STEP.match(line)
        if match:
            step = _STEP_ID.match(line).group("id")  # type: ignore[union-attr]
            step_platform.setdefault(step, (match.group("platform"), line.split("] ", 1)[-1].strip()))
        id_match = _STEP_ID.match(line)
        if id_match and " ERROR" in line and id_match.group("id") in step_platform:
            label, what = step_platform[id_match.group("id")]
            try:
                failed.setdefault(parse(label), what)
            except BadInput:
                continue  # a step label that is no platform ("internal", a stage name)
    return failed


_STEP_TITLE = on_first_use(r"^#(?P<id>\d+) \[(?P<title>[^\]]+)\] (?P<what>.+)$")


def failed_step(log_lines: list[str]) -> str | None:
    """From buildx plain progress of any build: the step that failed ("RUN make"), if one did."""
    titles: dict[str, str] = {}
    for line in log_lines:
        title = _STEP_TITLE.match(line)
        if title:
            titles.setdefault(title.group("id"), title.group("what").strip())
        step = _STEP_ID.match(line)
        if step and " ERROR" in line and step.group("id") in titles:
            return titles[step.group("id")]
    return None




_EXPORTED = on_first_use(r"exporting manifest(?: list)? (sha256:[a-f0-9]{64})")


def exported_digest(log_lines: list[str]) -> str | None:
    """The digest buildx says it exported (the last one named), for when no metadata file was written."""
    for line in reversed(log_lines):
        match = _EXPORTED.search(line)
        if match:
            return match.group(1)
    return None


def last_error(log_lines: list[str]) -> str:
    """The last ERROR line, else the last line: a one-line reason for a failed call."""
    errors = [line for line in log_lines if "ERROR" in line]
    return (errors[-1] if errors else (log_lines[-1] if log_lines else "no output")).strip()


def error_lines(log_lines: list[str], most: int = 3) -> list[str]:
    return [line for line in log_lines if line.startswith("ERROR") or "ERROR:" in line][-most:]


_STEP_DONE = on_first_use(r"#(\d+) DONE\b")


def export_step(line: str) -> tuple[str, str] | None:
    """(the step's number, the digest) of a line where buildx says it exported a manifest or a
    list (`#13 exporting manifest list sha256:...`): the last one a step names is its result."""
    match = _EXPORTED.search(line)
    return (line.split(" ", 1)[0].lstrip("#"), match.group(1)) if match and line.startswith("#") else None


def step_done(line: str) -> str | None:
    """The number of the step a `#N DONE` line ends."""
    match = _STEP_DONE.match(line)
    return match.group(1) if match else None


_EXPORTED_CONFIG = on_first_use(r"^#\d+ exporting config (sha256:[a-f0-9]{64})")
_LAYERS_PUSHED = on_first_use(r"^#\d+ pushing layers\b.* done$")


def exported_config(line: str) -> str | None:
    """The digest of an image config buildx says it exported (`#13 exporting config sha256:...`)."""
    match = _EXPORTED_CONFIG.match(line)
    return match.group(1) if match else None


def layers_pushed(line: str) -> bool:
    """buildx says every blob (layers and configs) is in the registry (`#13 pushing layers 0.1s
    done`); the manifests follow."""
    return bool(_LAYERS_PUSHED.match(line))
