"""The programs orch runs besides the docker package's own calls: git, docker credential
helpers, `docker info` for the registry client (and cosign). Started here and nowhere else,
never through a shell, each with a timeout; a program that is missing, fails or hangs gives
None, and the caller decides what that means."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


def output(args: Sequence[str], *, stdin: str | None = None, timeout: float = 30) -> str | None:
    """What the program printed on stdout when it exited 0; None when it could not start,
    failed or ran past `timeout` seconds."""
    try:
        result = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout,
                                stdin=None if stdin is not None else subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def outputs_at_once(commands: Sequence[Sequence[str]], *, timeout: float = 10) -> list[str | None]:
    """Several programs started together (each start costs a few ms; together they cost one),
    each one's stripped output, or None when it failed, printed nothing or ran past `timeout`."""
    try:
        running = [subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    stdin=subprocess.DEVNULL, text=True) for args in commands]
    except OSError:
        return [None] * len(commands)
    results: list[str | None] = []
    for process in running:
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            out = ""
        results.append(out.strip() if process.returncode == 0 and out.strip() else None)
    return results


@dataclass(frozen=True)
class Ran:
    """A program's end: its exit code (None: it could not start, or ran past its time) and what it
    printed."""

    returncode: int | None
    stdout: str
    stderr: str


def run(args: Sequence[str], *, timeout: float = 30) -> Ran:
    """Run a program to its end (no stdin: it must not wait for a person), whatever its exit."""
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except OSError as exc:
        return Ran(None, "", f"{args[0]} could not start: {exc.strerror or exc}")
    except subprocess.TimeoutExpired:
        return Ran(None, "", f"{args[0]} ran past {timeout:g} s and was stopped")
    return Ran(result.returncode, result.stdout, result.stderr)
