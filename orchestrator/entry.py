"""The `orch` console script (and `python -m orchestrator`)."""

from __future__ import annotations

import sys


def main() -> None:
    from orchestrator import prefetch

    prefetch.start(sys.argv[1:])
    from orchestrator.cli import main as cli_main

    cli_main()
