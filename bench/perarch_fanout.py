#!/usr/bin/env python3
"""Per-arch builds of 4 platforms on 2 nodes: in parallel against one after another.

Run by hand as root with the engine up (`make engine`); it starts a second
daemon as a build node (scripts/engine-node.sh) and stops it at the end:

    .venv/bin/python bench/perarch_fanout.py [--rounds 3] [--loops 150000]

Each platform's build runs a CPU-bound RUN step under QEMU (a shell loop),
without cache, so the builds themselves dominate. Both sides are the same
`orch build --strategy per-arch --no-cache` on the same two-node profile;
the serial side passes `--jobs 1`, the parallel side `--jobs 4` (every build
at once, two per node). Target: median ratio parallel / serial <= 0.6.

Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from common import ORCH, REPO, compile_bytecode, machine, timed

NODE = "orch-bench-node"
PLATFORMS = ["linux/arm64", "linux/arm/v7", "linux/ppc64le", "linux/s390x"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", type=int, default=150000, help="shell loop iterations per RUN step")
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--parallel-jobs", type=int, default=4)
    args = parser.parse_args()
    compile_bytecode()
    node_script = REPO / "scripts" / "engine-node.sh"
    subprocess.run(["bash", str(node_script), "start", NODE], check=True, stdout=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as work:
            ctx = Path(work)
            (ctx / "Dockerfile").write_text(
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
                f"RUN i=0; while [ $i -lt {args.loops} ]; do i=$((i+1)); done; echo $i > /loops\n"
            )
            profile = ctx / "farm.yaml"
            profile.write_text(
                f"platforms: [{', '.join(PLATFORMS)}]\n"
                "strategy: per-arch\n"
                "builder:\n  driver: docker\n  nodes:\n"
                f"    - {{name: main, endpoint: default, platforms: [{PLATFORMS[0]}, {PLATFORMS[2]}]}}\n"
                f"    - {{name: second, endpoint: {NODE}, platforms: [{PLATFORMS[1]}, {PLATFORMS[3]}]}}\n"
            )
            build = [*ORCH, "--quiet", "build", str(ctx), "--profile", str(profile), "--no-cache", "--push",
                     "--build-arg", f"BASE_IMAGE={args.registry}/orch/busybox:stable",
                     "-t", f"{args.registry}/bench/fanout:latest"]
            serial_times, parallel_times, ratios = [], [], []
            timed(build)  # pull the base on both nodes
            for _ in range(args.rounds):
                serial = timed([*build, "--jobs", "1"])
                parallel = timed([*build, "--jobs", str(args.parallel_jobs)])
                serial_times.append(serial)
                parallel_times.append(parallel)
                ratios.append(parallel / serial)
    finally:
        subprocess.run(["bash", str(node_script), "stop", NODE], stdout=subprocess.DEVNULL)

    def row(name: str, values: list[float], target: str = "", unit: str = " s") -> str:
        fmt = (lambda v: f"{v:.2f}{unit}") if unit else (lambda v: f"{v:.3f}")
        return (f"| {name} | {fmt(statistics.median(values))} | {fmt(min(values))} | {fmt(max(values))} "
                f"| {target} |")

    print(f"### Per-arch fan-out ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}\n")
    print(f"4 platforms ({', '.join(PLATFORMS)}), each a {args.loops}-iteration shell loop under QEMU, no cache; "
          f"2 nodes (the main daemon and a second one on the same machine, 2 platforms each); "
          f"{args.rounds} rounds.\n")
    print("| measure | median | min | max | target |")
    print("|---|---|---|---|---|")
    print(row("per-arch, one after another (`--jobs 1`)", serial_times))
    print(row(f"per-arch, in parallel (`--jobs {args.parallel_jobs}`)", parallel_times))
    print(row("ratio parallel / serial (per round)", ratios, "<= 0.6", unit=""))


if __name__ == "__main__":
    main()
