"""The `orch` console script (and `python -m orchestrator`): a fast path where one applies, else the CLI."""

from __future__ import annotations

import sys


def main() -> None:
    from orchestrator.cli import fast

    code = fast.run(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from orchestrator.cli.app import main as cli_main

    cli_main()
