#!/usr/bin/env python3
"""What following `orch advise` saves: a CPU-heavy RUN step whose output does not depend on the CPU,
in a stage that runs on the target platform, built for 4 platforms before and after the rewrite.

Run by hand on a machine with the engine up (`make engine`):

    .venv/bin/python bench/emulation_advice.py [--rounds 3] [--work 1500000]

Before: the step runs once per platform, three of them under QEMU. orch advise names it and
writes the rewrite (`--write`): the stage starts FROM --platform=$BUILDPLATFORM, so the step
runs once, natively, and every platform copies its output. Both builds use --no-cache and keep
the result in the local image store. Goal: after / before <= 0.2.
Prints a Markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from common import ORCH, compile_bytecode, machine, ratios, row, timed

BASE = "localhost:5000/orch/busybox:stable"
PLATFORMS = "linux/amd64,linux/arm64,linux/arm/v7,linux/ppc64le"


def dockerfile(work: int) -> str:
    return (f"FROM {BASE} AS data\n"
            f"RUN i=0; s=0; while [ $i -lt {work} ]; do i=$((i+1)); s=$(((s*31+i)%1000003)); done; "
            "mkdir -p /out; echo $s > /out/checksum\n"
            f"FROM {BASE}\nCOPY --from=data /out/checksum /checksum\n"
            'CMD ["cat", "/checksum"]\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=int, default=1500000, help="loop iterations of the heavy step")
    args = parser.parse_args()
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="orch-bench-advice-"))
    (work / "Dockerfile").write_text(dockerfile(args.work))

    def build(name: str) -> float:
        return timed([*ORCH, "build", ".", "-f", name, "--platform", PLATFORMS, "-t", f"orch-bench/advice:{name}",
                      "--no-cache"], cwd=work)

    build("Dockerfile")  # measured once, so orch advise ranks by real times
    advice = json.loads(subprocess.run([*ORCH, "advise", "--platform", PLATFORMS, "--write", "Dockerfile.advised",
                                        "--json"], capture_output=True, text=True, cwd=work, check=True).stdout)
    (step,) = advice["advice"]
    before, after = [], []
    for index in range(args.rounds):
        order = (("Dockerfile", before), ("Dockerfile.advised", after))
        for name, times in order if index % 2 == 0 else reversed(order):
            times.append(build(name))
    same = {subprocess.run(["docker", "run", "--rm", "--platform", p, f"orch-bench/advice:{name}"],
                           capture_output=True, text=True).stdout.strip()
            for name in ("Dockerfile", "Dockerfile.advised") for p in PLATFORMS.split(",")}

    print(f"### orch advise on an emulated heavy step ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}. {PLATFORMS} (three under QEMU), --no-cache, {args.rounds} alternating rounds, "
          f"loop {args.work}.\n")
    print(f"Advice: [{step['stage']}] {step['instruction'][:60]}... ({step['kind']}; measured "
          f"{step['measured_seconds']} s emulated, expected saving {step['expected_saving']} s):\n"
          f"{step['rewrite']}\n")
    print("| measure | median | min | max | goal |\n|---|---|---|---|---|")
    print(row("before (as written)", before))
    print(row("after (orch advise --write)", after))
    print(row("after / before", ratios(after, before), unit="", target="<= 0.2"))
    print(f"\nEvery image of both builds prints the same checksum: {'yes' if len(same) == 1 else f'no: {same}'}")


if __name__ == "__main__":
    main()
