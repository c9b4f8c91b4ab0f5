"""Registry credentials as docker keeps them: $DOCKER_CONFIG/config.json `auths` entries or a
credential helper. They live only inside Credentials, whose repr hides them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Credentials:
    username: str = field(repr=False)
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(***)"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()


def docker_config_path() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def credentials_for(registry: str, config_path: Path | None = None) -> Credentials | None:
    """The credentials `docker login` stored for this registry, if any."""
    try:
        config = json.loads((config_path or docker_config_path()).read_text())
    except (OSError, ValueError):
        return None
    key = DOCKER_HUB_KEY if registry in ("docker.io", "index.docker.io") else registry
    helper = (config.get("credHelpers") or {}).get(key) or config.get("credsStore")
    auths = config.get("auths") or {}
    entry = auths.get(key) or auths.get(f"https://{key}") or auths.get(f"http://{key}") or {}
    if entry.get("auth"):
        user, _, secret = base64.b64decode(entry["auth"]).decode(errors="replace").partition(":")
        return Credentials(user, secret)
    if entry.get("identitytoken"):
        return Credentials("<token>", entry["identitytoken"])
    if helper:
        return _from_helper(helper, key)
    return None


def _from_helper(helper: str, key: str) -> Credentials | None:
    try:
        result = subprocess.run([f"docker-credential-{helper}", "get"], input=key, capture_output=True,
                                text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return Credentials(data.get("Username", ""), data.get("Secret", "")) if data.get("Secret") else None
