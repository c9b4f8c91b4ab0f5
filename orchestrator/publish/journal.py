"""The promotion journal: a record in the state directory while tags move, so a promotion cut
short (kill -9, a lost machine) is found and repaired later.

`begin` writes the record (the verified digest, each tag and where it pointed, and its writer:
host, pid and the process's start time) before the first tag moves; `end` removes it after the
last is confirmed (or put back). A record left behind by a process that is gone is an unfinished
promotion, whatever process holds its pid now (the start time tells them apart), and records are
matched by the registry's canonical name (localhost:5000 and 127.0.0.1:5000 are one registry): any later publish to one of its repositories,
`orch verify` and `orch doctor` say which of its tags point where, and a publish that moves all
of its tags to one verified digest repairs it and says so. If the record cannot be written the
publish goes on (the state directory is a cache; state.write_record says so once).

Independent of the journal (a CI runner's disk is thrown away), a publish that finds its tags on
different digests before it starts says so (`split_before`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.model.references import Reference, canonical_name, parse_reference
from orchestrator.state import forget_record, read_record, state_dir, write_record

FOLDER = "promotions"


@dataclass(frozen=True)
class Unfinished:
    """A journal record of tags moving, as read back: the digest they were moving to, each tag and
    where it pointed before, and the process that wrote it."""

    name: str  # the record's name under the state directory
    digest: str  # the verified index the tags were moving to
    tags: tuple[tuple[Reference, str | None], ...]  # each tag and where it pointed before
    pid: int
    started: float
    host: str | None = None  # the machine that wrote it (None: an older record)
    pid_started: int | None = None  # the writer's start time, in clock ticks since boot

    @property
    def repositories(self) -> set[str]:
        return {canonical_name(tag.name) for tag, _ in self.tags}

    def where(self, head: Callable[[Reference], str | None]) -> str:
        """Each tag and where it points now (`head` reads it), for the user."""
        lines = []
        for tag, before in self.tags:
            try:
                now = head(tag)
            except Exception as exc:  # a registry down must not hide the rest
                now = f"(unreadable: {exc})"
            state = "moved" if now == self.digest else "not moved" if now == before else "moved elsewhere since"
            lines.append(f"{tag} -> {now or '(no such tag)'} ({state})")
        return "; ".join(lines)

    def describe(self, head: Callable[[Reference], str | None] | None = None) -> str:
        """What it left, each tag read where it points now (`head`: the registry, by default)."""
        if head is None:
            from orchestrator.registry.client import Registry

            head = lambda tag: Registry.of(tag).head_digest(tag)  # noqa: E731
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return (f"a promotion to {self.digest[:19]} (orch process {self.pid}, {when}) stopped before its last tag "
                f"moved: {self.where(head)}")


def begin(moves: Sequence[tuple[str, Sequence[tuple[Reference, str | None]]]]) -> str | None:
    """Record the promotion about to move these tags (digest, [(tag, before)]); its record name."""
    name = f"{FOLDER}/{os.getpid()}-{time.time_ns()}.json"
    record = {"pid": os.getpid(), "started": time.time(), "host": os.uname().nodename,
              "pid_started": process_start(os.getpid()),
              "promotions": [{"digest": digest, "tags": [[str(tag), before] for tag, before in tags]}
                             for digest, tags in moves]}
    return name if write_record(name, record) else None


def end(name: str | None) -> None:
    if name is not None:
        forget_record(name)


def unfinished(repositories: Iterable[str] | None = None) -> list[Unfinished]:
    """Promotions whose process is gone and whose record is still there, on these repositories
    (REGISTRY/REPO names; None: all)."""
    wanted = {canonical_name(r) for r in repositories} if repositories is not None else None
    found = []
    for path in sorted((state_dir() / FOLDER).glob("*.json")) if (state_dir() / FOLDER).is_dir() else []:
        record = read_record(f"{FOLDER}/{path.name}")
        for entry in _entries(record):
            if _writer_running(entry):
                continue  # another publish at work right now
            if wanted is None or entry.repositories & wanted:
                found.append(replace(entry, name=f"{FOLDER}/{path.name}"))
    return found


def repaired(record: Unfinished, now_at: Mapping[Reference, str | None]) -> bool:
    """Whether every tag of the unfinished promotion now points at one digest (`now_at`: where
    this publish left each tag it moved); its record is removed if so."""
    digests = {now_at.get(tag, "?") for tag, _ in record.tags}
    if len(digests) == 1 and "?" not in digests and None not in digests:
        forget_record(record.name)
        return True
    return False


def split_before(tags: Sequence[Reference], befores: Sequence[str | None]) -> str | None:
    """Tags that point at different digests before a publish (an earlier one stopped halfway?)."""
    existing = {str(tag): before for tag, before in zip(tags, befores, strict=True) if before}
    if len(set(existing.values())) < 2:
        return None
    return ", ".join(f"{tag} -> {digest[:19]}" for tag, digest in existing.items())


def _entries(record: Any) -> list[Unfinished]:
    """A record's promotions, whatever of it can be read (a damaged record is skipped)."""
    if not isinstance(record, dict):
        return []
    out = []
    for promotion in record.get("promotions") or []:
        try:
            tags = tuple((parse_reference(str(tag)), before if isinstance(before, str) else None)
                         for tag, before in promotion["tags"])
            host, pid_started = record.get("host"), record.get("pid_started")
            out.append(Unfinished("", str(promotion["digest"]), tags, int(record["pid"]), float(record["started"]),
                                  host if isinstance(host, str) else None,
                                  pid_started if isinstance(pid_started, int) else None))
        except Exception:  # KeyError, TypeError, ValueError, BadInput from a damaged record
            continue
    return out


def process_start(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (/proc/PID/stat's 22nd field), or
    None where that cannot be read: with the pid it names one process, never a later one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()  # after the command name, which may hold spaces
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _writer_running(entry: Unfinished) -> bool:
    """Whether the process that wrote the record is still at work: on this host, its pid alive
    and started when the writer did (a reused pid is another process)."""
    if entry.host is not None and entry.host != os.uname().nodename:
        return False  # another machine's record in a shared state directory: it cannot be asked
    if not _alive(entry.pid):
        return False
    return entry.pid_started is None or process_start(entry.pid) in (None, entry.pid_started)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
