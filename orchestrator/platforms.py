"""One truth for platform names, modelled on containerd's platforms package.

Every naming scheme a user meets (OCI ``linux/arm/v7``, official-image
prefixes ``arm32v7``, ``uname -m`` ``armv7l``, Debian ``armhf``, Go
``arm/7``, buildx's ``armv7``) parses to the same :class:`Platform`.

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

Index order (:func:`order`): Linux first; then amd64, arm64, 32-bit arm
with variants ascending (v5, v6, v7), 386, then the rest. Clients that take
the first entry whose architecture matches (Docker before variant support,
and some still) then get the oldest ARM variant, which every ARM CPU runs:
slower on a v7 device, but never an illegal instruction on a Pi Zero.
:func:`lint_order` names the devices an order would misserve.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from orchestrator.errors import BadInput

PLATFORM_HELP = "use an OCI name such as linux/arm/v7 or an alias such as arm32v7, armhf or armv7l (`orch platforms` lists them)"


@dataclass(frozen=True, order=False)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return format_platform(self)

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies an index entry: os, architecture, variant."""
        return (self.os, self.architecture, self.variant or "")

    def without_os_version(self) -> Platform:
        return replace(self, os_version=None, os_features=())


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
        return _parse_oci(self.oci, self.oci)


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

