"""Prove a pushed image holds what it was meant to hold.

Checks, each reported per platform as ok / warn / fail:
  platforms    every expected platform present; extras warn (fail if strict)
  config       each entry's image config os/architecture/variant matches its
               descriptor (images built under old QEMU setups said amd64)
  order        first-match clients get an entry their CPU runs
  attestations each attestation points at an entry that exists
  binary       (--deep, see deep.py) the executable's ELF header matches
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.image.model import Entry, Inspection
from orchestrator.model.platform import Platform, format_all, format_platform
from orchestrator.model.platform_match import OrderProblem, lint_order
from orchestrator.status import Status


@dataclass(frozen=True)
class Finding:
    """One thing verification found about an index, ok / warn / fail, with the platform it is about
    and the fix."""

    check: str
    level: Status
    message: str
    platform: str | None = None
    fix: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What verifying one index found: it fails when any finding does, and only an index that
    passes is promoted."""

    ref: str
    digest: str | None
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.level is not Status.fail for f in self.findings)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level is Status.fail]

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "digest": self.digest, "ok": self.ok,
                "findings": [{**asdict(f), "level": f.level.value} for f in self.findings]}


@dataclass(frozen=True)
class VerifyOptions:
    """What verification expects of an index: its platforms, and whether extra platforms, a config
    that disagrees with its descriptor, or two entries for one platform warn or fail."""

    expected: tuple[Platform, ...] | None = None
    strict: bool = False
    config_mismatch: Status = Status.fail
    duplicates: Status = Status.fail  # two entries for one platform: manifest-tool refuses to make such a list


def verify(inspection: Inspection, options: VerifyOptions, extra: list[Finding] | tuple[Finding, ...] = ()) -> Verdict:
    """The verdict on an inspected image; `extra` adds findings made elsewhere (--deep)."""
    findings: list[Finding] = []
    findings += _check_platforms(inspection, options)
    findings += _check_configs(inspection, options)
    findings += _check_order(inspection, options)
    findings += _check_attestations(inspection)
    findings += list(extra)
    return Verdict(inspection.ref, inspection.digest, tuple(findings))


def _entry_platform(entry: Entry) -> Platform | None:
    return entry.shown_platform


def duplicated(inspection: Inspection) -> dict[str, list[int]]:
    """Platforms (as format_all writes them) that more than one entry claims, with those entries'
    positions. One platform is os, architecture, variant, os.version and os.features."""
    positions: dict[str, list[int]] = {}
    for entry in inspection.entries:
        if (platform := _entry_platform(entry)) is not None:
            positions.setdefault(format_all(platform), []).append(entry.position)
    return {shown: where for shown, where in positions.items() if len(where) > 1}


def _check_platforms(inspection: Inspection, options: VerifyOptions) -> list[Finding]:
    present = [_entry_platform(e) for e in inspection.entries]
    out = [Finding("platforms", options.duplicates,
                   f"{len(where)} entries claim it (positions {', '.join(map(str, where))}): clients take the first",
                   shown, "publish one entry per platform (--allow-duplicates to accept)")
           for shown, where in duplicated(inspection).items()]
    if options.expected is None:
        return out
    for platform in options.expected:
        match = [p for p in present if p and p.key == platform.key
                 and (platform.os_version is None or p.os_version == platform.os_version)]
        if match:
            out.append(Finding("platforms", Status.ok, "present", format_all(platform)))
        else:
            out.append(Finding("platforms", Status.fail, "missing from the index", format_all(platform),
                               "build and push this platform (check the build log for its failure)"))
    expected_keys = {p.key for p in options.expected}
    for p in present:
        if p is not None and p.key not in expected_keys:
            out.append(Finding("platforms", Status.fail if options.strict else Status.warn,
                               "present but not expected", format_all(p),
                               "drop it from the build, or add it to the expected platforms"))
    return out


def _check_configs(inspection: Inspection, options: VerifyOptions) -> list[Finding]:
    out = []
    for entry in inspection.entries:
        label = entry.label
        if entry.config_problem:
            out.append(Finding("config", Status.fail, f"not a valid image config: {entry.config_problem}", label,
                               "rebuild and push this image; the registry holds a config no client can use"))
            continue
        if entry.config is None:
            out.append(Finding("config", Status.warn, "image config could not be read", label))
            continue
        if entry.platform is None:  # a single manifest: the config is all there is
            out.append(Finding("config", Status.ok, f"config says {format_platform(entry.config)}", label))
            continue
        if entry.config.key == entry.platform.key:
            out.append(Finding("config", Status.ok, "config matches the index", label))
            continue
        out.append(Finding(
            "config", options.config_mismatch,
            f"index says {format_platform(entry.platform)} but the image config says "
            f"{format_platform(entry.config)}", label,
            "rebuild this image with `docker buildx build --platform "
            f"{format_platform(entry.platform)}` so its config is right (pass --config-mismatch warn to accept "
            "a list deliberately assembled from mislabelled images)",
        ))
    return out


def order_errors(inspection: Inspection) -> list[OrderProblem]:
    """Devices whose first-match client would pull an entry they cannot run."""
    platforms = [p for p in (_entry_platform(e) for e in inspection.entries) if p]
    return [p for p in lint_order(platforms) if p.severity == "error"] if len(platforms) > 1 else []


def _check_order(inspection: Inspection, options: VerifyOptions) -> list[Finding]:
    if len([e for e in inspection.entries if _entry_platform(e)]) < 2:
        return []
    errors = order_errors(inspection)
    if not errors:
        return [Finding("order", Status.ok, "no first-match client gets an entry it cannot run")]
    return [Finding("order", Status.fail if options.strict else Status.warn, str(p), format_all(p.device_platform),
                    "order the list with lower ARM variants first (orch's builds do)") for p in errors]


def _check_attestations(inspection: Inspection) -> list[Finding]:
    out = []
    for attestation in inspection.attestations:
        entry = inspection.entry_for(attestation.refers_to or "")
        if entry is None:
            out.append(Finding("attestations", Status.fail,
                               f"attestation {attestation.digest[:19]} points at {attestation.refers_to}, "
                               "which is not in the index", None, "rebuild and push the image with its attestations"))
        else:
            out.append(Finding("attestations", Status.ok, f"attestation {attestation.digest[:19]} describes it",
                               entry.label))
    return out
