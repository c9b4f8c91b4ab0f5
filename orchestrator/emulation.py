"""What the kernel can run through QEMU: binfmt_misc handlers.

A builder's platform list under-reports what emulation can do (buildx lists
no linux/arm/v7, arm/v6 or 386 on a host where they build fine), so orch
reads the handlers themselves. The F ("fix binary") flag matters: without
it the kernel looks the interpreter up inside each container, where it does
not exist, and RUN steps fail with "exec format error".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class BinfmtHandler:
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


def read_handlers(binfmt_dir: Path = BINFMT_DIR) -> list[BinfmtHandler] | None:
    """All registered handlers, or None when binfmt_misc is not mounted."""
    if not (binfmt_dir / "status").exists():
        return None
    handlers = []
    for entry in sorted(binfmt_dir.iterdir()):
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
