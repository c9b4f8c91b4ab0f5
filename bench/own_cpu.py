#!/usr/bin/env python3
"""`own_cpu.py FILE ORCH-ARGS...`: run orch (the console script's entry point) and append the CPU
seconds its own process took (every thread, no child process) to FILE. bench/common.own_cpu.
main() ends the process (cli.entry._end), so the figure is written by an atexit call, which it runs."""

from __future__ import annotations

import atexit
import resource
import sys

out = sys.argv[1]
sys.argv = ["orch", *sys.argv[2:]]


def _write() -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "a") as file:
        file.write(f"{used.ru_utime + used.ru_stime:.4f}\n")


atexit.register(_write)
from orchestrator.cli.entry import main  # noqa: E402  (after the figure's writer is in place)

main()
