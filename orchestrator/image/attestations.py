"""BuildKit's attestations in an index, read: which kinds each platform has, what they say.

BuildKit stores each platform's attestations as an attestation manifest in the index (its
`vnd.docker.reference.digest` annotation names the platform's image), whose layers are in-toto
statements marked with their predicate type: SLSA provenance, an SPDX SBOM. BuildKit leaves the
statement's subject empty (the annotation links it); a statement that names subjects must name
the platform's digest among them.

`orch verify --require-attestations provenance[,sbom]` fails a platform without such an
attestation, or whose statement names other subjects. `orch inspect` summarises each (builder,
source, revision and materials for provenance; the package count for an SBOM), secrets masked.
cosign's own signed `.att` attestations are another thing, not read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.image.model import Inspection
from orchestrator.image.verify import Finding
from orchestrator.redact import redact
from orchestrator.status import Status

KINDS = {"provenance": "https://slsa.dev/provenance/", "sbom": "https://spdx.dev/Document"}
FIX = "build with the attestation (orch build --provenance mode=min, --sbom) and push again"


@dataclass(frozen=True)
class Statement:
    """An in-toto statement read from an attestation layer: its kind, the subjects it names and a
    summary for `orch inspect`, secrets masked."""

    kind: str  # provenance | sbom | the predicate type
    subjects: tuple[str, ...]  # sha256:... the statement names (BuildKit: none)
    summary: str


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise BadInput(f'--require-attestations "{text}" names {", ".join(unknown) or "nothing"}; the kinds are '
                       f"{', '.join(KINDS)}", fix="pass --require-attestations provenance,sbom")
    return kinds


def statements(inspection: Inspection, source: Any) -> dict[str, list[Statement]]:
    """Each platform image's digest -> the statements its attestation manifests hold."""
    found: dict[str, list[Statement]] = {entry.digest: [] for entry in inspection.entries}
    for attestation in inspection.attestations:
        if attestation.refers_to not in found:
            continue  # verify says so already (an attestation of nothing in the index)
        manifest = source.manifest(attestation.digest)
        for layer in manifest.get("layers") or []:
            predicate = (layer.get("annotations") or {}).get("in-toto.io/predicate-type", "")
            statement = source.config(layer["digest"])  # a JSON blob, checked against its digest
            found[attestation.refers_to].append(_statement(predicate, statement))
    return found


def required_findings(inspection: Inspection, source: Any, kinds: tuple[str, ...]) -> list[Finding]:
    """One "attested" finding per platform: each kind asked for is there and names no other image."""
    read = statements(inspection, source)
    out = []
    for entry in inspection.entries:
        have = read.get(entry.digest, [])
        missing = [k for k in kinds if not any(s.kind == k for s in have)]
        strangers = [s for s in have if s.kind in kinds and s.subjects and entry.digest not in s.subjects]
        if missing:
            out.append(Finding("attested", Status.fail, f"no {' and no '.join(missing)} attestation", entry.label, FIX))
        elif strangers:
            out.append(Finding("attested", Status.fail, f"its {strangers[0].kind} attestation names "
                               f"{', '.join(d[:19] for d in strangers[0].subjects)}, not {entry.digest[:19]}",
                               entry.label, FIX))
        else:
            out.append(Finding("attested", Status.ok, f"{', '.join(kinds)} attestation present", entry.label))
    return out


def _statement(predicate: str, statement: Any) -> Statement:
    if not isinstance(statement, dict):
        return Statement(predicate or "unknown", (), "not an in-toto statement")
    kind = next((name for name, prefix in KINDS.items() if predicate.startswith(prefix)), predicate or "unknown")
    subjects = tuple(f"sha256:{s['digest']['sha256']}" for s in statement.get("subject") or []
                     if isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get("sha256"))
    predicate_body = statement.get("predicate")
    body: dict[str, Any] = predicate_body if isinstance(predicate_body, dict) else {}
    return Statement(kind, subjects, redact(_summary(kind, body)))


def _summary(kind: str, predicate: dict[str, Any]) -> str:
    if kind == "sbom":
        packages = predicate.get("packages")
        return f"{len(packages) if isinstance(packages, list) else 0} packages"
    if kind != "provenance":
        return "an attestation orch does not read"
    builder = (predicate.get("builder") or {}).get("id") or "BuildKit"
    invocation = predicate.get("invocation") or {}
    source = (invocation.get("configSource") or {}).get("uri") or (invocation.get("configSource") or {}).get(
        "entryPoint") or "?"
    vcs = ((predicate.get("metadata") or {}).get("https://mobyproject.org/buildkit@v1#metadata") or {}).get("vcs") or {}
    revision = vcs.get("revision") or "?"
    listed = predicate.get("materials")
    materials: list[Any] = listed if isinstance(listed, list) else []
    return (f"builder {builder}, source {vcs.get('source') or source}, revision {str(revision)[:12]}, "
            f"{len(materials)} materials")