KNOWN_OS = ("linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "illumos", "solaris", "aix", "plan9")
# Architecture spellings -> (OCI architecture, implied variant or None).
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "amd64": ("amd64", None), "x86_64": ("amd64", None), "x86-64": ("amd64", None), "x64": ("amd64", None),
    "386": ("386", None), "i386": ("386", None), "i486": ("386", None), "i586": ("386", None),
    "i686": ("386", None), "x86": ("386", None),
    "arm64": ("arm64", None), "aarch64": ("arm64", None), "arm64v8": ("arm64", None),
    "arm": ("arm", None), "armhf": ("arm", "v7"), "armel": ("arm", "v5"),
    "armv5": ("arm", "v5"), "armv6": ("arm", "v6"), "armv7": ("arm", "v7"),
    "ppc64le": ("ppc64le", None), "ppc64el": ("ppc64le", None), "ppc64": ("ppc64", None),
    "s390x": ("s390x", None), "riscv64": ("riscv64", None),
    "mips64le": ("mips64le", None), "mips64el": ("mips64le", None), "mips64": ("mips64", None),
    "mipsle": ("mipsle", None), "mips": ("mips", None),
    "loong64": ("loong64", None), "loongarch64": ("loong64", None), "wasm": ("wasm", None),
}
_VARIANTS = {
    "arm": ("v5", "v6", "v7", "v8"),
    "arm64": ("v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9",
              "v9", "v9.0", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"),
    "amd64": ("v1", "v2", "v3", "v4"),
}
# Variants that mean "the baseline" and are dropped, as containerd does.
_DEFAULT_VARIANT = {"arm64": "v8", "amd64": "v1"}
_OS_VERSION = re.compile(r"^\d+(\.\d+){1,3}$")


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


# -- parse / normalize / format ---------------------------------------------


def parse(text: str) -> Platform:
    """Parse any supported spelling into a normalized Platform.

    Raises BadInput, quoting the value and suggesting the nearest name.
    """
    if not isinstance(text, str):
        raise BadInput(f"platform must be text, got {text!r}", fix=PLATFORM_HELP)
    raw = text.strip()
    if not raw:
        raise BadInput("empty platform name", fix=PLATFORM_HELP)
    lowered = raw.lower()
    if lowered in ALIASES:
        return _parse_oci(ALIASES[lowered], raw)
    return _parse_oci(lowered, raw)


def parse_all(texts: Iterable[str]) -> list[Platform]:
    """Parse comma-separated lists, possibly repeated (as buildx --platform)."""
    out: list[Platform] = []
    for text in texts:
        for part in str(text).split(","):
            if part.strip():
                out.append(parse(part))
    return dedupe(out)


def _parse_oci(lowered: str, original: str) -> Platform:
    os_version = None
    spec = lowered
    # windows(10.0.17763)/amd64 (containerd 2) or windows/amd64:10.0.17763 (mquery, manifest-tool)
    paren = re.match(r"^([a-z0-9]+)\(([^)]*)\)(/.*)?$", spec)
    if paren:
        spec = paren.group(1) + (paren.group(3) or "")
        os_version = paren.group(2)
    elif ":" in spec:
        spec, _, os_version = spec.partition(":")
    if os_version is not None and not _OS_VERSION.match(os_version):
        raise BadInput(
            f'invalid os.version "{os_version}" in platform "{original}"',
            fix="os.version is dotted numbers, e.g. windows/amd64:10.0.17763",
        )
    parts = spec.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise _unknown(original)
    if len(parts) == 1:
        if parts[0] in KNOWN_OS:
            raise BadInput(
                f'platform "{original}" names an OS but no architecture',
                fix=f"add one, e.g. {parts[0]}/amd64 or {parts[0]}/arm64",
            )
        os_name, arch, variant = "linux", parts[0], None
    elif len(parts) == 2:
        if parts[0] in KNOWN_OS:
            os_name, arch, variant = parts[0], parts[1], None
        elif parts[0] in _ARCH_ALIASES:  # arch/variant, as containerd accepts
            os_name, arch, variant = "linux", parts[0], parts[1]
        else:
            raise _unknown(original, f'"{parts[0]}" is neither an OS nor an architecture')
    else:
        os_name, arch, variant = parts
    if os_name not in KNOWN_OS:
        raise _unknown(original, f'unknown OS "{os_name}"')
    return normalize(Platform(os_name, arch, variant, os_version), original)


def normalize(platform: Platform, original: str | None = None) -> Platform:
    """Canonical os/architecture/variant, as containerd's Normalize."""
    shown = original if original is not None else f"{platform.os}/{platform.architecture}"
    os_name = platform.os.lower()
    if os_name == "macos":
        os_name = "darwin"
    arch_key = platform.architecture.lower()
    if arch_key not in _ARCH_ALIASES:
        raise _unknown(shown, f'unknown architecture "{platform.architecture}"')
    arch, implied = _ARCH_ALIASES[arch_key]
    variant = (platform.variant or "").lower() or None
    if variant is not None and variant[0].isdigit():
        variant = "v" + variant  # Go's GOARM=7 and containerd's arm/7
    if implied and variant and variant != implied:
        raise BadInput(
            f'platform "{shown}": "{arch_key}" already means {arch}/{implied}, not {arch}/{variant}',
            fix=f"write linux/{arch}/{variant}",
        )
    variant = variant or implied
    if arch == "arm" and variant is None:
        variant = "v7"
    if variant is not None:
        allowed = _VARIANTS.get(arch, ())
        if variant not in allowed:
            choices = ", ".join(allowed) if allowed else "none"
            raise BadInput(
                f'platform "{shown}": unknown variant "{variant}" for {arch} (allowed: {choices})',
                fix=PLATFORM_HELP,
            )
        if _DEFAULT_VARIANT.get(arch) == variant:
            variant = None
    return Platform(os_name, arch, variant, platform.os_version, tuple(platform.os_features))


def _unknown(original: str, why: str | None = None) -> BadInput:
    candidates = sorted(set(ALIASES) | set(ALIASES.values()))
    close = difflib.get_close_matches(original.strip().lower(), candidates, n=1, cutoff=0.6)
    hint = ""
    if close:
        target = ALIASES.get(close[0], close[0])
        hint = f" (did you mean {target}?)" if close[0] == target else f" (did you mean {close[0]}, i.e. {target}?)"
    detail = f": {why}" if why else ""
    return BadInput(f'unknown platform "{original}"{detail}{hint}', fix=PLATFORM_HELP)


def format_platform(platform: Platform) -> str:
    """os/arch[/variant]: what buildx --platform takes."""
    return "/".join(p for p in (platform.os, platform.architecture, platform.variant) if p)


def format_all(platform: Platform) -> str:
    """Like format_platform, plus os.version when set: windows/amd64:10.0.17763."""
    base = format_platform(platform)
    return f"{base}:{platform.os_version}" if platform.os_version else base


def dedupe(platforms: Iterable[Platform]) -> list[Platform]:
    """Drop repeats (by os/arch/variant/os.version), keeping first occurrence."""
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for p in platforms:
        key = (*p.key, p.os_version or "")
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# -- compatibility and matching ---------------------------------------------

_ARM_LEVEL = {"v5": 5, "v6": 6, "v7": 7, "v8": 8}
_AMD64_LEVEL = {None: 1, "v2": 2, "v3": 3, "v4": 4}


def can_run(host: Platform, image: Platform, *, aarch32: bool = True) -> bool:
    """Whether a host CPU/OS runs an image natively.

    A v7 CPU runs v6 and v5; an arm64 CPU with AArch32 runs 32-bit arm
    (most do; Apple M-series and some recent cores have no AArch32); amd64
    runs 386 and amd64 variants up to its own level.
    """
    if host.os != image.os:
        return False
    if host.os == "windows" and host.os_version and image.os_version:
        # Process isolation needs the same build: major.minor.build.
        if host.os_version.split(".")[:3] != image.os_version.split(".")[:3]:
            return False
    h, i = host.architecture, image.architecture
    if h == i:
        if h == "arm":
            return _ARM_LEVEL[image.variant or "v7"] <= _ARM_LEVEL[host.variant or "v7"]
        if h == "amd64":
            return _AMD64_LEVEL.get(image.variant, 9) <= _AMD64_LEVEL.get(host.variant, 9)
        return True
    if h == "amd64" and i == "386":
        return True
    if h == "arm64" and i == "arm":
        return aarch32
    return False


def _preference(host: Platform, image: Platform) -> tuple[int, int]:
    """Higher is better among entries the host can run."""
    same_arch = 1 if image.architecture == host.architecture else 0
    if image.architecture == "arm":
        level = _ARM_LEVEL[image.variant or "v7"]
    elif image.architecture == "amd64":
        level = _AMD64_LEVEL.get(image.variant, 1)
    else:
        level = 0
    return (same_arch, level)


class MatchPolicy(str, Enum):
    best = "best"  # containerd / Docker today: the best entry the host can run
    first = "first"  # old clients: first entry whose os/architecture match, variant ignored


def best_match(entries: Sequence[Platform], host: Platform, policy: MatchPolicy = MatchPolicy.best,
               *, aarch32: bool = True) -> int | None:
    """Index of the entry a client on `host` pulls, or None."""
    if policy is MatchPolicy.first:
        for index, entry in enumerate(entries):
            if entry.os == host.os and entry.architecture == host.architecture:
                return index
        return None
    runnable = [(i, e) for i, e in enumerate(entries) if can_run(host, e, aarch32=aarch32)]
    if not runnable:
        return None
    return max(runnable, key=lambda pair: (_preference(host, pair[1]), -pair[0]))[0]


# -- ordering and its lint --------------------------------------------------

_ARCH_ORDER = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "mips64", "loong64")
_OS_ORDER = ("linux", "windows")


