#!/usr/bin/env python3
"""What staging costs: a tag pushed by BuildKit against a layout uploaded by digest by orch.

Run by hand on a machine with the engine up (`make engine`):

    .venv/bin/python bench/staging_cost.py [--rounds 5]

Seven platforms of Dockerfile.example, warm cache, in alternating rounds:

1. tag: `docker buildx build --output type=registry,name=REPO:staging`, the way orch staged
   before (it leaves a tag on registries that cannot delete one);
2. layout: `docker buildx build --output type=oci,dest=DIR,tar=false`, then orch's client
   uploads the layout by digest (what `orch build --push` does now with the docker driver:
   nothing is left behind).

Each twice: nothing changed (every blob is in the registry already), and with a changed
file (one new layer per platform to send). push-by-digest (container drivers) needs the
moby/buildkit image, which this machine cannot pull; it is not measured here.
Prints a Markdown block to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import REPO, RETRIES, machine, ratios, row, timed

PLATFORMS = "linux/amd64,linux/arm64,linux/arm/v6,linux/arm/v7,linux/386,linux/ppc64le,linux/s390x"
UPLOAD = """
import json, sys
from orchestrator.model.references import parse_reference
from orchestrator.publish.stage import upload_layout
layout, repository = sys.argv[1], parse_reference(sys.argv[2])
digest = json.load(open(layout + "/index.json"))["manifests"][0]["digest"]
upload_layout(layout, digest, repository)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--registry", default="localhost:5000")
    args = parser.parse_args()
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(int(time.time())))
    with tempfile.TemporaryDirectory() as work:
        ctx = Path(work) / "ctx"
        ctx.mkdir()
        shutil.copy(REPO / "Dockerfile.example", ctx / "Dockerfile")
        (ctx / "stamp").write_text("0\n")
        (ctx / "Dockerfile").write_text((ctx / "Dockerfile").read_text() + "COPY stamp /etc/stamp\n")
        common = ["docker", "buildx", "build", "--progress", "quiet", "--platform", PLATFORMS, "--provenance=mode=min",
                  "--build-arg", f"BASE_IMAGE={args.registry}/orch/busybox:stable", str(ctx)]
        layout = Path(work) / "layout"

        def by_tag() -> list[str]:
            return [*common, "--output", f"type=registry,name={args.registry}/bench/stage-tag:staging"]

        def by_layout() -> float:
            shutil.rmtree(layout, ignore_errors=True)
            seconds = timed([*common, "--output", f"type=oci,dest={layout},tar=false"])
            return seconds + timed([sys.executable, "-c", UPLOAD, str(layout), f"{args.registry}/bench/stage-layout"])

        results: dict[str, tuple[list[float], list[float]]] = {}
        for case, change in (("nothing changed", False), ("a changed file (a new layer per platform)", True)):
            timed(by_tag(), attempts=8)
            by_layout()
            tag_times, layout_times = [], []
            for _ in range(args.rounds):
                if change:
                    (ctx / "stamp").write_text(f"{time.time_ns()}\n")
                tag_times.append(timed(by_tag(), attempts=8))
                if change:
                    (ctx / "stamp").write_text(f"{time.time_ns()}\n")
                layout_times.append(by_layout())
            results[case] = (tag_times, layout_times)

    print(f"### Staging cost ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}\n")
    print(f"7 platforms ({PLATFORMS}), Dockerfile.example, warm cache, {args.rounds} alternating rounds.\n")
    print("| measure | median | min | max | |")
    print("|---|---|---|---|---|")
    for case, (tag_times, layout_times) in results.items():
        print(row(f"{case}: BuildKit pushes to a staging tag", tag_times))
        print(row(f"{case}: layout, then orch uploads it by digest", layout_times))
        print(row(f"{case}: ratio layout / tag (per round)", ratios(layout_times, tag_times), unit="", digits=3))
    print(f"\nRegistry 500s retried, by command (distribution 2.8's tag-link race): {RETRIES or 'none'}")


if __name__ == "__main__":
    main()
