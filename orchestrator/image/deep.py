"""`orch verify --deep`: read the binaries and check they match each platform.

For every image entry: fetch its manifest and config, pick the executable
the image runs (entrypoint, else cmd, looked up on the image's PATH; a
script leads to its interpreter), or else the first ELF file in the usual bin
directories, and read it out of the layers. Layers are streamed from the
top one down: decompressed and read as tar as they arrive, so memory stays
flat whatever the layer's size (image.layers: gzip, zstd or plain, as their
bytes say). Each layer read is read to its end once, as docker pull reads
it: a layer that does not match its digest or the config's diff_id fails, one
that cannot be unpacked fails under `strict` and is a warning otherwise.
Entries are checked concurrently.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import IO, Any

from orchestrator.image.elf import check_binary, parse_elf
from orchestrator.image.layers import CorruptLayer, LayerStream, UnreadableLayer
from orchestrator.image.model import Entry, Inspection
from orchestrator.image.read import Source
from orchestrator.image.verify import Finding
from orchestrator.model.platform import format_platform
from orchestrator.model.references import Reference
from orchestrator.registry.bounds import HEADER_READ, MAX_BINARY_READ, MAX_LINKS
from orchestrator.registry.client import Registry, RepositoryView
from orchestrator.registry.verified import SizeBound
from orchestrator.status import Status
from orchestrator.workers import parallel_map

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BIN_DIRS = ("bin", "usr/bin", "sbin", "usr/sbin", "usr/local/bin")
CONCURRENCY = 8


BINARY_FIX = ("rebuild this platform's image from a base image for its architecture (docker buildx build "
              "--platform ...), or drop the entry from the list")


def _finding(platform: str, level: Status, message: str) -> Finding:
    return Finding("binary", level, message, platform, BINARY_FIX if level is Status.fail else None)


# -- reading files out of layers --------------------------------------------


@dataclass
class _Hit:
    """A path found in the layers: a file's first bytes, or the target of a link to follow."""

    kind: str  # file | link
    data: bytes = b""
    target: str = ""


def _norm(name: str) -> str:
    """A tar member name as a path from the root without the leading slash: "./bin/sh" -> "bin/sh"."""
    return posixpath.normpath("/" + name).lstrip("/")


@dataclass
class _Layers:
    """An image's layers (top one last) with the config's diff_ids, read through `open_blob`;
    `checked` holds the layers read to their end once (not read whole again)."""

    layers: list[dict[str, Any]]
    diff_ids: list[str]
    open_blob: Callable[[str], IO[bytes]]
    checked: set[str] = field(default_factory=set)

    def members(self, index: int) -> Generator[tuple[tarfile.TarFile, tarfile.TarInfo, LayerStream], None, None]:
        layer = self.layers[index]
        diff_id = self.diff_ids[index] if index < len(self.diff_ids) else None
        raw = self.open_blob(layer["digest"])
        size = layer.get("size")
        if isinstance(size, int) and size >= 0:  # an endless answer stops at the size the manifest gives
            raw = SizeBound(raw, size, f"layer {layer['digest'][:19]}", "the registry")  # type: ignore[assignment]
        stream = LayerStream(raw, layer.get("mediaType", ""), layer["digest"], diff_id)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
                for member in archive:
                    yield archive, member, stream
            self.finish(stream)
        except tarfile.TarError as exc:
            raise UnreadableLayer(f"layer {layer['digest'][:19]}: not a tar ({exc})") from None
        finally:
            stream.close()

    def finish(self, stream: LayerStream) -> None:
        if stream.digest not in self.checked:
            stream.finish()
            self.checked.add(stream.digest)


def _scan(layers: _Layers, want: Callable[[str], bool]) -> tuple[str, _Hit] | None:
    hidden: set[str] = set()
    opaque: set[str] = set()
    for index in reversed(range(len(layers.layers))):
        found: tuple[str, _Hit] | None = None
        layer_hidden: set[str] = set()
        layer_opaque: set[str] = set()
        members = layers.members(index)
        for archive, member, stream in members:
            path = _norm(member.name)
            base = posixpath.basename(path)
            parent = posixpath.dirname(path)
            if base == ".wh..wh..opq":
                layer_opaque.add(parent)
                continue
            if base.startswith(".wh."):
                layer_hidden.add(posixpath.join(parent, base[4:]))
                continue
            if path in hidden or any(path.startswith(d + "/") for d in opaque | hidden):
                continue
            if not want(path):
                continue
            found = _hit(archive, member, path, parent)
            if found is not None:
                layers.finish(stream)  # the rest of this layer is read (once) before it is trusted
                members.close()
                break
        if found is not None:
            return found
        hidden |= layer_hidden
        opaque |= layer_opaque
    return None


