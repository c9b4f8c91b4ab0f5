"""Registry credentials as docker keeps them: a credential helper named in $DOCKER_CONFIG/config.json
(`credHelpers`, `credsStore`) or its `auths` entries (a password, or an identity token that is an
OAuth2 refresh token). They live only inside Credentials, whose repr hides them."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    """What docker's config holds for a registry; the secret is never shown in a repr."""

    username: str = field(repr=False)
    secret: str = field(repr=False)
    identity_token: bool = False  # secret is an OAuth2 refresh token: exchanged, never sent as a password

    def __repr__(self) -> str:
        return "Credentials(***)"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()


IDENTITY_TOKEN_USER = "<token>"  # how credential helpers mark an identity token


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def credentials_for(registry: str, config_path: Path | None = None) -> Credentials | None:
    """The credentials `docker login` stored for this registry, looked up in docker's order:
    credHelpers[registry], then credsStore, then the file's own `auths` entry."""
    try:
        config = json.loads((config_path or docker_config_path()).read_text())
    except (OSError, ValueError):
        return None
    key = DOCKER_HUB_KEY if registry in ("docker.io", "index.docker.io") else registry
    helper = (config.get("credHelpers") or {}).get(key) or config.get("credsStore")
    if helper:
        found = _from_helper(helper, key)
        if found is not None:
            return found
    auths = config.get("auths") or {}
    entry = auths.get(key) or auths.get(f"https://{key}") or auths.get(f"http://{key}") or {}
    if entry.get("identitytoken"):
        return Credentials(IDENTITY_TOKEN_USER, entry["identitytoken"], identity_token=True)
    if entry.get("auth"):
        user, _, secret = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
        return Credentials(user, secret)
    return None


def _from_helper(helper: str, key: str) -> Credentials | None:
    from orchestrator.processes import output  # a helper is a program: started only when one is configured

    printed = output([f"docker-credential-{helper}", "get"], stdin=key)
    if printed is None:
        return None
    try:
        data = json.loads(printed)
    except ValueError:
        return None
    if not data.get("Secret"):
        return None
    user = data.get("Username", "")
    return Credentials(user, data["Secret"], identity_token=user == IDENTITY_TOKEN_USER)
