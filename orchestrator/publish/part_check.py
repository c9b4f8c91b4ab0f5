"""A part record checked whole before any field is used (publish.parts reads it): every field of
the right type, strings and lists of bounded size, numbers finite, nesting shallow. A record is
data from another machine (an artifact anyone with write access to the run could replace): it is
never trusted to be what `orch build --part` wrote. Each problem names the field, as a key path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 12  # a record nests five levels deep (entries[].steps[].field); anything deeper is not one
MAX_TEXT = 4096  # the longest field orch writes is a label value or a step's instruction
MAX_ITEMS = 1000  # platforms, entries, steps, labels


class Damaged(ValueError):
    """What is wrong with one field, and where."""


def check_record(document: dict[str, Any]) -> None:
    """Damaged naming the first field that is not what orch writes."""
    _depth(document, 0)
    for key, check in FIELDS.items():
        if key in document and document[key] is not None:
            check(document[key], key)


def _depth(value: Any, level: int) -> None:
    if level > MAX_DEPTH:
        raise Damaged(f"nests deeper than {MAX_DEPTH} levels")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    if len(children) > MAX_ITEMS * 4:
        raise Damaged(f"holds a list or object of {len(children)} items")
    for child in children:
        _depth(child, level + 1)


def text(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise Damaged(f"{where} is {_kind(value)}, not a string")
    if len(value) > MAX_TEXT:
        raise Damaged(f"{where} is {len(value)} characters long (at most {MAX_TEXT})")


def optional_text(value: Any, where: str) -> None:
    if value is not None:
        text(value, where)


def number(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Damaged(f"{where} is {_kind(value)}, not a number")
    if not math.isfinite(value) or value < 0:
        raise Damaged(f"{where} is {value}, not a finite number of at least 0")


def whole(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Damaged(f"{where} is {_kind(value)}, not a whole number of at least 0")


def _kind(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list",
             dict: "an object", type(None): "null"}
    shown = json.dumps(value) if isinstance(value, (str, int, float)) and len(str(value)) < 40 else ""
    return f"{names.get(type(value), type(value).__name__)}{' ' + shown if shown else ''}"


def _items(value: Any, where: str, kind: type[list[Any]] | type[dict[str, Any]]) -> None:
    if not isinstance(value, kind):
        raise Damaged(f"{where} is {_kind(value)}, not {'a list' if kind is list else 'an object'}")
    if len(value) > MAX_ITEMS:
        raise Damaged(f"{where} has {len(value)} items (at most {MAX_ITEMS})")


def shape(fields: dict[str, Callable[[Any, str], None]]) -> Callable[[Any, str], None]:
    """An object whose named fields are checked (others, from a newer orch, are left alone)."""
    def check(value: Any, where: str) -> None:
        _items(value, where, dict)
        for key, inner in fields.items():
            if value.get(key) is not None:
                inner(value[key], f"{where}.{key}")
    return check


def list_of(inner: Callable[[Any, str], None]) -> Callable[[Any, str], None]:
    def check(value: Any, where: str) -> None:
        _items(value, where, list)
        for index, item in enumerate(value):
            inner(item, f"{where}[{index}]")
    return check


def text_map(value: Any, where: str) -> None:
    _items(value, where, dict)
    for key, item in value.items():
        text(key, f"{where} key")
        text(item, f"{where}.{key}")


def platform(value: Any, where: str) -> None:
    if isinstance(value, dict):
        shape({"os": text, "architecture": text, "variant": text})(value, where)
    else:
        text(value, where)


def flat(value: Any, where: str) -> None:
    """An object of strings, numbers, booleans or nulls (the checkout's facts)."""
    _items(value, where, dict)
    for key, item in value.items():
        if isinstance(item, str):
            text(item, f"{where}.{key}")
        elif isinstance(item, float):
            number(item, f"{where}.{key}")
        elif item is not None and not isinstance(item, (bool, int)):
            raise Damaged(f"{where}.{key} is {_kind(item)}, not a string")


STEP = shape({"instruction": text, "seconds": number, "started": number, "emulated": lambda v, w: None})
ENTRY = shape({"platform": text, "digest": text, "node": text, "config": text, "state": text,
               "seconds": number, "emulated_seconds": number, "steps": list_of(STEP)})
FIELDS: dict[str, Callable[[Any, str], None]] = {
    "repository": text, "digest": text, "platforms": list_of(platform), "revision": optional_text,
    "profile": optional_text, "labels": text_map, "git": flat, "builder": optional_text, "seconds": number,
    "ci": shape({"provider": text, "pipeline": text, "job": text, "attempt": whole, "runner": text}),
    "entries": list_of(ENTRY), "written": optional_text, "orch": optional_text,
    "reproducible": shape({"source_date_epoch": whole, "buildkit": text_map}),
}
