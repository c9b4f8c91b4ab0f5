"""orch's own registry client: the OCI distribution API, every byte checked against its digest.

Reads manifests and configs (verify, inspect) and streams blobs (verify --deep),
each hashed and compared with the digest it was asked for; writes blobs and
manifests by digest (staging), manifests under tags (promotion), mounts blobs
across repositories and deletes tags. HTTP, auth and retries: registry.transport.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, cast

from orchestrator.errors import OrchError
from orchestrator.model.mediatypes import ACCEPT
from orchestrator.model.references import Reference
from orchestrator.registry.errors import (
    DigestMismatch,
    HTTPStatusError,
    RegistryError,
    failing,
    not_found,
    unauthorized,
    unreachable,
)
from orchestrator.registry.transport import ATTEMPTS, RETRY_STATUS, Body, Transport
from orchestrator.registry.verified import HashingReader, digest_like, load_json, sha256_digest


@dataclass(frozen=True)
class ManifestBytes:
    """A manifest exactly as the registry holds it: its bytes, media type and (computed) digest."""

    body: bytes
    media_type: str
    digest: str

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = load_json(self.body)
        return document

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ManifestBytes:
        """The bytes orch writes for a manifest or index it composes."""
        body = json.dumps(document, indent=2).encode()
        return cls(body, document.get("mediaType", ""), sha256_digest(body))


class Registry:
    _shared: dict[str, Registry] = {}
    _shared_lock = threading.Lock()

    def __init__(self, ref: Reference, *, timeout: float | None = None) -> None:
        self.transport = Transport(ref, timeout=timeout)
        self.host = ref.registry

    @classmethod
    def of(cls, ref: Reference) -> Registry:
        """The process's one client for this registry host: its connections and tokens serve
        every step of a publish (checks, upload, read-back, promotion)."""
        with cls._shared_lock:
            if ref.registry not in cls._shared:
                cls._shared[ref.registry] = cls(ref)
            return cls._shared[ref.registry]

    @property
    def credentials(self) -> Any:
        return self.transport.credentials

    def _call(self, ref: Reference, method: str, path: str, headers: dict[str, str] | None = None,
              **kwargs: Any) -> Any:
        try:
            return self.transport.request(method, ref.repository, path, headers, **kwargs)
        except HTTPStatusError as exc:
            raise self._http_error(ref, method, exc) from None

    # -- reads -------------------------------------------------------------------

    def manifest_bytes(self, ref: Reference) -> ManifestBytes:
        """A manifest or index by tag or digest. By digest, the bytes must hash to it; by tag,
        to the digest the registry names (Docker-Content-Digest), when it names one."""
        reply = self._call(ref, "GET", f"manifests/{ref.digest or ref.tag or 'latest'}", {"Accept": ACCEPT})
        digest = digest_like(reply.body, ref.digest or "sha256:")
        claimed = ref.digest or reply.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise DigestMismatch(self.host, f"{ref.name}@{claimed}" if ref.digest else str(ref), claimed, digest)
        media_type = reply.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type in ("", "application/json", "application/octet-stream"):
            media_type = _document_type(reply.body) or media_type
        return ManifestBytes(reply.body, media_type, digest)

    def manifest(self, ref: Reference) -> tuple[dict[str, Any], str, str]:
        """(document, media type, digest) of a tag or digest."""
        return self.parsed(ref, self.manifest_bytes(ref))

    def parsed(self, ref: Reference, found: ManifestBytes) -> tuple[dict[str, Any], str, str]:
        """(document, media type, digest) of a manifest manifest_bytes read from here."""
        try:
            return found.document(), found.media_type, found.digest
        except ValueError:
            raise RegistryError(f"registry {self.host} served {ref} as something that is not JSON",
                                fix="check the registry; the manifest is unreadable") from None

    def head_digest(self, ref: Reference) -> str | None:
        """What a tag (or digest) points at now; None when there is no such tag."""
        try:
            reply = self.transport.request("HEAD", ref.repository, f"manifests/{ref.tag or ref.digest}",
                                           {"Accept": ACCEPT})
        except HTTPStatusError as exc:
            if exc.code == 404:
                return None
            raise self._http_error(ref, "HEAD", exc) from None
        digest: str | None = reply.headers.get("Docker-Content-Digest")
        return digest

    def blob_bytes(self, repository: str, digest: str) -> bytes:
        """A small blob (an image config), checked against its digest."""
        ref = Reference(self.host, repository, digest=digest)
        reply = self._call(ref, "GET", f"blobs/{digest}")
        if digest_like(reply.body, digest) != digest:
            raise DigestMismatch(self.host, f"{ref.name}@{digest} (a blob)", digest, digest_like(reply.body, digest))
        body: bytes = reply.body
        return body

    def config(self, repository: str, digest: str) -> dict[str, Any]:
        """An image config as JSON; ValueError when it is not JSON (image.read judges that)."""
        config: dict[str, Any] = load_json(self.blob_bytes(repository, digest))
        return config

    def blob(self, repository: str, digest: str) -> IO[bytes]:
        """A streaming blob: read it as it arrives, close it to stop early. Reading to the end
        checks its digest (DigestMismatch otherwise)."""
        ref = Reference(self.host, repository, digest=digest)
        response = self._call(ref, "GET", f"blobs/{digest}", stream=True)
        # HashingReader has the part of IO that blob readers use (read, close, a context).
        return cast(IO[bytes], HashingReader(response, digest, f"{ref.name}@{digest}", self.host))

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            self.transport.request("HEAD", repository, f"blobs/{digest}")
            return True
        except HTTPStatusError as exc:
            if exc.code == 404:
                return False
            raise self._http_error(Reference(self.host, repository, digest=digest), "HEAD", exc) from None

    # -- writes ------------------------------------------------------------------

    def put_manifest(self, target: Reference, manifest: ManifestBytes) -> str:
        """PUT exactly these bytes under a tag or their digest; returns the digest the registry reports."""
        where = target if target.tag else target.with_digest(manifest.digest)
        reply = self._call(where, "PUT", f"manifests/{target.tag or manifest.digest}",
                           {"Content-Type": manifest.media_type}, body=manifest.body)
        return reply.headers.get("Docker-Content-Digest") or manifest.digest

    def mount(self, repository: str, digest: str, from_repository: str) -> bool:
        """Mount a blob from another repository of this registry; False when the registry
        started an upload instead (it does not have the blob, or does not mount)."""
        query = urllib.parse.urlencode({"mount": digest, "from": from_repository})
        ref = Reference(self.host, repository, digest=digest)
        reply = self._call(ref, "POST", f"blobs/uploads/?{query}", {"Content-Length": "0"}, body=b"")
        if reply.status == 201:
            return True
        location = reply.headers.get("Location")
        if location:  # cancel the upload session the registry opened
            self._cancel_upload(repository, location)
        return False

    def upload(self, repository: str, digest: str, size: int, open_body: Body) -> None:
        """A monolithic upload (POST, then PUT with the whole blob), retried as a whole."""
        ref = Reference(self.host, repository, digest=digest)
        for attempt in range(2):
            start = self._call(ref, "POST", "blobs/uploads/", {"Content-Length": "0"}, body=b"")
            location = urllib.parse.urljoin(f"{self.transport.base}/", start.headers.get("Location", ""))
            joiner = "&" if "?" in location else "?"
            try:
                self._call(ref, "PUT", "", {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                           body=open_body, url=f"{location}{joiner}digest={urllib.parse.quote(digest)}")
                return
            except RegistryError:
                if attempt == 1:
                    raise

    def open_to_all(self) -> bool:
        """GET /v2/ answers 200 with no credentials: a registry with no login (False: it wants
        one, or answers something else). Raises EnvironmentMissing when nothing answers."""
        try:
            return self.transport.api_status() == 200
        except OSError as exc:
            raise unreachable(self.host, str(exc) or type(exc).__name__) from None

    def check_push_access(self, repository: str) -> None:
        """Raise unless this user may push here: start an upload session (what a push does
        first, with the user's credentials), then cancel it. Leaves nothing behind. One retry
        only: this runs before a build, and a registry that is down should say so at once."""
        ref = Reference(self.host, repository)
        reply = self._call(ref, "POST", "blobs/uploads/", {"Content-Length": "0"}, body=b"", attempts=2)
        if reply.headers.get("Location"):
            self._cancel_upload(repository, reply.headers["Location"])

    def _cancel_upload(self, repository: str, location: str) -> None:
        try:
            self.transport.request("DELETE", repository, "",
                                   url=urllib.parse.urljoin(f"{self.transport.base}/", location))
        except (HTTPStatusError, OrchError):
            pass  # an abandoned upload session expires on its own

    def delete_tag(self, ref: Reference) -> bool:
        """Delete a tag without touching the manifest it points at (OCI 1.1 tag deletion).
        Registries that only delete by digest refuse; deleting by digest would also remove
        every other tag on that manifest, so orch then keeps the tag."""
        try:
            return self.transport.request("DELETE", ref.repository, f"manifests/{ref.tag}").status in (200, 202)
        except (HTTPStatusError, OrchError):
            return False

    def copy_manifests(self, pairs: list[tuple[Reference, Reference]]) -> None:
        """Copy image manifests, each (source, target) into target's repository (under its tag, or by
        digest), their blobs mounted first where the repositories differ; the bytes are unchanged,
        so the digests are too. Each blob is mounted once, before any manifest goes up: distribution
        2.8 breaks a blob's link when parallel requests mount the same blob into one repository (the
        manifest PUT after it then fails with DIGEST_INVALID), and sources often share base layers."""
        from orchestrator.workers import parallel_map

        found = parallel_map(lambda pair: self.manifest_bytes(pair[0]), pairs, 4)
        wanted: dict[tuple[str, str], str] = {}  # (target repository, blob digest) -> a repository holding it
        for (source, target), manifest in zip(pairs, found, strict=True):
            if source.repository == target.repository:
                continue
            document = manifest.document()
            for blob in [document.get("config") or {}, *(document.get("layers") or [])]:
                if blob.get("digest"):
                    wanted.setdefault((target.repository, blob["digest"]), source.repository)

        def mount(item: tuple[tuple[str, str], str]) -> None:
            (repository, digest), holder = item
            if not self.mount(repository, digest, holder):
                raise RegistryError(f"registry {self.host} would not mount {digest} from {holder} into {repository}")

        def put(item: tuple[tuple[Reference, Reference], ManifestBytes]) -> None:
            (source, target), manifest = item
            for attempt in range(DIGEST_RETRIES):
                try:
                    self.put_manifest(target, manifest)
                    return
                except RegistryError as exc:  # distribution 2.8 loses a mounted blob's link under load
                    if attempt == DIGEST_RETRIES - 1 or not any(code in exc.message for code in LOST_BLOB):
                        raise
                    for blob in _blobs(manifest) if source.repository != target.repository else []:
                        self.mount(target.repository, blob, source.repository)

        _all_or_every_error(mount, list(wanted.items()))
        _all_or_every_error(put, list(zip(pairs, found, strict=True)))

    # -- errors --------------------------------------------------------------------

    def _http_error(self, ref: Reference, method: str, exc: HTTPStatusError) -> OrchError:
        if exc.code == 404:
            return not_found(ref)
        if exc.code in (401, 403):
            return unauthorized(self.host)
        if exc.code in RETRY_STATUS:
            return failing(self.host, f"it answered HTTP {exc.code} to {method} {ref} ({ATTEMPTS} attempts)")
        said = f" ({exc.reason})" if exc.reason else ""
        return RegistryError(f"registry {self.host} answered HTTP {exc.code}{said} to {method} {ref}")


DIGEST_RETRIES = 3
LOST_BLOB = ("DIGEST_INVALID", "BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN")


def _blobs(manifest: ManifestBytes) -> list[str]:
    document = manifest.document()
    return [b["digest"] for b in [document.get("config") or {}, *(document.get("layers") or [])] if b.get("digest")]


def _all_or_every_error(call: Callable[[Any], None], items: list[Any]) -> None:
    """`call` on every item, four at once; every failure is reported, not only the first."""
    from orchestrator.workers import parallel_map

    def attempt(item: Any) -> OrchError | None:
        try:
            call(item)
        except OrchError as exc:
            return exc
        return None

    failures = [f for f in parallel_map(attempt, items, 4) if f is not None]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise RegistryError(f"{len(failures)} copies failed:" + "".join(f"\n  {f.message}" for f in failures),
                            fix=failures[0].fix)


def _document_type(body: bytes) -> str | None:
    try:
        media_type = load_json(body).get("mediaType")
    except (ValueError, AttributeError):
        return None
    return media_type if isinstance(media_type, str) else None


def delete_tag(ref: Reference) -> bool:
    return Registry.of(ref).delete_tag(ref)


class RepositoryView:
    """One repository of a registry, read by digest: what image.read and verify --deep need
    (registry.layout.Layout offers the same three reads from disk)."""

    def __init__(self, registry: Registry, repository: str, configs: Mapping[str, bytes] | None = None) -> None:
        self.registry, self.repository = registry, repository
        self.configs = configs or {}  # read from this repository already, by digest (each checked against it)

    def manifest(self, digest: str) -> dict[str, Any]:
        return self.registry.manifest(Reference(self.registry.host, self.repository, digest=digest))[0]

    def config(self, digest: str) -> dict[str, Any]:
        if digest in self.configs:
            config: dict[str, Any] = load_json(self.configs[digest])
            return config
        return self.registry.config(self.repository, digest)

    def open_blob(self, digest: str) -> IO[bytes]:
        return self.registry.blob(self.repository, digest)
