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

Everything that can be known before a build is checked when the signing is asked for (`Signing.
asked`, while the plan is made): cosign there, the key a readable private key that COSIGN_PASSWORD
decrypts (`cosign public-key`, which signs nothing), an identity token for keyless signing. A
mistake is refused in under a second of orch's own, not after the build and the staging push.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BadInput, EnvironmentMissing, JobFailed
from orchestrator.model.references import Reference
from orchestrator.processes import run
from orchestrator.redact import redact

COSIGN_FIX = "install cosign (Debian/Ubuntu: apt-get install cosign; or https://docs.sigstore.dev), then rerun"
TIMEOUT = 300


@dataclass(frozen=True)
class Signing:
    """How cosign signs a verified index: with which key (or keyless), whether to the transparency
    log, and each platform's manifest too or not."""

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
        """What can be refused before anything is built, in well under a second: cosign there
        (else exit 3); a key file that is readable, a private key, and that COSIGN_PASSWORD
        decrypts (else exit 2; a KMS key, SCHEME://..., is cosign's to check); keyless, the
        transparency log and an OIDC identity token to sign with (else exit 3)."""
        program = cosign()
        if self.key is None:
            if not self.tlog:
                raise BadInput("keyless signing (no --sign-key) needs the transparency log", fix="add --tlog, or pass --sign-key")
            identity_token()
        elif "://" not in self.key:
            private_key(self.key, program)

    def argv(self, ref: Reference) -> list[str]:
        args = [cosign(), "sign", "--yes", f"--tlog-upload={'true' if self.tlog else 'false'}"]
        if self.key:
            args += ["--key", self.key]
        if ref.is_loopback:
            args.append("--allow-http-registry")
        if self.recursive:
            args.append("--recursive")
        return [*args, str(ref)]


def _key_text(path: str, option: str, wanted: str) -> str:
    """The head of a key file (64 KiB: a PEM key is a few hundred bytes); BadInput naming `option`
    when it is not a file or cannot be read."""
    if not os.path.isfile(path):
        raise BadInput(f'{option} "{path}" is not a file', fix=f"pass the {wanted} `cosign generate-key-pair` wrote")
    try:
        with open(path, "rb") as file:
            return file.read(64 * 1024).decode("utf-8", errors="replace")
    except OSError as exc:
        raise BadInput(f'{option} "{path}" cannot be read ({exc.strerror or exc})',
                       fix="make it readable by the user orch runs as, then rerun") from None


def private_key(path: str, program: str) -> None:
    """BadInput unless `path` is a private key cosign can sign with: decrypted without signing
    (`cosign public-key`), with the password cosign will be given (COSIGN_PASSWORD)."""
    head = _key_text(path, "--sign-key", "cosign.key")
    beside = str(Path(path).with_suffix(".key")) if path.endswith(".pub") else "the cosign.key beside it"
    if "-----BEGIN PUBLIC KEY-----" in head or "-----BEGIN CERTIFICATE-----" in head:
        raise BadInput(f'--sign-key "{path}" is a public key, which checks signatures but cannot make them',
                       fix=f"pass the private key `cosign generate-key-pair` wrote with it ({beside})")
    if "PRIVATE KEY-----" not in head:
        raise BadInput(f'--sign-key "{path}" is not a cosign private key (no PEM private key in it)',
                       fix="pass the cosign.key `cosign generate-key-pair` wrote (or a KMS URI)")
    if "ENCRYPTED" in head and "COSIGN_PASSWORD" not in os.environ:
        raise BadInput(f'--sign-key "{path}" is encrypted and COSIGN_PASSWORD is not set',
                       fix="export COSIGN_PASSWORD with the password the key was made with, then rerun")
    done = run([program, "public-key", "--key", path], timeout=60)
    if done.returncode == 0:
        return
    if "decrypt" in (done.stderr or ""):
        raise BadInput(f'COSIGN_PASSWORD does not decrypt --sign-key "{path}"',
                       fix="set COSIGN_PASSWORD to the password the key was made with, then rerun")
    raise BadInput(f'cosign cannot sign with --sign-key "{path}"{_why(done)}',
                   fix="pass the cosign.key `cosign generate-key-pair` wrote (or a KMS URI)")


# Where cosign finds an identity token without asking anyone: GitHub Actions' token service (a
# job with `permissions: id-token: write`), a token in SIGSTORE_ID_TOKEN (GitLab's `id_tokens:`),
# cosign's own file.
GITHUB_TOKEN_SERVICE = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
TOKEN_FILE = "/var/run/sigstore/cosign/oidc-token"


