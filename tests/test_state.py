"""The state directory's records: written whole (a temporary file renamed over the record), each
temporary file this user's alone, named so that threads and processes never collide."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from orchestrator import state


def test_exclusive_files_are_new_private_and_distinct_across_threads(tmp_path: Path) -> None:
    made: list[str] = []

    def make() -> None:
        for _ in range(50):
            handle, path = state.exclusive_file(tmp_path, ".x.", ".tmp")
            os.close(handle)
            made.append(path)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 200 == len(list(tmp_path.iterdir()))
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in made)
    assert all(Path(p).name.startswith(".x.") and p.endswith(".tmp") for p in made)


def test_a_record_is_written_whole_and_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path))
    assert state.write_record("runs/a.json", {"b": 1})
    assert state.read_record("runs/a.json") == {"b": 1}
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["a.json"]
