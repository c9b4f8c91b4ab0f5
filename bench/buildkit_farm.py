#!/usr/bin/env python3
"""orch on a builder of two BuildKit nodes (scripts/buildkit-up.sh's `orch-farm`: a remote-driver
builder of two buildkitd nodes, linux/amd64 and 386 on one, arm64, arm/v7 and arm/v6 on the other).

Run by hand, as root, with the engine and the farm up (`make engine`):

    .venv/bin/python bench/buildkit_farm.py [--rounds 7] [--builder orch-farm] [--seconds 5]

In alternating pairs after a warm-up of each:

1. No-op publish: `orch -q build --builder B --platform linux/amd64,linux/arm64 -t REPO:1 --push`
   (one build per platform, each on its node, pushed by digest, merged, verified, promoted)
   against the raw `docker buildx build --builder B --output type=registry` of both platforms in
   one call (no verification, no promotion; it also pushes the merged index as `latest`). Warm
   cache, nothing changed, SOURCE_DATE_EPOCH fixed. Goal: median of the per-pair ratios <= 1.15.
2. Rebuild after pruning both nodes (`buildctl prune --all` on each, before every run and not
   timed): orch with `--cache REF` (one ref per platform) against the one buildx call over both
   nodes with one shared ref (`--cache-from/--cache-to type=registry,ref=REF,mode=max`, which each
   node overwrites in turn; orch splits even a raw --cache-to per platform, so the shared ref is
   the raw call's). The RUN step sleeps --seconds (a compile's stand-in). Goal: <= 0.5.

Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from build_overhead import ORCH_SCRIPT
from common import ORCH, RETRIES, alternate, compile_bytecode, machine, ratios, row, table_head

PLATFORMS = "linux/amd64,linux/arm64"
STATE = Path(os.environ.get("ORCH_STATE_DIR", "/var/lib/orch-engine"))


def nodes_of(builder: str) -> list[str]:
    """The unix sockets of the builder's nodes (the farm's nodes run on this host)."""
    inspect = subprocess.run(["docker", "buildx", "inspect", builder], capture_output=True, text=True, check=True)
    return [line.split(":", 1)[1].strip() for line in inspect.stdout.splitlines()
            if line.startswith("Endpoint:") and "unix://" in line]


def pruner(endpoints: list[str]):
    buildctl = str(STATE / "buildkit" / "bin" / "buildctl")

    def prune() -> None:
        for endpoint in endpoints:
            subprocess.run([buildctl, "--addr", endpoint, "prune", "--all"], capture_output=True, check=True)
    return prune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--builder", default="orch-farm")
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--seconds", type=int, default=5,
                        help="what the RUN step costs each platform when it is not cached (a sleep: the same "
                             "natively and under QEMU, standing for a compile)")
    args = parser.parse_args()
    compile_bytecode()
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(int(time.time())))
    orch = ORCH_SCRIPT if Path(ORCH_SCRIPT[0]).exists() else ORCH
    base = f"BASE_IMAGE={args.registry}/orch/busybox:stable"
    endpoints = nodes_of(args.builder)
    if len(endpoints) < 2:
        sys.exit(f"builder {args.builder} has {len(endpoints)} local node(s); this benchmark needs the two-node farm")
    run = uuid.uuid4().hex[:8]  # repositories and cache refs of this run only

    with tempfile.TemporaryDirectory() as work:
        ctx = Path(work)
        (ctx / "Dockerfile").write_text(
            f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\n"
            f"RUN sleep {args.seconds}; echo {run} > /built\n")
        common = ["--builder", args.builder, "--platform", PLATFORMS, "--build-arg", base, str(ctx)]
        noop_orch = [*orch, "-q", "build", *common, "-t", f"{args.registry}/bench/farm-{run}:1", "--push"]
        noop_raw = ["docker", "buildx", "build", "--progress", "quiet", "--provenance=mode=min", *common,
                    "--output", f"type=registry,name={args.registry}/bench/farm-raw-{run}:1"]
        orch_times, raw_times = alternate(noop_orch, noop_raw, args.rounds)

        per_platform = f"{args.registry}/bench/farm-cache-{run}:per-platform"
        shared = f"{args.registry}/bench/farm-cache-{run}:shared"
        cached_orch = [*orch, "-q", "build", *common, "-t", f"{args.registry}/bench/farm-cached-{run}:1", "--push",
                       "--cache", per_platform]
        # One shared ref is what a single buildx call over the nodes gives (orch itself would split it).
        shared_raw = ["docker", "buildx", "build", "--progress", "quiet", "--provenance=mode=min", *common,
                      "--output", f"type=registry,name={args.registry}/bench/farm-shared-{run}:1",
                      "--cache-from", f"type=registry,ref={shared}",
                      "--cache-to", f"type=registry,ref={shared},mode=max"]
        per_platform_times, shared_times = alternate(cached_orch, shared_raw, max(3, args.rounds // 2),
                                                     before=pruner(endpoints))

    print(f"### BuildKit farm: two nodes ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}; builder {args.builder} (remote driver, two buildkitd v0.26.3 nodes on this host: "
          "linux/amd64 on one, linux/arm64 under QEMU on the other)\n")
    print(f"{PLATFORMS}, a busybox image with one RUN step (`sleep {args.seconds}`, standing for a compile), "
          f"alternating pairs after a warm-up of each.\n")
    table_head()
    print(row("no-op `orch -q build --push` (per node by digest, merge, verify, promote)", orch_times))
    print(row("raw `docker buildx build --output type=registry` (one call over both nodes)", raw_times))
    print(row("ratio orch / raw (per pair)", ratios(orch_times, raw_times), unit="", digits=3, target="<= 1.15"))
    print(row("after pruning both nodes: orch `--cache REF` (a ref per platform)", per_platform_times))
    print(row("after pruning both nodes: one buildx call with one shared cache ref", shared_times))
    print(row("ratio per-platform / shared (per pair)", ratios(per_platform_times, shared_times), unit="",
              digits=3, target="<= 0.5"))
    print(f"\nRegistry 500s retried, by command (distribution 2.8's tag-link race): {RETRIES or 'none'}")


if __name__ == "__main__":
    main()
