"""The Typer app: global options, command registration, error -> exit code.

Only cli/ imports typer. Commands import the core lazily so ``orch --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

# Plain help and usage errors: rendering them with rich costs ~0.15 s on every
# start, most of `orch --help`'s budget. TYPER_USE_RICH=1 brings it back.
os.environ.setdefault("TYPER_USE_RICH", "0")

import typer

from orchestrator import __version__
from orchestrator.cli import advise as advise_command
from orchestrator.cli import build as build_command
from orchestrator.cli import builder as builder_command
from orchestrator.cli import doctor as doctor_command
from orchestrator.cli import init as init_command
from orchestrator.cli import inspect as inspect_command
from orchestrator.cli import manifest as manifest_command
from orchestrator.cli import platforms as platforms_command
from orchestrator.cli import profiles as profiles_command
from orchestrator.cli import release_parts as release_command
from orchestrator.cli import verify as verify_command
from orchestrator.cli.output import print_error, wants_json
from orchestrator.errors import BadInput, ExitCode, OrchError
from orchestrator.logging import LogFormat

app = typer.Typer(
    name="orch",
    help="Publish multi-architecture container images with docker buildx, verified before any tag moves.",
    no_args_is_help=True,
    add_completion=True,
    # Locals can hold registry credentials: never print them.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"orch {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log only warnings and errors."),
    log_format: LogFormat = typer.Option(
        LogFormat.auto, "--log-format", envvar="ORCH_LOG_FORMAT",
        help="Log style on stderr: auto or console (lines for people), json (one JSON object per line)."
    ),
    version: bool | None = typer.Option(  # typer needs Optional on 3.10
        None, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    from orchestrator.cli.fast import registry_settings_from_the_daemon
    from orchestrator.logging import DEBUG, INFO, WARNING, configure

    if verbose and quiet:
        raise BadInput("--verbose and --quiet contradict each other", fix="pass one of them")
    level = DEBUG if verbose else WARNING if quiet else INFO
    configure(level=level, log_format=log_format)
    _state_warnings_to_the_log()
    registry_settings_from_the_daemon()
    ctx.obj = {"quiet": quiet, "verbose": verbose}


def _state_warnings_to_the_log() -> None:
    """A state directory that cannot be written is said once, as a warning in the log's format."""
    from orchestrator import state
    from orchestrator.logging import get_logger

    state.warn = lambda text: get_logger().warning("state.unwritable", advice=text)


app.command("advise")(advise_command.advise)
app.command("build")(build_command.build)
app.command("doctor")(doctor_command.doctor)
app.command("init")(init_command.init)
app.command("inspect")(inspect_command.inspect)
app.command("release")(release_command.release_parts)
app.command("verify")(verify_command.verify)
app.add_typer(builder_command.app, name="builder")
app.add_typer(manifest_command.app, name="manifest")
app.add_typer(platforms_command.app, name="platforms")
app.add_typer(profiles_command.app, name="profiles")


def main() -> None:
    from orchestrator import interrupts

    interrupts.install()
    try:
        app()
    except OrchError as exc:
        sys.exit(print_error(exc, as_json=wants_json(sys.argv[1:])))
    except interrupts.Interrupted as exc:
        typer.echo(f"orch: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("orch: interrupted", err=True)
        sys.exit(130)


# Exposed for tests and for `python -m orchestrator`.
__all__ = ["app", "main", "ExitCode"]