def sort_key(p: Platform) -> tuple:
    os_rank = _OS_ORDER.index(p.os) if p.os in _OS_ORDER else len(_OS_ORDER)
    arch_rank = _ARCH_ORDER.index(p.architecture) if p.architecture in _ARCH_ORDER else len(_ARCH_ORDER)
    variant_rank = (_ARM_LEVEL.get(p.variant or "", 0) if p.architecture == "arm"
                    else _AMD64_LEVEL.get(p.variant, 9) if p.architecture == "amd64" else 0)
    version = tuple(int(x) for x in (p.os_version or "0").split("."))
    return (os_rank, p.os, arch_rank, p.architecture, variant_rank, p.variant or "", version)


def order(platforms: Iterable[Platform]) -> list[Platform]:
    """The deterministic, first-match-safe index order (see module docstring)."""
    return sorted(dedupe(platforms), key=sort_key)


@dataclass(frozen=True)
class Device:
    name: str
    platform: Platform
    aarch32: bool = True


def reference_devices() -> list[Device]:
    """Devices to test an order against, one per named device in the table."""
    devices = []
    for row in KNOWN_PLATFORMS:
        for name in row.devices:
            host = row.platform
            if host.os == "windows":
                version = re.search(r"\(?(?:os\.version )?(\d+\.\d+\.\d+)\)?", name)
                host = replace(host, os_version=version.group(1) if version else None)
            devices.append(Device(name, host, aarch32="Apple" not in name))
    return devices


