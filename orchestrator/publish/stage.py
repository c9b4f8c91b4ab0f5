"""Staging by digest: a built index goes into the target repository under no tag at all.

With the docker driver the build writes an OCI layout into a private directory;
orch verifies it there, then uploads it by digest (blobs, then manifests,
children first) and the pipeline verifies it again from the registry. With
the docker-container, remote and kubernetes drivers buildx pushes by digest
itself (push-by-digest). Nothing is ever written under a staging tag: a
registry that cannot delete tags (distribution 2.8) collects nothing, and two
runs, even on two CI runners, never share a staging name.

One setup cannot: the docker driver on the classic image store exports only
to its own store or to a registry name. There each platform's build is pushed
to a tag named after the build's inputs (`orch-staging-TAG-linux-arm64-HASH`:
reruns with the same inputs reuse it, different contents never share it),
deleted after publishing where the registry can delete tags, and named in the
output where it cannot.

The private directory is a cache's neighbour, not the cache: where the state directory cannot
take a layout (full, read-only), the layout goes to the system's temporary directory instead,
without the blob store, said once. Before the build that is tried with a page; when buildx's own
export fails there (its error names the layout), the layout becomes a link to the temporary
directory and the export runs again, the build itself cached (export_elsewhere). Where the
temporary directory cannot take it either, the run stops with exit 3 before any tag moves.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import EnvironmentMissing
from orchestrator.logging import get_logger
from orchestrator.model.platform import Platform, platform_slug
from orchestrator.model.references import Reference
from orchestrator.state import exclusive_file, holds, state_dir

if TYPE_CHECKING:
    from orchestrator.registry.client import ManifestBytes

STAGE_PREFIX = "orch-stage-"
_PROBE = 4096  # bytes a directory must take to be staged in: one page
_failures: dict[str, str] = {}  # stage name -> why the state directory could not take it (said once)
_lock = threading.Lock()


@dataclass(frozen=True)
class Staged:
    """An index in the target repository, by digest, and its exact bytes."""

    repository: Reference  # the target repository (its tag, if any, is not used)
    index: ManifestBytes
    read_back: bool = False  # `index` was read from the registry by digest (not sent there by orch)

    @property
    def ref(self) -> Reference:
        return self.repository.with_digest(self.index.digest)


def staging_tag(target: Reference, platform: Platform, fingerprint: str) -> Reference:
    """Where a classic-store build of one platform is pushed (see the module docstring)."""
    base = f"orch-staging-{target.tag or 'latest'}-{platform_slug(platform)}"
    import hashlib

    digest = hashlib.sha256(fingerprint.encode()).hexdigest()
    return target.with_tag(f"{base[:128 - 13]}-{digest[:12]}")


def temporary_directory() -> str:
    """The system's temporary directory, as tempfile chooses it (imported only when asked)."""
    import tempfile

    return tempfile.gettempdir()


def stage_directory(created_at: int) -> str:
    """Where this run's layouts go: private to the run (its pid and start time), under the state
    directory, beside the blob store its layouts are seeded from with hard links (publish.blobstore);
    in the temporary directory where the state directory cannot take a file (no store then, said once)."""
    name = f"{STAGE_PREFIX}{os.getpid()}-{created_at}"
    stage = state_dir() / "stage"
    failure = _write_fails(stage)
    if failure is None:
        return str(stage / name)
    _bypassed(name, failure)
    return str(Path(temporary_directory()) / name)


