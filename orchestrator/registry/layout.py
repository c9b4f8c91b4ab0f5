"""Local OCI image layouts (`orch build --oci-layout DIR` writes one), read by digest from disk.

``oci-layout://DIR[:TAG]`` (or a directory holding an ``oci-layout`` file)
offers the same reads as a registry repository (manifest, config, blob), so
`orch inspect` and `orch verify` (with `--deep`) work on it offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import BadInput, JobFailed
from orchestrator.registry.client import ManifestBytes
from orchestrator.registry.verified import HashingReader, load_json, well_formed

PREFIX = "oci-layout://"
REF_NAME = "org.opencontainers.image.ref.name"


def is_layout_ref(text: str) -> bool:
    return text.startswith(PREFIX) or (Path(text) / "oci-layout").is_file()


def split_layout_ref(text: str) -> tuple[Path, str | None]:
    body = text[len(PREFIX):] if text.startswith(PREFIX) else text
    path, sep, tag = body.rpartition(":")
    if sep and "/" not in tag and path and not Path(body).exists():
        return Path(path), tag
    return Path(body), None


class Layout:
    """Blobs and manifests of one layout directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if not (root / "index.json").is_file():
            raise BadInput(f'"{root}" is not an OCI image layout (no index.json)',
                           fix="pass the directory `orch build --oci-layout DIR` wrote, as oci-layout://DIR")

    def blob_path(self, digest: str) -> Path:
        if not well_formed(digest):  # "sha256:../../x" would name a file outside the layout
            raise JobFailed(f'{PREFIX}{self.root}: "{digest[:80]}" is not a well-formed digest',
                            fix="the layout's index or a manifest in it is broken: write the layout again")
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / "blobs" / algorithm / hexdigest

    def open_blob(self, digest: str) -> IO[bytes]:
        """A blob as a stream; reading it to the end checks its digest."""
        try:
            handle = self.blob_path(digest).open("rb")
        except OSError:
            raise JobFailed(f"blob {digest} is missing from the layout {self.root}") from None
        return HashingReader(handle, digest, f"{PREFIX}{self.root} blob {digest}", "(local layout)")  # type: ignore[return-value]

    def blob_bytes(self, digest: str) -> bytes:
        """A whole blob, checked against its digest."""
        with self.open_blob(digest) as handle:
            body: bytes = handle.read()
            return body

    def json_blob(self, digest: str) -> dict[str, Any]:
        document: dict[str, Any] = load_json(self.blob_bytes(digest))
        return document

    def manifest_bytes(self, digest: str) -> ManifestBytes:
        """A manifest as it will be uploaded: its exact bytes, with the media type it declares."""
        body = self.blob_bytes(digest)
        try:
            media_type = load_json(body).get("mediaType") or ""
        except (ValueError, AttributeError):
            raise JobFailed(f"{PREFIX}{self.root}: {digest} is not a manifest") from None
        return ManifestBytes(body, media_type, digest)

    # The reads a registry repository offers (registry.client.RepositoryView).
    manifest = json_blob
    config = json_blob

    def pick(self, tag: str | None) -> dict[str, Any]:
        descriptors = json.loads((self.root / "index.json").read_text()).get("manifests") or []
        if tag is not None:
            # buildx writes the full name (docker.io/library/app:1); `:1` or the full name both match.
            named = [d for d in descriptors
                     if tag in (ref_name := (d.get("annotations") or {}).get(REF_NAME, ""), ref_name.rpartition(":")[2])]
            if named:
                chosen: dict[str, Any] = named[0]
                return chosen
            tags = sorted({(d.get("annotations") or {}).get(REF_NAME, "") for d in descriptors} - {""})
            raise BadInput(f'tag "{tag}" is not in the layout {self.root}', fix=f"tags there: {', '.join(tags) or 'none'}")
        # buildx 0.30 writes one entry per tag it was given, all naming the same index.
        images = {d.get("digest") for d in descriptors}
        if len(images) != 1:
            raise BadInput(f"the layout {self.root} holds {len(images)} images; name one",
                           fix=f"write {PREFIX}{self.root}:TAG")
        only: dict[str, Any] = descriptors[0]
        return only
