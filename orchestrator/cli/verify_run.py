"""`orch verify` without the CLI framework: its options, the check, and how the verdict is shown.

The Typer command (cli/verify.py) and the fast path (cli/fast.py) both call these, so they
accept the same values and print the same output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator.builds.options import VerificationOptions
from orchestrator.cli.options import VERIFY, values
from orchestrator.cli.output import echo, print_json
from orchestrator.errors import BadInput, ExitCode
from orchestrator.workers import Helper

if TYPE_CHECKING:
    from orchestrator.image.verify import Verdict
    from orchestrator.model.platform import Platform
    from orchestrator.model.references import Reference
    from orchestrator.registry.layout import Layout

MARKS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class VerifyArgs:
    """`orch verify`'s arguments: what both the Typer command and the fast path hand to the one
    verification."""

    ref: str
    platforms: tuple[str, ...] = ()
    profile: str | None = None
    strict: bool = False
    config_mismatch: str = "fail"
    allow_duplicates: bool = False
    verification: VerificationOptions = VerificationOptions()  # --deep
    as_json: bool = False
    key: str | None = None  # --key: a cosign signature by it must cover the digest
    require_attestations: str | None = None  # --require-attestations provenance,sbom
    identity: str | None = None  # keyless: --certificate-identity
    issuer: str | None = None  # keyless: --certificate-oidc-issuer
    reproduce: str | None = None  # --reproduce CONTEXT: rebuild and compare digests (builds.reproduce)
    builder: str | None = None  # --builder, with --reproduce

    @classmethod
    def of(cls, ref: str, given: Mapping[str, Any]) -> VerifyArgs:
        """The arguments from what a parser gave, by option key: the Typer command and the fast
        path both come here, with the options of one table (options.VERIFY)."""
        return cls(ref=ref, **values(VERIFY, given))


def chosen_platforms(texts: tuple[str, ...] | list[str], profile: str | None, missing: str) -> tuple[Platform, ...]:
    """--platform, else --profile's platforms, else $ORCH_PLATFORMS / $ORCH_PROFILE; `missing` when none."""
    import os

    from orchestrator.model.platform_parse import parse_all

    texts = tuple(texts) or tuple(filter(None, [os.environ.get("ORCH_PLATFORMS")]))
    profile = profile or os.environ.get("ORCH_PROFILE")
    if texts:
        return tuple(parse_all(texts))
    if profile:
        from orchestrator.profiles import load

        loaded = load(profile)
        if not loaded.platforms:
            raise BadInput(f'profile "{loaded.name}" names no platforms', fix="pass --platform LIST")
        return tuple(loaded.platforms)
    raise BadInput(missing, fix="pass --profile NAME or --platform LIST (or set ORCH_PROFILE or ORCH_PLATFORMS)")


def run_verify(args: VerifyArgs) -> int:
    """Read, check, print; the exit code (0 verified, 1 a check failed). The registry read starts
    first, on a thread: what else verify needs is imported and parsed while it waits on the wire."""
    from orchestrator.image.read import is_layout_ref, read_image
    from orchestrator.model.references import parse_reference

    if args.reproduce is not None or args.builder is not None:
        return run_reproduce(args)
    if is_layout_ref(args.ref):
        return _verify(args, None, None)
    source = parse_reference(args.ref)
    with Helper(lambda: read_image(source), "orch-verify-read") as reading:  # cancelled if verify fails first
        return _verify(args, reading, source)


def _verify(args: VerifyArgs, reading: Helper[Any] | None, source: Reference | None) -> int:
    from orchestrator.image.read import read_layout
    from orchestrator.image.verify import VerifyOptions, verify
    from orchestrator.status import Status

    if args.config_mismatch not in ("fail", "warn"):
        raise BadInput(f'--config-mismatch "{args.config_mismatch}" is not fail or warn', fix="pass fail or warn")

    expected = chosen_platforms(args.platforms, args.profile, "nothing to verify against")
    if args.key:  # a key that cannot check anything is refused before the image is waited for
        from orchestrator.publish.signing import public_key

        public_key(args.key)
    kinds: tuple[str, ...] = ()
    if args.require_attestations is not None:
        from orchestrator.image.attestations import parse_kinds

        kinds = parse_kinds(args.require_attestations)
    where: Layout | Reference
    if reading is None or source is None:
        inspection, where = read_layout(args.ref)
    else:
        inspection, where = reading.result(), source
    extra = []
    if args.verification.deep:
        from orchestrator.image.deep import check_binaries

        extra = check_binaries(inspection, where, strict=args.strict)
    if args.key or args.identity or args.issuer:
        extra.append(_signature(inspection, where, args))
    if kinds:
        from orchestrator.image.attestations import required_findings
        from orchestrator.model.references import Reference
        from orchestrator.registry.client import Registry, RepositoryView

        view = RepositoryView(Registry.of(where), where.repository) if isinstance(where, Reference) else where
        extra += required_findings(inspection, view, kinds)
    verdict = verify(inspection, VerifyOptions(expected=expected, strict=args.strict,
                                               config_mismatch=Status(args.config_mismatch),
                                               duplicates=Status.warn if args.allow_duplicates else Status.fail),
                     extra)
    if args.as_json:
        print_json(verdict.to_json())
    else:
        print_findings(verdict)
    if source is not None:
        _cut_short(source)
    from orchestrator.ci_facts import on_github

    if on_github():
        from orchestrator.report.ci_outputs import report_verify

        report_verify(verdict.to_json())
    return int(ExitCode.OK if verdict.ok else ExitCode.FAILED)


