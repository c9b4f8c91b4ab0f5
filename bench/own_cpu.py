#!/usr/bin/env python3
"""`own_cpu.py FILE ORCH-ARGS...`: run orch (the console script's entry point) and append the CPU
seconds its own process took (every thread, no child process) to FILE. bench/common.own_cpu."""

from __future__ import annotations

import resource
import sys

out = sys.argv[1]
sys.argv = ["orch", *sys.argv[2:]]
try:
    from orchestrator.cli.entry import main

    main()
finally:
    used = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "a") as file:
        file.write(f"{used.ru_utime + used.ru_stime:.4f}\n")
