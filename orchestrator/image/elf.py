"""Just enough ELF to tell which CPU a binary is for ("file is your friend").

Reads the header (class, endianness, machine), whether it is static, and for
32-bit ARM the build attributes' Tag_CPU_arch, so an ARMv7 binary in an
arm/v6 image is caught (it runs under QEMU, whose default CPU is v7, and
dies with "Illegal instruction" on a Raspberry Pi 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from orchestrator.model.platform import Platform

ELF_MAGIC = b"\x7fELF"
# e_machine values (System V ABI) and the Go/OCI architecture each means.
MACHINES = {3: "386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm", 62: "amd64", 183: "arm64",
            243: "riscv64", 258: "loong64"}
# OCI architecture -> (e_machine, bits, little endian).
EXPECTED = {
    "amd64": (62, 64, True), "386": (3, 32, True), "arm64": (183, 64, True), "arm": (40, 32, True),
    "ppc64le": (21, 64, True), "ppc64": (21, 64, False), "s390x": (22, 64, False), "riscv64": (243, 64, True),
    "mips64le": (8, 64, True), "mips64": (8, 64, False), "loong64": (258, 64, True),
}
# Tag_CPU_arch values of the ARM EABI build attributes.
ARM_ARCH_NAMES = {0: "pre-v4", 1: "v4", 2: "v4T", 3: "v5T", 4: "v5TE", 5: "v5TEJ", 6: "v6", 7: "v6KZ", 8: "v6T2",
                  9: "v6K", 10: "v7", 11: "v6-M", 12: "v6S-M", 13: "v7E-M", 14: "v8", 15: "v8-R"}
# What each arm variant's CPUs run. ARM1176 (Pi 1, Zero) is v6KZ: no Thumb-2 (v6T2).
ARM_RUNS = {
    "v5": {0, 1, 2, 3, 4, 5},
    "v6": {0, 1, 2, 3, 4, 5, 6, 7, 9},
    "v7": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
    "v8": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14},
}
SHT_ARM_ATTRIBUTES = 0x70000003
PT_INTERP = 3
TAG_CPU_ARCH = 6
TAG_ABI_VFP_ARGS = 28


@dataclass(frozen=True)
class ElfInfo:
    """What an ELF header says about the CPU a binary is for, enough to compare with the image's
    platform."""

    machine: int
    bits: int
    little_endian: bool
    static: bool
    arm_arch: int | None = None  # Tag_CPU_arch, 32-bit ARM only
    arm_hard_float: bool | None = None

    @property
    def architecture(self) -> str:
        name = MACHINES.get(self.machine, f"machine {self.machine}")
        if name in ("ppc64", "mips") and self.little_endian:
            return "ppc64le" if name == "ppc64" else "mips64le"
        if name == "mips" and self.bits == 64:
            return "mips64"
        return name

    def describe(self) -> str:
        parts = [f"ELF {self.bits}-bit {'LSB' if self.little_endian else 'MSB'} {self.architecture}"]
        if self.arm_arch is not None:
            parts.append(f"ARM{ARM_ARCH_NAMES.get(self.arm_arch, str(self.arm_arch))}")
            if self.arm_hard_float is not None:
                parts.append("hard-float" if self.arm_hard_float else "soft-float")
        parts.append("static" if self.static else "dynamic")
        return ", ".join(parts)


def parse_elf(data: bytes) -> ElfInfo | None:
    """None when data is not ELF. Only the header is needed; the ARM attributes
    need the section headers too (at the end of the file)."""
    if len(data) < 52 or not data.startswith(ELF_MAGIC):
        return None
    bits = 64 if data[4] == 2 else 32
    little = data[5] == 1
    e = "<" if little else ">"
    machine = struct.unpack_from(e + "H", data, 18)[0]
    if bits == 64:
        phoff, shoff = struct.unpack_from(e + "QQ", data, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", data, 54)
    else:
        phoff, shoff = struct.unpack_from(e + "II", data, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", data, 42)
    static = True
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + 4 <= len(data) and struct.unpack_from(e + "I", data, at)[0] == PT_INTERP:
            static = False
    arm_arch = hard_float = None
    if machine == 40 and bits == 32:
        arm_arch, hard_float = _arm_attributes(data, e, shoff, shentsize, shnum)
    return ElfInfo(machine, bits, little, static, arm_arch, hard_float)


def _arm_attributes(data: bytes, e: str, shoff: int, shentsize: int, shnum: int) -> tuple[int | None, bool | None]:
    for i in range(shnum):
        at = shoff + i * shentsize
        if at + 40 > len(data):
            return None, None
        sh_type = struct.unpack_from(e + "I", data, at + 4)[0]
        if sh_type == SHT_ARM_ATTRIBUTES:
            offset, size = struct.unpack_from(e + "II", data, at + 16)
            return _parse_aeabi(data[offset:offset + size], e)
    return None, None


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value, pos


def _parse_aeabi(section: bytes, e: str) -> tuple[int | None, bool | None]:
    """Tag_CPU_arch and Tag_ABI_VFP_args from a .ARM.attributes section."""
    if not section or section[0:1] != b"A":
        return None, None
    arch = vfp = None
    pos = 1
    while pos + 4 <= len(section):
        length = struct.unpack_from(e + "I", section, pos)[0]
        end = min(pos + length, len(section))
        name_end = section.index(b"\0", pos + 4)
        vendor = section[pos + 4:name_end]
        sub = name_end + 1
        while vendor == b"aeabi" and sub + 5 <= end:
            tag, size = section[sub], struct.unpack_from(e + "I", section, sub + 1)[0]
            attr, attr_end = sub + 5, min(sub + size, end)
            if tag == 1:  # Tag_File: attributes for the whole file
                while attr < attr_end:
                    key, attr = _uleb(section, attr)
                    if key in (4, 5, 67) or (key > 32 and key % 2 == 1):
                        attr = section.index(b"\0", attr) + 1  # string value
                        continue
                    if key == 32:
                        _, attr = _uleb(section, attr)
                        attr = section.index(b"\0", attr) + 1
                        continue
                    value, attr = _uleb(section, attr)
                    if key == TAG_CPU_ARCH:
                        arch = value
                    elif key == TAG_ABI_VFP_ARGS:
                        vfp = value == 1
            sub += max(size, 1)
        pos += max(length, 1)
    return arch, vfp


def check_binary(info: ElfInfo, platform: Platform) -> str | None:
    """Why this binary cannot run on the platform; None when it can."""
    expected = EXPECTED.get(platform.architecture)
    if expected is None:
        return None
    machine, bits, little = expected
    if (info.machine, info.bits, info.little_endian) != (machine, bits, little):
        return f"it is {info.describe()}, not a {platform.architecture} binary"
    if platform.architecture == "arm" and info.arm_arch is not None:
        variant = platform.variant or "v7"
        if info.arm_arch not in ARM_RUNS.get(variant, ARM_RUNS["v7"]):
            name = ARM_ARCH_NAMES.get(info.arm_arch, str(info.arm_arch))
            return f"it is built for ARM{name}, which an arm/{variant} CPU cannot run ({info.describe()})"
    return None
