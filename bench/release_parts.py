#!/usr/bin/env python3
"""The merge step of one runner per platform: `orch release` of four parts against what Docker's
recipe runs in its merge job.

Run by hand on a machine with the engine up (`make engine`):

    .venv/bin/python bench/release_parts.py [--rounds 9]

Four parts (linux/amd64, linux/arm64, linux/arm/v7, linux/arm/v6), each built once by
`orch build --platform P --image REPO --push --part DIR` into one directory, as four runners'
artifacts would hold them. In alternating pairs after a warm-up of each:

* `orch -q release DIR --platform (the four) -t REPO:a -t REPO:b`: reads and checks the parts,
  checks the registry holds each, merges them in orch's order, stages the index by digest,
  verifies it from the registry, then moves both tags;
* `docker buildx imagetools create -t REPO:c -t REPO:d REPO@d1 ... REPO@d4` followed by
  `docker buildx imagetools inspect REPO:c` (the recipe's merge and its look at the result).

Goal: orch / recipe <= 1.0. Prints a Markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import date
from pathlib import Path

from build_overhead import alternate
from common import REPO, RETRIES, machine, ratios, registry_bench, row, table_head, timed

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6")


def main() -> None:
    args, orch = registry_bench(__doc__, 9)
    repository = f"{args.registry}/bench/parts-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as work:
        parts = Path(work) / "parts"
        for platform in PLATFORMS:
            timed([*orch, "-q", "build", "-f", "Dockerfile.example", "--build-arg",
                   f"BASE_IMAGE={args.registry}/orch/busybox:stable", "--platform", platform, "--image", repository,
                   "--push", "--part", str(parts / platform.replace("/", "-")), str(REPO)], attempts=8)
        digests = [json.loads(p.read_text())["digest"] for p in sorted(parts.rglob("*.json"))]
        release = [*orch, "-q", "release", str(parts), "--platform", ",".join(PLATFORMS),
                   "-t", f"{repository}:a", "-t", f"{repository}:b"]
        recipe = ["sh", "-c", f"docker buildx imagetools create -t {repository}:c -t {repository}:d "
                  + " ".join(f"{repository}@{d}" for d in digests)
                  + f" >/dev/null 2>&1 && docker buildx imagetools inspect {repository}:c >/dev/null"]
        orch_times, recipe_times = alternate(release, recipe, args.rounds)

    print(f"### One runner per platform: the release ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}\n")
    print(f"Four parts (one platform each, an OCI index with its attestation), {args.rounds} alternating pairs "
          "after a warm-up of each; two tags.\n")
    table_head()
    print(row("`orch release` (check parts, merge, stage, verify, move 2 tags)", orch_times))
    print(row("`imagetools create -t -t` + `imagetools inspect`", recipe_times))
    print(row("ratio orch / recipe (per pair)", ratios(orch_times, recipe_times), unit="", digits=3,
              target="<= 1.0"))
    print(f"\nRegistry 500s retried, by command (distribution 2.8's tag-link race): {RETRIES or 'none'}")


if __name__ == "__main__":
    main()
