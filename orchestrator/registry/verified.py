"""Content checked against its digest: whole bodies at once, streams as they are read."""

from __future__ import annotations

import hashlib
from typing import IO

from orchestrator.registry.errors import DigestMismatch

CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class HashingReader:
    """A read-only stream that hashes what passes through; at the end of the stream the hash
    must be the expected digest, else DigestMismatch. `verify_rest()` reads what is left (in
    chunks: memory stays flat) to finish the check when the reader stopped early."""

    def __init__(self, stream: IO[bytes], digest: str, what: str, host: str) -> None:
        algorithm, _, _ = digest.partition(":")
        if algorithm != "sha256":
            raise DigestMismatch(host, what, digest, f"(unsupported algorithm {algorithm})")
        self._stream = stream
        self._hash = hashlib.sha256()
        self._digest = digest
        self._what = what
        self._host = host
        self._done = False

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        if not data and size != 0 or size < 0:
            self._check()
        return data

    def readable(self) -> bool:
        return True

    def verify_rest(self) -> None:
        while not self._done:
            self.read(CHUNK)

    def _check(self) -> None:
        if self._done:
            return
        self._done = True
        found = "sha256:" + self._hash.hexdigest()
        if found != self._digest:
            raise DigestMismatch(self._host, self._what, self._digest, found)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
