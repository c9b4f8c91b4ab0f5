"""What a registry answer means to a user: not found, unauthorized, unreachable, other."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import EnvironmentMissing, JobFailed


class RegistryError(JobFailed):
    pass


class ImageNotFound(JobFailed):
    pass


class DigestMismatch(JobFailed):
    """Content that does not hash to the digest it was asked for (or that the registry named)."""

    def __init__(self, host: str, what: str, expected: str, found: str) -> None:
        super().__init__(f"{what}: registry {host} served content whose digest is {found}, not {expected}; "
                         "nothing it says about this object can be trusted",
                         fix="check the registry (and any proxy or cache in front of it), then rerun")
        self.expected = expected
        self.found = found


class HTTPStatusError(Exception):
    """A 4xx/5xx answer (kept apart from OrchError: callers turn it into one)."""

    def __init__(self, code: int, headers: Any, body: bytes = b"") -> None:
        super().__init__(f"HTTP {code}")
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def reason(self) -> str:
        """The registry's own words: its first error code and message, when it gave them."""
        try:
            first = (json.loads(self.body).get("errors") or [{}])[0]
        except (ValueError, AttributeError, IndexError):
            return ""
        return ": ".join(str(first[k]) for k in ("code", "message") if first.get(k))


def unauthorized(host: str) -> EnvironmentMissing:
    return EnvironmentMissing(f"registry {host} refused the request (unauthorized)",
                              fix=f"log in first: docker login {host}")


def unreachable(host: str, reason: object) -> EnvironmentMissing:
    return EnvironmentMissing(f"cannot reach the registry {host}: {reason}",
                              fix="check that the registry is running and reachable "
                                  f"(`orch doctor --registry {host}`)")


def untrusted(host: str, certs: object, exc: BaseException) -> EnvironmentMissing:
    """TLS with the registry failed: an unknown CA, a missing client certificate, or no TLS at all."""
    reason = str(getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc)
    if "CERTIFICATE_REQUIRED" in reason.upper().replace(" ", "_"):
        reason += " (the registry asks for a client certificate)"
    elif getattr(exc, "verify_message", None):
        reason += " (its certificate is not signed by a CA orch trusts)"
    elif "WRONG_VERSION_NUMBER" in reason or "record layer failure" in reason:
        reason += " (it does not speak TLS)"
    return EnvironmentMissing(
        f"cannot talk TLS with the registry {host}: {reason}",
        fix=f"for a private CA put its certificate in {certs}/ca.crt (a client certificate as client.cert with "
            "client.key beside it), as docker reads them; for a registry without TLS, list it in the daemon's "
            "insecure-registries")


def failing(host: str, what: str) -> EnvironmentMissing:
    """The registry answers, but only with server errors (after orch's retries)."""
    return EnvironmentMissing(f"registry {host} keeps failing: {what}",
                              fix=f"check the registry's health and logs (`orch doctor --registry {host}`), then rerun")


def not_found(ref: object) -> ImageNotFound:
    return ImageNotFound(f'"{ref}" does not exist in the registry (no such tag or digest)',
                         fix="check the repository and tag; `orch inspect` shows what a reference holds")
