"""Signing what orch verified, with cosign (the peer client: Debian's cosign 2.5), before any tag
moves; and checking a signature for `orch verify --key`.

`--sign` signs the verified index by digest after the read-back verification and before the
promotion, so a tag never points at an unsigned index when signing was asked for: a signing
failure is a failed publish with every tag where it was. The signature goes where cosign puts
it and looks for it (the `sha256-<hex>.sig` tag of the repository), so the promotion
(publish.promote) signs the index in every repository a tag moves in, after copying it there.
If the promotion then fails, those signatures of the verified but unpromoted digest stay, and
the output says so.

Key pairs (`--sign-key`, or the profile's `signing.key`; the password from COSIGN_PASSWORD)
sign without the transparency log by default: an upload publishes the registry name and the
digest to a public log (`--tlog` asks for it). Without a key, cosign signs keyless with the CI's
identity token (GitHub's id-token: write), which needs the log: documented, untestable here.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from orchestrator.errors import BadInput, EnvironmentMissing, JobFailed
from orchestrator.model.references import Reference
from orchestrator.processes import run
from orchestrator.redact import redact

COSIGN_FIX = "install cosign (Debian/Ubuntu: apt-get install cosign; or https://docs.sigstore.dev), then rerun"
TIMEOUT = 300


@dataclass(frozen=True)
class Signing:
    key: str | None  # a cosign private key file or KMS URI; None: keyless (the CI's identity token)
    tlog: bool = False  # upload to the transparency log (keyless needs it)
    recursive: bool = False  # each platform's manifest too

    @classmethod
    def asked(cls, key: str | None, tlog: bool | None = None, recursive: bool = False) -> Signing:
        """--sign's settings, checked: the log on keyless signing unless said otherwise, off with a key."""
        signing = cls(key, tlog if tlog is not None else key is None, recursive)
        signing.check()
        return signing

    def check(self) -> None:
        """What can be refused before anything is built: no cosign, a missing key file."""
        cosign()
        if self.key and "://" not in self.key and not os.path.isfile(self.key):
            raise BadInput(f'--sign-key "{self.key}" is not a file', fix="pass the cosign.key `cosign generate-key-pair` wrote")
        if self.key is None and not self.tlog:
            raise BadInput("keyless signing (no --sign-key) needs the transparency log", fix="add --tlog, or pass --sign-key")

    def argv(self, ref: Reference) -> list[str]:
        args = [cosign(), "sign", "--yes", f"--tlog-upload={'true' if self.tlog else 'false'}"]
        if self.key:
            args += ["--key", self.key]
        if ref.is_loopback:
            args.append("--allow-http-registry")
        if self.recursive:
            args.append("--recursive")
        return [*args, str(ref)]


def cosign() -> str:
    found = shutil.which("cosign")
    if not found:
        raise EnvironmentMissing("signing needs cosign, which is not installed", fix=COSIGN_FIX)
    return found


def sign(ref: Reference, signing: Signing) -> str:
    """Sign `ref` (REPO@DIGEST); the signature's tag. JobFailed with cosign's last words."""
    done = run(signing.argv(ref), timeout=TIMEOUT)
    if done.returncode != 0:
        raise JobFailed(f"signing {ref} with cosign failed{_why(done)}; no tag was changed",
                        fix="check the key and COSIGN_PASSWORD, and that the registry takes the signature, then rerun")
    return signature_tag(ref)


def signature_tag(ref: Reference) -> str:
    return str(ref.with_tag(f"{(ref.digest or '').replace(':', '-')}.sig"))


def verify_signature(ref: Reference, key: str | None, *, identity: str | None = None, issuer: str | None = None,
                     tlog: bool | None = None) -> str | None:
    """None when a valid signature covers `ref` (REPO@DIGEST): by `key`, or keyless by the
    certificate `identity` from the OIDC `issuer` (checked against the transparency log); else
    why not."""
    args = [cosign(), "verify"]
    if key:
        args += ["--key", key]
    else:
        if not (identity and issuer):
            raise BadInput("a keyless signature is checked against its certificate: pass --certificate-identity and "
                           "--certificate-oidc-issuer (or --key)", fix="e.g. --certificate-oidc-issuer "
                           "https://token.actions.githubusercontent.com --certificate-identity https://github.com/...")
        args += ["--certificate-identity", identity, "--certificate-oidc-issuer", issuer]
    use_tlog = tlog if tlog is not None else key is None
    args.append(f"--insecure-ignore-tlog={'false' if use_tlog else 'true'}")
    if ref.is_loopback:
        args.append("--allow-http-registry")
    done = run([*args, str(ref)], timeout=TIMEOUT)
    signer = key or f"{identity} ({issuer})"
    return None if done.returncode == 0 else f"no valid signature by {signer} covers {ref.digest}{_why(done)}"


def _why(done: object) -> str:
    lines = [line for line in (getattr(done, "stderr", "") or "").splitlines() if line.strip()]
    secret = os.environ.get("COSIGN_PASSWORD") or ""
    last = redact(lines[-1], (secret,) if secret else ()) if lines else ""
    return f" ({last.strip()[:300]})" if last else ""
