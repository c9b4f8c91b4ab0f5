"""A state directory that cannot take a layout (publish.stage, publish.blobstore): the publish goes on
through the system's temporary directory without the blob store, said once; where that cannot take
it either, exit 3 names the directory and its free space, and no tag moves.

The full disks are real: small tmpfs mounts (root only; CI runs as root), filled by the export
itself or by writing until the kernel says ENOSPC. The error lines are buildx's own words, recorded
from runs of buildx 0.13.1 and 0.30.1 into a full stage directory.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.errors import EnvironmentMissing, ExitCode
from orchestrator.publish import blobstore, stage

from .conftest import REPO, Registry, copy_image
from .registry_api import digest_at

MB = 1_000_000
SEED = "localhost:5000/orch/busybox:stable"
LAYOUT = "/var/state/orch/stage/orch-stage-41-1700000000/all"

# What buildx printed when its export into LAYOUT failed (the digests shortened).
BUILDX_0_13 = [
    "#7 exporting manifest list sha256:d3f2042d done",
    f"#7 ERROR: failed to copy: failed to send write: write {LAYOUT}/ingest/0c6080b7/data: no space left on device: "
    "unknown",
    "ERROR: (*service).Write failed: rpc error: code = Canceled desc = context canceled",
    f"ERROR: failed to solve: failed to copy: failed to send write: write {LAYOUT}/ingest/0c6080b7/data: no space "
    "left on device: unknown",
]
BUILDX_0_30 = [
    f"ERROR: (*service).Write failed: rpc error: code = Unknown desc = write {LAYOUT}/ingest/f77d3e13/data: no "
    "space left on device",
    "ERROR: (*service).Write failed: rpc error: code = Canceled desc = context canceled",
    "ERROR: failed to build: failed to solve: failed to copy: failed to send write: rpc error: code = Unknown desc = "
    f"write {LAYOUT}/ingest/f77d3e13/data: no space left on device: unknown",
]


@pytest.mark.parametrize(("lines", "reason"), [
    (BUILDX_0_13, "no space left on device"),
    (BUILDX_0_30, "no space left on device"),
    ([f"ERROR: failed to solve: open {LAYOUT}/index.json: read-only file system"], "read-only file system"),
    ([f"ERROR: failed to solve: mkdir {LAYOUT}: permission denied"], "permission denied"),
    # Another directory whose name starts with the layout's, a step that failed, a line that is no error.
    ([f"ERROR: failed to solve: write {LAYOUT}2/ingest/0c6080b7/data: no space left on device"], None),
    (['#6 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2'], None),
    ([f"#7 exporting to client directory {LAYOUT}"], None),
])
def test_a_failed_write_is_read_from_buildx_errors_that_name_the_layout(lines: list[str], reason: str | None) -> None:
    assert stage.failed_write(LAYOUT, lines) == reason


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 bytes"), (1023, "1023 bytes"), (1024, "1.0 KiB"), (2 * 1024 * 1024 - 1, "2.0 MiB"),
    (1_900_000, "1.8 MiB"), (5 << 30, "5.0 GiB"), (3 << 40, "3072.0 GiB"),
])
def test_sizes_are_said_in_binary_units(size: int, text: str) -> None:
    assert stage.size_text(size) == text


def test_other_failures_and_other_directories_are_not_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "state"))
    ours = tmp_path / "state" / "stage" / "orch-stage-41-1700000000" / "all"
    ours.mkdir(parents=True)
    step_failed = ['#6 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2']
    assert stage.export_elsewhere(str(ours), step_failed) is False
    users = tmp_path / "my-layout"  # --oci-layout DIR: the user's own directory, full or not
    users.mkdir()
    full = [f"ERROR: failed to solve: write {users}/ingest/0c6080b7/data: no space left on device: unknown"]
    assert stage.export_elsewhere(str(users), full) is False
    assert ours.is_dir() and not ours.is_symlink() and users.is_dir()


def _store_with_one_blob(state: Path) -> Path:
    store = state / "blobs" / "sha256"
    store.mkdir(parents=True)
    (store / ("a" * 64)).write_bytes(b"kept from an earlier run")
    return store


@pytest.mark.parametrize("moved", [False, True], ids=["staged-in-tmp", "moved-to-tmp"])
def test_a_layout_outside_the_state_directory_bypasses_the_blob_store(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      moved: bool) -> None:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "state"))
    store = _store_with_one_blob(tmp_path / "state")
    outside = tmp_path / "tmp" / "orch-stage-41-1700000000-all"
    outside.mkdir(parents=True)
    layout = outside
    if moved:  # a layout in the state directory that became a link to the temporary directory
        layout = tmp_path / "state" / "stage" / "orch-stage-41-1700000000" / "all"
        layout.parent.mkdir(parents=True)
        layout.symlink_to(outside, target_is_directory=True)
    assert blobstore.seed(str(layout)) == 0
    assert not (outside / "blobs").exists()
    written = outside / "blobs" / "sha256" / ("b" * 64)
    written.parent.mkdir(parents=True)
    written.write_bytes(b"written by this export")
    exported = blobstore.keep(str(layout))
    assert (exported.written, exported.bypassed) == (1, True)
    assert "bypassed" in str(exported)
    assert sorted(p.name for p in store.iterdir()) == ["a" * 64]  # nothing kept from it


def test_removing_the_stage_removes_the_layouts_moved_out_of_it(tmp_path: Path) -> None:
    stage_dir = tmp_path / "state" / "stage" / "orch-stage-41-1700000000"
    stage_dir.mkdir(parents=True)
    moved = tmp_path / "tmp" / "orch-stage-41-1700000000-all"
    (moved / "blobs").mkdir(parents=True)
    (stage_dir / "all").symlink_to(moved, target_is_directory=True)
    stage.remove_directory(str(stage_dir))
    assert not stage_dir.exists() and not moved.exists()


# -- real full disks (root) --------------------------------------------------


def _mount_problem() -> str | None:
    if os.geteuid() != 0:
        return "a real full disk is a small tmpfs, and mounting one needs root (CI runs as root)"
    return None


needs_root = pytest.mark.skipif(_mount_problem() is not None, reason=str(_mount_problem()))


@contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of `size` at `path`, unmounted when done."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed (root without CAP_SYS_ADMIN?): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True, capture_output=True)


def fill(directory: Path) -> OSError:
    """Write into `directory` until the file system refuses: the refusal."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with (directory / "filler").open("wb") as file:
            while True:
                file.write(b"\0" * 65536)
                file.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC, exc
        return exc
    raise AssertionError("unreachable")


