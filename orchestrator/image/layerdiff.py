"""Two layers compared file by file, as diffoci does: the paths added, removed and changed
(content, size, mode, owner, mtime, link target), read from the two uncompressed tar streams
as they arrive (only each file's hash is kept, so memory stays flat whatever the layer's size)."""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from dataclasses import dataclass
from typing import IO

CHUNK = 1 << 20


@dataclass(frozen=True)
class Item:
    """One tar member, as much of it as decides whether two layers hold the same file."""

    kind: str  # file | dir | symlink | hardlink | other
    size: int
    mode: int
    owner: tuple[int, int]
    mtime: int
    link: str
    sha256: str


@dataclass(frozen=True)
class Change:
    """A path that differs between two layers: added, removed or changed, and as it was in each."""

    path: str
    what: str  # added | removed | changed
    before: Item | None
    after: Item | None

    @property
    def details(self) -> list[str]:
        """What differs in a changed path: content, size, mode, owner, mtime, link, kind."""
        if self.before is None or self.after is None:
            return []
        a, b = self.before, self.after
        return [name for name, differs in (
            ("kind", a.kind != b.kind), ("content", a.sha256 != b.sha256), ("size", a.size != b.size),
            ("mode", a.mode != b.mode), ("owner", a.owner != b.owner), ("mtime", a.mtime != b.mtime),
            ("link", a.link != b.link)) if differs]

    def line(self) -> str:
        if self.what == "added" and self.after is not None:
            return f"added    {self.path}  ({self.after.size} bytes)"
        if self.what == "removed" and self.before is not None:
            return f"removed  {self.path}  ({self.before.size} bytes)"
        assert self.before is not None and self.after is not None
        sizes = f"{self.before.size} -> {self.after.size} bytes" if self.before.size != self.after.size \
            else f"{self.after.size} bytes"
        times = f", mtime {self.before.mtime} -> {self.after.mtime}" if "mtime" in self.details else ""
        return f"changed  {self.path}  ({sizes}; {', '.join(self.details)}{times})"


def _kind(member: tarfile.TarInfo) -> str:
    return ("file" if member.isreg() else "dir" if member.isdir() else "symlink" if member.issym()
            else "hardlink" if member.islnk() else "other")


def tar_items(stream: IO[bytes]) -> dict[str, Item]:
    """Every member of an uncompressed tar stream by its path from the root ("/etc/passwd")."""
    items: dict[str, Item] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            digest = hashlib.sha256()
            if member.isreg():
                handle = tar.extractfile(member)
                while handle is not None and (chunk := handle.read(CHUNK)):
                    digest.update(chunk)
            path = "/" + posixpath.normpath("/" + member.name).lstrip("/")
            items[path.rstrip("/") or "/"] = Item(_kind(member), member.size, member.mode, (member.uid, member.gid),
                                                  int(member.mtime), member.linkname, digest.hexdigest())
    return items


def diff_items(before: dict[str, Item], after: dict[str, Item]) -> list[Change]:
    """The paths that differ, in path order."""
    changes = []
    for path in sorted(set(before) | set(after)):
        a, b = before.get(path), after.get(path)
        if a == b:
            continue
        what = "added" if a is None else "removed" if b is None else "changed"
        changes.append(Change(path, what, a, b))
    return changes


def diff_layers(before: IO[bytes], after: IO[bytes]) -> list[Change]:
    """Two uncompressed layer tars compared: what `after` adds, removes and changes."""
    return diff_items(tar_items(before), tar_items(after))