def identity_token() -> None:
    """EnvironmentMissing unless keyless signing has an OIDC identity token here: an ambient one
    (GitHub Actions, GitLab, SIGSTORE_ID_TOKEN) or, on a terminal, cosign's browser sign-in."""
    from orchestrator.ci_facts import on_github, on_gitlab

    if all(os.environ.get(name) for name in GITHUB_TOKEN_SERVICE) or os.environ.get("SIGSTORE_ID_TOKEN") \
            or os.path.isfile(TOKEN_FILE):
        return
    without = "keyless signing (no --sign-key) needs an OIDC identity token"
    if on_github():
        raise EnvironmentMissing(f"{without}, and this GitHub Actions job gets none (ACTIONS_ID_TOKEN_REQUEST_URL "
                                 "is not set)", fix="give the job `permissions: id-token: write`, or pass --sign-key KEY")
    if on_gitlab():
        raise EnvironmentMissing(f"{without}, and this GitLab job has none (SIGSTORE_ID_TOKEN is not set)",
                                 fix="add `id_tokens: {SIGSTORE_ID_TOKEN: {aud: sigstore}}` to the job, "
                                     "or pass --sign-key KEY")
    if sys.stdin.isatty() and sys.stderr.isatty():
        return  # cosign signs in through the browser
    raise EnvironmentMissing(f"{without}, and there is none here: no CI token, no SIGSTORE_ID_TOKEN, and no "
                             "terminal for cosign's browser sign-in",
                             fix="sign in CI (GitHub: `permissions: id-token: write`), set SIGSTORE_ID_TOKEN, "
                                 "or pass --sign-key KEY")


def cosign() -> str:
    import shutil

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


@dataclass(frozen=True)
class Unverified:
    """Why no valid signature covers a digest, and what to do: none at all (`signed` False), or
    signatures that do not verify with this key or identity (`signed` True)."""

    signed: bool
    why: str
    fix: str


SIGN_FIX = "sign it: orch build ... --push --sign --sign-key KEY (or cosign sign --key KEY REPO@DIGEST)"


def public_key(path: str) -> None:
    """BadInput unless `path` is a public key (or certificate) a signature can be checked with;
    a KMS URI (SCHEME://...) is cosign's to read."""
    if "://" in path:
        return
    head = _key_text(path, "--key", "cosign.pub")
    if "PRIVATE KEY-----" in head:
        beside = str(Path(path).with_suffix(".pub")) if path.endswith(".key") else "the cosign.pub beside it"
        raise BadInput(f'--key "{path}" is a private key, and a signature is checked with the public one',
                       fix=f"pass the public key `cosign generate-key-pair` wrote with it ({beside}); "
                           "keep the private key out of verification jobs")
    if "-----BEGIN PUBLIC KEY-----" not in head and "-----BEGIN CERTIFICATE-----" not in head:
        raise BadInput(f'--key "{path}" is not a public key (no PEM public key in it)',
                       fix="pass the cosign.pub `cosign generate-key-pair` wrote (or a KMS URI)")


def verify_signature(ref: Reference, key: str | None, *, identity: str | None = None, issuer: str | None = None,
                     tlog: bool | None = None) -> Unverified | None:
    """None when a valid signature covers `ref` (REPO@DIGEST): by `key`, or keyless by the
    certificate `identity` from the OIDC `issuer` (checked against the transparency log); else
    why not: no signature at all, or none by this signer."""
    args = [cosign(), "verify"]
    if key:
        public_key(key)
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
    if done.returncode == 0:
        return None
    signer = f'key "{key}"' if key else f"{identity} ({issuer})"
    said = done.stderr or ""
    if "no signatures found" in said:
        return Unverified(False, f"not signed: no cosign signature covers {ref.digest}", SIGN_FIX)
    if "no matching signatures" in said:
        return Unverified(True, f"not signed by {signer}: {ref.digest} has cosign signatures, but none verifies "
                                "with it",
                          "check that --key is the public half of the key that signed it (cosign public-key --key "
                          "KEY prints it), or sign it with this key's pair" if key else
                          "check --certificate-identity and --certificate-oidc-issuer against the signer's "
                          "certificate (cosign verify prints them), or sign it from this identity")
    return Unverified(False, f"no valid signature by {signer} covers {ref.digest}{_why(done)}",
                      "check the registry holds the signature and cosign can read it, then rerun; or " + SIGN_FIX)


def _why(done: object) -> str:
    lines = [line for line in (getattr(done, "stderr", "") or "").splitlines() if line.strip()]
    secret = os.environ.get("COSIGN_PASSWORD") or ""
    last = redact(lines[-1], (secret,) if secret else ()) if lines else ""
    return f" ({last.strip()[:300]})" if last else ""