def _hit(archive: tarfile.TarFile, member: tarfile.TarInfo, path: str, parent: str) -> tuple[str, _Hit] | None:
    if member.issym():
        target = member.linkname
        return path, _Hit("link", target=_norm(target if target.startswith("/") else posixpath.join(parent, target)))
    if member.islnk():
        return path, _Hit("link", target=_norm(member.linkname))
    if member.isfile():
        handle = archive.extractfile(member)
        limit = MAX_BINARY_READ if member.size <= MAX_BINARY_READ else HEADER_READ
        return path, _Hit("file", data=handle.read(limit) if handle else b"")
    return None


def follow(layers: _Layers, want: Callable[[str], bool]) -> tuple[list[str], _Hit] | None:
    """The top-most file for which want(path) holds, following symlinks and hardlinks.

    Returns the chain of paths (the first is the one asked for) and the file.
    """
    chain: list[str] = []
    predicate = want
    for _ in range(MAX_LINKS + 1):
        found = _scan(layers, predicate)
        if found is None:
            return None
        path, hit = found
        chain.append(path)
        if hit.kind == "file":
            return chain, hit
        target = hit.target
        predicate = target.__eq__  # then the path the link names, exactly
    return None


# -- choosing what to check --------------------------------------------------


def executable_candidates(config: dict[str, Any]) -> tuple[str, list[str]]:
    """(what the image runs, the paths it may be at) from the image config."""
    runtime = config.get("config") or {}
    argv = runtime.get("Entrypoint") or runtime.get("Cmd") or []
    source = "entrypoint" if runtime.get("Entrypoint") else "cmd"
    if not argv:
        return "", []
    program = argv[0]
    if "/" in program:
        base = program if program.startswith("/") else posixpath.join(runtime.get("WorkingDir") or "/", program)
        return f"{source} {program}", [_norm(base)]
    path_var = next((e.split("=", 1)[1] for e in runtime.get("Env") or [] if e.startswith("PATH=")), DEFAULT_PATH)
    return f"{source} {program}", [_norm(posixpath.join(d, program)) for d in path_var.split(":") if d]


def check_entry(entry: Entry, source: Source, strict: bool = False) -> Finding:
    """The "binary" finding of one entry. A layer that cannot be unpacked fails under `strict`
    (and is a warning otherwise); one that does not match its digest or diff_id always fails."""
    platform = entry.platform or entry.config
    label = format_platform(platform) if platform else entry.digest[:19]
    if platform is None:
        return _finding(label, Status.skip, "no platform to check against")
    config = entry.config_raw or {}
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config.get("rootfs"), dict) else None
    layers = _Layers(source.manifest(entry.digest).get("layers") or [],
                     [d for d in diff_ids if isinstance(d, str)] if isinstance(diff_ids, list) else [],
                     source.open_blob)

    what, candidates = executable_candidates(config)
    try:
        if candidates:
            wanted = set(candidates)
            found = follow(layers, wanted.__contains__)
            if found is None:
                return _finding(label, Status.fail, f"the image runs {what}, which is not in its layers "
                                                    f"(looked for /{candidates[0]})")
            chain, hit = found
            if hit.data.startswith(b"#!"):
                interpreter = hit.data[2:].split(b"\n", 1)[0].strip().split(b" ")[0].decode(errors="replace")
                found = follow(layers, {_norm(interpreter)}.__contains__)
                if found is None:
                    return _finding(label, Status.fail,
                                    f"{what} is a script for {interpreter}, which is not in the image")
                chain2, hit = found
                what = f"{what} (a script run by {interpreter})"
                chain = chain + chain2
        else:
            found = follow(layers, _elf_in_bin_dirs)
            if found is None:
                return _finding(label, Status.warn, "no entrypoint or cmd, and no ELF file in the bin directories")
            chain, hit = found
            what = "no entrypoint or cmd; checked the first binary found"
    except CorruptLayer as exc:
        return _finding(label, Status.fail, str(exc))
    except UnreadableLayer as exc:
        return _finding(label, Status.fail if strict else Status.warn, f"cannot read the layers: {exc}")
    info = parse_elf(hit.data)
    shown = " -> ".join("/" + p for p in chain)
    if info is None:
        return _finding(label, Status.warn, f"{what}: {shown} is not an ELF binary; nothing to check")
    problem = check_binary(info, platform)
    if problem:
        return _finding(label, Status.fail, f"{what}: {shown}: {problem}")
    return _finding(label, Status.ok, f"{what}: {shown} is {info.describe()}")


def _elf_in_bin_dirs(path: str) -> bool:
    return posixpath.dirname(path) in BIN_DIRS


def check_binaries(inspection: Inspection, source: Source | Reference, strict: bool = False) -> list[Finding]:
    """A finding of the check "binary" per image entry, CONCURRENCY entries at a time."""
    if isinstance(source, Reference):
        source = RepositoryView(Registry.of(source), source.repository)
    return parallel_map(lambda e: check_entry(e, source, strict), list(inspection.entries), CONCURRENCY)
