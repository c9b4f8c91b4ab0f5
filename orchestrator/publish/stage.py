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
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.model.platform import Platform, platform_slug
from orchestrator.model.references import Reference
from orchestrator.state import state_dir

if TYPE_CHECKING:
    from orchestrator.registry.client import ManifestBytes


@dataclass(frozen=True)
class Staged:
    """An index in the target repository, by digest, and its exact bytes."""

    repository: Reference  # the target repository (its tag, if any, is not used)
    index: ManifestBytes

    @property
    def ref(self) -> Reference:
        return self.repository.with_digest(self.index.digest)


def staging_tag(target: Reference, platform: Platform, fingerprint: str) -> Reference:
    """Where a classic-store build of one platform is pushed (see the module docstring)."""
    base = f"orch-staging-{target.tag or 'latest'}-{platform_slug(platform)}"
    import hashlib

    digest = hashlib.sha256(fingerprint.encode()).hexdigest()
    return target.with_tag(f"{base[:128 - 13]}-{digest[:12]}")


def stage_directory(created_at: int) -> str:
    """Where this run's layouts go: private to the run (its pid and start time), under the state
    directory, beside the blob store its layouts are seeded from with hard links (publish.blobstore);
    in the temporary directory where the state directory cannot be written (no store then)."""
    name = f"orch-stage-{os.getpid()}-{created_at}"
    stage = state_dir() / "stage"
    return str(stage / name if _writable(stage) else Path(tempfile.gettempdir()) / name)


def _writable(directory: Path) -> bool:
    """Whether files can be made in `directory` (made if missing): tried, since permission bits
    say nothing to root, nor of a full or read-only file system."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False


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

    return Staged(repository, Registry.of(repository).manifest_bytes(repository.with_digest(digest)))


def stage_index(repository: Reference, index: ManifestBytes) -> Staged:
    """Put an index (whose children are in the repository already) by digest."""
    from orchestrator.registry.client import Registry

    Registry.of(repository).put_manifest(repository.with_digest(index.digest), index)
    return Staged(repository, index)


def remove_directory(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
