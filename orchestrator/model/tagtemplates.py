"""The small template language metadata-action's tag rules are written in, and what it needs.

* Mustaches: `{{name}}` (spaces allowed inside), and helper calls with arguments,
  `{{date 'YYYYMMDD' tz='Asia/Tokyo'}}`. A quoted argument is text; an unquoted one names a
  value that does not exist (as in handlebars), so a date helper given one uses its default
  ISO format. Anything else is copied as it is.
* Date formats as moment.js writes them: YYYY YY MM M DD D HH H hh h mm m ss s SSS, A a,
  Z ZZ, and [literal text].
* Semantic versions as semver.org defines them (a leading `v` allowed): `parse_semver`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.patterns import on_first_use

_MUSTACHE = on_first_use(r"\{\{\s*(?P<body>[^{}]*?)\s*\}\}")
_ARGUMENT = on_first_use(r"""\s*(?:(?P<key>[A-Za-z_]\w*)=)?(?:'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>[^\s'"]+))""")


def render(template: str, values: Mapping[str, Any]) -> str:
    """`values` maps names to text or to helpers, called with (positional args, keyword args)."""
    def substitute(match: re.Match[str]) -> str:
        name, _, rest = match.group("body").partition(" ")
        value = values.get(name)
        if callable(value):
            positional, named = _arguments(rest, match.group(0))
            return str(value(positional, named))
        if rest.strip():
            raise BadInput(f'"{match.group(0)}": {name} takes no arguments', fix="write {{" + name + "}}")
        if value is None:
            return ""
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    return _MUSTACHE.sub(substitute, template)


def _arguments(text: str, whole: str) -> tuple[list[str | None], dict[str, str | None]]:
    positional: list[str | None] = []
    named: dict[str, str | None] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _ARGUMENT.match(text, position)
        if not match:
            raise BadInput(f'cannot read the arguments of "{whole}"', fix="quote text arguments: 'YYYYMMDD'")
        quoted = match.group("single") if match.group("single") is not None else match.group("double")
        value = quoted  # a bare word names a value that does not exist: None
        if match.group("key"):
            named[match.group("key")] = value
        else:
            positional.append(value)
        position = match.end()
    return positional, named


def is_raw_statement(pattern: str) -> bool:
    """Whether a pattern is exactly `{{raw}}` (spaces allowed): it then keeps pre-releases as written."""
    return re.fullmatch(r"\{\{\s*raw\s*\}\}", pattern) is not None


# -- dates ------------------------------------------------------------------------

_DATE_TOKENS = on_first_use(r"\[[^\]]*\]|YYYY|YY|MM|M|DD|D|HH|H|hh|h|mm|m|ss|s|SSS|A|a|ZZ|Z")


def format_date(moment: datetime, pattern: str | None) -> str:
    """A date written with moment.js's tokens; no pattern: its ISO form (2020-01-10T00:30:00Z)."""
    if pattern is None:
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        offset = moment.strftime("%z")
        return text + ("Z" if offset in ("", "+0000") else f"{offset[:3]}:{offset[3:]}")
    hour12 = moment.hour % 12 or 12
    offset = moment.strftime("%z") or "+0000"
    tokens: dict[str, Callable[[], str]] = {
        "YYYY": lambda: f"{moment.year:04d}", "YY": lambda: f"{moment.year % 100:02d}",
        "MM": lambda: f"{moment.month:02d}", "M": lambda: str(moment.month),
        "DD": lambda: f"{moment.day:02d}", "D": lambda: str(moment.day),
        "HH": lambda: f"{moment.hour:02d}", "H": lambda: str(moment.hour),
        "hh": lambda: f"{hour12:02d}", "h": lambda: str(hour12),
        "mm": lambda: f"{moment.minute:02d}", "m": lambda: str(moment.minute),
        "ss": lambda: f"{moment.second:02d}", "s": lambda: str(moment.second),
        "SSS": lambda: f"{moment.microsecond // 1000:03d}",
        "A": lambda: "AM" if moment.hour < 12 else "PM", "a": lambda: "am" if moment.hour < 12 else "pm",
        "ZZ": lambda: offset, "Z": lambda: f"{offset[:3]}:{offset[3:]}",
    }

    def token(match: re.Match[str]) -> str:
        text = match.group(0)
        return text[1:-1] if text.startswith("[") else tokens[text]()

    return _DATE_TOKENS.sub(token, pattern)


def date_helper(moment: datetime) -> Callable[[list[str | None], dict[str, str | None]], str]:
    """`{{date 'FORMAT' tz='Zone/Name'}}` for one moment (UTC unless tz says)."""
    def helper(positional: list[str | None], named: dict[str, str | None]) -> str:
        unknown = sorted(set(named) - {"tz"})
        if unknown:
            raise BadInput(f"unknown date attribute {unknown[0]}", fix="only tz='Zone/Name' is allowed")
        zone: Any = timezone.utc
        if named.get("tz"):
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                zone = ZoneInfo(str(named["tz"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise BadInput(f'unknown time zone "{named["tz"]}"', fix="use a zone name such as Europe/Paris") from None
        return format_date(moment.astimezone(zone), positional[0] if positional else None)

    return helper


# -- semantic versions ---------------------------------------------------------------

_SEMVER = on_first_use(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


@dataclass(frozen=True)
class SemVer:
    """A semantic version, parsed: a semver rule's pattern renders its values ({{major}},
    {{minor}}...)."""

    raw: str
    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...]
    build: tuple[str, ...]

    @property
    def version(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + (f"-{'.'.join(self.prerelease)}" if self.prerelease else "")

    def values(self) -> dict[str, Any]:
        return {"raw": self.raw, "version": self.version, "major": self.major, "minor": self.minor,
                "patch": self.patch, "prerelease": list(self.prerelease), "build": list(self.build)}


def parse_semver(text: str) -> SemVer | None:
    match = _SEMVER.match(text.strip())
    if not match:
        return None
    return SemVer(text, int(match.group("major")), int(match.group("minor")), int(match.group("patch")),
                  tuple(match.group("prerelease").split(".")) if match.group("prerelease") else (),
                  tuple(match.group("build").split(".")) if match.group("build") else ())