def _buildx_line(path: Path, refused: OSError) -> list[str]:
    """buildx's words for a refused write (Go says the errno text in lower case)."""
    return [f"ERROR: failed to solve: failed to send write: write {path}/ingest/0c/data: "
            f"{str(refused.strerror).lower()}: unknown"]


@needs_root
def test_a_full_state_directory_is_left_for_the_temporary_directory_before_the_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with small_disk(tmp_path / "state") as state:
        monkeypatch.setenv("ORCH_STATE_HOME", str(state))
        (state / "stage").mkdir()
        fill(state / "stage")  # an empty file would still fit: the probe writes a page
        where = Path(stage.stage_directory(1700000001))
        again = Path(stage.stage_directory(1700000001))
    assert where == again and where.parent == Path(tempfile.gettempdir()), where
    said = [line for line in capsys.readouterr().err.splitlines() if "stage.cache_bypassed" in line]
    assert len(said) == 1 and str(state) in said[0] and "No space left on device" in said[0], said


@needs_root
def test_a_refused_export_moves_to_the_temporary_directory_and_then_exits_3(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with small_disk(tmp_path / "state") as state, small_disk(tmp_path / "tmp") as tmp:
        monkeypatch.setenv("ORCH_STATE_HOME", str(state))
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        layout = state / "stage" / "orch-stage-42-1700000002" / "all"
        refused = fill(layout)
        assert stage.export_elsewhere(str(layout), _buildx_line(layout, refused)) is True
        assert layout.is_symlink() and Path(os.path.realpath(layout)).parent == tmp
        assert not list((state / "stage").rglob("filler"))  # the part written is gone: the state has room again
        said = [line for line in capsys.readouterr().err.splitlines() if "stage.cache_bypassed" in line]
        assert len(said) == 1 and str(tmp) in said[0], said

        refused = fill(layout)  # the temporary directory is full too
        with pytest.raises(EnvironmentMissing) as raised:
            stage.export_elsewhere(str(layout), _buildx_line(layout, refused))
        assert raised.value.exit_code == ExitCode.ENVIRONMENT
        message = str(raised.value)
        assert f"temporary directory {tmp} (no space left on device; 2.0 MiB free there" in message, message
        assert f"the state directory {state} could not take it either" in message, message
        assert not list(tmp.iterdir())  # nothing left behind


# -- the engine ---------------------------------------------------------------


@pytest.fixture
def bigger_than_the_disk(tmp_path: Path) -> Path:
    """A layer of 4 MB of random bytes (it does not compress) over the seed image: no 2 MB disk takes it."""
    ctx = tmp_path / "big"
    ctx.mkdir()
    (ctx / "payload.bin").write_bytes(os.urandom(4 * MB))
    (ctx / "Dockerfile").write_text(f"FROM {SEED}\nCOPY payload.bin /payload.bin\n")
    return ctx


def _publish(ctx: Path, tag: str, state: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "build", str(ctx), "--platform", "linux/amd64",
                           "-t", tag, "--push", "--json", *extra], capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "ORCH_STATE_HOME": str(state), "TMPDIR": str(tmp)})


