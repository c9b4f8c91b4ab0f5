"""`orch init --ci X` on a project that has a profile: the profile's text edited in place, not rewritten.

PyYAML, orch's YAML library, keeps no comments, so the profile is edited as text, one top-level
block at a time, and every line outside the blocks edited stays as the user left it (comments,
order, quoting):

* `runners:` gets CI X's table. A flat table (as orch init wrote before one profile served both
  CIs) moves, its lines and comments kept, under the CI it belongs to (authoring.runners.
  flat_owner); a flow-style one (`runners: {linux/arm64: x}`) is written again in block style,
  a comment on its line lost. No `runners:` block: one is added at the end.
* `tags:` gets the metadata-action rules the CI files rely on only when the profile has none.

The edited text is read back by the profile loader before anything is written: an edit that
would not read as the intended tables is an error, never a broken profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import BadInput

if TYPE_CHECKING:
    from orchestrator.profiles.model import Profile

RUNNERS_COMMENT = ("# One runner per platform (CI), a table per CI: the runner that runs each platform natively; "
                   "the others\n# build under QEMU on the CI's amd64 runner. Add your own (self-hosted labels or "
                   "runner tags).")
TAG_RULES = ('  - "type=semver,pattern={{version}}"', '  - "type=semver,pattern={{major}}.{{minor}}"',
             '  - "type=ref,event=branch"', '  - "type=sha"')
_TOP_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)\s*:(?P<rest>.*)$")


def table_lines(table: Mapping[str, str], indent: str) -> list[str]:
    return [f"{indent}{platform}: {label}" for platform, label in table.items()]


def _block(lines: list[str], key: str) -> tuple[int, int] | None:
    """The lines [start, end) of a top-level key's block: its line and the indented, blank and
    comment lines after it, trailing blank and comment lines left to the next key."""
    start = next((i for i, line in enumerate(lines) if (m := _TOP_KEY.match(line)) and m.group("key") == key), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
        end += 1
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1
    return start, end


def with_runner_table(text: str, ci: str, table: Mapping[str, str], current: Mapping[str, Mapping[str, str]],
                      flat_ci: str | None) -> str:
    """The profile with CI `ci`'s runners table, in the per-CI form. `current` is the profile's
    tables by CI; `flat_ci` names the CI its flat table belongs to (None: it has none, or one per CI)."""
    lines = text.splitlines()
    found = _block(lines, "runners")
    added = [f"  {ci}:", *table_lines(table, "    ")]
    if found is None:
        return "\n".join([*lines, *RUNNERS_COMMENT.splitlines(), "runners:", *added]) + "\n"
    start, end = found
    match = _TOP_KEY.match(lines[start])
    inline = match is not None and match.group("rest").split("#", 1)[0].strip() not in ("", "{}", "null", "~")
    if inline:  # flow style: the tables written again in block style
        body = [line for other, rows in current.items() for line in [f"  {other}:", *table_lines(rows, "    ")]]
    elif flat_ci is not None:  # a flat table: its lines, comments included, under its CI
        body = [f"  {flat_ci}:", *(f"  {line}" if line.strip() else line for line in lines[start + 1:end])]
    else:
        body = lines[start + 1:end]
    return "\n".join([*lines[:start], "runners:", *body, *added, *lines[end:]]) + "\n"


def with_tag_rules(text: str) -> str:
    """The profile with the CI files' tag rules at the end (only called when it has no tags:)."""
    return text.rstrip("\n") + "\n" + "\n".join(["tags:", *TAG_RULES]) + "\n"


def profile_with_ci(path: Path, current: Profile, ci: str, table: Mapping[str, str] | None, project: Path) -> str:
    """The text of the profile at `path` with CI `ci`'s runners `table` (None: none to add) and,
    when it has none, the tag rules; read back before it is written."""
    from orchestrator.authoring.runners import flat_owner, is_nested
    from orchestrator.profiles import load_text

    edited = path.read_text()
    runners = dict(current.runners or {})
    nested = is_nested(runners)
    flat_ci = flat_owner(project) if runners and not nested else None
    tables: dict[str, Any] = runners if nested else ({flat_ci: runners} if flat_ci else {})
    if table is not None:
        edited = with_runner_table(edited, ci, table, tables, flat_ci)
        tables = {**tables, ci: dict(table)}
    if current.tags is None:
        edited = with_tag_rules(edited)
    try:
        after: Profile | None = load_text(edited, path)
    except BadInput:
        after = None
    if after is None or (table is not None and dict(after.runners or {}) != tables) or (
            current.tags is None and not after.tags):
        rows = ", ".join(f"{platform}: {label}" for platform, label in (table or {}).items())
        raise BadInput(f'"{path}" could not be edited in place to add {ci}\'s runners table ({{{rows}}}) and keep '
                       "the rest as written", fix=f"add `runners: {{{ci}: {{{rows}}}}}` to it yourself and run orch "
                       "init again, or pass --force to write the profile anew")
    return edited
