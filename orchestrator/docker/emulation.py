"""QEMU emulation: the binfmt_misc handlers that let this host run foreign build steps.

A builder's platform list under-reports what emulation can do (buildx lists
no linux/arm/v7, arm/v6 or 386 on a host where they build fine), so orch
reads the handlers themselves. The F ("fix binary") flag matters: without
it the kernel looks the interpreter up inside each container, where it does
not exist, and RUN steps fail with "exec format error".
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import EnvironmentMissing
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_table import QEMU_FOR_ARCH

if TYPE_CHECKING:
    from orchestrator.docker.runner import Engine

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class BinfmtHandler:
    """One binfmt_misc handler, as the kernel lists it: the interpreter that runs the foreign
    binaries it matches, and its flags (without F, RUN steps in containers cannot find it)."""

    name: str  # e.g. "qemu-aarch64"
    enabled: bool
    interpreter: str
    flags: str

    @property
    def fix_binary(self) -> bool:
        return "F" in self.flags

    @property
    def qemu_arch(self) -> str | None:
        return self.name.removeprefix("qemu-") if self.name.startswith("qemu-") else None


def read_handlers(binfmt_dir: Path = BINFMT_DIR, only: Iterable[str] | None = None) -> list[BinfmtHandler] | None:
    """All registered handlers (or those of the names in `only`: a build reads the two or three it
    needs, not the forty a Debian host registers), or None when binfmt_misc is not mounted."""
    if not (binfmt_dir / "status").exists():
        return None
    handlers = []
    entries = sorted(binfmt_dir.iterdir()) if only is None else [binfmt_dir / name for name in sorted(set(only))]
    for entry in entries:
        if entry.name in {"status", "register"} or not entry.is_file():
            continue
        try:
            handlers.append(parse_handler(entry.name, entry.read_text()))
        except OSError:
            continue
    return handlers


def parse_handler(name: str, text: str) -> BinfmtHandler:
    enabled = False
    interpreter = ""
    flags = ""
    for line in text.splitlines():
        if line.strip() == "enabled":
            enabled = True
        elif line.startswith("interpreter "):
            interpreter = line.split(" ", 1)[1].strip()
        elif line.startswith("flags:"):
            flags = line.split(":", 1)[1].strip()
    return BinfmtHandler(name=name, enabled=enabled, interpreter=interpreter, flags=flags)


# What a CPU of each `uname -m` runs without emulation (QEMU handler names).
NATIVE_QEMU = {"x86_64": {"x86_64", "i386"}, "aarch64": {"aarch64", "arm"}, "armv7l": {"arm"}}


def qemu_for(platform: Platform) -> str | None:
    """The binfmt handler a Linux platform needs, e.g. linux/arm/v7 -> arm; None when none exists."""
    return QEMU_FOR_ARCH.get(platform.architecture) if platform.os == "linux" else None


def handler_state(qemu: str, machine: str, handlers: list[BinfmtHandler]) -> str:
    """native | ok | missing | disabled | no F flag, for one QEMU handler name."""
    if qemu in NATIVE_QEMU.get(machine, set()):
        return "native"
    handler = next((h for h in handlers if h.qemu_arch == qemu), None)
    if handler is None:
        return "missing"
    if not handler.enabled:
        return "disabled"
    return "ok" if handler.fix_binary else "no F flag"


_STATE_REASON = {
    "missing": "no qemu-{} binfmt handler",
    "disabled": "qemu-{} handler is disabled",
    "no F flag": "qemu-{} handler lacks the F flag",
}


def missing_emulators(platforms: Iterable[Platform], machine: str,
                      handlers: list[BinfmtHandler] | None) -> dict[Platform, str]:
    """Foreign platforms this host cannot run: {platform: why}."""
    out = {}
    for platform in platforms:
        qemu = qemu_for(platform)
        if qemu is None:
            out[platform] = (f"no emulator runs {platform.os} build steps on this Linux host; build it on a "
                             f"{platform.os} node" if platform.os != "linux"
                             else f"no QEMU emulator is known for the {platform.architecture} architecture")
            continue
        if handlers is None:
            if qemu not in NATIVE_QEMU.get(machine, set()):
                out[platform] = "binfmt_misc is not mounted"
            continue
        state = handler_state(qemu, machine, handlers)
        if state in _STATE_REASON:
            out[platform] = _STATE_REASON[state].format(qemu)
    return out


def install_command(platforms: Iterable[Platform]) -> list[str]:
    """The standard installer for just these platforms' emulators."""
    arches = sorted({p.architecture for p in platforms})
    return ["run", "--privileged", "--rm", "tonistiigi/binfmt", "--install", ",".join(arches)]


def ensure_emulators(engine: Engine, platforms: Iterable[Platform], install: bool, machine: str | None = None) -> None:
    """Every foreign platform has a working QEMU handler (installed first when asked), else exit 3."""
    machine = machine or os.uname().machine
    wanted = list(platforms)
    handler_names = {f"qemu-{qemu}" for qemu in map(qemu_for, wanted) if qemu}
    missing = missing_emulators(wanted, machine, read_handlers(only=handler_names))
    if missing and install:
        engine.cli(*install_command(missing))
        missing = missing_emulators(wanted, machine, read_handlers(only=handler_names))
    if missing:
        names = [format_platform(p) for p in missing]
        listed = "; ".join(f"{format_platform(p)}: {why}" for p, why in missing.items())
        raise EnvironmentMissing(
            f"this host cannot run the build steps of {', '.join(names)} ({listed})",
            fix="install the emulators: `docker run --privileged --rm tonistiigi/binfmt --install "
                f"{','.join(sorted({p.architecture for p in missing}))}`, or the distribution's "
                "qemu-user-static package (Debian: apt-get install qemu-user-static binfmt-support)",
        )
