"""Keep secrets out of anything printed or logged.

A secret can reach a docker command line (``--password``, ``--secret
id=x,env=TOKEN`` is fine but ``--build-arg TOKEN=...`` is not), a URL
(``https://user:pass@host``) or an error text. Everything shown to a user
passes through :func:`redact` first.

The values themselves are known once a build is planned: those of build args whose names look
secret and of `--secret` (its variable, or its file's lines). :func:`keep_secret` records them
for the whole process, so every redaction masks them, and so does :func:`mask` (the printed
streams, and every document orch writes: --json, --metadata-file, --report, CI outputs).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from orchestrator.patterns import on_first_use

MASK = "*****"

_SECRET_WORDS = r"(?:password|passwd|pass|token|secret|apikey|api_key|auth|credential|private_key)"
_PATTERNS = [
    # Authorization headers (first: the key pattern below would eat the scheme word)
    (on_first_use(r"(?P<keep>\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}", re.I), r"\g<keep>" + MASK),
    # user:password@host in URLs
    (on_first_use(r"(?P<keep>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?=@)", re.I), r"\g<keep>" + MASK),
    # NAME_TOKEN=value, --build-arg GITHUB_TOKEN=value, password=value, "password": "value"
    (
        on_first_use(r"(?P<keep>\b[\w.-]*" + _SECRET_WORDS + r"[\w.-]*[\"']?\s*[=:]\s*[\"']?)[^\s,\"']+", re.I),
        r"\g<keep>" + MASK,
    ),
]
_SECRET_FLAGS = {"-p", "--password", "--token", "--registry-token"}
# Words that make a name (a build arg, an env var) look like it holds a secret.
SECRET_NAME_PARTS = {"PASSWORD", "PASSWD", "PASS", "PWD", "TOKEN", "SECRET", "SECRETS", "KEY", "APIKEY", "AUTH",
                     "CREDENTIAL", "CREDENTIALS", "CREDS", "PRIVATE", "CERT", "PAT", "SESSION", "COOKIE"}


def looks_secret(name: str) -> bool:
    """REG_PASSWORD, GITHUB_TOKEN, npmAuthToken, ssh-private-key: yes; KEYWORDS, PASSAGE: no."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # camelCase -> camel_Case
    return any(part in SECRET_NAME_PARTS for part in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if part)


# Shorter values are not masked: masking "ab" would garble every line and hide nothing.
MIN_SECRET = 4
_known: tuple[str, ...] = ()  # longest first, so a value is masked before a part of it
_known_lock = threading.Lock()


def keep_secret(*values: str) -> None:
    """Mask `values` from now on wherever orch prints or writes: each whole, and each line of a
    value of several (a step's output reaches orch line by line)."""
    global _known
    found = set()
    for value in values:
        for part in (value, value.strip(), *value.splitlines()):
            if len(part.strip()) >= MIN_SECRET:
                found.add(part.strip())
    if found - set(_known):
        with _known_lock:
            _known = tuple(sorted(set(_known) | found, key=len, reverse=True))


def known() -> tuple[str, ...]:
    return _known


def mask(text: str) -> str:
    """The secret values orch knows of (keep_secret) masked in `text`; nothing else changed."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_document(document: Any) -> Any:
    """A JSON-like document with every known secret value masked in its strings (keys too)."""
    if not _known:
        return document
    if isinstance(document, str):
        return mask(document)
    if isinstance(document, dict):
        return {mask_document(key): mask_document(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [mask_document(item) for item in document]
    return document


def redact(text: str, known_secrets: tuple[str, ...] = ()) -> str:
    """Mask credentials in free text, plus any exact secret values given or kept."""
    text = mask(text)
    for secret in known_secrets:
        if secret:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_command(args: list[str], known_secrets: tuple[str, ...] = ()) -> list[str]:
    """Mask the value after a password flag, then redact each word."""
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            out.append(MASK)
            hide_next = False
            continue
        if arg in _SECRET_FLAGS:
            hide_next = True
            out.append(arg)
            continue
        flag, sep, _ = arg.partition("=")
        if sep and flag in _SECRET_FLAGS:
            out.append(f"{flag}={MASK}")
            continue
        out.append(redact(arg, known_secrets))
    return out
