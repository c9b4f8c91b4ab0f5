"""Big base images made here from random bytes and pushed straight to a plain-HTTP registry: no
download, no BuildKit (nothing big enters a builder's cache or a build context).

One uncompressed layer per platform (a tar of one file of seeded random bytes: nothing compresses
or dedupes, and the same seed gives the same digests, so a rerun adds nothing to the registry).
"""

from __future__ import annotations

import hashlib
import json
import random
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CHUNK = 16 * 1024 * 1024


def _request(url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None,
             body_file: Path | None = None) -> urllib.request.addinfourl:
    if body_file is not None:
        handle = body_file.open("rb")
        headers = {**(headers or {}), "Content-Length": str(body_file.stat().st_size)}
        request = urllib.request.Request(url, data=handle, method=method, headers=headers)  # type: ignore[arg-type]
    else:
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    return urllib.request.urlopen(request, timeout=600)


def _has_blob(registry: str, repository: str, digest: str) -> bool:
    try:
        _request(f"http://{registry}/v2/{repository}/blobs/{digest}", "HEAD")
        return True
    except urllib.error.HTTPError:
        return False


def _push_blob(registry: str, repository: str, digest: str, *, data: bytes | None = None,
               path: Path | None = None) -> None:
    if _has_blob(registry, repository, digest):
        return
    started = _request(f"http://{registry}/v2/{repository}/blobs/uploads/", "POST", data=b"")
    location = started.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    joiner = "&" if "?" in location else "?"
    _request(f"{location}{joiner}digest={digest}", "PUT", data=data, body_file=path,
             headers={"Content-Type": "application/octet-stream"})


def _put_manifest(registry: str, repository: str, reference: str, media_type: str, body: bytes) -> str:
    _request(f"http://{registry}/v2/{repository}/manifests/{reference}", "PUT", data=body,
             headers={"Content-Type": media_type})
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _layer(size: int, seed: int, directory: Path) -> tuple[Path, str, int]:
    """A tar of one file of `size` seeded random bytes, written to disk: its path, digest and size."""
    source = random.Random(seed)
    path = directory / f"layer-{seed}.tar"
    info = tarfile.TarInfo("payload.bin")
    info.size, info.mtime, info.mode = size, 0, 0o644
    with path.open("wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(info, _Random(source, size))  # type: ignore[arg-type]
    digest = hashlib.sha256()
    with path.open("rb") as done:
        while chunk := done.read(CHUNK):
            digest.update(chunk)
    return path, "sha256:" + digest.hexdigest(), path.stat().st_size


class _Random:
    """`size` bytes from `source`, read as tarfile reads a member's content (never all in memory)."""

    def __init__(self, source: random.Random, size: int) -> None:
        self.source, self.left = source, size

    def read(self, size: int = -1) -> bytes:
        count = self.left if size < 0 else min(size, self.left)
        self.left -= count
        return self.source.randbytes(count)


def push_base(registry: str, repository: str, tag: str, sizes: dict[str, int], seed: int) -> str:
    """An image of `sizes` (platform -> bytes of its one layer) as `registry/repository:tag`; the
    reference. An index when there are several platforms, else a manifest."""
    manifests = []
    with tempfile.TemporaryDirectory(prefix="orch-bench-base-") as work:
        for number, (platform, size) in enumerate(sizes.items()):
            os_name, architecture, *variant = platform.split("/")
            path, digest, length = _layer(size, seed * 100 + number, Path(work))
            _push_blob(registry, repository, digest, path=path)
            path.unlink()
            described = {"os": os_name, "architecture": architecture, **({"variant": variant[0]} if variant else {})}
            config = json.dumps({**described, "config": {}, "rootfs": {"type": "layers", "diff_ids": [digest]},
                                 "created": "1970-01-01T00:00:00Z"}, sort_keys=True).encode()
            config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
            _push_blob(registry, repository, config_digest, data=config)
            manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                                   "config": {"mediaType": CONFIG, "digest": config_digest, "size": len(config)},
                                   "layers": [{"mediaType": LAYER, "digest": digest, "size": length}]}).encode()
            if len(sizes) == 1:
                _put_manifest(registry, repository, tag, MANIFEST, manifest)
                return f"{registry}/{repository}:{tag}"
            manifest_digest = _put_manifest(registry, repository, "sha256:" + hashlib.sha256(manifest).hexdigest(),
                                            MANIFEST, manifest)
            manifests.append({"mediaType": MANIFEST, "digest": manifest_digest, "size": len(manifest),
                              "platform": described})
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}).encode()
    _put_manifest(registry, repository, tag, INDEX, index)
    return f"{registry}/{repository}:{tag}"


def delete_repositories(registry: str, repositories: list[str]) -> int:
    """Delete every tagged manifest of `repositories` (the blobs stay until the registry's own
    garbage collection); how many were deleted."""
    deleted = 0
    accept = ", ".join((INDEX, MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.docker.distribution.manifest.v2+json"))
    for repository in repositories:
        try:
            tags = json.load(_request(f"http://{registry}/v2/{repository}/tags/list")).get("tags") or []
        except (urllib.error.URLError, ValueError):
            continue
        for tag in tags:
            try:
                head = _request(f"http://{registry}/v2/{repository}/manifests/{tag}", "HEAD",
                                headers={"Accept": accept})
                _request(f"http://{registry}/v2/{repository}/manifests/{head.headers['Docker-Content-Digest']}",
                         "DELETE")
                deleted += 1
            except urllib.error.URLError:
                pass
    return deleted