@needs_root
@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # the docker driver: orch has buildx export a layout
def test_a_full_state_directory_publishes_through_the_temporary_directory(registry: Registry, tmp_path: Path,
                                                                          bigger_than_the_disk: Path) -> None:
    tag = registry.ref("full/app", "1")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with small_disk(tmp_path / "state") as state:
        result = _publish(bigger_than_the_disk, tag, state, tmp)
        assert result.returncode == 0, result.stderr[-3000:]
        assert not list((state / "stage").iterdir())
        assert not list((state / "blobs" / "sha256").glob("*")) if (state / "blobs").exists() else True
    assert "stage.cache_bypassed" in result.stderr and "bypasses the blob store" in result.stderr, result.stderr[-3000:]
    digest = json.loads(result.stdout)["digest"]
    assert digest_at(registry.port, "full/app", "1") == digest
    verified = subprocess.run([sys.executable, "-m", "orchestrator", "verify", tag, "--platform", "linux/amd64"],
                              capture_output=True, text=True, cwd=REPO, timeout=300)
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert not list(tmp.glob("orch-stage-*"))  # the layout moved there was removed


@needs_root
@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")
@pytest.mark.parametrize("strategy", ["single", "per-arch"])
def test_with_the_temporary_directory_full_too_it_exits_3_and_no_tag_moves(registry: Registry, tmp_path: Path,
                                                                           bigger_than_the_disk: Path,
                                                                           strategy: str) -> None:
    tag = registry.ref("full/app", "stable")
    copy_image(SEED, tag)
    before = digest_at(registry.port, "full/app", "stable")
    with small_disk(tmp_path / "state") as state, small_disk(tmp_path / "tmp") as tmp:
        result = _publish(bigger_than_the_disk, tag, state, tmp, "--strategy", strategy)
        assert not list((state / "stage").iterdir()) and not list(tmp.glob("orch-stage-*"))
    assert result.returncode == 3, result.stderr[-3000:]
    assert f"its layout could not be written in the temporary directory {tmp} (no space left on device; " \
           in result.stderr, result.stderr[-3000:]
    assert "free there" in result.stderr and "Traceback" not in result.stderr
    assert digest_at(registry.port, "full/app", "stable") == before
