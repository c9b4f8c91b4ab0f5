"""HTTP to one registry: kept-alive connections, redirects, docker's auth, bounded retries.

The HTTP itself is registry.http (http.client's imports alone cost a third
of `orch verify`). Each thread keeps its own connections; Bearer tokens are
cached per repository. Answers a registry gives when it is briefly unwell (5xx, 429,
dropped or cut-off connections) are retried a few times with backoff; what
is left after that is an error a user can act on, never a traceback.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from orchestrator import workers
from orchestrator.errors import OrchError
from orchestrator.model.references import Reference
from orchestrator.patterns import on_first_use
from orchestrator.registry import http, reach
from orchestrator.registry.auth import Credentials, credentials_for
from orchestrator.registry.bounds import ANSWER_STALLS, MAX_RETRY_AFTER, max_answer_bytes, stall_seconds
from orchestrator.registry.errors import HTTPStatusError, RegistryError, unauthorized, unreachable, untrusted

REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUS = (429, 500, 502, 503, 504)
ATTEMPTS = 4
BACKOFF = (0.2, 0.6, 1.5)  # seconds before attempts 2, 3, 4
# Connection-level trouble worth another try: refused, reset, timed out, cut off mid-body.
TRANSIENT = (OSError,)

Body = bytes | Callable[[], IO[bytes]] | None  # a callable opens a fresh stream for each attempt


@dataclass(frozen=True)
class Reply:
    """A registry's answer to one request, its body read in full (bounded in size)."""

    status: int
    headers: http.Headers
    body: bytes


def registry_url(ref: Reference, scheme: str | None = None) -> str:
    """As docker reaches a registry: TLS first, everywhere; on loopback plain HTTP once TLS has
    failed there (that decision is kept in the state directory, so later runs go straight to it)."""
    scheme = scheme or ("http" if ref.is_loopback and loopback_scheme(ref.registry) == "http" else "https")
    host = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
    return f"{scheme}://{host}"


def loopback_scheme(host: str) -> str | None:
    """What a loopback registry spoke last time ("http" or "https"), if orch has found out."""
    from orchestrator.state import read_record

    record = read_record(_SCHEMES)
    found = record.get(host) if isinstance(record, dict) else None
    return found if found in ("http", "https") else None


def _remember_scheme(host: str, scheme: str) -> None:
    from orchestrator.state import read_record, write_record

    record = read_record(_SCHEMES)
    known = record if isinstance(record, dict) else {}
    if known.get(host) != scheme:
        write_record(_SCHEMES, {**known, host: scheme})


_SCHEMES = "registries/schemes.json"


