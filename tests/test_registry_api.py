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
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.errors import EnvironmentMissing, ExitCode
from orchestrator.model.references import parse_reference
from orchestrator.registry.auth import Credentials
from orchestrator.registry.client import Registry

from . import orch_processes

TOKEN = "tok-3f9a"
SECRET = "hunter2-registry"
REFRESH_TOKEN = "refresh-7c1e-identity"
CONFIG = {"architecture": "arm64", "os": "linux"}
CONFIG_BYTES = json.dumps(CONFIG).encode()
CONFIG_DIGEST = "sha256:" + hashlib.sha256(CONFIG_BYTES).hexdigest()
MANIFEST = b'{"schemaVersion": 2}'
MANIFEST_DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[int, str, str, str | None]] = []  # (port, method, path, Authorization)
        self.forms: list[dict[str, str]] = []  # bodies POSTed to the token endpoint


@pytest.fixture()
def servers() -> Iterator[tuple[str, str, Recorder]]:
    """(registry host:port, blob store host:port, what each received)."""
    seen = Recorder()

    class Storage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
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

        def do_GET(self) -> None:
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

        def do_POST(self) -> None:  # the OAuth2 token endpoint (refresh_token grant)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            seen.requests.append((self.server.server_port, "POST", self.path, self.headers.get("Authorization")))
            seen.forms.append(dict(urllib.parse.parse_qsl(body)))
            form = seen.forms[-1]
            ok = self.path == "/token" and form.get("grant_type") == "refresh_token" and \
                form.get("refresh_token") == REFRESH_TOKEN
            self.reply(200 if ok else 401, json.dumps({"access_token": TOKEN} if ok else {}).encode())

        def log_message(self, *args: object) -> None:
            pass

    registry = ThreadingHTTPServer(("127.0.0.1", 0), Registry_)
    for server in (storage, registry):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
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


def test_unreachable_registry_is_an_environment_error_after_backing_off() -> None:
    registry = Registry(parse_reference("127.0.0.1:9/team/app:1"), timeout=2)
    waited: list[float] = []
    registry.transport._sleep = waited.append  # the backoff is recorded, not slept through
    with pytest.raises(EnvironmentMissing, match="cannot reach the registry 127.0.0.1:9"):
        registry.manifest(parse_reference("127.0.0.1:9/team/app:1"))
    assert waited == [0.2, 0.6, 1.5]  # four attempts, each waiting longer


# -- the HTTP layer (registry.http) against a raw socket server ---------------------


