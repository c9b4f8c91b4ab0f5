#!/usr/bin/env python3
"""What --sign costs: a no-op `orch build --push --sign` against the same build and then
`cosign sign` by hand (what GitHub's starter workflow does after build-push-action, except that
there the tags have moved before the signature exists).

Run by hand with the engine up (`make engine`, which installs cosign):

    .venv/bin/python bench/signing_cost.py [--rounds 9]

Dockerfile.example for linux/amd64 and linux/arm64, built once before timing; a key pair of the
benchmark's own, COSIGN_PASSWORD set; no transparency log. In alternating pairs:

* `orch -q build ... --push --sign --sign-key KEY`;
* `orch -q build ... --push --json` then `cosign sign --key KEY --tlog-upload=false REPO@DIGEST`.

Goal: orch / by hand <= 1.0. Prints a Markdown block for docs/benchmarks.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

from build_overhead import alternate
from common import REPO, RETRIES, machine, ratios, registry_bench, row, table_head

PASSWORD = "bench"


def main() -> None:
    args, orch = registry_bench(__doc__, 9)
    os.environ["COSIGN_PASSWORD"] = PASSWORD
    keys = Path(tempfile.mkdtemp(prefix="orch-bench-keys-"))
    subprocess.run(["cosign", "generate-key-pair"], cwd=keys, check=True, capture_output=True)
    repository = f"{args.registry}/bench/signed-{uuid.uuid4().hex[:8]}"
    build = [*orch, "-q", "build", "-f", "Dockerfile.example", "--build-arg",
             f"BASE_IMAGE={args.registry}/orch/busybox:stable", "--platform", "linux/amd64,linux/arm64",
             "-t", f"{repository}:1", "--push", str(REPO)]
    signed = [*build, "--sign", "--sign-key", str(keys / "cosign.key")]
    by_hand = [sys.executable, "-c",
               "import json, subprocess, sys; out = subprocess.run(sys.argv[1:] + ['--json'], check=True, "
               "capture_output=True, text=True).stdout; digest = json.loads(out)['digest']; "
               f"subprocess.run(['cosign', 'sign', '--yes', '--key', '{keys / 'cosign.key'}', '--tlog-upload=false', "
               f"'{repository}@' + digest], check=True, capture_output=True)", *build]
    orch_times, hand_times = alternate(signed, by_hand, args.rounds)

    print(f"### Signing ({date.today().isoformat()})\n")
    print(f"Machine: {machine()}\n")
    print(f"Dockerfile.example, linux/amd64 and linux/arm64, no-op (built once before), {args.rounds} alternating "
          "pairs after a warm-up of each; cosign from Debian, a key pair, no transparency log.\n")
    table_head()
    print(row("`orch build --push --sign` (sign before the tags move)", orch_times))
    print(row("`orch build --push`, then `cosign sign` by hand (after the tags moved)", hand_times))
    print(row("ratio orch / by hand (per pair)", ratios(orch_times, hand_times), unit="", digits=3, target="<= 1.0"))
    print(f"\nRegistry 500s retried, by command (distribution 2.8's tag-link race): {RETRIES or 'none'}")


if __name__ == "__main__":
    main()
