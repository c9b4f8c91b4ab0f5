"""What a publish costs when little or nothing changed: the export writes only what changed
(publish.blobstore), and blobs an earlier publish left in another repository of the registry are
mounted, not sent again (publish.blob_sources). The store's own rules without the engine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from orchestrator.publish import blob_sources, blobstore

from .conftest import REPO, Registry
from .faultproxy import FaultProxy
from .test_build import BASE_ARG

MB = 1_000_000


def _export_line(stderr: str) -> tuple[int, int]:
    """(blobs, bytes) from `the export wrote N blobs (B bytes)`."""
    found = re.search(r"the export wrote (\d+) blobs? \((\d+) bytes\)", stderr)
    assert found, stderr[-3000:]
    return int(found.group(1)), int(found.group(2))


@pytest.fixture
def heavy(tmp_path: Path) -> Path:
    """Four MB of random bytes per platform (a layer of its own each), and a small file on top."""
    ctx = tmp_path / "heavy"
    ctx.mkdir()
    (ctx / "note.txt").write_text("one\n")
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
                                    f"RUN head -c {4 * MB} /dev/urandom > /payload\nCOPY note.txt /note.txt\n")
    return ctx


def _publish(ctx: Path, ref: str, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "orchestrator", "build", str(ctx), "--platform",
                             "linux/amd64,linux/arm64", "--build-arg", BASE_ARG, "-t", ref, "--push", *extra],
                            capture_output=True, text=True, cwd=REPO, timeout=600,
                            env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # the docker driver exports a layout; BuildKit's builders push
def test_an_unchanged_layer_is_not_exported_again_and_a_changed_top_layer_costs_that_layer(registry: Registry,
                                                                                             heavy: Path) -> None:
    first = _publish(heavy, registry.ref("cost/app", "1"))
    _, first_bytes = _export_line(first.stderr)
    assert first_bytes > 8 * MB  # both platforms' payloads
    again = _publish(heavy, registry.ref("cost/app", "1"))
    _, again_bytes = _export_line(again.stderr)
    assert again_bytes < MB, again.stderr[-2000:]  # no payload written again: only small metadata, if any
    (heavy / "note.txt").write_text("two\n")
    changed = _publish(heavy, registry.ref("cost/app", "2"))
    _, changed_bytes = _export_line(changed.stderr)
    assert changed_bytes < MB, changed.stderr[-2000:]  # the new top layers, not the payloads under them
    assert not list((Path(os.environ["ORCH_STATE_HOME"]) / "stage").glob("*"))  # the run's layouts are gone


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # orch uploads on the docker driver; BuildKit pushes for itself
def test_a_publish_to_a_new_repository_mounts_the_blobs_an_earlier_one_left(registry: Registry, heavy: Path) -> None:
    proxy = FaultProxy(registry.port).start()
    try:
        _publish(heavy, f"localhost:{proxy.port}/cost/first:1")
        proxy.log.clear()
        _publish(heavy, f"localhost:{proxy.port}/cost/second:1")
        to_second = [seen for seen in proxy.log if seen.path.startswith("/v2/cost/second/blobs/")]
        mounted = [seen for seen in to_second if seen.method == "POST" and "mount=" in seen.path]
        assert len(mounted) >= 4 and all("from=cost%2Ffirst" in seen.path for seen in mounted), to_second
        # What was sent is only what the first repository does not hold: each run's new provenance.
        sent = [urllib.parse.unquote(seen.path.split("digest=")[1]) for seen in to_second if seen.method == "PUT"]
        assert not [digest for digest in sent if _has_blob(registry, "cost/first", digest)], sent
    finally:
        proxy.stop()


def _has_blob(registry: Registry, repository: str, digest: str) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{registry.port}/v2/{repository}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        assert exc.code == 404, exc
        return False


def test_the_store_keeps_what_an_export_wrote_and_seeds_the_next_layout(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "state"))
    first = tmp_path / "state" / "stage" / "one"
    (first / "blobs" / "sha256").mkdir(parents=True)
    blob = first / "blobs" / "sha256" / ("a" * 64)
    blob.write_bytes(b"x" * 100)
    assert blobstore.keep(str(first)) == blobstore.Exported(written=1, written_bytes=100, reused=0)
    second = tmp_path / "state" / "stage" / "two"
    assert blobstore.seed(str(second)) == 1
    seeded = second / "blobs" / "sha256" / ("a" * 64)
    assert seeded.stat().st_ino == blob.stat().st_ino  # a link, not a copy
    assert blobstore.keep(str(second)) == blobstore.Exported(written=0, written_bytes=0, reused=1)


def test_the_store_is_pruned_by_age_then_least_recently_used_to_its_limit(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path))
    monkeypatch.setenv("ORCH_BLOB_STORE_MAX", "250")
    store = blobstore.store_dir()
    store.mkdir(parents=True)
    now = time.time()
    for name, age_days in (("old", 30), ("b", 3), ("c", 2), ("d", 1)):
        path = store / (name * 64)[:64]
        path.write_bytes(b"x" * 100)
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    assert blobstore.prune(now) == 200  # "old" by age, then "b", the least recently used, to fit 250 bytes
    assert sorted(p.name[0] for p in store.iterdir()) == ["c", "d"]
    monkeypatch.setenv("ORCH_BLOB_STORE_MAX", "0")  # keeps nothing: the store is off
    assert blobstore.seed(str(tmp_path / "layout")) == 0


def test_blob_sources_remember_the_newest_repository_per_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(blob_sources, "MAX_ENTRIES", 2)
    blob_sources.remember("r.test", "team/a", ["sha256:f"])
    blob_sources.remember("r.test", "team/b", ["sha256:0"])
    blob_sources.remember("r.test", "team/c", ["sha256:5"])
    # The oldest dropped, whatever the digests' alphabetical order.
    assert blob_sources.known("r.test") == {"sha256:0": "team/b", "sha256:5": "team/c"}
    blob_sources.remember("r.test", "team/d", ["sha256:0"])  # moved: the newest now
    assert list(blob_sources.known("r.test").items()) == [("sha256:5", "team/c"), ("sha256:0", "team/d")]
    assert blob_sources.known("other.test") == {}


def test_a_kept_blob_counts_as_used_only_when_the_image_uses_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeding links every kept blob into the layout; only those the exported image references are
    marked used (what pruning goes by), so a blob no image needs any more ages out."""
    import hashlib
    import json

    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "state"))
    store = blobstore.store_dir()
    store.mkdir(parents=True)

    def put(directory: Path, body: bytes) -> str:
        name = hashlib.sha256(body).hexdigest()
        (directory / name).write_bytes(body)
        return name

    layer, stale = put(store, b"layer bytes"), put(store, b"nothing uses me")
    long_ago = time.time() - 10 * 86400
    for name in (layer, stale):
        os.utime(store / name, (long_ago, long_ago))
    layout = tmp_path / "state" / "stage" / "run" / "all"
    assert blobstore.seed(str(layout)) == 2
    blobs = layout / "blobs" / "sha256"
    config = put(blobs, b"{}")  # what this export wrote
    manifest = put(blobs, json.dumps({"config": {"digest": f"sha256:{config}"},
                                      "layers": [{"digest": f"sha256:{layer}"}]}).encode())
    (layout / "index.json").write_text(json.dumps({"manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest}"}]}))
    exported = blobstore.keep(str(layout))
    assert (exported.written, exported.reused) == (2, 1)  # the config and manifest; the layer was kept
    assert (store / layer).stat().st_mtime > long_ago + 86400  # used now
    assert (store / stale).stat().st_mtime == pytest.approx(long_ago)  # not used: ages on
    assert (store / manifest).is_file() and (store / config).is_file()  # kept for the next run