class Transport:
    def __init__(self, ref: Reference, *, timeout: float | None = None,
                 sleep: Callable[[float], None] = workers.pause) -> None:
        self.ref = ref
        self.max_body = max_answer_bytes()
        timeout = timeout if timeout is not None else stall_seconds()
        self.base = registry_url(ref)
        self.host = ref.registry
        self.verify_tls = True  # False once the daemon says this registry is insecure and TLS failed
        self._scheme_kept = False  # a loopback registry's scheme, once recorded
        self._tls_contexts: dict[str, Any] = {}
        self.timeout = timeout
        self._sleep = sleep
        self._credentials: Credentials | None | bool = False  # False: not looked up yet
        # Threads may race to fetch a token; each writes a valid one, so no lock.
        self._tokens: dict[str, str] = {}
        self._local = threading.local()

    @property
    def credentials(self) -> Credentials | None:
        if self._credentials is False:
            self._credentials = credentials_for(self.host)
        return self._credentials  # type: ignore[return-value]

    # -- the API ---------------------------------------------------------------

    def request(self, method: str, repository: str, path: str, headers: dict[str, str] | None = None, *,
                body: Body = None, stream: bool = False, url: str | None = None, attempts: int = ATTEMPTS) -> Any:
        """A registry API call with auth and retries: a Reply, or the open response when streaming.
        `url` replaces /v2/REPOSITORY/PATH (an upload location the registry handed out)."""
        _check_path(self.host, path)
        attempt = 0
        while True:
            target = url or f"{self.base}/v2/{repository}/{path}"
            last = attempt == attempts - 1
            try:
                response = self._authorized(method, target, repository, headers or {}, body, stream)
                if self.ref.is_loopback and self.base.startswith("https://") and not self._scheme_kept:
                    self._scheme_kept = True
                    _remember_scheme(self.host, "https")
                if stream:
                    return response
                with response:
                    return Reply(response.status, response.headers, self._bounded(response, path or target))
            except HTTPStatusError as exc:
                if exc.code not in RETRY_STATUS or last:
                    raise
                self._sleep(self._delay(attempt, exc.headers))
            except OrchError:
                raise
            except TimeoutError:  # silent for the whole stall limit: once more, then say so
                if attempt >= 1 or last:
                    raise RegistryError(f"registry {self.host} sent nothing for {self.timeout:g} s (the stall "
                                        f"limit) on {method} {path or target}",
                                        fix="check the registry (and any proxy in front of it); a slow link may "
                                            "need ORCH_REGISTRY_STALL_SECONDS raised") from None
                self._sleep(self._delay(attempt, None))
            except _tls_failures() as exc:  # before TRANSIENT: ssl.SSLError is an OSError
                if target.startswith(f"https://{self.host}/") and self._insecure_fallback(target):
                    continue  # not an attempt: the same request, the way docker goes on
                raise untrusted(self.host, reach.certs_dir(self.host), exc) from None
            except TRANSIENT as exc:
                if last:
                    tries = f" ({attempts} attempts)" if attempts > 1 else ""
                    raise unreachable(self.host, f"{_describe(exc)}{tries}") from None
                self._sleep(self._delay(attempt, None))
            attempt += 1

    def _bounded(self, response: http.Response, what: str) -> bytes:
        try:
            return response.read_bounded(self.max_body, self.timeout * ANSWER_STALLS)
        except http.TooLarge:
            raise RegistryError(f"registry {self.host} answered {what} with more than {self.max_body} bytes, the "
                                "most orch reads of a manifest, config or answer (the distribution spec's manifest "
                                "limit)", fix="check the registry; for a larger manifest set ORCH_MAX_MANIFEST_BYTES"
                                ) from None
        except http.TooSlow as exc:
            raise RegistryError(f"registry {self.host} was still answering {what} after {exc.seconds:g} s "
                                f"({exc.received} bytes)", fix="check the registry (and any proxy in front of it); a "
                                "slow link may need ORCH_REGISTRY_STALL_SECONDS raised") from None

    def api_status(self) -> int:
        """What GET /v2/ answers, once, without credentials (200: an open registry, 401: one that
        wants a login). OSError when nothing answers there."""
        while True:
            try:
                with self._send("GET", f"{self.base}/v2/", {}, None, stream=False) as response:
                    return response.status
            except HTTPStatusError as exc:
                return exc.code
            except _tls_failures():
                if not self._insecure_fallback(f"{self.base}/v2/"):  # a loopback registry in plain HTTP
                    raise

    def _insecure_fallback(self, failed: str | None = None) -> bool:
        """TLS to the registry failed (on `failed`, a URL): on loopback, or if the daemon lists it
        as insecure, go on as docker does, first with TLS unverified (not on loopback), then in
        plain HTTP. False: no fallback left."""
        if self.base.startswith("http://"):
            # Another thread fell back already while this request was in flight over TLS: again.
            return bool(failed and failed.startswith("https://"))
        if self.ref.is_loopback:
            self._local.__dict__.pop("connections", None)
            self.base = registry_url(self.ref, "http")
            _remember_scheme(self.host, "http")
            return True
        if not reach.insecure_in(reach.daemon_registry_config(), self.host):
            return False
        self._local.__dict__.pop("connections", None)
        if self.verify_tls:
            self.verify_tls = False
        else:
            self.base = registry_url(self.ref, "http")
        return True

    def _delay(self, attempt: int, headers: http.Headers | None) -> float:
        wait = BACKOFF[min(attempt, len(BACKOFF) - 1)]
        retry_after = headers.get("Retry-After") if headers else None
        if retry_after and retry_after.strip().isdigit():
            wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER))
        return wait

    # -- auth ------------------------------------------------------------------

    def _authorized(self, method: str, url: str, repository: str, headers: dict[str, str], body: Body,
                    stream: bool) -> http.Response:
        for attempt in range(2):
            sent = dict(headers)
            auth = self._tokens.get(repository)
            if auth:
                sent["Authorization"] = auth
            try:
                return self._send(method, url, sent, body, stream)
            except HTTPStatusError as exc:
                if exc.code == 401 and attempt == 0:
                    self._authenticate(repository, exc.headers.get("WWW-Authenticate", ""))
                    continue
                raise
        raise AssertionError("unreachable")

    def _authenticate(self, repository: str, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        creds = self.credentials
        if scheme.lower() == "basic":
            if creds is None or creds.identity_token:  # a refresh token is never sent as a password
                raise unauthorized(self.host)
            self._tokens[repository] = creds.basic()
            return
        if scheme.lower() != "bearer":
            raise unauthorized(self.host)
        fields = challenge_fields(params)
        query = {"service": fields.get("service", ""), "scope": fields.get("scope", f"repository:{repository}:pull")}
        query = {k: v for k, v in query.items() if v}
        realm = fields.get("realm", "")
        try:
            if creds is not None and creds.identity_token:
                # An identity token is an OAuth2 refresh token: exchanged at the token endpoint, as docker does.
                form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": creds.secret,
                                               "client_id": "orch", **query}).encode()
                answer = self._send("POST", realm, {"Content-Type": "application/x-www-form-urlencoded"}, form,
                                    stream=False)
            else:
                headers = {"Authorization": creds.basic()} if creds is not None else {}
                answer = self._send("GET", realm + "?" + urllib.parse.urlencode(query), headers, None, stream=False)
            with answer as response:
                token_body = json.loads(self._bounded(response, "its token"))
        except (HTTPStatusError, OrchError, ValueError, *TRANSIENT):
            raise unauthorized(self.host) from None
        token = token_body.get("token") or token_body.get("access_token")
        if not token:
            raise unauthorized(self.host)
        self._tokens[repository] = f"Bearer {token}"

    # -- one request -----------------------------------------------------------

    def _tls(self, netloc: str) -> Any:
        key = f"{netloc} {self.verify_tls}"
        if key not in self._tls_contexts:
            self._tls_contexts[key] = reach.tls_context(netloc, verify=self.verify_tls or netloc != self.host)
        return self._tls_contexts[key]

    def _connection(self, scheme: str, netloc: str, *, fresh: bool) -> http.Connection:
        def connect() -> http.Connection:
            return http.Connection(scheme, netloc, timeout=self.timeout, proxy=reach.proxy_for(scheme, netloc),
                                   tls=lambda: self._tls(netloc))

        if fresh:
            return connect()
        pool: dict[tuple[str, str], http.Connection] = self._local.__dict__.setdefault("connections", {})
        if (scheme, netloc) not in pool:
            pool[(scheme, netloc)] = connect()
        return pool[(scheme, netloc)]

    def _send(self, method: str, url: str, headers: dict[str, str], body: Body,
              stream: bool) -> http.Response:
        """One request, following redirects. A streamed response owns its own
        connection (the caller may stop reading halfway); the others reuse one."""
        for _ in range(6):
            parts = urllib.parse.urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            for fresh in (False, True):
                connection = self._connection(parts.scheme, parts.netloc, fresh=stream or fresh)
                data = body() if callable(body) else body
                opened = data if callable(body) else None  # a stream opened for this attempt
                try:
                    response = connection.request(method, target, data, headers)
                    break
                except TRANSIENT as exc:
                    connection.close()
                    # A kept-alive connection the server has since closed: once more on a new one.
                    if not fresh and isinstance(exc, (http.Disconnected, ConnectionResetError, BrokenPipeError)):
                        continue
                    raise
                finally:
                    if opened is not None and not isinstance(opened, bytes):
                        opened.close()
            if response.status in REDIRECTS and response.getheader("Location"):
                response.close()  # its body is not read: a registry could send anything there
                url = urllib.parse.urljoin(url, response.getheader("Location"))
                # Blob storage behind a redirect rejects the registry's Authorization.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                continue
            if response.status >= 400:
                body = response.read(4096)  # the error's first words are all orch shows
                response.close()
                raise HTTPStatusError(response.status, response.headers, body)
            return response
        raise RegistryError(f"registry {self.host} redirected too many times for {url}")