@dataclass(frozen=True)
class OrderProblem:
    device: str
    device_platform: Platform
    severity: str  # "error": would get an entry it cannot run; "warning": a worse entry than it could
    gets: Platform
    should_get: Platform

    def __str__(self) -> str:
        if self.severity == "error":
            return (f"{self.device} ({self.device_platform}) with a first-match client pulls "
                    f"{self.gets}, which it cannot run; it should get {self.should_get}")
        return (f"{self.device} ({self.device_platform}) with a first-match client pulls {self.gets} "
                f"instead of {self.should_get} (runs, but not the best build)")


def lint_order(entries: Sequence[Platform], devices: Iterable[Device] | None = None) -> list[OrderProblem]:
    """What first-match clients would get wrong with this entry order."""
    problems = []
    for device in devices if devices is not None else reference_devices():
        first = best_match(entries, device.platform, MatchPolicy.first, aarch32=device.aarch32)
        best = best_match(entries, device.platform, MatchPolicy.best, aarch32=device.aarch32)
        # No runnable entry at all is a coverage gap, not an ordering problem.
        if first is None or best is None or first == best:
            continue
        gets, should = entries[first], entries[best]
        if not can_run(device.platform, gets, aarch32=device.aarch32):
            problems.append(OrderProblem(device.name, device.platform, "error", gets, should))
        elif should.key != gets.key:
            problems.append(OrderProblem(device.name, device.platform, "warning", gets, should))
    return problems


# -- the host ---------------------------------------------------------------


@dataclass(frozen=True)
class HostPlatform:
    platform: Platform
    reasons: tuple[str, ...]


def detect_host(machine: str, cpuinfo: str = "", os_name: str = "linux") -> HostPlatform:
    """This machine's platform from `uname -m` and, on 32-bit ARM, /proc/cpuinfo.

    /proc/cpuinfo's "CPU architecture" gives the ARM level; a Raspberry Pi 1
    or Zero reports 7 there but "ARMv6-compatible processor" as its model
    (containerd has the same exception), so the model name wins.
    """
    reasons = [f"uname -m: {machine}"]
    try:
        platform = parse(machine)
    except BadInput:
        platform = Platform(os_name, machine.lower())
        reasons.append("not a known architecture name: reported as is")
        return HostPlatform(platform, tuple(reasons))
    platform = replace(platform, os=os_name)
    if platform.architecture == "arm":
        fields = {}
        for line in cpuinfo.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip().lower(), value.strip())
        cpu_arch = fields.get("cpu architecture", "")
        model = fields.get("model name", "") or fields.get("processor", "")
        if model.lower().startswith("armv6-compatible"):
            platform = replace(platform, variant="v6")
            reasons.append(f'/proc/cpuinfo model name "{model}": ARMv6 (overrides CPU architecture {cpu_arch})')
        elif cpu_arch:
            level = {"5tej": "v5", "5te": "v5", "5": "v5", "6": "v6", "6tej": "v6", "7": "v7", "8": "v7",
                     "aarch64": "v7"}.get(cpu_arch.lower())
            if level:
                platform = replace(platform, variant=level)
                extra = " (a 32-bit userland on an ARMv8 CPU runs arm/v7)" if cpu_arch in ("8", "AArch64") else ""
                reasons.append(f"/proc/cpuinfo CPU architecture: {cpu_arch} -> {level}{extra}")
        else:
            reasons.append("no CPU architecture in /proc/cpuinfo: kept the variant uname -m implies")
    return HostPlatform(platform, tuple(reasons))


def qemu_handlers() -> dict[str, tuple[str, ...]]:
    """binfmt handler name (without qemu-) -> the Linux platforms it runs."""
    table: dict[str, list[str]] = {}
    for row in KNOWN_PLATFORMS:
        if row.qemu and row.oci.startswith("linux/"):
            table.setdefault(row.qemu, []).append(row.oci)
    table.setdefault("mips64", ["linux/mips64"])
    return {name: tuple(oci) for name, oci in table.items()}


def resolve(texts: Iterable[str]) -> list[tuple[str, Platform]]:
    """(what the user wrote, what it means), one pair per name."""
    return [(text, parse(text)) for raw in texts for text in str(raw).split(",") if text.strip()]
