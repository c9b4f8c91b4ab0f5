#!/usr/bin/env python3
"""What a publish costs on images of the size people ship, against the raw buildx push.

Run by hand on a machine with the engine up (`make engine`; for --builder orch-farm, as root):

    .venv/bin/python bench/large_image.py [--rounds 7] [--builder NAME]

Two images, each built once before timing (random bytes: nothing compresses or dedupes):
  - 150 MB of layers per platform, three platforms (linux/amd64, linux/arm64, linux/arm/v7);
  - 1 GB, one platform (linux/amd64).
In alternating pairs after a warm-up of each, with SOURCE_DATE_EPOCH fixed and a state directory
of the benchmark's own:
1. No-op publish of the 3 x 150 MB image to the same repository: `orch -q build --push` against
   `docker buildx build --output type=registry`. Goal: median ratio <= 1.3.
2. Publish to a new repository of the same registry each round (the blobs sit in the first one):
   orch against raw (which mounts them as well). Goal: <= 1.3.
3. No-op publish of the 1 GB image. Goal: orch within 1 s of raw.
Disk: the blob store's size after the runs, and the most the run's stage directory held beyond
links to the store (sampled every 20 ms during the no-op runs), against the first publish's.

Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

from build_overhead import ORCH_SCRIPT
from common import ORCH, RETRIES, alternate, compile_bytecode, machine, ratios, row, table_head, timed

THREE = "linux/amd64,linux/arm64,linux/arm/v7"


def unlinked_bytes(directory: Path) -> int:
    """Bytes of the files under `directory` that are their only link (not a blob of the store)."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.st_nlink == 1:
                total += stat.st_size
    return total


class PeakDisk:
    """Samples the stage directory while commands run: the most it held beyond the store's links."""

    def __init__(self, stage: Path) -> None:
        self.stage, self.peak, self._stop = stage, 0, threading.Event()

    def __enter__(self) -> PeakDisk:
        def sample() -> None:
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, unlinked_bytes(self.stage))
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def du(path: Path) -> int:
    return sum(os.lstat(os.path.join(r, f)).st_size for r, _d, fs in os.walk(path) for f in fs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--builder", default=None, help="a buildx builder (default: the current one)")
    parser.add_argument("--registry", default="localhost:5000")
    args = parser.parse_args()
    compile_bytecode()
    os.environ["SOURCE_DATE_EPOCH"] = str(int(time.time()))
    state = Path(tempfile.mkdtemp(prefix="orch-bench-state-"))
    os.environ["ORCH_STATE_HOME"] = str(state)
    orch = ORCH_SCRIPT if Path(ORCH_SCRIPT[0]).exists() else ORCH
    builder = ["--builder", args.builder] if args.builder else []
    run = uuid.uuid4().hex[:8]
    reg = args.registry

    with tempfile.TemporaryDirectory() as work:
        contexts = {}
        for name, size in (("three", 150_000_000), ("one", 1_000_000_000)):
            ctx = Path(work) / name
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(f"FROM {reg}/orch/busybox:stable\n"
                                            f"RUN head -c {size} /dev/urandom > /payload\n")
            contexts[name] = ctx

        def orch_build(ctx: str, platforms: str, ref: str) -> list[str]:
            return [*orch, "-q", "build", *builder, "--platform", platforms, str(contexts[ctx]), "-t", ref, "--push"]

        def raw_build(ctx: str, platforms: str, ref: str) -> list[str]:
            return ["docker", "buildx", "build", *builder, "--progress", "quiet", "--provenance=mode=min",
                    "--platform", platforms, "--output", f"type=registry,name={ref}", str(contexts[ctx])]

        first = time.perf_counter()
        with PeakDisk(state / "stage") as cold:
            timed(orch_build("three", THREE, f"{reg}/bench/large-{run}:1"), attempts=8)
        cold_seconds = time.perf_counter() - first
        with PeakDisk(state / "stage") as warm:
            noop_orch, noop_raw = alternate(orch_build("three", THREE, f"{reg}/bench/large-{run}:1"),
                                            raw_build("three", THREE, f"{reg}/bench/large-raw-{run}:1"), args.rounds)
        counter = iter(range(10_000))
        new_orch, new_raw = [], []
        for _ in range(args.rounds):
            n = next(counter)
            new_orch.append(timed(orch_build("three", THREE, f"{reg}/bench/large-{run}-new{n}:1"), attempts=8))
            new_raw.append(timed(raw_build("three", THREE, f"{reg}/bench/large-raw-{run}-new{n}:1"), attempts=8))
        big_orch, big_raw = alternate(orch_build("one", "linux/amd64", f"{reg}/bench/gigabyte-{run}:1"),
                                      raw_build("one", "linux/amd64", f"{reg}/bench/gigabyte-raw-{run}:1"),
                                      args.rounds)

    where = args.builder or "the daemon's own builder (docker driver, containerd image store)"
    print(f"### Large images ({date.today().isoformat()}), on {where}\n")
    print(f"Machine: {machine()}\n")
    print(f"Random bytes (nothing compresses or dedupes), SOURCE_DATE_EPOCH fixed, {args.rounds} alternating pairs "
          "after a warm-up of each; the benchmark's own state directory.\n")
    table_head()
    print(row("3 x 150 MB no-op: `orch -q build --push`", noop_orch))
    print(row("3 x 150 MB no-op: raw `docker buildx build --output type=registry`", noop_raw))
    print(row("3 x 150 MB no-op: ratio orch / raw (per pair)", ratios(noop_orch, noop_raw), unit="", digits=3,
              target="<= 1.3"))
    print(row("3 x 150 MB to a new repository: orch", new_orch))
    print(row("3 x 150 MB to a new repository: raw", new_raw))
    print(row("3 x 150 MB to a new repository: ratio orch / raw (per pair)", ratios(new_orch, new_raw), unit="",
              digits=3, target="<= 1.3"))
    print(row("1 GB no-op: orch", big_orch))
    print(row("1 GB no-op: raw", big_raw))
    print(row("1 GB no-op: orch - raw (per pair)", [a - b for a, b in zip(big_orch, big_raw, strict=True)],
              target="<= 1 s"))
    print(f"\nFirst publish of the 3 x 150 MB image (cold store): {cold_seconds:.1f} s, its stage directory held at "
          f"most {cold.peak / 1e6:.0f} MB of its own. The no-op publishes: at most {warm.peak / 1e6:.1f} MB "
          f"beyond links to the store. The store after all runs: {du(state / 'blobs') / 1e6:.0f} MB "
          f"(limit ORCH_BLOB_STORE_MAX, 10 GiB by default). Median of the no-op pairs' ratios as a check: "
          f"{statistics.median(ratios(noop_orch, noop_raw)):.3f}.")
    print(f"\nRegistry 500s retried, by command (distribution 2.8's tag-link race): {RETRIES or 'none'}")


if __name__ == "__main__":
    main()
