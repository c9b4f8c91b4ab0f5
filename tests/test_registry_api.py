"""The registry client's HTTP protocol: Bearer tokens, redirects to blob
storage, kept-alive connections the server drops.

The loopback registry (distribution 2.8) speaks only Basic auth without a
token service, and never redirects blobs, so these run against a small
in-process server that answers as Docker Hub and S3-backed registries do.
Basic auth against the real registry is in test_deep.py."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.errors import EnvironmentMissing, ExitCode
from orchestrator.model.references import parse_reference
from orchestrator.registry.auth import Credentials
from orchestrator.registry.client import Registry

TOKEN = "tok-3f9a"
SECRET = "hunter2-registry"
CONFIG = {"architecture": "arm64", "os": "linux"}
CONFIG_BYTES = json.dumps(CONFIG).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG_BYTES).hexdigest()
MANIFEST = b'{"schemaVersion": 2}'
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[int, str, str, str | None]] = []  # (port, method, path, Authorization)


@pytest.fixture()
def servers() -> Iterator[tuple[str, str, Recorder]]:
    """(registry host:port, blob store host:port, what each received)."""
    seen = Recorder()

    class Storage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.requests.append((self.server.server_port, "GET", self.path, self.headers.get("Authorization")))
            body = CONFIG_BYTES
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    storage = ThreadingHTTPServer(("127.0.0.1", 0), Storage)

    class Registry_(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, code: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            port = self.server.server_port
            auth = self.headers.get("Authorization")
            seen.requests.append((port, "GET", self.path, auth))
            if self.path.startswith("/token"):
                ok = auth == Credentials("ci", SECRET).basic()
                self.reply(200 if ok else 401, json.dumps({"token": TOKEN} if ok else {}).encode())
                return
            if auth != f"Bearer {TOKEN}":
                self.reply(401, WWW_Authenticate=f'Bearer realm="http://127.0.0.1:{port}/token",'
                                                 f'service="test",scope="repository:team/app:pull"')
                return
            if self.path.startswith("/v2/team/app/blobs/"):
                self.reply(307, Location=f"http://127.0.0.1:{storage.server_port}/bucket/blob?sig=1")
            elif self.path == "/v2/team/app/manifests/drop":
                # Closes without saying so, as a proxy's idle timeout does.
                self.reply(200, b"{}")
                self.close_connection = True
            else:
                self.reply(200, MANIFEST, Docker_Content_Digest=MANIFEST_DIGEST)

        def log_message(self, *args: object) -> None:
            pass

    registry = ThreadingHTTPServer(("127.0.0.1", 0), Registry_)
    for server in (storage, registry):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # 127.0.0.1 counts as loopback, so orch speaks plain http to it.
    yield f"127.0.0.1:{registry.server_port}", f"127.0.0.1:{storage.server_port}", seen
    for server in (storage, registry):
        server.shutdown()
        server.server_close()


def logged_in(monkeypatch: pytest.MonkeyPatch, tmp_path, host: str) -> None:
    import base64

    auth = base64.b64encode(f"ci:{SECRET}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))


def test_bearer_token_then_blob_through_a_redirect_without_the_token(servers, monkeypatch, tmp_path) -> None:
    host, storage, seen = servers
    logged_in(monkeypatch, tmp_path, host)
    registry = Registry(parse_reference(f"{host}/team/app:1"))

    assert registry.config("team/app", CONFIG_DIGEST) == CONFIG
    paths = [(path.split("?")[0], auth) for _, _, path, auth in seen.requests]
    assert paths[0] == (f"/v2/team/app/blobs/{CONFIG_DIGEST}", None)  # challenged
    assert paths[1][0] == "/token" and paths[1][1].startswith("Basic ")
    assert paths[2] == (f"/v2/team/app/blobs/{CONFIG_DIGEST}", f"Bearer {TOKEN}")
    # Blob storage gets no registry credentials.
    assert paths[3] == ("/bucket/blob", None)
    assert str(storage.split(":")[1]) == str(seen.requests[3][0])


def test_token_is_reused_and_a_dropped_keepalive_connection_is_reopened(servers, monkeypatch, tmp_path) -> None:
    host, _, seen = servers
    logged_in(monkeypatch, tmp_path, host)
    registry = Registry(parse_reference(f"{host}/team/app:1"))

    registry.manifest(parse_reference(f"{host}/team/app:drop"))  # the server closes after this one
    document, _, digest = registry.manifest(parse_reference(f"{host}/team/app:1"))
    assert document == {"schemaVersion": 2} and digest == MANIFEST_DIGEST
    assert [p for _, _, p, _ in seen.requests].count("/token?service=test&scope=repository%3Ateam%2Fapp%3Apull") == 1


def test_wrong_password_is_an_environment_error_naming_docker_login_not_the_secret(servers, monkeypatch,
                                                                                 tmp_path) -> None:
    host, _, _ = servers
    logged_in(monkeypatch, tmp_path, host)
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": "Y2k6d3Jvbmc="}}}))  # ci:wrong
    registry = Registry(parse_reference(f"{host}/team/app:1"))

    with pytest.raises(EnvironmentMissing) as caught:
        registry.manifest(parse_reference(f"{host}/team/app:1"))
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert f"docker login {host}" in str(caught.value.fix)
    assert "wrong" not in str(caught.value) and SECRET not in str(caught.value)


def test_unreachable_registry_is_an_environment_error() -> None:
    registry = Registry(parse_reference("127.0.0.1:9/team/app:1"), timeout=2)
    with pytest.raises(EnvironmentMissing, match="cannot reach the registry 127.0.0.1:9"):
        registry.manifest(parse_reference("127.0.0.1:9/team/app:1"))