def run_reproduce(args: VerifyArgs) -> int:
    """--reproduce: every platform rebuilt and compared (0 equal, 1 a platform differs)."""
    from orchestrator.image.read import is_layout_ref
    from orchestrator.model.references import parse_reference

    if args.reproduce is None:
        raise BadInput("--builder goes with --reproduce CONTEXT (the builder to rebuild on)",
                       fix=f"orch verify {args.ref} --reproduce . --builder {args.builder}")
    if is_layout_ref(args.ref):
        raise BadInput(f'--reproduce compares with a pushed image, not "{args.ref}"',
                       fix="push it (orch build --reproducible --push) and verify REGISTRY/REPO:TAG")
    from orchestrator.builds.reproduce import reproduce

    outcome = reproduce(parse_reference(args.ref), args.reproduce, args.builder, args.platforms)
    if args.as_json:
        print_json({"ref": outcome.ref, "builder": outcome.builder, "buildkit": outcome.buildkit,
                    "commit": outcome.commit, "reproduced": outcome.ok, "platforms": [
                        {"platform": p.platform, "image": p.recorded, "rebuilt": p.rebuilt, "equal": p.equal,
                         "layer": p.layer, "note": p.note,
                         "changes": [{"path": c.path, "what": c.what, "details": c.details,
                                      "size_before": c.before.size if c.before else None,
                                      "size_after": c.after.size if c.after else None} for c in p.changes]}
                        for p in outcome.platforms]})
    else:
        for line in outcome.lines():
            echo(line)
    return int(ExitCode.OK if outcome.ok else ExitCode.FAILED)


def _signature(inspection: Any, where: Any, args: VerifyArgs) -> Any:
    """The "signature" finding: a valid cosign signature over the digest verified, by --key or
    keyless by --certificate-identity from --certificate-oidc-issuer. "Not signed" (no signature)
    and "not signed by this key" (signatures by another) fail with fixes of their own; a key
    that checks nothing (missing, unreadable, a private key) is exit 2."""
    from orchestrator.image.verify import Finding
    from orchestrator.model.references import Reference
    from orchestrator.publish.signing import verify_signature
    from orchestrator.status import Status

    if not isinstance(where, Reference) or not inspection.digest:
        raise BadInput("--key checks a signature in a registry; an OCI layout holds none",
                       fix="verify the pushed image: orch verify REGISTRY/REPO:TAG --key cosign.pub")
    problem = verify_signature(where.with_digest(inspection.digest), args.key, identity=args.identity,
                               issuer=args.issuer)
    if problem:
        return Finding("signature", Status.fail, problem.why, None, problem.fix)
    signer = args.key or f"{args.identity} ({args.issuer})"
    return Finding("signature", Status.ok, f"signed by {signer}: a valid cosign signature covers {inspection.digest}",
                   None, None)


def _cut_short(ref: Reference) -> None:
    """A promotion on this repository that a killed orch left unfinished: which tags point where."""
    from orchestrator.publish import journal

    for unfinished in journal.unfinished({ref.name}):
        echo(f"orch: warning: {unfinished.describe()}; the same "
             "build or release command moves the rest and repairs it", err=True)


def print_findings(verdict: Verdict) -> None:
    echo(f"{verdict.ref}  {verdict.digest or ''}")
    for f in verdict.findings:
        echo(f"  {MARKS[f.level.value]}  {f.check:<12} {f.platform or '':<14} {f.message}")
        if f.fix and f.level.value != "ok":
            echo(f"  {'':32}fix: {f.fix}")
    echo("verified" if verdict.ok else f"{len(verdict.failures)} check(s) failed")
