"""Which host runs which image, the first-match-safe index order, and this host's platform.

Index order (:func:`order`): Linux first; then amd64, arm64, 32-bit arm
with variants ascending (v5, v6, v7), 386, then the rest. Clients that take
the first entry whose architecture matches (Docker before variant support,
and some still) then get the oldest ARM variant, which every ARM CPU runs:
slower on a v7 device, but never an illegal instruction on a Pi Zero.
:func:`lint_order` names the devices an order would misserve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_all
from orchestrator.model.platform_parse import dedupe, parse
from orchestrator.model.platform_table import KNOWN_PLATFORMS

_ARM_LEVEL = {"v4": 4, "v5": 5, "v6": 6, "v7": 7, "v8": 8, "v9": 9}
_AMD64_LEVEL = {None: 1, "v2": 2, "v3": 3, "v4": 4}
# 32-bit ARM levels a newer CPU runs (containerd: ARMv4 only runs on itself).
_ARM_BACKWARDS = range(5, 9)


def _arm64_level(variant: str | None) -> tuple[int, int]:
    """arm64 v8 (the baseline), v8.N, v9, v9.N as (major, minor)."""
    major, _, minor = (variant or "v8")[1:].partition(".")
    return int(major), int(minor or 0)


def _arm64_runs(host: str | None, image: str | None) -> bool:
    """As containerd: v8.x runs v8.0..v8.x; v9.x runs v9.0..v9.x and v8.0..v8.(x+5), v8.9 at most."""
    (h_major, h_minor), (i_major, i_minor) = _arm64_level(host), _arm64_level(image)
    if i_major == h_major:
        return i_minor <= h_minor
    return h_major == 9 and i_major == 8 and i_minor <= min(h_minor + 5, 9)


def can_run(host: Platform, image: Platform, *, aarch32: bool = True) -> bool:
    """Whether a host CPU/OS runs an image natively.

    A v7 CPU runs v6 and v5 (ARMv4 runs only on itself); an arm64 CPU runs its
    own and older arm64 levels and, with AArch32, 32-bit arm v5 to v8 (most
    do; Apple M-series and some recent cores have no AArch32); amd64 runs 386
    and amd64 variants up to its own level.
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
            mine, theirs = _ARM_LEVEL[host.variant or "v7"], _ARM_LEVEL[image.variant or "v7"]
            return theirs == mine or (theirs < mine and theirs in _ARM_BACKWARDS)
        if h == "amd64":
            return _AMD64_LEVEL.get(image.variant, 9) <= _AMD64_LEVEL.get(host.variant, 9)
        if h == "arm64":
            return _arm64_runs(host.variant, image.variant)
        return True
    if h == "amd64" and i == "386":
        return True
    if h == "arm64" and i == "arm":
        return aarch32 and _ARM_LEVEL[image.variant or "v7"] in _ARM_BACKWARDS
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


def sort_key(p: Platform) -> tuple[int, str, int, str, int, str, tuple[tuple[int, int, str], ...]]:
    os_rank = _OS_ORDER.index(p.os) if p.os in _OS_ORDER else len(_OS_ORDER)
    arch_rank = _ARCH_ORDER.index(p.architecture) if p.architecture in _ARCH_ORDER else len(_ARCH_ORDER)
    variant_rank = (_ARM_LEVEL.get(p.variant or "", 0) if p.architecture == "arm"
                    else _AMD64_LEVEL.get(p.variant, 9) if p.architecture == "amd64" else 0)
    # os.version by its numbers (10.0.17763 before 10.0.20348); a part that is not a number (a
    # registry may send anything) sorts after the numbers, by its text, instead of failing.
    version = tuple((0, int(x), "") if x.isdigit() else (1, 0, x) for x in (p.os_version or "0").split("."))
    return (os_rank, p.os, arch_rank, p.architecture, variant_rank, p.variant or "", version)


def order(platforms: Iterable[Platform]) -> list[Platform]:
    """The deterministic, first-match-safe index order (see module docstring)."""
    return sorted(dedupe(platforms), key=sort_key)


@dataclass(frozen=True)
class Device:
    """A named device an index order is checked against (`lint_order`), and the platform it runs."""

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
    """A device an index order misserves: what a first-match client on it pulls, and what it
    should get."""

    device: str
    device_platform: Platform
    severity: str  # "error": would get an entry it cannot run; "warning": a worse entry than it could
    gets: Platform
    should_get: Platform

    def __str__(self) -> str:
        if self.severity == "error":
            return (f"{self.device} ({format_all(self.device_platform)}) with a first-match client pulls "
                    f"{format_all(self.gets)}, which it cannot run; it should get {format_all(self.should_get)}")
        return (f"{self.device} ({format_all(self.device_platform)}) with a first-match client pulls "
                f"{format_all(self.gets)} instead of {format_all(self.should_get)} (runs, but not the best build)")


def lint_order(entries: Sequence[Platform], devices: Iterable[Device] | None = None) -> list[OrderProblem]:
    """What first-match clients would get wrong with this entry order. Windows hosts are left
    out: docker on Windows picks the entry whose os.version matches the host's build (that is
    how one list carries several Windows releases), and with two releases listed no order could
    suit a client that took the first windows/amd64 entry."""
    problems = []
    for device in devices if devices is not None else reference_devices():
        if device.platform.os == "windows":
            continue
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
    """This machine's platform, and how it was told (`uname -m`, /proc/cpuinfo)."""

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
        fields: dict[str, str] = {}
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
