"""structlog set up once, from the CLI callback, applied on first use.

Logs go to stderr (results go to stdout), for people: console lines, coloured
on a terminal unless NO_COLOR is set; JSON lines only with ``--log-format json``
(or ORCH_LOG_FORMAT=json). On GitHub Actions, warnings and errors are also
workflow commands (``::warning::``), so they show as annotations. Every event
passes through the redactor, so a secret that slips into an event never
reaches the output.

Under the live view (a terminal, default verbosity) the terminal gets warnings
and errors only; every event also goes to a log file (`to_file`), which the
command names when it ends.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from enum import Enum
from typing import Any, TextIO, cast

from orchestrator.ci_facts import on_github, workflow_command
from orchestrator.redact import redact

# The stdlib's level numbers, without importing logging (~15 ms) on every start.
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40


class LogFormat(str, Enum):
    auto = "auto"
    console = "console"
    json = "json"


def _redact_event(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {key: redact(value) if isinstance(value, str) else value for key, value in event.items()}


_pending: dict[str, Any] | None = {}  # settings not yet applied; None once structlog is set up


def configure(level: int = INFO, log_format: LogFormat = LogFormat.auto) -> None:
    """Remember the settings; structlog (~0.1 s to import) is set up when something logs."""
    global _pending
    _pending = {"level": level, "log_format": log_format}


def errors_only() -> None:
    """From here on only errors are logged (`--progress quiet`), in the format configured."""
    global _pending
    if _pending is not None:
        _pending = {**_pending, "level": ERROR}
    else:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(ERROR))


_applied_level = INFO
_applied_format = LogFormat.auto
_terminal_quiet = False  # the terminal shows warnings and errors only (the live view draws there)
_file: TextIO | None = None  # where every event goes then


def to_file(path: str | None) -> str | None:
    """From here on the terminal shows warnings and errors only, and every event (info too) goes
    to the file at `path`, as plain lines. When it cannot be opened, why (the terminal is quiet all
    the same: the events below WARNING are lost, never the command)."""
    global _file, _terminal_quiet
    _terminal_quiet, reason = True, None
    if path is not None:
        try:
            _file = open(path, "a", encoding="utf-8")  # open until the process ends
        except OSError as exc:
            reason = exc.strerror or str(exc)
    if _pending is None:
        _apply(_applied_level, _applied_format)
    return reason


class _ToFile:
    """Each event, rendered without colours, written to the log file; below WARNING it stops there."""

    def __init__(self, file: TextIO | None) -> None:
        import structlog

        self.file = file
        self.render = structlog.dev.ConsoleRenderer(colors=False)

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        import structlog

        if self.file is not None:
            try:
                self.file.write(str(self.render(logger, method, dict(event))) + "\n")
                self.file.flush()
            except (OSError, ValueError):
                pass  # a full disk loses the file's lines, never the build
        if _LEVELS.get(str(event.get("level", method)), INFO) < WARNING:
            raise structlog.DropEvent
        return event


def _apply(level: int = INFO, log_format: LogFormat = LogFormat.auto) -> None:
    import structlog

    global _applied_level, _applied_format
    _applied_level, _applied_format = level, log_format
    import os

    use_json = log_format is LogFormat.json
    colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=colors)
    if not use_json and on_github():
        renderer = _WorkflowCommands(renderer)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_event,
            *([_ToFile(_file)] if _terminal_quiet else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Resolved at call time so pytest's capture (and any redirect) sees it.
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=False,
    )


class _WorkflowCommands:
    """GitHub Actions: a warning or error also becomes `::warning::` / `::error::`, which the
    runner shows as an annotation on the run (the line itself stays in the log)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> str:
        level = str(event.get("level", method))
        plain = {k: v for k, v in event.items() if k not in ("timestamp", "level")}
        text = self.inner(logger, method, event)
        if level in ("warning", "error", "critical"):
            kind = "warning" if level == "warning" else "error"
            message = " ".join([str(plain.pop("event", ""))] + [f"{k}={v}" for k, v in plain.items()])
            return f"{workflow_command(kind, message)}\n{text}"
        return str(text)


class _Stderr:
    """A file-like that always writes to the current sys.stderr."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "warn": WARNING, "error": 40, "exception": 40,
           "critical": 50}


class _Lazy:
    """A logger that imports structlog (~0.1 s) only when a message is at an enabled level:
    `orch -q build` logs nothing and never pays for it."""

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._logger: Any = None

    def _real(self) -> Any:
        if self._logger is None:
            import structlog

            global _pending
            if _pending is not None:
                _apply(**_pending)
                _pending = None
            self._logger = structlog.get_logger("orch", **self._context)
        return self._logger

    def bind(self, **context: Any) -> _Lazy:
        return _Lazy({**self._context, **context})

    def __getattr__(self, method: str) -> Any:
        level = _LEVELS.get(method)
        if level is not None and level < _level():
            return _silent
        return getattr(self._real(), method)


def _silent(*_args: Any, **_kwargs: Any) -> None:
    return None


def _level() -> int:
    if _pending is not None:
        level: int = _pending.get("level", INFO)
        return level
    return _applied_level


def get_logger(**context: Any) -> Any:
    return _Lazy(context)
