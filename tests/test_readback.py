"""When the early read-back starts (builds.readback): the configs once buildx says its layers are
pushed, the rest at the end of the exporter's step, as buildx 0.30.1 and 0.13.1 print them, for
the digest of the list it names last; and what a publish takes of it.
The registry side is stood in for here; tests/test_buildkit_builders.py runs it against a real one."""

from __future__ import annotations

import threading

import pytest

from orchestrator.builds import readback
from orchestrator.errors import JobFailed
from orchestrator.model.references import parse_reference

LIST = "sha256:" + "a" * 64
IMAGE = "sha256:" + "b" * 64
# The exporter's step of a push by digest of two platforms, as each buildx prints it (digests shortened
# to two kinds: an image manifest and the list).
EXPORTER = {
    "0.30.1": ["#10 exporting to image", "#10 exporting layers 0.0s done", f"#10 exporting manifest {IMAGE}",
               f"#10 exporting manifest {IMAGE} done", f"#10 exporting config sha256:{'c' * 64} done",
               f"#10 exporting attestation manifest sha256:{'d' * 64} done",
               f"#10 exporting manifest list {LIST} done", "#10 pushing layers 0.1s done",
               "#10 pushing manifest for localhost:5000/bench/cap",
               "#10 pushing manifest for localhost:5000/bench/cap 0.0s done"],
    "0.13.1": ["#10 exporting to image", "#10 exporting layers done", f"#10 exporting manifest {IMAGE} done",
               f"#10 exporting config sha256:{'c' * 64} done",
               f"#10 exporting attestation manifest sha256:{'d' * 64} done",
               f"#10 exporting manifest list {LIST} done", "#10 pushing layers 0.0s done",
               "#10 pushing manifest for localhost:5000/bench/cap 0.0s done"],
}
REPOSITORY = parse_reference("localhost:5000/bench/cap:1")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    asked: list[tuple[str, ...]] = []
    lock = threading.Lock()

    def configs(repository, digests):
        with lock:
            asked.append(("configs", *digests))
        return {digest: b"{}" for digest in digests}

    def read(repository, digest, tags, configs=None):
        with lock:
            asked.append((repository.name, digest, *sorted(configs.result() if configs else ())))
        if digest != LIST:
            raise JobFailed("not the list")
        return f"read of {digest}"

    monkeypatch.setattr(readback, "_configs", configs)
    monkeypatch.setattr(readback, "_read_back", read)
    return asked


@pytest.mark.parametrize("buildx", sorted(EXPORTER))
def test_the_read_starts_when_the_exporters_step_is_done_and_is_taken_for_its_digest(reads, buildx: str) -> None:
    """The configs are read once buildx says the layers are pushed; the rest (the index, its
    manifests) once the exporter's step is done, with those configs."""
    config = f"sha256:{'c' * 64}"
    with readback.EarlyReadBack(REPOSITORY, (REPOSITORY,)) as early:
        for line in ["#9 [linux/arm64 2/2] COPY note.txt /note.txt", "#9 DONE 0.0s", *EXPORTER[buildx]]:
            early.feed(line)
            if "pushing layers" not in line and not reads:
                assert early.taken(LIST) is None  # nothing read before the layers are pushed
        assert reads == [("configs", config)]  # the step is not done: the index is not read yet
        early.feed("#10 DONE 0.2s")
        early.feed("#11 resolving provenance for metadata file")
        early.feed("#11 DONE 0.0s")
        assert early.taken(LIST) == f"read of {LIST}"
        assert early.taken("sha256:" + "e" * 64) is None  # the metadata file names another index
    assert reads == [("configs", config), (REPOSITORY.name, LIST, config)]  # each once


def test_nothing_is_read_when_the_exporter_fails(reads) -> None:
    with readback.EarlyReadBack(REPOSITORY, (REPOSITORY,)) as early:
        for line in [*EXPORTER["0.30.1"][:7], "#10 ERROR: failed to push localhost:5000/bench/cap: 500"]:
            early.feed(line)
        assert early.taken(LIST) is None
    assert reads == []


def test_a_read_that_failed_is_left_for_the_publish_to_do_again(reads) -> None:
    """A single-platform image with no attestation: the step's last export is the image itself."""
    with readback.EarlyReadBack(REPOSITORY, (REPOSITORY,)) as early:
        for line in [f"#7 exporting manifest {IMAGE} done", "#7 pushing layers done", "#7 DONE 0.1s"]:
            early.feed(line)
        assert early.taken(IMAGE) is None  # its read failed (JobFailed): the publish reads again and says why
    assert reads == [(REPOSITORY.name, IMAGE)]  # no "pushing layers" line here: no configs read ahead
