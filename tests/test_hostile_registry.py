"""A registry that sends what it should not (through the fault proxy, in front of a real one):
endless, huge, stalled or deeply nested answers, and indexes whose entries are malformed or too
many. orch ends each with exit 1 and a sentence naming the registry and the bound, within its
time bounds, with memory flat, and never asks the registry for a malformed digest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from .conftest import REPO, copy_image, start_registry
from .faultproxy import FaultProxy, Rule

SEED = "localhost:5000/orch/busybox:stable"
MIB = 1024 * 1024
PEAK = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr, end=''); sys.exit(code)")


class Hostile:
    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.ref = proxy.ref("hostile/app", "1")

    def verify(self, *extra: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float, int]:
        """`orch verify` of the image through the proxy: the result, its seconds and its peak RSS in
        MiB (read by a parent of its own: RUSAGE_CHILDREN there covers orch alone)."""
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", PEAK, sys.executable, "-m", "orchestrator", "verify", self.ref,
                                 "--platform", "linux/amd64", *extra], capture_output=True, text=True, cwd=REPO,
                                env={**os.environ, **(env or {})}, timeout=300)
        stderr, _, peak = result.stderr.rpartition("PEAK ")
        result.stderr = stderr
        return result, time.monotonic() - started, int(peak) // 1024


    def serve(self, body: bytes) -> None:
        """The tag's manifest answered with `body` instead, as a registry holding it would."""
        self.proxy.clear()
        self.proxy.add(Rule("GET", r"/manifests/1$", "swap", body=body, fix_digest=True, times=100))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, engine_ready: None) -> Iterator[Hostile]:
    registry = start_registry(tmp_path_factory.mktemp("hostile"))
    proxy = FaultProxy(registry.port).start()
    copy_image(SEED, f"localhost:{registry.port}/hostile/app:1")
    yield Hostile(proxy)
    proxy.stop()
    registry.stop()


def index_of(entries: list[dict]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}).encode()


def entry(digest: str) -> dict:
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 500,
            "platform": {"os": "linux", "architecture": "amd64"}}


@pytest.mark.engine
def test_an_endless_answer_ends_at_the_bound_with_memory_flat(hostile: Hostile) -> None:
    hostile.proxy.clear()
    hostile.proxy.add(Rule("GET", r"/manifests/1$", "endless", times=100))
    result, seconds, peak = hostile.verify()
    assert result.returncode == 1, result.stderr
    assert f"registry {hostile.proxy.host} answered manifests/1 with more than {4 * MIB} bytes" in result.stderr
    assert "ORCH_MAX_MANIFEST_BYTES" in result.stderr and "Traceback" not in result.stderr
    assert seconds < 60 and peak < 150, (seconds, peak)


@pytest.mark.engine
def test_a_manifest_over_the_bound_is_refused_and_the_bound_can_be_raised(hostile: Hostile) -> None:
    padded = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": [], "padding": "x" * (5 * MIB)}).encode()
    hostile.serve(padded)
    result, _, peak = hostile.verify()
    assert result.returncode == 1 and f"with more than {4 * MIB} bytes" in result.stderr, result.stderr
    raised, _, _ = hostile.verify(env={"ORCH_MAX_MANIFEST_BYTES": str(8 * MIB)})
    assert raised.returncode == 1 and "more than" not in raised.stderr  # read, then judged: no platforms
    assert "linux/amd64" in raised.stdout + raised.stderr and peak < 150


@pytest.mark.engine
def test_a_stalled_answer_ends_at_the_stall_bound(hostile: Hostile) -> None:
    hostile.proxy.clear()
    hostile.proxy.add(Rule("GET", r"/manifests/1$", "stall", times=100))
    result, seconds, _ = hostile.verify(env={"ORCH_REGISTRY_STALL_SECONDS": "2"})
    assert result.returncode == 1, result.stderr
    assert f"registry {hostile.proxy.host} sent nothing for 2 s (the stall limit)" in result.stderr
    assert seconds < 20, seconds  # two tries of 2 s and a short pause, not minutes


