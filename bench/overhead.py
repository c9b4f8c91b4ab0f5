#!/usr/bin/env python3
"""orch against the raw buildx push on one builder and one buildx, on a small image and big ones.

Run by hand, as root, with the engine and the farm up (`make engine`):

    .venv/bin/python bench/overhead.py --builder orch-container --buildx 0.30.1 [--rounds 7]
        [--images small,three,gigabyte] [--platforms linux/amd64,linux/arm64,linux/arm/v7]

--builder is a buildx builder, or `docker` for the daemon's own (docker driver); --buildx is
`system` (the machine's own) or 0.30.1 (given to orch and to the raw commands alike through a
private DOCKER_CONFIG, as tests/conftest.py does). The images, each `FROM` a base and one small
COPY on top:
  small     the seeded busybox (tiny layers), --platforms;
  three     a base of 150 MB of random bytes per platform, --platforms (3 x 150 MB);
  gigabyte  a base of 1 GB of random bytes, linux/amd64 only.
The big bases are made here from seeded random bytes (bench/bases.py) and pushed straight to the
registry: nothing is downloaded, nothing big enters a build context or a builder's cache, and a
rerun pushes nothing new.

In alternating pairs after a warm-up of each, SOURCE_DATE_EPOCH fixed, a state directory of the
benchmark's own, medians of the per-pair ratios (issue 35's goals):
  no-op publish: `orch -q build --push` against `docker buildx build --output type=registry`
    (no verification, no promotion): <= 1.2 on docker-container, <= 1.5 on the two-node remote
    builder, <= 1.10 on the docker driver;
  publish to a new repository each round (both): <= 1.25 on docker-container;
  gigabyte no-op: orch - raw <= 0.25 s.
Also orch's own CPU per no-op publish of the small image (<= 0.15 s) and `orch --version`
(<= 0.08 s). What it created in the registry is deleted at the end (tags; blobs stay until the
registry collects them), and so is its state directory (on the docker driver its blob store holds
what the exports wrote).

Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bases import delete_repositories, push_base
from common import RETRIES, alternate, compile_bytecode, load, machine, own_cpu, ratios, row, table_head, timed, use_buildx

MB = 1_000_000
GOALS = {  # builder kind -> (no-op, new repository)
    "docker-container": ("<= 1.2", "<= 1.25"), "remote": ("<= 1.5", ""), "docker": ("<= 1.10", "")}


def driver_of(builder: str) -> str:
    if builder in ("docker", "default"):
        return "docker"
    import json

    config = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "buildx" / "instances" / builder
    try:
        return json.loads(config.read_text())["Driver"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builder", default="orch-container", help="a buildx builder, or docker (the daemon's own)")
    parser.add_argument("--buildx", default="system", help="system or 0.30.1")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", default="small,three,gigabyte")
    parser.add_argument("--platforms", default="linux/amd64,linux/arm64,linux/arm/v7")
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--keep", action="store_true", help="leave what was pushed in the registry")
    args = parser.parse_args()
    compile_bytecode()
    version = use_buildx(args.buildx)
    os.environ["SOURCE_DATE_EPOCH"] = str(int(time.time()))
    state = tempfile.mkdtemp(prefix="orch-bench-state-")  # removed at the end (its blob store holds exports)
    os.environ["ORCH_STATE_HOME"] = state
    orch = [str(Path(sys.executable).parent / "orch")]
    reg, run = args.registry, uuid.uuid4().hex[:8]
    builder = [] if args.builder in ("docker", "default") else ["--builder", args.builder]
    kind = driver_of(args.builder)
    images = args.images.split(",")
    started, loads = datetime.now(timezone.utc), [load()]
    platforms = {"small": args.platforms, "three": args.platforms, "gigabyte": "linux/amd64"}
    repositories: list[str] = []

    bases = {"small": f"{reg}/orch/busybox:stable"}
    if "three" in images:
        bases["three"] = push_base(reg, "bench/base-three", "1", dict.fromkeys(args.platforms.split(","), 150 * MB),
                                   seed=3)
    if "gigabyte" in images:
        bases["gigabyte"] = push_base(reg, "bench/base-gigabyte", "1", {"linux/amd64": 1000 * MB}, seed=1000)

    rows: list[str] = []
    with tempfile.TemporaryDirectory() as work:
        context = Path(work)
        (context / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY note.txt /note.txt\n")
        (context / "note.txt").write_text(f"{run}\n")

        def orch_build(image: str, repository: str) -> list[str]:
            repositories.append(repository)
            return [*orch, "-q", "build", *builder, "--platform", platforms[image], "--build-arg",
                    f"BASE_IMAGE={bases[image]}", str(context), "-t", f"{reg}/{repository}:1", "--push"]

        def raw_build(image: str, repository: str) -> list[str]:
            repositories.append(repository)
            return ["docker", "buildx", "build", *builder, "--progress", "quiet", "--provenance=mode=min",
                    "--platform", platforms[image], "--build-arg", f"BASE_IMAGE={bases[image]}",
                    "--output", f"type=registry,name={reg}/{repository}:1", str(context)]

        noop_goal, new_goal = GOALS.get(kind, ("", ""))
        for image in images:
            name = {"small": "small", "three": "3 x 150 MB", "gigabyte": "1 GB"}[image]
            orch_times, raw_times = alternate(orch_build(image, f"bench/ov-{run}-{image}-orch"),
                                              raw_build(image, f"bench/ov-{run}-{image}-raw"), args.rounds)
            loads.append(load())
            rows.append(row(f"{name} no-op: `orch -q build --push`", orch_times))
            rows.append(row(f"{name} no-op: raw `buildx build --output type=registry`", raw_times))
            if image == "gigabyte":
                rows.append(row(f"{name} no-op: orch - raw (per pair)", [a - b for a, b in zip(orch_times, raw_times,
                                                                                                strict=True)],
                                target="<= 0.25 s"))
                continue
            rows.append(row(f"{name} no-op: ratio orch / raw (per pair)", ratios(orch_times, raw_times), unit="",
                            digits=3, target=noop_goal))
            new_orch, new_raw = [], []
            for number in range(args.rounds):
                new_orch.append(timed(orch_build(image, f"bench/ov-{run}-{image}-orch-new{number}"), attempts=8))
                new_raw.append(timed(raw_build(image, f"bench/ov-{run}-{image}-raw-new{number}"), attempts=8))
            loads.append(load())
            rows.append(row(f"{name} to a new repository: orch", new_orch))
            rows.append(row(f"{name} to a new repository: raw", new_raw))
            rows.append(row(f"{name} to a new repository: ratio orch / raw (per pair)", ratios(new_orch, new_raw),
                            unit="", digits=3, target=new_goal))
        cpu = own_cpu(orch_build("small", f"bench/ov-{run}-small-orch")[1:], 5) if "small" in images else []
    version_times = [timed([*orch, "--version"]) for _ in range(15)]
    loads.append(load())
    deleted = 0 if args.keep else delete_repositories(reg, sorted(set(repositories)))
    import shutil

    shutil.rmtree(state, ignore_errors=True)

    print(f"### orch against raw buildx: {args.builder} ({kind} driver), buildx {version} "
          f"({started.strftime('%Y-%m-%d %H:%M')} UTC)\n")
    print(f"Machine: {machine()}; load averages (1, 5, 15 min) before and after each series: "
          f"{' | '.join(loads)}\n")
    print(f"`FROM` a base, one small COPY on top; {args.rounds} alternating pairs after a warm-up of each, "
          f"SOURCE_DATE_EPOCH fixed; small and 3 x 150 MB: {args.platforms}; 1 GB: linux/amd64.\n")
    table_head()
    for line in rows:
        print(line)
    if cpu:
        print(row("orch's own CPU per no-op publish (small image; buildx and git not counted)", cpu, digits=3,
                  target="<= 0.15 s"))
    print(row("`orch --version` (console script, 15 runs)", version_times, digits=3, target="<= 0.08 s"))
    print(f"\nRegistry 500s retried, by command: {RETRIES or 'none'}. Tags deleted afterwards: {deleted}.")
    if cpu:
        print(f"Median own CPU {statistics.median(cpu):.3f} s.")


if __name__ == "__main__":
    main()
