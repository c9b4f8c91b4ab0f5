"""orch's log, set up once from the command line, applied on first use.

Logs go to stderr (results go to stdout), for people: console lines, coloured
on a terminal unless NO_COLOR is set; JSON lines only with ``--log-format json``
(or ORCH_LOG_FORMAT=json). On GitHub Actions, warnings and errors are also
workflow commands (``::warning::``), so they show as annotations. Every event
passes through the redactor, so a secret that slips into an event never
reaches the output.

Console lines are written here, as structlog's ConsoleRenderer writes them (the
same columns, padding, colours and value quoting: tests/test_logging.py holds
them side by side); structlog is imported for JSON lines only. Importing it
(~0.1 s, with rich's traceback and pygments behind it) was the largest cost of
an `orch build` at default verbosity.

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


_pending: dict[str, Any] | None = {}  # settings not yet applied; None once the log is set up


def configure(level: int = INFO, log_format: LogFormat = LogFormat.auto) -> None:
    """Remember the settings; the log is set up when something logs."""
    global _pending
    _pending = {"level": level, "log_format": log_format}


def errors_only() -> None:
    """From here on only errors are logged (`--progress quiet`), in the format configured."""
    global _pending, _applied_level
    if _pending is not None:
        _pending = {**_pending, "level": ERROR}
    elif _applied_format is LogFormat.json:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(ERROR))
    else:
        _applied_level = ERROR


_applied_level = INFO
_applied_format = LogFormat.auto
_colors = False  # console lines in colour (a terminal, no NO_COLOR)
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
        self.file = file

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if self.file is not None:
            try:
                self.file.write(render_console(dict(event), colors=False) + "\n")
                self.file.flush()
            except (OSError, ValueError):
                pass  # a full disk loses the file's lines, never the build
        if _LEVELS.get(str(event.get("level", method)), INFO) < WARNING:
            import structlog

            raise structlog.DropEvent
        return event


def _apply(level: int = INFO, log_format: LogFormat = LogFormat.auto) -> None:
    global _applied_level, _applied_format, _colors
    import os

    _applied_level, _applied_format = level, log_format
    _colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    if log_format is not LogFormat.json:
        return  # console lines are written by _Console: structlog is not set up, nor imported
    import structlog

    renderer: Any = structlog.processors.JSONRenderer()
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


def workflow_commands(event: dict[str, Any], text: str) -> str:
    """GitHub Actions: a warning or error also becomes `::warning::` / `::error::`, which the
    runner shows as an annotation on the run (the line itself stays in the log)."""
    level = str(event.get("level", ""))
    if level not in ("warning", "error", "critical"):
        return text
    plain = {k: v for k, v in event.items() if k not in ("timestamp", "level")}
    kind = "warning" if level == "warning" else "error"
    message = " ".join([str(plain.pop("event", ""))] + [f"{k}={v}" for k, v in plain.items()])
    return f"{workflow_command(kind, message)}\n{text}"


# structlog's ConsoleRenderer, its default columns and styles (structlog.dev._colorful_styles).
_RESET, _BRIGHT, _DIM, _KEY, _VALUE = "\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[36m", "\x1b[35m"
_LEVEL_COLOURS = {"critical": "\x1b[31m", "exception": "\x1b[31m", "error": "\x1b[31m", "warn": "\x1b[33m",
                  "warning": "\x1b[33m", "info": "\x1b[32m", "debug": "\x1b[32m", "notset": "\x1b[41m"}
_LEVEL_WIDTH = max(len(name) for name in _LEVEL_COLOURS)
_EVENT_WIDTH = 30


def _value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if set(value) & {" ", "\t", "=", "\r", "\n", '"', "'"} else value
    return repr(value)


def render_console(event: dict[str, Any], *, colors: bool) -> str:
    """One event as a console line, as structlog's ConsoleRenderer (sort_keys, pad_level) writes it."""
    reset, bright, dim, key_style, value_style = (_RESET, _BRIGHT, _DIM, _KEY, _VALUE) if colors else ("",) * 5
    columns = []
    if "timestamp" in event:
        columns.append(f"{dim}{event.pop('timestamp')}{reset}")
    if "level" in event:
        level = str(event.pop("level"))
        style = _LEVEL_COLOURS[level] + bright if colors and level in _LEVEL_COLOURS else ""
        columns.append(f"[{style}{level.ljust(_LEVEL_WIDTH)}{reset}]")
    if "event" in event:
        columns.append(f"{bright}{str(event.pop('event')).ljust(_EVENT_WIDTH)}{reset}")
    for name in ("logger", "logger_name"):
        if name in event:
            columns.append(f"[{reset}{bright}\x1b[34m{event.pop(name)}{reset}]{reset}" if colors else
                           f"[{event.pop(name)}]")
    columns += [f"{key_style}{key}{reset}={value_style}{_value(event[key])}{reset}" for key in sorted(event)]
    return " ".join(column for column in columns if column).rstrip(" ")


class _Console:
    """A logger bound to some context, writing console lines to the current stderr (or, under the
    live view, every event to the log file and only warnings and errors to the terminal)."""

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def bind(self, **context: Any) -> _Console:
        return _Console({**self._context, **context})

    def __getattr__(self, method: str) -> Any:
        if method not in _LEVELS and method != "msg":
            raise AttributeError(method)
        return lambda *args, **values: self._log(method, *args, **values)

    def _log(self, method: str, event: Any = None, /, *args: Any, **values: Any) -> None:
        # Positional-only: an event may have a value named `method` or `event` (build.merged has).
        from datetime import datetime, timezone

        if _LEVELS.get(method, INFO) < _applied_level:
            return
        record: dict[str, Any] = {**self._context, **values}
        if event is not None:
            record["event"] = event % args if args else event
        record["level"] = {"warn": "warning", "exception": "error", "msg": "info"}.get(method, method)
        record["timestamp"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        record = dict(_redact_event(None, method, record))
        if _terminal_quiet:
            if _file is not None:
                try:
                    _file.write(render_console(dict(record), colors=False) + "\n")
                    _file.flush()
                except (OSError, ValueError):
                    pass  # a full disk loses the file's lines, never the build
            if _LEVELS.get(record["level"], INFO) < WARNING:
                return
        text = render_console(dict(record), colors=_colors)
        if on_github():
            text = workflow_commands(record, text)
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


class _Stderr:
    """A file-like that always writes to the current sys.stderr."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "warn": WARNING, "error": 40, "exception": 40,
           "critical": 50}


class _Lazy:
    """A logger that sets the log up only when a message is at an enabled level (and imports
    structlog, ~0.1 s, only for JSON lines): `orch -q build` logs nothing and never pays for it."""

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._logger: Any = None

    def _real(self) -> Any:
        if self._logger is None:
            global _pending
            if _pending is not None:
                _apply(**_pending)
                _pending = None
            if _applied_format is LogFormat.json:
                import structlog

                self._logger = structlog.get_logger("orch", **self._context)
            else:
                self._logger = _Console(self._context)
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
