"""The registry calls orch makes itself: reading manifests and streaming blobs
for `verify --deep`, checking what a tag points at, deleting staging tags.
Everything else goes through buildx.

Credentials are the user's docker credentials (``$DOCKER_CONFIG/config.json``:
``auths`` entries or a credential helper), used for Basic auth or to fetch a
Bearer token, as ``docker`` itself does. They live only inside
:class:`Credentials`, whose repr hides them, and never reach a message.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import EnvironmentMissing, JobFailed, OrchError
from orchestrator.inspection import INDEX_TYPES, MANIFEST_TYPES, ImageNotFound
from orchestrator.references import Reference

ACCEPT = ", ".join([*INDEX_TYPES, *MANIFEST_TYPES])
DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def registry_url(ref: Reference) -> str:
    scheme = "http" if ref.is_loopback else "https"
    host = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class Credentials:
    username: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(***)"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def credentials_for(registry: str, config_path: Path | None = None) -> Credentials | None:
    """The credentials `docker login` stored for this registry, if any."""
    try:
        config = json.loads((config_path or docker_config_path()).read_text())
    except (OSError, ValueError):
        return None
    key = DOCKER_HUB_KEY if registry in ("docker.io", "index.docker.io") else registry
    helper = (config.get("credHelpers") or {}).get(key) or config.get("credsStore")
    auths = config.get("auths") or {}
    entry = auths.get(key) or auths.get(f"https://{key}") or auths.get(f"http://{key}") or {}
    if entry.get("auth"):
        user, _, secret = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
        return Credentials(user, secret)
    if entry.get("identitytoken"):
        return Credentials("<token>", entry["identitytoken"])
    if helper:
        return _from_helper(helper, key)
    return None


def _from_helper(helper: str, key: str) -> Credentials | None:
    try:
        result = subprocess.run([f"docker-credential-{helper}", "get"], input=key, capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return Credentials(data.get("Username", ""), data.get("Secret", "")) if data.get("Secret") else None


class RegistryError(JobFailed):
    pass


class Registry:
    """One registry host; Bearer tokens are cached per repository."""

    def __init__(self, ref: Reference, *, timeout: float = 30.0) -> None:
        self.base = registry_url(ref)
        self.host = ref.registry
        self.timeout = timeout
        self._credentials: Credentials | None | bool = False  # False: not looked up yet
        # Threads may race to fetch a token; each writes a valid one, so no lock.
        self._tokens: dict[str, str] = {}

    @property
    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            self._credentials = credentials_for(self.host)
        return self._credentials  # type: ignore[return-value]

    def _open(self, method: str, repository: str, path: str, headers: dict[str, str] | None = None,
              data: bytes | None = None) -> Any:
        url = f"{self.base}/v2/{repository}/{path}"
        for attempt in range(2):
            request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
            auth = self._tokens.get(repository)
            if auth:
                # Not carried over redirects: blob storage behind a redirect rejects it.
                request.add_unredirected_header("Authorization", auth)
            try:
                return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - http(s) only
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0:
                    challenge = exc.headers.get("WWW-Authenticate", "")
                    exc.close()
                    self._authenticate(repository, challenge)
                    continue
                raise
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise EnvironmentMissing(f"cannot reach the registry {self.host}: {reason}",
                                         fix="check that the registry is running and reachable "
                                             f"(`orch doctor --registry {self.host}`)") from None
        raise AssertionError("unreachable")

    def _authenticate(self, repository: str, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        creds = self.credentials
        if scheme.lower() == "basic":
            if creds is None:
                raise _unauthorized(self.host)
            self._tokens[repository] = creds.basic()
            return
        if scheme.lower() != "bearer":
            raise _unauthorized(self.host)
        fields = urllib.request.parse_keqv_list(urllib.request.parse_http_list(params))
        query = {"service": fields.get("service", ""), "scope": fields.get("scope", f"repository:{repository}:pull")}
        url = fields.get("realm", "") + "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        request = urllib.request.Request(url)
        if creds is not None:
            request.add_unredirected_header("Authorization", creds.basic())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            raise _unauthorized(self.host) from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise _unauthorized(self.host)
        self._tokens[repository] = f"Bearer {token}"

    # -- reads --

    def manifest(self, ref: Reference) -> tuple[dict[str, Any], str, str]:
        """(document, media type, digest) of a tag or digest."""
        try:
            with self._open("GET", ref.repository, f"manifests/{ref.digest or ref.tag or 'latest'}",
                            {"Accept": ACCEPT}) as response:
                body = response.read()
                media_type = response.headers.get("Content-Type", "")
                digest = response.headers.get("Docker-Content-Digest", "")
        except urllib.error.HTTPError as exc:
            raise self._http_error(ref, exc) from None
        return json.loads(body), media_type, digest

    def head_digest(self, ref: Reference) -> str | None:
        """What a tag points at now (None: no such tag)."""
        try:
            with self._open("HEAD", ref.repository, f"manifests/{ref.tag or ref.digest}",
                            {"Accept": ACCEPT}) as response:
                return response.headers.get("Docker-Content-Digest")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise self._http_error(ref, exc) from None

    def config(self, repository: str, digest: str) -> dict[str, Any]:
        """An image config (a JSON blob)."""
        with self.blob(repository, digest) as response:
            return json.loads(response.read())

    def blob(self, repository: str, digest: str) -> IO[bytes]:
        """A streaming response for a blob: read it as it arrives, close it to stop early."""
        try:
            return self._open("GET", repository, f"blobs/{digest}")
        except urllib.error.HTTPError as exc:
            raise self._http_error(Reference(self.host, repository, digest=digest), exc) from None

    def delete_tag(self, ref: Reference) -> bool:
        """Delete a tag without touching the manifest it points at (OCI 1.1 tag
        deletion). Registries that only delete by digest refuse; deleting by
        digest would also remove the user's tags, so orch then keeps the tag."""
        try:
            with self._open("DELETE", ref.repository, f"manifests/{ref.tag}") as response:
                return response.status in (200, 202)
        except (urllib.error.HTTPError, OrchError):
            return False

    def _http_error(self, ref: Reference, exc: urllib.error.HTTPError) -> OrchError:
        if exc.code == 404:
            return ImageNotFound(f'"{ref}" does not exist in the registry (no such tag or digest)',
                                 fix="check the repository and tag; `orch inspect` shows what a reference holds")
        if exc.code in (401, 403):
            return _unauthorized(self.host)
        return RegistryError(f"registry {self.host} answered HTTP {exc.code} for {ref}")


def _unauthorized(host: str) -> EnvironmentMissing:
    return EnvironmentMissing(f"registry {host} refused the request (unauthorized)",
                              fix=f"log in first: docker login {host}")


def delete_tag(ref: Reference) -> bool:
    return Registry(ref, timeout=10.0).delete_tag(ref)
