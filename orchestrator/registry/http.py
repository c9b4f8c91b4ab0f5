"""The HTTP/1.1 orch speaks to registries: requests and answers on kept-alive sockets, bodies by
Content-Length, chunked or until close, streamed when asked; TLS only for https.

The standard library's http.client would do, but it imports the whole email package (and ssl)
to parse headers: ~30 ms, a third of `orch verify`. Registries need none of that.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from typing import IO, Any

from orchestrator import workers

CHUNK = 1 << 16


class HTTPError(OSError):
    """The connection broke or the answer was not HTTP: worth another try on a new connection."""


class ProxyRefused(HTTPError):
    """The proxy answered CONNECT with something other than 200."""


class Disconnected(HTTPError):
    """The server closed the connection before answering (a kept-alive socket it had dropped)."""


class IncompleteRead(HTTPError):
    def __init__(self, partial: bytes, expected: int | None) -> None:
        super().__init__(f"the answer was cut off after {len(partial)} bytes")
        self.partial = partial
        self.expected = expected


class TooLarge(Exception):
    """The body ran past the bound it was read with (not an OSError: never worth a retry)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class TooSlow(Exception):
    """The body was still coming when its time ran out (a trickle, or an endless answer)."""

    def __init__(self, seconds: float, received: int) -> None:
        super().__init__(f"not done after {seconds:g} s ({received} bytes)")
        self.seconds = seconds
        self.received = received


