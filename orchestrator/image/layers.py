"""Layers read as `docker pull` reads them, for --deep: decompressed by what their bytes are
(gzip, zstd or a plain tar) and that checked against their media type; their uncompressed bytes
hashed against the config's diff_id; their compressed bytes against their digest. Streamed, so
memory stays flat whatever the layer's size.

A layer `docker pull` would refuse is refused here too: truncated gzip, random bytes, zstd
labelled gzip (UnreadableLayer: a failure under --strict and in `orch build --push --deep`), or
bytes that unpack to something else than the config says (CorruptLayer: always a failure).
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from typing import IO, Any

from orchestrator.registry.errors import DigestMismatch
from orchestrator.registry.verified import Oversized

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class UnreadableLayer(Exception):
    """A layer whose bytes cannot be unpacked as a tar (as its media type says, or at all)."""


class CorruptLayer(Exception):
    """A layer whose bytes do not hash to its digest, or do not unpack to its diff_id."""


def compression_of(head: bytes) -> str:
    return "gzip" if head.startswith(GZIP_MAGIC) else "zstd" if head.startswith(ZSTD_MAGIC) else "none"


def claimed(media_type: str) -> str:
    """What the media type says: Docker's ...tar.gzip, OCI's ...tar+gzip and +zstd, else a tar."""
    return "zstd" if "zstd" in media_type else "gzip" if "gzip" in media_type else "none"


class _Prefixed:
    """A stream whose first bytes were read already (to see what it is)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0 or size >= len(self.head):
                data, self.head = self.head, b""
                more = self.rest.read(-1 if size < 0 else size - len(data))
                return data + more
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.rest.read(size)


class LayerStream:
    """The uncompressed tar of one layer, read as it arrives."""

    def __init__(self, raw: IO[bytes], media_type: str, digest: str, diff_id: str | None) -> None:
        self.raw, self.digest, self.diff_id = raw, digest, diff_id
        head = raw.read(4)
        actual, said = compression_of(head), claimed(media_type)
        if actual != said:
            raise UnreadableLayer(f"layer {digest[:19]} is labelled {_kind(said)} ({media_type or 'no media type'})"
                                  f" but its bytes are {_kind(actual)}")
        source: Any = _Prefixed(head, raw)
        if actual == "gzip":
            source = gzip.GzipFile(fileobj=source)
        elif actual == "zstd":
            import zstandard  # only images with zstd layers pay for it

            source = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
        self.source = source
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self.source.read(size)
        except Oversized as exc:
            raise CorruptLayer(exc.message) from None
        except DigestMismatch as exc:
            raise CorruptLayer(f"layer {self.digest[:19]} does not match its digest (it hashes to "
                               f"{exc.found[:19]})") from None
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            raise UnreadableLayer(f"layer {self.digest[:19]}: {_said(exc)}") from None
        except Exception as exc:  # zstandard.ZstdError, without importing it for gzip layers
            raise UnreadableLayer(f"layer {self.digest[:19]}: {_said(exc)}") from None
        self._hash.update(data)
        return data

    def finish(self) -> None:
        """Read what is left: the whole layer unpacks, to its diff_id, from bytes that match its
        digest. Raises UnreadableLayer or CorruptLayer."""
        try:
            while self.read(CHUNK):
                pass
            rest = getattr(self.raw, "verify_rest", None)
            if rest is not None:
                rest()
        except Oversized as exc:
            raise CorruptLayer(exc.message) from None
        except DigestMismatch as exc:
            raise CorruptLayer(f"layer {self.digest[:19]} does not match its digest (it hashes to "
                               f"{exc.found[:19]})") from None
        unpacked = "sha256:" + self._hash.hexdigest()
        if self.diff_id and unpacked != self.diff_id:
            raise CorruptLayer(f"layer {self.digest[:19]} unpacks to {unpacked[:19]}, not to {self.diff_id[:19]} "
                               "as the image's config says (docker pull refuses it)")

    def close(self) -> None:
        self.raw.close()


def _kind(compression: str) -> str:
    return {"gzip": "gzip", "zstd": "zstd", "none": "an uncompressed tar"}.get(compression, compression)


def _said(exc: BaseException) -> str:
    return f"cannot be unpacked ({str(exc) or type(exc).__name__})"
