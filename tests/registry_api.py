"""Images written and read through the registry's HTTP API directly (urllib, not orch's client),
so tests can make exactly the images they need (any platform, Windows os.version, an index
with attestations) in seconds, and read what orch published without orch."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request
from typing import Any

from orchestrator.model.mediatypes import ACCEPT, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST

CONFIG_TYPES = {DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
                OCI_MANIFEST: "application/vnd.oci.image.config.v1+json"}
LAYER_TYPES = {DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.diff.tar.gzip",
               OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip"}


# TLS contexts for registries a test serves over https, by base URL (https://127.0.0.1:PORT).
TLS_CONTEXTS: dict[str, object] = {}


def _base(where: Any) -> str:
    """A port of a plain-HTTP loopback registry (or a test Registry, which has one), or a base URL."""
    where = getattr(where, "port", where)
    return f"http://127.0.0.1:{where}" if isinstance(where, int) else where.rstrip("/")


def _open(request: urllib.request.Request, base: str):
    return urllib.request.urlopen(request, timeout=10, context=TLS_CONTEXTS.get(base))


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def upload_blob(port: Any, repository: str, body: bytes) -> str:
    base = _base(port)
    start = _open(urllib.request.Request(f"{base}/v2/{repository}/blobs/uploads/", data=b"", method="POST"), base)
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"{base}{location}"
    location = base + "/" + location.split("/", 3)[3]  # the registry may name itself by another host
    joiner = "&" if "?" in location else "?"
    digest = _digest(body)
    _open(urllib.request.Request(f"{location}{joiner}digest={digest}", data=body, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"}), base).close()
    return digest


def put_manifest(port: Any, repository: str, reference: str, document: dict) -> str:
    body = json.dumps(document, indent=2).encode()
    request = urllib.request.Request(f"{_base(port)}/v2/{repository}/manifests/{reference}", data=body,
                                     method="PUT", headers={"Content-Type": document["mediaType"]})
    _open(request, _base(port)).close()
    return _digest(body)


def manifest_body(port: Any, repository: str, reference: str) -> tuple[bytes, str]:
    """(bytes, digest) as the registry serves them."""
    request = urllib.request.Request(f"{_base(port)}/v2/{repository}/manifests/{reference}",
                                     headers={"Accept": ACCEPT})
    with _open(request, _base(port)) as response:
        body = response.read()
    return body, _digest(body)


def raw_manifest(port: Any, repository: str, reference: str) -> tuple[dict, str]:
    """(document, digest) as the registry serves it."""
    body, digest = manifest_body(port, repository, reference)
    return json.loads(body), digest


def digest_at(port: Any, repository: str, tag: str) -> str | None:
    """What a tag points at now (None: no such tag)."""
    request = urllib.request.Request(f"{_base(port)}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": ACCEPT})
    try:
        with _open(request, _base(port)) as response:
            return response.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _layer(text: str) -> bytes:
    data = text.encode()
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(tar_bytes.getvalue(), mtime=0)


def push_image(port: Any, repository: str, tag: str | None, platform: dict, media_type: str = DOCKER_MANIFEST,
               ) -> tuple[str, int]:
    """An image whose config says `platform` (os, architecture, variant, os.version, os.features
    as the OCI config spells them), with one small layer. Returns (digest, size)."""
    config = json.dumps({**platform, "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Cmd": ["/hello.txt"]}}).encode()
    layer = _layer(f"{repository}:{tag} {json.dumps(platform, sort_keys=True)}\n")
    manifest = {"schemaVersion": 2, "mediaType": media_type,
                "config": {"mediaType": CONFIG_TYPES[media_type], "digest": upload_blob(port, repository, config),
                           "size": len(config)},
                "layers": [{"mediaType": LAYER_TYPES[media_type], "digest": upload_blob(port, repository, layer),
                            "size": len(layer)}]}
    digest = put_manifest(port, repository, tag or _digest(json.dumps(manifest, indent=2).encode()), manifest)
    return digest, len(json.dumps(manifest, indent=2).encode())


def push_attestation(port: int, repository: str, for_digest: str) -> dict:
    """An attestation manifest as buildx writes one, and its index descriptor."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": for_digest}]})
    blob = statement.encode()
    config = b"{}"
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": upload_blob(port, repository, config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": upload_blob(port, repository, blob),
                            "size": len(blob), "annotations": {"in-toto.io/predicate-type":
                                                               "https://slsa.dev/provenance/v0.2"}}]}
    body = json.dumps(manifest, indent=2).encode()
    digest = put_manifest(port, repository, _digest(body), manifest)
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.digest": for_digest,
                            "vnd.docker.reference.type": "attestation-manifest"}}


def push_index(port: int, repository: str, tag: str, manifests: list[dict]) -> str:
    return put_manifest(port, repository, tag, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
