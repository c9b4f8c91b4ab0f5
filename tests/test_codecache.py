"""The dataclass methods orch keeps compiled between runs (orchestrator.codecache): a second run
compiles none of them, the classes behave as dataclasses do, and a file that is not this user's
own, or not a cache at all, is never used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Imports orch's build path in a fresh interpreter, as the console script does, and says how many
# method texts dataclasses had to compile.
PROBE = """
import builtins, sys
from orchestrator import codecache
codecache.install()
compiled = []
real = builtins.compile
def counting(source, *args, **kwargs):
    if isinstance(source, str) and source.startswith("def __create_fn__("):
        compiled.append(source)
    return real(source, *args, **kwargs)
builtins.compile = counting
import orchestrator.builds.executor, orchestrator.publish.pipeline, orchestrator.image.verify
from orchestrator.model.references import parse_reference
ref = parse_reference("localhost:5000/a/b:1")
assert ref == parse_reference("localhost:5000/a/b:1") and hash(ref) == hash(parse_reference("localhost:5000/a/b:1"))
assert "Reference(" in repr(ref)
try:
    ref.tag = "2"
except Exception as exc:
    assert type(exc).__name__ == "FrozenInstanceError"
else:
    raise SystemExit("a frozen dataclass took an assignment")
# Every dataclass has a docstring, so dataclasses never asked inspect for a signature: it is
# still the stand-in (codecache), and ast, dis and tokenize were never imported.
assert "signature" not in vars(sys.modules["inspect"]) and "dis" not in sys.modules, "inspect was loaded"
import typing
from orchestrator.builds.plan import PlatformJob
hints = typing.get_type_hints(PlatformJob.__init__)  # the methods' annotations are the objects, as exec makes them
assert hints["return"] is type(None), hints
codecache.save()
print(len(compiled))
"""


def run_probe(state: Path) -> int:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                            env={**os.environ, "ORCH_STATE_HOME": str(state)})
    return int(result.stdout.strip())


def cache_file(state: Path) -> Path:
    (found,) = (state / "code").iterdir()
    return found


def test_a_second_run_compiles_no_dataclass_method_and_the_classes_behave_the_same(tmp_path: Path) -> None:
    first = run_probe(tmp_path)
    assert first > 100  # every frozen class has six methods
    assert cache_file(tmp_path).stat().st_mode & 0o077 == 0
    assert run_probe(tmp_path) == 0


@pytest.mark.parametrize("spoil", ["garbage", "writable by others"])
def test_a_cache_that_is_not_trusted_or_not_a_cache_is_compiled_again_and_replaced(tmp_path: Path,
                                                                                  spoil: str) -> None:
    first = run_probe(tmp_path)
    kept = cache_file(tmp_path)
    if spoil == "garbage":
        kept.write_bytes(b"\x00not marshal data")
    else:
        kept.chmod(0o666)
    assert run_probe(tmp_path) == first
    assert run_probe(tmp_path) == 0  # the next save replaced it with a good one


# A command's start makes tens of thousands of objects that all live to its end (modules, classes,
# functions): the young-object threshold orch sets lets a publish's start and plan run no collection.
GC_PROBE = """
import atexit, gc, sys
from orchestrator.cli.entry import main
made = []
gc.callbacks.append(lambda phase, info: phase == "stop" and made.append(info["generation"]))
atexit.register(lambda: sys.stderr.write(f"collections: {len(made)}\\n"))  # main() ends the process
sys.argv = ["orch", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("command", [
    ("build", "--dry-run", "--platform", "linux/amd64,linux/arm64", "-t", "localhost:5000/gc/app:1", "--push", "."),
    ("build", "--help"),
])
def test_a_command_runs_no_garbage_collection_while_it_starts(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = subprocess.run([sys.executable, "-c", GC_PROBE, *command], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "ORCH_STATE_HOME": str(tmp_path / "state")}, timeout=120)
    assert "collections: 0" in result.stderr, result.stderr[-2000:]
