#!/usr/bin/env python3
"""How fast is `orch verify`, and how much memory does `--deep` take?

Run by hand with the engine up (`make engine`):

    .venv/bin/python bench/verify_speed.py [--rounds 10] [--skip-memory] [--buildx system|0.30.1]

1. A 7-platform index with attestations (Dockerfile.example, pushed once with
   raw buildx): `orch verify REF --platform <7>` (the console script, as users
   run it) against the raw `docker buildx imagetools inspect REF --format
   '{{json .}}'`, in alternating pairs. Goal: median of per-pair ratios <= 0.95 (issue 35),
   with buildx 0.13.1 and 0.30.1 (--buildx: the imagetools side's buildx).
2. `orch verify --deep` on the same index (every layer read is hashed).
3. Peak memory (max RSS) of `orch verify --deep` on an image whose top layer
   is 1 GiB of random data: the layer is streamed, so memory stays flat.
   Target: < 150 MB.

Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import ORCH, REPO, compile_bytecode, load, machine, ratios, row, use_buildx

PLATFORMS = "linux/amd64,linux/arm64,linux/arm/v6,linux/arm/v7,linux/386,linux/ppc64le,linux/s390x"


def run(args: list[str], attempts: int = 1) -> float:
    for _ in range(attempts):
        start = time.perf_counter()
        result = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
        if result.returncode == 0:
            return time.perf_counter() - start
    sys.exit(f"failed: {' '.join(args)}\n{result.stdout[-1500:]}{result.stderr[-1500:]}")


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one process, as the kernel counted it (wait4)."""
    start = time.perf_counter()
    process = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(args)}\n{process.stderr.read().decode()[-1500:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--buildx", default="system", help="system or 0.30.1")
    args = parser.parse_args()
    compile_bytecode()
    version = use_buildx(args.buildx)
    loads = [load()]

    memory = None
    if not args.skip_memory:
        big = f"{args.registry}/bench/big-layer:1"
        with tempfile.TemporaryDirectory() as ctx:
            busybox = Path(os.environ.get("ORCH_STATE_DIR", "/var/lib/orch-engine")) / "busybox" / "amd64"
            (Path(ctx) / "busybox").write_bytes(busybox.read_bytes())
            subprocess.run(["dd", "if=/dev/urandom", f"of={ctx}/big", "bs=1M", "count=1024", "status=none"],
                           check=True)
            (Path(ctx) / "Dockerfile").write_text("FROM scratch\nCOPY busybox /bin/busybox\nCOPY big /data/big\n"
                                                  'ENTRYPOINT ["/bin/busybox"]\n')
            run(["docker", "buildx", "build", "--platform", "linux/amd64", "--provenance=false",
                 "--output", f"type=registry,name={big}", ctx], attempts=3)
        seconds, rss = peak_rss_mb([*ORCH, "verify", big, "--platform", "linux/amd64", "--deep"])
        memory = (seconds, rss)

    index = f"{args.registry}/bench/verify7:1"
    run(["docker", "buildx", "build", "--platform", PLATFORMS, "-f", "Dockerfile.example",
         "--build-arg", f"BASE_IMAGE={args.registry}/orch/busybox:stable", "--provenance=mode=min",
         "--output", f"type=registry,name={index}", "."], attempts=3)
    raw = ["docker", "buildx", "imagetools", "inspect", index, "--format", "{{json .}}"]
    script = Path(sys.executable).parent / "orch"
    verify = [*([str(script)] if script.exists() else ORCH), "verify", index, "--platform", PLATFORMS]
    deep = [*verify, "--deep"]
    run(raw)
    run(verify)
    raw_times, verify_times, deep_times = [], [], []
    for _ in range(args.rounds):
        raw_times.append(run(raw))
        verify_times.append(run(verify))
        deep_times.append(run(deep))
    loads.append(load())
    print(f"### Verify ({date.today().isoformat()}), imagetools of buildx {version}\n")
    print(f"Machine: {machine()}; load averages (1, 5, 15 min) before and after: {' | '.join(loads)}\n")
    print("| measure | median | min | max | target |")
    print("|---|---|---|---|---|")
    print(row("raw `imagetools inspect --format '{{json .}}'`, 7 platforms", raw_times, digits=3))
    print(row("`orch verify REF --platform <7>`", verify_times, digits=3))
    print(row("ratio verify / raw (per pair)", ratios(verify_times, raw_times), unit="", digits=3, target="<= 0.95"))
    print(row("`orch verify --deep` (7 binaries, every layer read hashed)", deep_times, digits=3))
    if memory:
        print(f"| `orch verify --deep`, image with a 1 GiB top layer: time | {memory[0]:.1f} s | | | |")
        print(f"| same: peak RSS | {memory[1]:.0f} MB | | | < 150 MB |")


if __name__ == "__main__":
    main()
