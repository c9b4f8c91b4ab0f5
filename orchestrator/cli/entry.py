"""The `orch` console script (and `python -m orchestrator`): start what can start early, then the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    from orchestrator.cli import prefetch

    prefetch.start(sys.argv[1:])
    from orchestrator.cli.app import main as cli_main

    cli_main()
