"""A forward HTTP proxy on loopback, as corporate networks put in front of registries: CONNECT
tunnels for https, absolute-form requests for plain http. Host names are resolved from a table
given to it (`registry.orch.test` -> 127.0.0.1), so a request that reaches the registry at all
has gone through the proxy. It records what it was asked and can demand Proxy-Authorization."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class ForwardProxy:
    hosts: dict[str, str]  # name -> address it resolves to
    authorization: str | None = None  # the Proxy-Authorization it demands, if any
    asked: list[tuple[str, str]] = field(default_factory=list)  # (method, target) of each tunnel or request
    port: int = 0

    def __post_init__(self) -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(32)
        self.port = self._server.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopped = True
        self._server.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            first, rest = head.split(b"\r\n", 1)
            method, target, version = first.decode("latin-1").split(" ", 2)
            self.asked.append((method, target))
            headers = rest.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
            if self.authorization and f"proxy-authorization: {self.authorization}".lower() not in headers:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = self._connect(host, int(port))
                if upstream is None:
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                leftover = head.split(b"\r\n\r\n", 1)[1]
                if leftover:
                    upstream.sendall(leftover)
            else:
                if not target.startswith("http://"):
                    client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    return
                authority, _, path = target[len("http://"):].partition("/")
                host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
                upstream = self._connect(host, int(port))
                if upstream is None:
                    client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                    return
                # The origin gets the request as the client wrote it, its URL made relative.
                upstream.sendall(f"{method} /{path} {version}\r\n".encode("latin-1") + rest)
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            client.close()

    def _connect(self, host: str, port: int) -> socket.socket | None:
        address = self.hosts.get(host)
        if address is None:
            return None
        try:
            return socket.create_connection((address, port), timeout=30)
        except OSError:
            return None

    @staticmethod
    def _pipe(client: socket.socket, upstream: socket.socket) -> None:
        """Bytes both ways until either side closes (later requests on a kept-alive connection
        to the same origin pass through as they are: the origin reads absolute URLs too)."""
        def copy(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, sink):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        other = threading.Thread(target=copy, args=(upstream, client), daemon=True)
        other.start()
        copy(client, upstream)
        other.join(timeout=30)
        upstream.close()
