"""`orch verify`: check a pushed image (or an OCI layout) against the platforms it should hold.

The plain forms never get here: cli/fast.py runs them without typer. Both call cli/verify_run.
"""

from __future__ import annotations

from typing import Any

import typer

from orchestrator.cli.build_options import with_options
from orchestrator.cli.options import VERIFY


@with_options(*VERIFY)  # the fast path (cli/fast.py) parses the same table
def verify(ref: str = typer.Argument(..., help="Image reference to verify (or oci-layout://DIR[:TAG])."),
           **given: Any) -> None:
    """Check a pushed image against what it should hold. Exit 1 when a check fails."""
    from orchestrator.cli.verify_run import VerifyArgs, run_verify

    code = run_verify(VerifyArgs.of(ref, given))
    if code:
        raise typer.Exit(code)
