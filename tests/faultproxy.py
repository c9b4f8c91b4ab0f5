"""A fault-injecting HTTP proxy in front of a real registry, for the fault tests.

Requests pass through to the registry unchanged unless a Rule matches them
(method and a path regex, skipping the first `after` matches, for `times`
matches). Then, as the rule says, the proxy answers with a status of its own,
drops the connection, cuts the answer off after some bytes, swaps the body
for another (naming its digest, with `fix_digest`), answers with a body that
never ends or that stops coming, waits first, or calls a hook (send a signal,
go down) and then forwards. Every request is recorded with what was done to it.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class Rule:
    method: str
    path: str  # a regex searched in the request path
    action: str  # status | drop | cut | swap | delay | hook | endless | stall
    status: int = 500
    cut_after: int = 10  # cut: bytes of the real body sent before the connection closes
    body: bytes = b""  # swap: what is served instead; status: the error body (default: UNKNOWN)
    delay: float = 0.0  # delay (and before any action)
    hook: Callable[[str, str], None] | None = None  # hook(method, path), then the request goes on
    fix_digest: bool = False  # swap: Docker-Content-Digest names the swapped body (a registry serving it)
    after: int = 0  # let this many matching requests through first
    times: int = 1  # then act on this many
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.search(self.path, path) is not None


@dataclass
class Seen:
    method: str
    path: str
    done: str  # "forwarded 200", "status 500", "dropped", ...


@dataclass
class FaultProxy:
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    log: list[Seen] = field(default_factory=list)
    down: bool = False  # drop every connection, as a registry that has stopped
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_port

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    def ref(self, repository: str, tag: str = "latest") -> str:
        return f"{self.host}/{repository}:{tag}"

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.down = False

    def done(self, method: str, pattern: str) -> list[str]:
        return [s.done for s in self.log if s.method == method and re.search(pattern, s.path)]

    def _pick(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.seen += 1
                    if rule.after < rule.seen <= rule.after + rule.times:
                        return rule
        return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _record(self, done: str) -> None:
                with proxy.lock:
                    proxy.log.append(Seen(self.command, self.path, done))

            def _drop(self) -> None:
                self._record("dropped")
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

            def _handle(self) -> None:
                body = self._body()
                if proxy.down:
                    return self._drop()
                rule = proxy._pick(self.command, self.path)
                if rule is not None and rule.delay:
                    time.sleep(rule.delay)
                if rule is not None and rule.action == "hook" and rule.hook:
                    rule.hook(self.command, self.path)
                    if proxy.down:
                        return self._drop()
                if rule is not None and rule.action == "status":
                    payload = rule.body or b'{"errors":[{"code":"UNKNOWN","message":"injected by the fault proxy"}]}'
                    self.send_response(rule.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return self._record(f"status {rule.status}")
                if rule is not None and rule.action == "drop":
                    return self._drop()
                if rule is not None and rule.action in ("endless", "stall"):
                    return self._hostile(rule.action)
                status, headers, answer = self._forward(body)
                if rule is not None and rule.action == "swap":
                    answer = rule.body
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in HOP and key.lower() != "content-length" and not (
                            rule is not None and rule.fix_digest and key.lower() == "docker-content-digest"):
                        self.send_header(key, value)
                if rule is not None and rule.fix_digest:
                    self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(answer).hexdigest())
                # A HEAD answer has no body but the length of the one a GET would get: clients read
                # a manifest's size from it (containerd's resolver, so buildx imagetools, does).
                upstream_length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                self.send_header("Content-Length", upstream_length if self.command == "HEAD" else str(len(answer)))
                self.end_headers()
                if self.command == "HEAD":
                    return self._record(f"forwarded {status}")
                if rule is not None and rule.action == "cut":
                    self.wfile.write(answer[:rule.cut_after])
                    self.wfile.flush()
                    return self._drop()
                self.wfile.write(answer)
                self._record(f"{'swapped' if rule is not None and rule.action == 'swap' else 'forwarded'} {status}")

            def _hostile(self, action: str) -> None:
                """endless: a chunked manifest answer that never ends; stall: a few bytes of an
                answer that promised more, then nothing. Until orch hangs up (or 10 minutes)."""
                self._record(action)
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.oci.image.index.v1+json")
                if action == "endless":
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", "100000")
                self.end_headers()
                chunk = b"[" * 65536
                deadline = time.monotonic() + 600
                try:
                    if action == "stall":
                        self.wfile.write(b'{"schemaVersion": 2')
                        self.wfile.flush()
                        while time.monotonic() < deadline and self.rfile.read(1):
                            pass  # returns b"" once orch closes the connection
                        return
                    while time.monotonic() < deadline:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                finally:
                    self.close_connection = True

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST",
                                                                                                  "PATCH") else None,
                                 headers=headers)
                response = upstream.getresponse()
                answer = response.read()
                result = response.status, response.getheaders(), answer
                upstream.close()
                return result

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
