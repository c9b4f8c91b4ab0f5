"""`orch verify`: check a pushed image (or an OCI layout) against the platforms it should hold.

The plain forms never get here: cli/fast.py runs them without typer. Both call cli/verify_run.
"""

from __future__ import annotations

from typing import List

import typer

from orchestrator.cli import complete


def verify(
    ref: str = typer.Argument(..., help="Image reference to verify (or oci-layout://DIR[:TAG])."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Expect this profile's platforms.",  # noqa: UP007
                                       autocompletion=complete.profile_names),
    platform: List[str] | None = typer.Option(  # noqa: UP006,UP007
        None, "--platform", help="Expected platforms, comma-separated; may be repeated.",
        autocompletion=complete.platform_names),
    strict: bool = typer.Option(False, "--strict", help="Unexpected platforms and order problems fail."),
    config_mismatch: str = typer.Option("fail", "--config-mismatch", help="fail or warn when a config disagrees "
                                        "with its index entry."),
    allow_duplicates: bool = typer.Option(False, "--allow-duplicates", help="Two entries for one platform warn "
                                          "instead of failing (clients take the first)."),
    deep: bool = typer.Option(False, "--deep", help="Also read each image's executable from its layers and check "
                              "its ELF machine, class, endianness and ARM CPU level; every layer read is checked "
                              "against its digest."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    key: str | None = typer.Option(  # noqa: UP007
        None, "--key", metavar="PUB", help="Also require a valid cosign signature by this public key (a file or KMS "
        "URI) over the image's digest (checked with cosign)."),
    certificate_identity: str | None = typer.Option(  # noqa: UP007
        None, "--certificate-identity", help="Keyless: the identity the signing certificate must name (a CI "
        "workflow's URL, say); with --certificate-oidc-issuer, instead of --key."),
    certificate_oidc_issuer: str | None = typer.Option(  # noqa: UP007
        None, "--certificate-oidc-issuer", help="Keyless: the OIDC issuer of that identity (GitHub Actions: "
        "https://token.actions.githubusercontent.com)."),
    require_attestations: str | None = typer.Option(  # noqa: UP007
        None, "--require-attestations", metavar="KINDS", help="provenance and/or sbom, comma-separated: each "
        "platform must have BuildKit's attestation of that kind in the index."),
) -> None:
    """Check a pushed image against what it should hold. Exit 1 when a check fails."""
    from orchestrator.cli.verify_run import VerifyArgs, run_verify

    code = run_verify(VerifyArgs(ref=ref, platforms=tuple(platform or ()), profile=profile, strict=strict,
                                 config_mismatch=config_mismatch, allow_duplicates=allow_duplicates,
                                 deep=deep, as_json=as_json, key=key,
                                 require_attestations=require_attestations, identity=certificate_identity,
                                 issuer=certificate_oidc_issuer))
    if code:
        raise typer.Exit(code)
