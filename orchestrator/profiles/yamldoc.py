"""Profile YAML read with line numbers for every key, bounded in size and expansion.

What a file parses to is kept in orch's state directory, keyed by the file's path, size and
mtime: an unchanged profile is read without importing PyYAML (~11 ms of every build's start).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.profiles.model import MAX_PROFILE_BYTES, MAX_YAML_NODES, ProfileError
from orchestrator.state import read_record, write_record


@dataclass
class Document:
    """A profile file, parsed: its data, and the line of every key path so errors can name it."""

    source: str
    data: Any
    lines: dict[str, int]

    def line(self, key_path: str) -> int | None:
        while key_path:
            if key_path in self.lines:
                return self.lines[key_path]
            key_path = key_path.rpartition(".")[0] if "." in key_path else key_path.rpartition("[")[0]
        return self.lines.get("")


def read_yaml(path: Path, shown: str) -> Document:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ProfileError(shown, None, "", f"cannot read the profile: {exc.strerror}") from None
    size = stat.st_size
    resolved = str(path.resolve())
    key = {"path": resolved, "size": size, "mtime_ns": stat.st_mtime_ns}
    name = f"profile-cache/{zlib.crc32(resolved.encode()):08x}.json"
    cached = read_record(name)
    if isinstance(cached, dict) and cached.get("key") == key:
        return Document(shown, cached["data"], cached["lines"])
    document = _parse(path, shown, size)
    try:
        write_record(name, {"key": key, "data": document.data, "lines": document.lines})
    except (OSError, TypeError, ValueError):
        pass  # a read-only state directory, or values JSON cannot hold (dates): parse every time
    return document


def _parse(path: Path, shown: str, size: int) -> Document:
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(shown, None, "", f"file is {size} bytes; a profile may be at most {MAX_PROFILE_BYTES}",
                           fix="a profile is a short YAML mapping: check that this is the right file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProfileError(shown, None, "", "file is not UTF-8 text", fix="save the profile as UTF-8 YAML") from None
    return document_of(text, shown)


def document_of(text: str, shown: str) -> Document:
    """A profile's text, read as a profile file is (orch init checks an edit with it before writing)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ProfileError(shown, line, "", f"malformed YAML: {exc.problem}",
                           fix="fix the YAML syntax at that line (indentation, quotes, colons)") from None
    except yaml.YAMLError as exc:
        raise ProfileError(shown, None, "", f"malformed YAML: {exc}") from None
    except RecursionError:
        raise ProfileError(shown, None, "", "YAML nested too deeply", fix="a profile needs a few levels at most") from None
    if node is None:
        raise ProfileError(shown, None, "", "the profile is empty",
                           fix="write a YAML mapping, at least `platforms: [linux/amd64, linux/arm64]`")
    lines: dict[str, int] = {}
    budget = [MAX_YAML_NODES]
    data = _to_python(node, "", lines, budget, shown)
    return Document(shown, data, lines)


def _to_python(node: Any, path: str, lines: dict[str, int], budget: list[int], shown: str) -> Any:
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        raise ProfileError(shown, node.start_mark.line + 1, path,
                           f"the YAML expands to more than {MAX_YAML_NODES} values (aliases?)",
                           fix="a profile is small: write values out instead of nesting aliases")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ProfileError(shown, key_node.start_mark.line + 1, path, "keys must be plain strings")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ProfileError(shown, key_node.start_mark.line + 1, path, "YAML merge keys (<<) are not supported",
                                   fix="use `extends: OTHER_PROFILE` to build on another profile")
            key = key_node.value
            child = f"{path}.{key}" if path else key
            if key in out:
                raise ProfileError(shown, key_node.start_mark.line + 1, child, f'duplicate key "{key}"',
                                   fix="keep one of them")
            lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, lines, budget, shown)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, f"{path}[{i}]", lines, budget, shown) for i, item in enumerate(node.value)]
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ProfileError(shown, node.start_mark.line + 1, path, f"bad value: {exc}") from None
