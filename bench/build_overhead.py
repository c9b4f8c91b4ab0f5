#!/usr/bin/env python3
"""Is `orch build --push` faster than the shell script it replaces, and how close to the raw build?

Run by hand on a machine with the engine up (`make engine`):

    .venv/bin/python bench/build_overhead.py [--rounds 7] [--profile arm-all] [--buildx system|0.30.1]
        [--ci-rounds 3]

Warm cache, nothing changed, SOURCE_DATE_EPOCH fixed (so configs do not change), in
alternating pairs after a warm-up of each:

1. `orch -q build --profile P -t REPO:1 --push` against bench/publish-script.sh: `docker
   buildx build --output type=registry,name=REPO:staging`, `imagetools inspect`, then
   `imagetools create -t REPO:1`. Goal: median of the per-pair ratios <= 1.0.
2. The same orch build against the raw `docker buildx build --output type=registry` alone
   (no verification, no promotion). Goal: <= 1.15.
3. A CI-style build: warm cache, but a source file changes each round, so COPY and a RUN
   step (a shell loop, --loops) run again for every platform under QEMU (--ci-rounds 0: not run).
4. `orch --help`, median of 20. Goal: <= 0.15 s.
Goals since issue 35: orch / script <= 1.0 and orch / raw <= 1.10 with buildx 0.13.1 and 0.30.1
(--buildx: given to orch and to the raw commands alike, bench/common.use_buildx).

The local registry (distribution 2.8) sometimes answers a tag push with 500 (a race on its
tag links); those attempts are retried and counted, and their time counts. Prints a
Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import ORCH, REPO, RETRIES, alternate, compile_bytecode, load, machine, ratios, row, table_head, timed, use_buildx

ORCH_SCRIPT = [str(Path(sys.executable).parent / "orch")]  # the console script, as users run it
SCRIPT = str(REPO / "bench" / "publish-script.sh")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", default="arm-all")
    parser.add_argument("--registry", default="localhost:5000")
    parser.add_argument("--loops", type=int, default=400000,
                        help="CI-style build: shell loop iterations of its RUN step (under QEMU)")
    parser.add_argument("--ci-rounds", type=int, default=None, help="CI-style pairs (default: rounds / 2, at least 3)")
    parser.add_argument("--buildx", default="system", help="system or 0.30.1")
    args = parser.parse_args()
    compile_bytecode()
    version = use_buildx(args.buildx)
    loads = [load()]
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(int(time.time())))
    orch = ORCH_SCRIPT if Path(ORCH_SCRIPT[0]).exists() else ORCH
    base = f"BASE_IMAGE={args.registry}/orch/busybox:stable"
    platforms = {"arm-all": "linux/arm64,linux/arm/v6,linux/arm/v7"}.get(args.profile)
    if platforms is None:
        sys.exit("--profile: only arm-all is wired to its raw buildx flags here")
    buildx_args = ["--platform", platforms, "-f", "Dockerfile.example", "--build-arg", base,
                   "--provenance=mode=min", "."]
    orch_build = [*orch, "-q", "build", "--profile", args.profile, "-f", "Dockerfile.example", "--build-arg", base,
                  "-t", f"{args.registry}/bench/orch:1", "--push"]
    script = [SCRIPT, f"{args.registry}/bench/script", "1", *buildx_args]
    raw = ["docker", "buildx", "build", "--progress", "quiet", "--output",
           f"type=registry,name={args.registry}/bench/raw:1", *buildx_args]

    orch_vs_script, script_times = alternate(orch_build, script, args.rounds)
    loads.append(load())
    orch_vs_raw, raw_times = alternate(orch_build, raw, args.rounds)
    loads.append(load())
    ci_rounds = max(3, args.rounds // 2) if args.ci_rounds is None else args.ci_rounds

    with tempfile.TemporaryDirectory() as work:
        ctx = Path(work)
        (ctx / "src").mkdir()
        (ctx / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY src/ /src/\n"
            f"RUN i=0; while [ $i -lt {args.loops} ]; do i=$((i+1)); done; md5sum /src/* > /src.md5\n")

        def change_source() -> None:
            (ctx / "src" / "app.txt").write_text(f"{time.time_ns()}\n")

        ci_orch = [*orch, "-q", "build", str(ctx), "--platform", platforms, "--build-arg", base,
                   "-t", f"{args.registry}/bench/orch-ci:1", "--push"]
        ci_raw = ["docker", "buildx", "build", "--progress", "quiet", "--platform", platforms, "--build-arg", base,
                  "--provenance=mode=min", "--output", f"type=registry,name={args.registry}/bench/raw-ci:1", str(ctx)]
        ci_orch_times, ci_raw_times = alternate(ci_orch, ci_raw, ci_rounds, before=change_source) if ci_rounds else \
            ([], [])

    help_times = [timed([*orch, "--help"]) for _ in range(20)]

    print(f"### Build overhead ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}; load averages (1, 5, 15 min) before and after each series: {' | '.join(loads)}\n")
    print(f"buildx {version}; {args.profile} ({platforms}), Dockerfile.example, warm cache, nothing changed, SOURCE_DATE_EPOCH fixed, "
          f"{args.rounds} alternating pairs after a warm-up; `{' '.join(orch_build[len(orch):])}`.\n")
    table_head()
    print(row("`orch -q build --push` (build, verify, stage by digest, verify, promote)", orch_vs_script))
    print(row("bench/publish-script.sh (build to a tag, imagetools inspect, imagetools create)", script_times))
    print(row("ratio orch / script (per pair)", ratios(orch_vs_script, script_times), unit="", digits=3,
              target="<= 1.0"))
    print(row("`orch -q build --push`, second series", orch_vs_raw))
    print(row("raw `docker buildx build --output type=registry`", raw_times))
    print(row("ratio orch / raw build (per pair)", ratios(orch_vs_raw, raw_times), unit="", digits=3,
              target="<= 1.10"))
    if ci_orch_times:
        print(row(f"CI-style (source changed, {args.loops}-iteration loop under QEMU): orch", ci_orch_times))
        print(row("CI-style: raw build", ci_raw_times))
        print(row("CI-style: ratio orch / raw (per pair)", ratios(ci_orch_times, ci_raw_times), unit="", digits=3))
    print(row("`orch --help` (console script)", help_times, digits=3, target="<= 0.15 s"))
    print(f"\nRegistry 500s retried, by command (distribution 2.8's tag-link race): {RETRIES or 'none'}")


if __name__ == "__main__":
    main()