def _tls_failures() -> tuple[type[BaseException], ...]:
    """Evaluated only when an error is being matched. ssl is never imported here: a TLS error can
    only come from an ssl module already loaded, and an import on a helper thread (a registry
    check) is what a command ending at that moment must not meet."""
    ssl = sys.modules.get("ssl")
    return (ssl.SSLError, ssl.CertificateError) if ssl is not None else ()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


_FIELD = on_first_use(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def challenge_fields(params: str) -> dict[str, str]:
    """`realm="https://auth",service="registry",scope="repository:a:pull"` as a dict (RFC 7235)."""
    return {m.group(1).lower(): (m.group(2).replace('\\"', '"') if m.group(2) is not None else m.group(3))
            for m in _FIELD.finditer(params)}


def _check_path(host: str, path: str) -> None:
    """A manifest or blob is asked for by a well-formed digest (or a tag): a digest a registry or a
    file named is checked here before it goes into a URL."""
    kind, _, name = path.partition("/")
    if kind not in ("manifests", "blobs") or name.startswith("uploads") or ":" not in name:
        return
    from orchestrator.registry.verified import well_formed

    if not well_formed(name):
        from orchestrator.errors import JobFailed

        raise JobFailed(f'"{name[:80]}" is not a well-formed digest (sha256 or sha512, lowercase hex of full '
                        f"length); orch does not ask registry {host} for it",
                        fix="the index or manifest that names it is broken: rebuild or re-push it")