def _write_fails(directory: Path) -> str | None:
    """Why files cannot be written in `directory` (made if missing), or None: tried with one page,
    since permission bits say nothing to root, nor of a full or read-only file system, and a full
    one may still take an empty file."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = exclusive_file(directory, ".probe-", "")
        try:
            os.unlink(probe)
            page = b"\0" * _PROBE
            while page:  # a write cut short by a full disk is retried, and then fails (ENOSPC)
                page = page[os.write(handle, page):]
        finally:
            os.close(handle)
        return None
    except OSError as exc:
        return exc.strerror or str(exc)


def failed_write(layout: str, lines: Sequence[str]) -> str | None:
    """The system's words ("no space left on device") when buildx's error names a path in
    `layout`: its export could not write there. None for any other failure."""
    root = layout.rstrip("/")
    for line in reversed(lines):
        at = line.find(root) if "ERROR" in line else -1
        rest = line[at + len(root):] if at >= 0 else ""
        if at >= 0 and (not rest or rest[0] in "/: "):
            reason = rest.split(": ", 1)[1] if ": " in rest else line
            return reason.strip().removesuffix(": unknown")
    return None


def export_elsewhere(layout: str, lines: Sequence[str]) -> bool:
    """After buildx failed to export into `layout`: True when the failure was a write into one of
    this run's layouts in the state directory, which is then moved to the temporary directory
    (the same path, now a link there, so the plan's commands are unchanged) for the export to run
    again (BuildKit's cache holds the build) without the blob store; said once per run. False for
    any other failure or any other directory. EnvironmentMissing (exit 3) when the write failed
    in the temporary directory, or it cannot take the layout either."""
    path = Path(layout)
    reason = failed_write(layout, lines)
    if reason is None or not path.parent.name.startswith(STAGE_PREFIX):
        return False
    stage = path.parent.name
    real = Path(os.path.realpath(layout))
    where, written = real.parent, _size(real)
    remove_directory(layout)  # the part it wrote: the room it took is the export's again
    if not holds(where):  # in the temporary directory already
        raise _no_room(where, reason, written, _failures.get(stage))
    target = Path(temporary_directory()) / f"{stage}-{path.name}"
    failure = _write_fails(target)
    if failure is not None:
        raise _no_room(target.parent, failure, written, reason)
    try:
        path.symlink_to(target, target_is_directory=True)
    except OSError as exc:
        remove_directory(str(target))
        raise EnvironmentMissing(
            f"the state directory {state_dir()} cannot take this build's layout ({reason}), nor a link from "
            f"{layout} to the temporary directory ({exc.strerror or exc})",
            fix=f"free space in {state_dir()}, or set ORCH_STATE_HOME to a directory with room; no tag was changed",
        ) from None
    _bypassed(stage, reason)
    return True


def _bypassed(stage: str, reason: str) -> None:
    """Say once per run that its layouts go to the temporary directory, without the cache."""
    with _lock:
        if stage in _failures:
            return
        _failures[stage] = reason
    get_logger().warning(
        "stage.cache_bypassed",
        advice=f"the state directory {state_dir()} cannot take this build's layout ({reason}); orch stages it in "
               f"{temporary_directory()} instead and bypasses the blob store (its cache) this run: free space in "
               f"{state_dir()}, or set ORCH_STATE_HOME to a directory with room, to keep exports incremental")


def _no_room(directory: Path, reason: str, written: int, earlier: str | None) -> EnvironmentMissing:
    """Exit 3: neither the state directory nor the temporary directory can take the layout."""
    try:
        import shutil

        free = f"{size_text(shutil.disk_usage(directory).free)} free there"
    except OSError:
        free = "its free space unknown"
    wrote = f", the export had written {size_text(written)} when it failed" if written else ""
    state = f" after the state directory {state_dir()} could not take it either ({earlier})" if earlier else ""
    return EnvironmentMissing(
        f"there is no room to stage this build: its layout could not be written in the temporary directory "
        f"{directory} ({reason}; {free}{wrote}){state}",
        fix=f"free space in {directory} or {state_dir()}, or point TMPDIR (or ORCH_STATE_HOME) at a file system "
            "with room for the image; no tag was changed")


def size_text(size: int) -> str:
    """Bytes for people: 512 bytes, 3.0 KiB, 1.9 MiB, 12.4 GiB."""
    value, unit = float(size), "bytes"
    for larger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def _size(directory: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for file in files:
            try:
                total += (Path(root) / file).lstat().st_size
            except OSError:
                continue
    return total


def upload_layout(layout_dir: str, digest: str, repository: Reference) -> Staged:
    """Upload the index `digest` of a layout into `repository`, by digest. When the registry
    holds that index already (a rebuild of the same inputs), nothing is sent (copy_image); a
    blob an earlier publish left in another repository of the registry is mounted from there
    (publish.blob_sources). The read-back verification that follows checks it all the same."""
    from orchestrator.publish import blob_sources
    from orchestrator.registry.client import Registry
    from orchestrator.registry.layout import Layout
    from orchestrator.registry.transfer import copy_image

    layout = Layout(Path(layout_dir))
    host, name = repository.registry, repository.repository
    return Staged(repository, copy_image(layout, digest, Registry.of(repository), name,
                                         mount_from=blob_sources.known(host),
                                         placed=lambda blobs: blob_sources.remember(host, name, blobs)))


def already_staged(repository: Reference, digest: str) -> Staged:
    """An index buildx pushed by digest itself."""
    from orchestrator.registry.client import Registry

    return Staged(repository, Registry.of(repository).manifest_bytes(repository.with_digest(digest)), read_back=True)


def stage_index(repository: Reference, index: ManifestBytes) -> Staged:
    """Put an index (whose children are in the repository already) by digest."""
    from orchestrator.registry.client import Registry

    Registry.of(repository).put_manifest(repository.with_digest(index.digest), index)
    return Staged(repository, index)


def remove_directory(path: str) -> None:
    """Remove a stage directory or one of its layouts, with the temporary directories layouts
    were moved to (the links in it, export_elsewhere)."""
    top = Path(path)
    if not os.path.lexists(top):
        return  # never made (a build pushed straight from its builder): shutil is not imported for it
    import shutil

    try:
        links = [top] if top.is_symlink() else [child for child in top.iterdir() if child.is_symlink()]
    except OSError:
        links = []
    for link in links:
        shutil.rmtree(os.path.realpath(link), ignore_errors=True)
        link.unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)