class Headers:
    """Answer headers, looked up without regard to case."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._lower = {k.lower(): v for k, v in pairs}

    def get(self, name: str, default: Any = None) -> Any:
        return self._lower.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


class Response:
    """An answer whose body is read from the socket as it is asked for."""

    def __init__(self, connection: Connection, status: int, headers: Headers, method: str) -> None:
        self.connection = connection
        self.status = status
        self.headers = headers
        self._chunked = headers.get("Transfer-Encoding", "").lower() == "chunked"
        length = headers.get("Content-Length")
        no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
        self._left: int | None = 0 if no_body else (int(length) if length and not self._chunked else None)
        self._chunk_left = 0
        self._done = no_body or self._left == 0
        self._reusable = headers.get("Connection", "").lower() != "close"

    def getheader(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name, default)

    def read_bounded(self, limit: int, seconds: float) -> bytes:
        """The whole body, if it is at most `limit` bytes and done within `seconds`: memory and
        time stay bounded whatever the server sends (an endless chunked answer, a huge length)."""
        if self._done:  # HEAD, 204 and 304 carry no body: their Content-Length is the resource's size
            return b""
        length = self.headers.get("Content-Length")
        if length and length.strip().isdigit() and int(length) > limit and not self._chunked:
            self.close()
            raise TooLarge(limit)
        deadline = time.monotonic() + seconds
        parts: list[bytes] = []
        received = 0
        try:
            while not self._done:
                part = self._read_some(CHUNK)
                received += len(part)
                if received > limit:
                    self.close()
                    raise TooLarge(limit)
                if time.monotonic() > deadline:
                    self.close()
                    raise TooSlow(seconds, received)
                parts.append(part)
        except IncompleteRead as exc:
            raise IncompleteRead(b"".join(parts), exc.expected) from None
        return b"".join(parts)

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        if size < 0:
            parts: list[bytes] = []
            try:
                while not self._done:
                    parts.append(self._read_some(CHUNK))
            except IncompleteRead as exc:
                raise IncompleteRead(b"".join(parts), exc.expected) from None
            return b"".join(parts)
        return self._read_some(size)

    def _read_some(self, size: int) -> bytes:
        file: io.BufferedReader = self.connection.file
        if self._chunked:
            if self._chunk_left == 0:
                line = file.readline()
                if not line:
                    raise IncompleteRead(b"", None)
                self._chunk_left = int(line.split(b";")[0].strip() or b"0", 16)
                if self._chunk_left == 0:
                    while file.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return self._finish()
            data: bytes = file.read(min(size, self._chunk_left))
            if not data:
                raise IncompleteRead(b"", self._chunk_left)
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                file.readline()
            return data
        if self._left is None:  # until the server closes
            data = file.read1(size) if hasattr(file, "read1") else file.read(size)
            if not data:
                self._reusable = False
                return self._finish()
            return data
        data = file.read(min(size, self._left))
        if not data:
            raise IncompleteRead(b"", self._left)
        self._left -= len(data)
        if self._left == 0:
            self._finish()
        return data

    def _finish(self) -> bytes:
        self._done = True
        if not self._reusable:
            self.connection.close()
        return b""

    def close(self) -> None:
        """Stop reading: a body left unread makes the socket unusable for the next request."""
        if not self._done:
            self._done = True
            self.connection.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Connection:
    """One socket to one host (through a proxy, when given one); requests one after another,
    the answer read before the next."""

    def __init__(self, scheme: str, netloc: str, *, timeout: float, proxy: Any = None,
                 tls: Callable[[], Any] | None = None) -> None:
        self.scheme = scheme
        host, _, port = netloc.rpartition(":") if netloc.rsplit(":", 1)[-1].isdigit() else (netloc, "", "")
        self.host = host.strip("[]")
        self.netloc = netloc
        self.port = int(port) if port else (443 if scheme == "https" else 80)
        self.timeout = timeout
        self.proxy = proxy  # reach.Proxy: host, port, authorization
        self.tls = tls  # makes the ssl.SSLContext (registry.reach.tls_context)
        self.sock: Any = None
        self.file: Any = None
        self._forget: Callable[[], None] = lambda: None

    def _open(self) -> None:
        workers.check()  # a cancelled check opens nothing more
        host, port = (self.proxy.host, self.proxy.port) if self.proxy else (self.host, self.port)
        # An ASCII name is looked up as bytes: as text, the resolver's idna codec is imported first
        # (encodings.idna, stringprep, unicodedata: ~5 ms of every command that reads a registry).
        named = host.encode("ascii") if host.isascii() else host  # bytes: getaddrinfo takes them, typeshed does not say
        sock = socket.create_connection((named, port), timeout=self.timeout)  # type: ignore[arg-type]
        # Whoever owns this thread's work can unblock a read or write here by cancelling it: the
        # socket is shut down, the call in progress fails, and the retry loop stops at its pause.
        self.sock = sock
        self._forget = workers.on_cancel(self._shut_down)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.proxy and self.scheme == "https":
                self._tunnel(sock)
            if self.scheme == "https":
                if self.tls is not None:
                    context = self.tls()
                else:
                    import ssl  # only registries over TLS pay for it

                    context = ssl.create_default_context()
                # The handshake after the wrap, so a cancel finds the socket it blocks on in self.sock
                # (wrapping detaches the plain socket).
                self.sock = context.wrap_socket(sock, server_hostname=self.host, do_handshake_on_connect=False)
                self.sock.do_handshake()
            self.file = self.sock.makefile("rb")
        except BaseException:
            self.close()
            raise

    def _shut_down(self) -> None:
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected yet, or gone already

    def _tunnel(self, sock: socket.socket) -> None:
        """CONNECT through the proxy; TLS then runs inside the tunnel, end to end."""
        lines = [f"CONNECT {self.host}:{self.port} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if self.proxy.authorization:
            lines.append(f"Proxy-Authorization: {self.proxy.authorization}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                sock.close()
                raise HTTPError(f"the proxy {self.proxy} closed the connection instead of opening a tunnel")
            answer += data
            if len(answer) > 65536:
                break
        status = answer.split(b"\r\n", 1)[0].decode("latin-1")
        if len(status.split()) < 2 or status.split()[1] != "200":
            sock.close()
            raise ProxyRefused(f"the proxy {self.proxy} would not open a tunnel to {self.host}:{self.port}: {status}")

    def request(self, method: str, target: str, body: bytes | IO[bytes] | None,
                headers: dict[str, str]) -> Response:
        fresh = self.sock is None
        if fresh:
            self._open()
        if self.proxy and self.scheme == "http":  # a plain-HTTP request names the whole URL to the proxy
            target = f"http://{self.netloc}{target}"
            if self.proxy.authorization:
                headers = {**headers, "Proxy-Authorization": self.proxy.authorization}
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.netloc}", "User-Agent: orch"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if isinstance(body, bytes) and not any(k.lower() == "content-length" for k in headers):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if isinstance(body, bytes):
                self.sock.sendall(head + body)
            else:
                self.sock.sendall(head)
                while body is not None and (data := body.read(CHUNK)):
                    self.sock.sendall(data)
            return self._answer(method)
        except Disconnected:
            self.close()
            raise
        except OSError:
            self.close()
            raise

    def _answer(self, method: str) -> Response:
        while True:
            line = self.file.readline(65537)
            if not line:
                raise Disconnected("the server closed the connection without answering")
            parts = line.decode("latin-1").split(None, 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise HTTPError(f"not an HTTP answer: {line[:80]!r}")
            pairs = []
            while True:
                header = self.file.readline(65537)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.decode("latin-1").partition(":")
                pairs.append((name.strip(), value.strip()))
            status = int(parts[1])
            if status != 100:  # "100 Continue" comes before the real answer
                return Response(self, status, Headers(pairs), method)

    def close(self) -> None:
        self._forget()
        self._forget = lambda: None
        for closable in (self.file, self.sock):
            if closable is not None:
                try:
                    closable.close()
                except OSError:
                    pass
        self.sock = self.file = None