@pytest.fixture()
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A server answering each request with the next canned answer (bytes), on one socket;
    b"CLOSE" closes the connection instead of answering, and an answer ending in b"|close" is
    sent and then the connection closed."""
    import socket

    answers: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while answers:
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as file:  # both: a makefile keeps the socket open
                while answers:
                    request = file.readline()
                    if not request:
                        break
                    length = 0
                    while (line := file.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    file.read(length)
                    answer = answers.pop(0)
                    if answer == b"CLOSE":
                        break
                    conn.sendall(answer.removesuffix(b"|close"))
                    if answer.endswith(b"|close"):
                        break

    thread = threading.Thread(target=serve, daemon=True)
    yield listener.getsockname()[1], answers, thread
    listener.close()


def test_http_reads_length_chunked_and_close_delimited_bodies_on_one_kept_alive_socket(raw_server) -> None:
    from orchestrator.registry import http

    port, answers, thread = raw_server
    answers += [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Thing: a\r\n\r\nhello",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n",  # a HEAD: the length, no body
                b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"]
    thread.start()
    connection = http.Connection("http", f"127.0.0.1:{port}", timeout=5)
    first = connection.request("GET", "/a", None, {})
    assert (first.status, first.headers.get("x-thing"), first.read()) == (200, "a", b"hello")
    socket_used = connection.sock
    assert connection.request("GET", "/b", None, {}).read() == b"abcde"
    assert connection.request("PUT", "/c", b"data", {}).status == 204  # after a 100 Continue
    assert connection.request("HEAD", "/d", None, {}).read() == b""  # a HEAD answer has no body...
    assert connection.sock is socket_used  # ...and every one of these came on the same socket
    assert connection.request("GET", "/e", None, {}).read() == b"until the end"
    assert connection.sock is None  # the server said close


def test_a_head_of_a_blob_over_the_answer_bound_is_an_answer_not_too_large(raw_server, monkeypatch,
                                                                          tmp_path) -> None:
    """A HEAD's Content-Length is the blob's size, not a body: a registry that holds a 60 MiB layer
    answers a HEAD of it (the second release of any real image asks) with that length, and no
    body. 204 and 304 answers carry none either, whatever length they name."""
    monkeypatch.setenv("ORCH_STATE_DIR", str(tmp_path))
    port, answers, thread = raw_server
    big = 60 * 1024 * 1024
    digest = "sha256:" + "a" * 64
    answers += [f"HTTP/1.1 200 OK\r\nContent-Length: {big}\r\nDocker-Content-Digest: {digest}\r\n\r\n".encode(),
                f"HTTP/1.1 200 OK\r\nContent-Length: {big}\r\nDocker-Content-Digest: {digest}\r\n\r\n".encode(),
                f"HTTP/1.1 304 Not Modified\r\nContent-Length: {big}\r\n\r\n".encode(),
                f"HTTP/1.1 204 No Content\r\nContent-Length: {big}\r\n\r\n".encode()]
    thread.start()
    registry = Registry(parse_reference(f"127.0.0.1:{port}/team/app:1"), timeout=5)
    registry.transport.base = f"http://127.0.0.1:{port}"
    assert registry.blob_exists("team/app", digest) is True
    assert registry.head_digest(parse_reference(f"127.0.0.1:{port}/team/app@{digest}")) == digest
    assert registry.transport.request("GET", "team/app", "manifests/1").body == b""
    assert registry.transport.request("DELETE", "team/app", f"manifests/{digest}").body == b""


def test_http_says_when_an_answer_is_cut_off_or_a_kept_alive_socket_was_dropped(raw_server) -> None:
    from orchestrator.registry import http

    port, answers, thread = raw_server
    answers += [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this|close",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"CLOSE"]
    thread.start()
    connection = http.Connection("http", f"127.0.0.1:{port}", timeout=5)
    with pytest.raises(http.IncompleteRead, match="cut off after 9 bytes"):
        connection.request("GET", "/a", None, {}).read()
    connection.close()
    assert connection.request("GET", "/b", None, {}).read() == b"ok"
    with pytest.raises(http.Disconnected):
        connection.request("GET", "/c", None, {})


def test_an_identity_token_is_exchanged_as_a_refresh_token_and_never_sent_as_a_password(servers, monkeypatch,
                                                                                       tmp_path) -> None:
    host, _, seen = servers
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: {"auth": "", "identitytoken": REFRESH_TOKEN}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    registry = Registry(parse_reference(f"{host}/team/app:1"))

    document, _, _ = registry.manifest(parse_reference(f"{host}/team/app:1"))
    assert document == {"schemaVersion": 2}
    assert [(method, path) for _, method, path, _ in seen.requests] == [
        ("GET", "/v2/team/app/manifests/1"), ("POST", "/token"), ("GET", "/v2/team/app/manifests/1")]
    assert seen.forms == [{"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN, "client_id": "orch",
                           "service": "test", "scope": "repository:team/app:pull"}]
    assert not any(auth and auth.startswith("Basic") for *_, auth in seen.requests)


def _helper(tmp_path, monkeypatch: pytest.MonkeyPatch, name: str, answers: dict[str, dict]) -> None:
    """A real credential helper program on PATH (docker-credential-NAME get), answering per registry."""
    import os
    import stat
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    program.write_text(f"#!{sys.executable}\nimport json, sys\n"  # not env's python3: a pyenv shim costs 0.2 s
                       f"answers = {answers!r}\n"
                       "key = sys.stdin.read().strip()\n"
                       "if key not in answers:\n    print('credentials not found in native keychain'); sys.exit(1)\n"
                       "print(json.dumps(answers[key]))\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(
    ("config", "expected"),
    [  # docker's order: credHelpers[host], then credsStore, then the file's auths
        ({"credHelpers": {"r.test": "one"}, "credsStore": "two", "auths": {"r.test": {"auth": "ZmlsZTpw"}}},
         ("from-one", "s1", False)),
        ({"credsStore": "two", "auths": {"r.test": {"auth": "ZmlsZTpw"}}}, ("from-two", "s2", False)),
        ({"credsStore": "empty", "auths": {"other.test": {"auth": "ZmlsZTpw"}}}, None),  # nothing for r.test
        ({"credsStore": "empty", "auths": {"r.test": {"auth": "ZmlsZTpw"}}}, ("file", "p", False)),
        ({"auths": {"r.test": {"auth": "ZmlsZTpw", "identitytoken": "rt"}}}, ("<token>", "rt", True)),
        ({"credHelpers": {"r.test": "tok"}}, ("<token>", "rt-helper", True)),
    ],
)
def test_credentials_are_looked_up_in_dockers_order(tmp_path, monkeypatch, config, expected) -> None:
    from orchestrator.registry.auth import credentials_for

    _helper(tmp_path, monkeypatch, "one", {"r.test": {"Username": "from-one", "Secret": "s1"}})
    _helper(tmp_path, monkeypatch, "two", {"r.test": {"Username": "from-two", "Secret": "s2"}})
    _helper(tmp_path, monkeypatch, "empty", {})
    _helper(tmp_path, monkeypatch, "tok", {"r.test": {"Username": "<token>", "Secret": "rt-helper"}})
    (tmp_path / "config.json").write_text(json.dumps(config))
    found = credentials_for("r.test", tmp_path / "config.json")
    assert (found and (found.username, found.secret, found.identity_token)) == expected
    assert "s1" not in repr(found) and "rt" not in repr(found)


def test_a_reference_keeps_how_the_user_wrote_it_for_outputs() -> None:
    from orchestrator.model.references import parse_reference

    short = parse_reference("user/app:1")
    assert (str(short), short.as_given) == ("docker.io/user/app:1", "user/app:1")
    assert short == parse_reference("docker.io/user/app:1")  # the spelling is not part of what it names
    assert short.with_tag("2").as_given == "docker.io/user/app:2"  # a derived reference is orch's, spelt out
    assert parse_reference("user/app").as_given == "docker.io/user/app:latest"  # a tag the user did not write


@pytest.mark.parametrize(("text", "said"), [
    ("localhost:99999/a/b:1", "port 99999 in image reference"),
    ("localhost:0/a:1", "port 0 in image reference"),
    ("localhost:5000/" + "a" * 300 + ":1", "is 315 characters; at most 255 are allowed"),
])
def test_ports_and_names_beyond_what_a_registry_takes_are_bad_input(text: str, said: str) -> None:
    import sys

    result = orch_processes.run([sys.executable, "-m", "orchestrator", "inspect", text], timeout=60)
    assert result.returncode == 2 and said in result.stderr and "Traceback" not in result.stderr
