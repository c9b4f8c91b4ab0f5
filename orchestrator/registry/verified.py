"""Content checked against its digest: whole bodies at once, streams as they are read."""

from __future__ import annotations

import hashlib
import json
import re
from typing import IO, Any

from orchestrator.errors import JobFailed
from orchestrator.registry.errors import DigestMismatch

CHUNK = 1 << 20
# The digests the OCI image spec registers, lowercase hex of their full length; nothing else is sent
# to a registry or trusted from one ("sha256:../../x", "md5:...", "sha256:abc" are refused).
DIGEST = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_like(data: bytes, digest: str) -> str:
    """The digest of `data` by the algorithm `digest` names (sha256 when it names none known)."""
    algorithm = digest.partition(":")[0]
    return f"{algorithm}:{ALGORITHMS[algorithm](data).hexdigest()}" if algorithm in ALGORITHMS \
        else sha256_digest(data)


def well_formed(digest: object) -> bool:
    return isinstance(digest, str) and DIGEST.match(digest) is not None


def load_json(body: bytes | str) -> Any:
    """JSON as a registry sent it; ValueError for anything else, nesting too deep included (a
    document nested 200,000 levels would otherwise end in RecursionError)."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("nested too deeply") from None


class HashingReader:
    """A read-only stream that hashes what passes through; at the end of the stream the hash
    must be the expected digest, else DigestMismatch. `verify_rest()` reads what is left (in
    chunks: memory stays flat) to finish the check when the reader stopped early."""

    def __init__(self, stream: IO[bytes], digest: str, what: str, host: str) -> None:
        algorithm, _, _ = digest.partition(":")
        if not well_formed(digest):
            raise DigestMismatch(host, what, digest, f"(not a well-formed {algorithm or 'sha256'} digest)")
        self._stream = stream
        self._hash = ALGORITHMS[algorithm]()
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
        found = f"{self._digest.partition(':')[0]}:{self._hash.hexdigest()}"
        if found != self._digest:
            raise DigestMismatch(self._host, self._what, self._digest, found)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Oversized(JobFailed):
    """A blob longer than the size its descriptor gives (an endless answer, or the wrong blob)."""

    def __init__(self, host: str, what: str, size: int) -> None:
        super().__init__(f"{what}: {host} sent more than the {size} bytes its descriptor gives; nothing it says "
                         "about this object can be trusted", fix="check the registry, then rerun")


class SizeBound:
    """A stream that may not run past the size a descriptor gave it: a registry sending an
    endless blob is stopped there, not read forever. (Fewer bytes are caught by the digest.)"""

    def __init__(self, stream: IO[bytes], size: int, what: str, host: str) -> None:
        self._stream, self._left, self._size, self._what, self._host = stream, size, size, what, host

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size >= 0 else self._left + 1)
        self._left -= len(data)
        if self._left < 0:
            raise Oversized(self._host, self._what, self._size)
        return data

    def verify_rest(self) -> None:
        rest = getattr(self._stream, "verify_rest", None)
        while self.read(CHUNK):
            pass
        if rest is not None:
            rest()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> SizeBound:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