@pytest.mark.engine
def test_a_document_nested_200000_deep_is_unreadable_not_a_traceback(hostile: Hostile) -> None:
    hostile.serve(b"[" * 200_000 + b"]" * 200_000)
    result, _, _ = hostile.verify()
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "not JSON" in result.stderr


@pytest.mark.engine
@pytest.mark.parametrize("digest", ["sha256:../../x", "md5:" + "a" * 32, "sha256:abc", "SHA256:" + "A" * 64])
def test_a_malformed_entry_is_named_and_never_asked_for(hostile: Hostile, digest: str) -> None:
    good = "sha256:" + hashlib.sha256(b"one").hexdigest()
    hostile.serve(index_of([entry(good), entry(digest)]))
    result, _, _ = hostile.verify()
    assert result.returncode == 1, result.stderr
    assert f'entry 2 of the index is malformed: digest "{digest}" is not sha256 or sha512' in result.stderr
    asked = [seen.path for seen in hostile.proxy.log if "/manifests/sha" in seen.path or "/blobs/" in seen.path]
    assert asked == [], asked  # not even the well-formed entry: the index is judged first


@pytest.mark.engine
def test_an_index_of_ten_thousand_entries_is_refused_before_any_is_fetched(hostile: Hostile) -> None:
    entries = [entry("sha256:" + hashlib.sha256(str(i).encode()).hexdigest()) for i in range(10_000)]
    hostile.serve(index_of(entries))
    result, seconds, _ = hostile.verify()
    assert result.returncode == 1 and "the index lists 10000 entries; orch reads at most 1024" in result.stderr
    assert seconds < 20 and not [s for s in hostile.proxy.log if "/manifests/sha" in s.path]


@pytest.mark.engine
def test_the_first_missing_child_stops_the_reading(hostile: Hostile) -> None:
    entries = [entry("sha256:" + hashlib.sha256(str(i).encode()).hexdigest()) for i in range(300)]
    hostile.serve(index_of(entries))
    result, _, _ = hostile.verify()
    assert result.returncode == 1 and "does not exist in the registry" in result.stderr, result.stderr
    asked = [s for s in hostile.proxy.log if "/manifests/sha" in s.path]
    assert len(asked) <= 16, len(asked)  # the pool's first round, not all 300


@pytest.mark.engine
def test_an_endless_layer_stops_at_its_size_under_deep(hostile: Hostile) -> None:
    from .registry_api import raw_manifest

    index, _ = raw_manifest(hostile.proxy.upstream_port, "hostile/app", "1")
    amd64 = next(m for m in index["manifests"] if (m.get("platform") or {}).get("architecture") == "amd64")
    manifest, _ = raw_manifest(hostile.proxy.upstream_port, "hostile/app", amd64["digest"])
    hostile.proxy.clear()  # the layers only: configs are small reads, bounded as the first test shows
    for layer in manifest["layers"]:
        hostile.proxy.add(Rule("GET", f"/blobs/{layer['digest']}$", "endless", times=1000))
    ref = hostile.ref
    result, seconds, peak = hostile.verify("--deep", "--strict")
    assert result.returncode == 1, result.stdout + result.stderr
    binary = next(line for line in result.stdout.splitlines() if "binary" in line and "linux/amd64" in line)
    assert "FAIL" in binary and "cannot read the layers" in binary  # it is not gzip: stopped at once
    assert seconds < 60 and peak < 150 and ref


def test_a_blob_past_its_size_is_stopped_there() -> None:
    """An endless answer to a blob (of the right kind) is cut at the descriptor's size."""
    from orchestrator.registry.verified import Oversized, SizeBound

    class Endless:
        read_so_far = 0

        def read(self, size: int = -1) -> bytes:
            self.read_so_far += max(size, 0)
            return b"\x00" * size

        def close(self) -> None:
            pass

    endless = Endless()
    bounded = SizeBound(endless, 1000, "layer sha256:abc", "registry.example")  # type: ignore[arg-type]
    with pytest.raises(Oversized, match="sent more than the 1000 bytes its descriptor gives"):
        while bounded.read(300):
            pass
    assert endless.read_so_far <= 1200
