"""orch's own registry client: the OCI distribution API over HTTP/1.1 keep-alive.

Reads manifests and configs (verify, inspect), streams blobs (verify --deep),
checks what a tag points at, copies manifests registry-side and deletes tags.
Authentication is docker's: Basic, or a Bearer token fetched with the user's
credentials (registry.auth).
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any

from orchestrator.errors import OrchError
from orchestrator.model.mediatypes import ACCEPT
from orchestrator.model.references import Reference
from orchestrator.registry.auth import Credentials, credentials_for
from orchestrator.registry.errors import (
    HTTPStatusError,
    RegistryError,
    not_found,
    unauthorized,
    unreachable,
)


def registry_url(ref: Reference) -> str:
    scheme = "http" if ref.is_loopback else "https"
    host = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes


REDIRECTS = (301, 302, 303, 307, 308)


class Registry:
    """One registry host over HTTP/1.1 keep-alive (http.client: urllib.request
    costs ~20 ms more to import on every `orch verify`). Each thread keeps its
    own connections; Bearer tokens are cached per repository."""

    def __init__(self, ref: Reference, *, timeout: float = 30.0) -> None:
        self.base = registry_url(ref)
        self.host = ref.registry
        self.timeout = timeout
        self._credentials: Credentials | None | bool = False  # False: not looked up yet
        # Threads may race to fetch a token; each writes a valid one, so no lock.
        self._tokens: dict[str, str] = {}
        self._local = threading.local()

    @property
    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            self._credentials = credentials_for(self.host)
        return self._credentials  # type: ignore[return-value]

    # -- transport --

    def _connection(self, scheme: str, netloc: str, *, fresh: bool) -> http.client.HTTPConnection:
        def connect() -> http.client.HTTPConnection:
            if scheme == "https":
                return http.client.HTTPSConnection(netloc, timeout=self.timeout)
            return http.client.HTTPConnection(netloc, timeout=self.timeout)

        if fresh:
            return connect()
        pool = self._local.__dict__.setdefault("connections", {})
        if (scheme, netloc) not in pool:
            pool[(scheme, netloc)] = connect()
        return pool[(scheme, netloc)]

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None,
              stream: bool) -> http.client.HTTPResponse:
        """One request, following redirects. A streamed response owns its own
        connection (the caller may stop reading halfway); the others reuse one."""
        for _ in range(6):
            parts = urllib.parse.urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            for retry in (False, True):
                connection = self._connection(parts.scheme, parts.netloc, fresh=stream or retry)
                try:
                    connection.request(method, target, body=data, headers=headers)
                    response = connection.getresponse()
                    break
                except (OSError, http.client.HTTPException) as exc:
                    connection.close()
                    # A kept-alive connection the server has since closed: once more on a new one.
                    if not retry and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError,
                                                      BrokenPipeError)):
                        continue
                    raise unreachable(self.host, exc) from None
            if stream and connection.sock:
                # Hand the socket to the response (it reads through its own file), as urllib does.
                connection.sock.close()
                connection.sock = None
            if response.status in REDIRECTS and response.getheader("Location"):
                response.read()
                response.close()
                url = urllib.parse.urljoin(url, response.getheader("Location"))
                # Blob storage behind a redirect rejects the registry's Authorization.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                continue
            if response.status >= 400:
                response.read()
                response.close()
                raise HTTPStatusError(response.status, response.headers)
            return response
        raise RegistryError(f"registry {self.host} redirected too many times for {url}")

    def _request(self, method: str, repository: str, path: str, headers: dict[str, str] | None = None,
                 stream: bool = False, data: bytes | None = None) -> Any:
        """A registry API call with auth: a Reply, or the open response when streaming."""
        url = f"{self.base}/v2/{repository}/{path}"
        for attempt in range(2):
            sent = dict(headers or {})
            auth = self._tokens.get(repository)
            if auth:
                sent["Authorization"] = auth
            try:
                response = self._send(method, url, sent, data, stream)
            except HTTPStatusError as exc:
                if exc.code == 401 and attempt == 0:
                    self._authenticate(repository, exc.headers.get("WWW-Authenticate", ""))
                    continue
                raise
            if stream:
                return response
            with response:
                return Reply(response.status, response.headers, response.read())
        raise AssertionError("unreachable")

    def _authenticate(self, repository: str, challenge: str) -> None:
        from urllib.request import parse_http_list, parse_keqv_list  # only for Bearer registries

        scheme, _, params = challenge.partition(" ")
        creds = self.credentials
        if scheme.lower() == "basic":
            if creds is None:
                raise unauthorized(self.host)
            self._tokens[repository] = creds.basic()
            return
        if scheme.lower() != "bearer":
            raise unauthorized(self.host)
        fields = parse_keqv_list(parse_http_list(params))
        query = {"service": fields.get("service", ""), "scope": fields.get("scope", f"repository:{repository}:pull")}
        url = fields.get("realm", "") + "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        headers = {"Authorization": creds.basic()} if creds is not None else {}
        try:
            with self._send("GET", url, headers, None, stream=False) as response:
                body = json.loads(response.read())
        except (HTTPStatusError, OrchError, ValueError):
            raise unauthorized(self.host) from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise unauthorized(self.host)
        self._tokens[repository] = f"Bearer {token}"

    # -- reads --

    def manifest(self, ref: Reference) -> tuple[dict[str, Any], str, str]:
        """(document, media type, digest) of a tag or digest."""
        reply = self._get_manifest(ref)
        return (json.loads(reply.body), reply.headers.get("Content-Type", ""),
                reply.headers.get("Docker-Content-Digest", ""))

    def _get_manifest(self, ref: Reference) -> Reply:
        try:
            return self._request("GET", ref.repository, f"manifests/{ref.digest or ref.tag or 'latest'}",
                                 {"Accept": ACCEPT})
        except HTTPStatusError as exc:
            raise self._http_error(ref, exc) from None

    def copy_manifest(self, source: Reference, target: Reference) -> str:
        """Tag an image manifest under `target` (same registry), mounting its blobs across
        repositories first. The bytes are unchanged, so the digest is too."""
        # The exact bytes, so the copy keeps its digest.
        reply = self._get_manifest(source)
        body, media_type = reply.body, reply.headers.get("Content-Type", "")
        document = json.loads(body)
        if source.repository != target.repository:
            for blob in [document.get("config") or {}, *(document.get("layers") or [])]:
                if blob.get("digest"):
                    self._mount(target.repository, blob["digest"], source.repository)
        try:
            reply = self._request("PUT", target.repository, f"manifests/{target.tag}",
                                  {"Content-Type": media_type}, data=body)
        except HTTPStatusError as exc:
            raise self._http_error(target, exc) from None
        return reply.headers.get("Docker-Content-Digest", "")

    def _mount(self, repository: str, digest: str, from_repository: str) -> None:
        query = urllib.parse.urlencode({"mount": digest, "from": from_repository})
        try:
            reply = self._request("POST", repository, f"blobs/uploads/?{query}", {"Content-Length": "0"}, data=b"")
        except HTTPStatusError as exc:
            raise self._http_error(Reference(self.host, repository, digest=digest), exc) from None
        if reply.status != 201:  # 202: the registry started an upload instead of mounting
            raise RegistryError(f"registry {self.host} would not mount {digest} from {from_repository} into "
                                f"{repository} (HTTP {reply.status})")

    def head_digest(self, ref: Reference) -> str | None:
        """What a tag points at now (None: no such tag)."""
        try:
            reply = self._request("HEAD", ref.repository, f"manifests/{ref.tag or ref.digest}", {"Accept": ACCEPT})
        except HTTPStatusError as exc:
            if exc.code == 404:
                return None
            raise self._http_error(ref, exc) from None
        return reply.headers.get("Docker-Content-Digest")

    def config(self, repository: str, digest: str) -> dict[str, Any]:
        """An image config (a JSON blob)."""
        try:
            reply = self._request("GET", repository, f"blobs/{digest}")
        except HTTPStatusError as exc:
            raise self._http_error(Reference(self.host, repository, digest=digest), exc) from None
        return json.loads(reply.body)

    def blob(self, repository: str, digest: str) -> IO[bytes]:
        """A streaming response for a blob: read it as it arrives, close it to stop early."""
        try:
            return self._request("GET", repository, f"blobs/{digest}", stream=True)
        except HTTPStatusError as exc:
            raise self._http_error(Reference(self.host, repository, digest=digest), exc) from None

    def delete_tag(self, ref: Reference) -> bool:
        """Delete a tag without touching the manifest it points at (OCI 1.1 tag
        deletion). Registries that only delete by digest refuse; deleting by
        digest would also remove the user's tags, so orch then keeps the tag."""
        try:
            return self._request("DELETE", ref.repository, f"manifests/{ref.tag}").status in (200, 202)
        except (HTTPStatusError, OrchError):
            return False

    def _http_error(self, ref: Reference, exc: HTTPStatusError) -> OrchError:
        if exc.code == 404:
            return not_found(ref)
        if exc.code in (401, 403):
            return unauthorized(self.host)
        return RegistryError(f"registry {self.host} answered HTTP {exc.code} for {ref}")


def delete_tag(ref: Reference) -> bool:
    return Registry(ref, timeout=10.0).delete_tag(ref)


class RepositoryView:
    """One repository of a registry, read by digest: what image.read and verify --deep need
    (registry.layout.Layout offers the same three reads from disk)."""

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry, self.repository = registry, repository

    def manifest(self, digest: str) -> dict[str, Any]:
        return self.registry.manifest(Reference(self.registry.host, self.repository, digest=digest))[0]

    def config(self, digest: str) -> dict[str, Any]:
        return self.registry.config(self.repository, digest)

    def open_blob(self, digest: str) -> IO[bytes]:
        return self.registry.blob(self.repository, digest)
