"""Errors a user can cause or meet, each mapped to one exit code.

Core modules raise these; only the command line (``cli/app.py``, and
``cli/fast.py`` for the commands it runs without typer, both through
``cli/output.print_error``) turns them into a message and an exit status. Messages quote the offending value, say what is allowed and how
to fix it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the job failed: build, push, verification
    BAD_INPUT = 2  # arguments, profile, platform name
    ENVIRONMENT = 3  # no daemon, no buildx, no emulator, registry unreachable


class OrchError(Exception):
    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


class JobFailed(OrchError):
    exit_code = ExitCode.FAILED


class BuildStepFailed(JobFailed):
    """A build failed at known steps: `failed` maps each platform (os/arch[/variant]) to what
    failed there ("RUN make", or the reason), for CI outputs and reports."""

    def __init__(self, message: str, *, failed: dict[str, str], fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.failed = failed


class BadInput(OrchError):
    exit_code = ExitCode.BAD_INPUT


class EnvironmentMissing(OrchError):
    exit_code = ExitCode.ENVIRONMENT


class DockerCommandFailed(JobFailed):
    """A docker CLI call returned non-zero. Command and stderr are redacted."""

    def __init__(self, command: list[str], return_code: int, stderr: str, *, fix: str | None = None) -> None:
        self.command = command
        self.return_code = return_code
        self.stderr = stderr
        tail = "\n".join(stderr.strip().splitlines()[-15:]) if stderr else "(no output captured)"
        super().__init__(
            f"`{' '.join(command)}` failed with exit code {return_code}:\n{tail}", fix=fix
        )
