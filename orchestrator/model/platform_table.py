"""Every name users meet for each platform, and the decisions where sources disagree.

Decisions where sources disagree (also shown by ``orch platforms``):

* ``armel`` is Debian's ARMv5TE soft-float ABI, so orch reads it as
  linux/arm/v5. containerd reads it as arm/v6; both run on v6 and later,
  and v5 is what Debian's armel binaries actually require.
* ``armhf`` is Debian's ARMv7 hard-float ABI: linux/arm/v7. Raspbian's
  armhf is ARMv6 hard-float; say linux/arm/v6 (or ``arm32v6``) for it.
* ``arm`` with no variant is linux/arm/v7, as in containerd; ``armv8l``
  (a 32-bit userland on an ARMv8 CPU) is linux/arm/v7 too, since no image
  publishes arm/v8 for 32-bit.
* ``arm64/v8`` is linux/arm64 (the v8 variant is the default and dropped),
  ``amd64/v1`` is linux/amd64.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from orchestrator.model.platform import Platform
from orchestrator.patterns import on_first_use


@dataclass(frozen=True)
class KnownPlatform:
    """One row of the naming table: every name users meet for one platform."""

    oci: str
    official_prefix: str | None = None
    uname: tuple[str, ...] = ()
    debian: tuple[str, ...] = ()
    go: str | None = None  # GOARCH, or GOARCH/GOARM
    qemu: str | None = None  # binfmt handler name without "qemu-"
    devices: tuple[str, ...] = ()
    notes: str = ""
    extra_aliases: tuple[str, ...] = field(default=())

    @property
    def platform(self) -> Platform:
        os_name, architecture, *variant = self.oci.split("/")
        return Platform(os_name, architecture, variant[0] if variant else None)


KNOWN_PLATFORMS: tuple[KnownPlatform, ...] = (
    KnownPlatform("linux/amd64", "amd64", ("x86_64",), ("amd64",), "amd64", "x86_64",
                  ("PCs and x86 servers",), extra_aliases=("x86-64", "x64")),
    KnownPlatform("linux/arm64", "arm64v8", ("aarch64", "arm64"), ("arm64",), "arm64", "aarch64",
                  ("Raspberry Pi 3/4/5 on a 64-bit OS", "AWS Graviton", "Apple M1/M2 (in a Linux VM)"),
                  notes="= linux/arm64/v8", extra_aliases=("arm64/v8",)),
    KnownPlatform("linux/arm/v5", "arm32v5", ("armv5l", "armv5tel", "armv5tejl"), ("armel",), "arm/5", "arm",
                  ("TS-7700", "old NAS boxes (Marvell Kirkwood)"),
                  notes="Debian armel is ARMv5TE soft-float (containerd reads armel as v6)"),
    KnownPlatform("linux/arm/v6", "arm32v6", ("armv6l",), (), "arm/6", "arm",
                  ("Raspberry Pi 1", "Raspberry Pi Zero / Zero W"),
                  notes="Raspbian's armhf is this (ARMv6 hard-float), not Debian's armhf"),
    KnownPlatform("linux/arm/v7", "arm32v7", ("armv7l", "armv8l"), ("armhf",), "arm/7", "arm",
                  ("Raspberry Pi 2/3/4 on a 32-bit OS", "Odroid XU4", "BeagleBone"),
                  notes="arm with no variant means v7; armv8l (32-bit userland on ARMv8) too",
                  extra_aliases=("arm", "armhf")),
    KnownPlatform("linux/386", "i386", ("i386", "i486", "i586", "i686"), ("i386",), "386", "i386",
                  ("32-bit x86 PCs",), extra_aliases=("x86",)),
    KnownPlatform("linux/ppc64le", "ppc64le", ("ppc64le",), ("ppc64el",), "ppc64le", "ppc64le",
                  ("IBM POWER8/9/10",)),
    KnownPlatform("linux/s390x", "s390x", ("s390x",), ("s390x",), "s390x", "s390x", ("IBM Z, LinuxONE",)),
    KnownPlatform("linux/riscv64", "riscv64", ("riscv64",), ("riscv64",), "riscv64", "riscv64",
                  ("SiFive HiFive, StarFive VisionFive 2",)),
    KnownPlatform("linux/mips64le", "mips64le", (), ("mips64el",), "mips64le", "mips64el",
                  ("Loongson 3 (older)", "Cavium Octeon (LE)"), notes="uname -m says mips64 on either endianness, so it is no alias here"),
    KnownPlatform("linux/loong64", "loong64", ("loongarch64",), ("loong64",), "loong64", "loongarch64",
                  ("Loongson 3A5000 and later",)),
    KnownPlatform("windows/amd64", "winamd64", (), (), "amd64", None,
                  ("Windows Server 2019 (os.version 10.0.17763)", "Windows Server 2022 (10.0.20348)"),
                  notes="entries carry os.version; a host runs only its own build (process isolation)"),
    KnownPlatform("windows/arm64", None, (), (), "arm64", None, ("Windows 11 on ARM",)),
)

# containerd's known operating systems (GOOS values).
KNOWN_OS = ("aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl",
            "netbsd", "openbsd", "plan9", "solaris", "windows", "zos")
# Architecture spellings -> (OCI architecture, implied variant or None): containerd's known
# architectures (GOARCH values) and the aliases users meet.
ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "amd64": ("amd64", None), "x86_64": ("amd64", None), "x86-64": ("amd64", None), "x64": ("amd64", None),
    "386": ("386", None), "i386": ("386", None), "i486": ("386", None), "i586": ("386", None),
    "i686": ("386", None), "x86": ("386", None),
    "arm64": ("arm64", None), "aarch64": ("arm64", None), "arm64v8": ("arm64", None),
    "arm": ("arm", None), "armhf": ("arm", "v7"), "armel": ("arm", "v5"),
    "armv5": ("arm", "v5"), "armv6": ("arm", "v6"), "armv7": ("arm", "v7"),
    "ppc64le": ("ppc64le", None), "ppc64el": ("ppc64le", None), "ppc64": ("ppc64", None), "ppc": ("ppc", None),
    "s390x": ("s390x", None), "s390": ("s390", None), "riscv64": ("riscv64", None), "riscv": ("riscv", None),
    "mips64le": ("mips64le", None), "mips64el": ("mips64le", None), "mips64": ("mips64", None),
    "mipsle": ("mipsle", None), "mips": ("mips", None), "mips64p32": ("mips64p32", None),
    "mips64p32le": ("mips64p32le", None), "loong64": ("loong64", None), "loongarch64": ("loong64", None),
    "wasm": ("wasm", None), "amd64p32": ("amd64p32", None), "armbe": ("armbe", None), "arm64be": ("arm64be", None),
    "sparc": ("sparc", None), "sparc64": ("sparc64", None),
}
# Variants orch checks (other architectures take any variant, as containerd does): arm v4..v9
# (orch's devices run v5..v8: the others parse, with a note), arm64 v8.x and v9.x, amd64 v1..v4.
VARIANTS = {
    "arm": re.compile(r"^v[4-9]$"),
    "arm64": re.compile(r"^v(8|9)(\.\d{1,2})?$"),
    "amd64": re.compile(r"^v[1-4]$"),
}
VARIANT_HELP = {"arm": "v4 to v9", "arm64": "v8, v8.1 ... v9, v9.1 ...", "amd64": "v1 to v4"}
KNOWN_ARM_VARIANTS = ("v5", "v6", "v7", "v8")
# Spellings of one variant (containerd's normalizeArch): arm64 v8.0 is v8, v9.0 is v9.
VARIANT_ALIASES = {("arm64", "v8.0"): "v8", ("arm64", "v9.0"): "v9"}
# Variants that mean "the baseline" and are dropped, as containerd does.
DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1"}
OS_VERSION_PATTERN = on_first_use(r"^\d+(\.\d+){1,3}$")


def _build_aliases() -> dict[str, str]:
    """Every whole-name alias from the table -> OCI string."""
    aliases: dict[str, str] = {}
    for row in KNOWN_PLATFORMS:
        if not row.oci.startswith("linux/"):
            if row.official_prefix:
                aliases[row.official_prefix] = row.oci
            continue
        names = [row.official_prefix, *row.uname, *row.debian, row.go, *row.extra_aliases]
        arch_variant = row.oci.split("/", 1)[1]
        names += [arch_variant, arch_variant.replace("/", "")]  # arm/v7, armv7 (TARGETARCH+TARGETVARIANT)
        for name in names:
            if name:
                aliases.setdefault(name, row.oci)
    return aliases


ALIASES: dict[str, str] = _build_aliases()


# OCI architecture -> the QEMU user-mode emulator (binfmt handler qemu-NAME) that runs it.
QEMU_FOR_ARCH = {
    "amd64": "x86_64", "386": "i386", "arm64": "aarch64", "arm": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64",
    "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "mips64": "mips64", "mipsle": "mipsel",
    "mips": "mips", "loong64": "loongarch64",
}


def qemu_handlers() -> dict[str, tuple[str, ...]]:
    """binfmt handler name (without qemu-) -> the Linux platforms it runs."""
    table: dict[str, list[str]] = {}
    for row in KNOWN_PLATFORMS:
        if row.qemu and row.oci.startswith("linux/"):
            table.setdefault(row.qemu, []).append(row.oci)
    table.setdefault("mips64", ["linux/mips64"])
    return {name: tuple(oci) for name, oci in table.items()}
