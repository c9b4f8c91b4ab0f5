#!/usr/bin/env python3
"""What does orch add on top of the docker buildx build it wraps?

Run by hand on a machine with the engine up (`make engine`):

    .venv/bin/python bench/build_overhead.py [--rounds 7] [--profile arm-all]

1. `orch build --push` of Dockerfile.example against the exact
   `docker buildx build` command orch plans (taken from `orch build --dry-run
   --json`, pushed to another tag), alternating, warm cache, nothing changed:
   the build is ~1 s, so this shows orch's fixed cost (preflight, verify,
   promotion, staging cleanup).
2. The same on a CI-style build: warm cache, but each run changes a source
   file, so COPY and a RUN step (a shell loop, --loops) run again for every
   platform under QEMU, as after a commit. Target: median ratio <= 1.05.
3. `orch --help` start-up, median of 20. Target: <= 0.2 s.

Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ORCH = [sys.executable, "-m", "orchestrator"]


RETRIES = {"count": 0}


def timed(args: list[str], attempts: int = 3) -> float:
    """Seconds until the first successful run, failed attempts included. The local
    registry sometimes answers a push with 500 (see README, "push flake"); orch retries
    those itself and its time includes the retry, so the raw side's retries count too."""
    start = time.perf_counter()
    for _ in range(attempts):
        result = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
        if result.returncode == 0:
            return time.perf_counter() - start
        RETRIES["count"] += 1
    sys.exit(f"failed {attempts} times ({result.returncode}): {' '.join(args)}\n{result.stderr[-2000:]}")


def compile_bytecode() -> None:
    """Byte-compile the package, as installing the wheel does. A checkout run with
    PYTHONDONTWRITEBYTECODE=1 (set on these machines) would otherwise recompile
    orch's own modules on every start, ~25 ms that no installed user pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "orchestrator")], check=True)


def machine() -> str:
    cpus = os.cpu_count()
    mem_kb = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True).stdout.strip()
    buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True).stdout.split()[1:2]
    return (f"{platform.machine()}, {cpus} CPUs, {mem_kb // 1024 // 1024} GiB, {platform.platform()}, "
            f"dockerd {docker}, buildx {' '.join(buildx)}, Python {platform.python_version()}")


def compare(orch_build: list[str], rounds: int, registry: str,
            before: Any = None) -> tuple[str, list[float], list[float], list[float]]:
    """orch build against the raw buildx command it plans, alternating, after one warm-up each."""
    plan = json.loads(subprocess.run([*orch_build, "--dry-run", "--json"], capture_output=True, text=True,
                                     cwd=REPO, check=True).stdout)
    staging = plan["staging"]
    raw_build = plan["commands"][0].replace(staging, staging.replace(":orch-staging-", "-raw:"))
    raw = ["sh", "-c", raw_build + " >/dev/null 2>&1"]
    prepare = before or (lambda: None)
    prepare()
    timed(raw)
    prepare()
    timed(orch_build)
    raw_times, orch_times = [], []
    for _ in range(rounds):
        prepare()
        raw_times.append(timed(raw))
        prepare()
        orch_times.append(timed(orch_build))
    return raw_build, raw_times, orch_times, [o / r for o, r in zip(orch_times, raw_times)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", default="arm-all")
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--loops", type=int, default=400000,
                        help="CI-style build: shell loop iterations of its RUN step (under QEMU)")
    args = parser.parse_args()
    compile_bytecode()
    # The same created label on both sides, so both export the same image.
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(int(time.time())))

    base = f"BASE_IMAGE={args.registry}/orch/busybox:stable"
    orch_build = [*ORCH, "--quiet", "build", ".", "--profile", args.profile, "-f", "Dockerfile.example",
                  "--build-arg", base, "-t", f"{args.registry}/bench/orch:latest", "--push"]
    raw_build, raw_times, orch_times, ratios = compare(orch_build, args.rounds, args.registry)

    # A CI-style build: warm cache, but the source changed, so COPY and the RUN after it
    # run again for every platform (under QEMU), as after a commit.
    with tempfile.TemporaryDirectory() as work:
        ctx = Path(work)
        (ctx / "src").mkdir()
        (ctx / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY src/ /src/\n"
            f"RUN i=0; while [ $i -lt {args.loops} ]; do i=$((i+1)); done; md5sum /src/* > /src.md5\n")

        def change_source() -> None:
            (ctx / "src" / "app.txt").write_text(f"{time.time_ns()}\n")

        ci_build = [*ORCH, "--quiet", "build", str(ctx), "--profile", args.profile, "--build-arg", base,
                    "-t", f"{args.registry}/bench/orch-ci:latest", "--push"]
        _, ci_raw, ci_orch, ci_ratios = compare(ci_build, args.rounds, args.registry, before=change_source)

    help_times = [timed([*ORCH, "--help"]) for _ in range(20)]
    entry = [timed([str(Path(sys.executable).parent / "orch"), "--help"]) for _ in range(20)] \
        if (Path(sys.executable).parent / "orch").exists() else []

    print(f"### Build overhead ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}\n")
    print(f"`{raw_build}`\n")
    print("| measure | median | min | max | target |")
    print("|---|---|---|---|---|")
    print(f"| raw `docker buildx build` ({args.profile}, warm, nothing changed) | {statistics.median(raw_times):.2f} s | "
          f"{min(raw_times):.2f} s | {max(raw_times):.2f} s | |")
    print(f"| `orch build --push` (build, verify, promote) | {statistics.median(orch_times):.2f} s | "
          f"{min(orch_times):.2f} s | {max(orch_times):.2f} s | |")
    print(f"| ratio orch / raw (per round) | {statistics.median(ratios):.3f} | {min(ratios):.3f} | "
          f"{max(ratios):.3f} | <= 1.05 |")
    print(f"| raw `docker buildx build`, CI-style (source changed, RUN re-runs) | {statistics.median(ci_raw):.2f} s "
          f"| {min(ci_raw):.2f} s | {max(ci_raw):.2f} s | |")
    print(f"| `orch build --push`, CI-style | {statistics.median(ci_orch):.2f} s | {min(ci_orch):.2f} s | "
          f"{max(ci_orch):.2f} s | |")
    print(f"| ratio orch / raw, CI-style (per round) | {statistics.median(ci_ratios):.3f} | {min(ci_ratios):.3f} | "
          f"{max(ci_ratios):.3f} | <= 1.05 |")
    print(f"| `python -m orchestrator --help` | {statistics.median(help_times):.3f} s | {min(help_times):.3f} s | "
          f"{max(help_times):.3f} s | <= 0.2 s |")
    print(f"| failed attempts retried (registry 5xx) | {RETRIES['count']} | | | |")
    if entry:
        print(f"| `orch --help` (console script) | {statistics.median(entry):.3f} s | {min(entry):.3f} s | "
              f"{max(entry):.3f} s | <= 0.2 s |")


if __name__ == "__main__":
    main()
