#!/usr/bin/env python3
"""A release of three images: `orch build --bake FILE release --push` against three `orch build --push`
runs one after another.

Run by hand on a machine with the engine up (`make engine`):

    .venv/bin/python bench/bake_group.py [--rounds 3]

Three small images (different Dockerfiles sharing the seeded busybox base, each with a short
CPU-bound RUN step), three platforms each (linux/amd64, linux/arm64, linux/arm/v7: two under
QEMU here), to the local registry. In alternating rounds:

* cold: `--no-cache` on both sides (every step runs);
* warm: nothing changed since the last run (cache hits, nothing new to upload).

Both sides verify every image before moving tags; the group also moves all tags together.
Goal: group / sequential <= 0.8 cold. Prints a Markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date
from pathlib import Path

from common import ORCH, RETRIES, compile_bytecode, machine, ratios, row, timed

BASE = "localhost:5000/orch/busybox:stable"
PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
IMAGES = ("api", "worker", "cron")


def dockerfile(name: str, rounds: int) -> str:
    return (f"FROM {BASE}\n"
            f"RUN i=0; while [ $i -lt {rounds} ]; do i=$((i+1)); done; echo {name} $(uname -m) > /etc/{name}\n"
            f'CMD ["cat", "/etc/{name}"]\n')


def bake_file(registry: str) -> str:
    targets = "".join(
        f'target "{name}" {{\n  context = "{name}"\n  platforms = {PLATFORMS!r}\n'
        f'  tags = ["{registry}/bench-bake/{name}:1"]\n}}\n'.replace("'", '"') for name in IMAGES)
    return targets + f'group "release" {{ targets = {list(IMAGES)!r} }}\n'.replace("'", '"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--work", type=int, default=20000, help="loop iterations of each RUN step")
    args = parser.parse_args()
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="orch-bench-bake-"))
    for name in IMAGES:
        (work / name).mkdir()
        (work / name / "Dockerfile").write_text(dockerfile(name, args.work))
    (work / "docker-bake.hcl").write_text(bake_file(args.registry))

    def group(*extra: str) -> float:
        return timed([*ORCH, "build", "--bake", "docker-bake.hcl", "release", "--push", *extra], cwd=work)

    def sequential(*extra: str) -> float:
        return sum(timed([*ORCH, "build", name, "--platform", ",".join(PLATFORMS), "-t",
                          f"{args.registry}/bench-seq/{name}:1", "--push", *extra], cwd=work) for name in IMAGES)

    group(), sequential()  # base image pulled, cache warm for the warm rounds
    results: dict[str, tuple[list[float], list[float]]] = {"cold": ([], []), "warm": ([], [])}
    for index in range(args.rounds):
        for kind, extra in (("cold", ("--no-cache",)), ("warm", ())):
            # Alternate which side runs first, so neither always meets the other's leftovers.
            if index % 2:
                results[kind][1].append(sequential(*extra))
                results[kind][0].append(group(*extra))
            else:
                results[kind][0].append(group(*extra))
                results[kind][1].append(sequential(*extra))

    print(f"### Bake group release ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}. Three images x {len(PLATFORMS)} platforms ({', '.join(PLATFORMS)}), "
          f"{args.rounds} rounds, RUN loop {args.work}.\n")
    print("| measure | median | min | max | goal |\n|---|---|---|---|---|")
    for kind in ("cold", "warm"):
        grouped, one_by_one = results[kind]
        print(row(f"{kind}: `orch build --bake ... release --push`", grouped))
        print(row(f"{kind}: three `orch build --push`", one_by_one))
        print(row(f"{kind}: group / sequential", ratios(grouped, one_by_one), unit="",
                  target="<= 0.8" if kind == "cold" else ""))
    if RETRIES:
        print(f"\nRegistry 500s retried: {RETRIES}")


if __name__ == "__main__":
    main()
