"""Image references (REGISTRY/REPOSITORY[:TAG][@DIGEST]), parsed as docker/distribution's reference grammar does."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from orchestrator.errors import BadInput
from orchestrator.patterns import on_first_use

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = on_first_use(r"^sha256:[a-f0-9]{64}$")
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
NAME_MAX = 255
REFERENCE_HELP = "write REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. localhost:5000/team/app:1.0"


@dataclass(frozen=True)
class Reference:
    """An image reference, parsed: registry, repository, tag and digest, and how the user wrote it."""

    registry: str  # "docker.io" when the user named none
    repository: str  # "library/busybox", "team/app"
    tag: str | None = None
    digest: str | None = None
    # How the user wrote it (user/app:1 for docker.io/user/app:1): outputs say tags the user's way.
    spelled: str | None = field(default=None, compare=False, repr=False)

    @property
    def as_given(self) -> str:
        return self.spelled or str(self)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None, spelled=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=digest, spelled=None)

    @property
    def is_loopback(self) -> bool:
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry
        return host in {"localhost", "127.0.0.1", "[::1]"} or host.startswith("127.")


# docker.io's other names (the Hub's API hosts): one registry.
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


def canonical_registry(registry: str) -> str:
    """One name per registry, for matching what was recorded under another spelling: the host
    lower-cased, the default ports (443, 80) dropped, docker.io's aliases folded into docker.io,
    and localhost, 127.0.0.1 and [::1] into localhost (the port kept)."""
    host, port = registry.lower(), ""
    if ":" in host and not host.endswith("]"):
        host, port = host.rsplit(":", 1)
    if port in ("443", "80"):
        port = ""
    if host in DOCKER_HUB_ALIASES:
        host = "docker.io"
    elif host in LOOPBACK_HOSTS:
        host = "localhost"
    return f"{host}:{port}" if port else host


def canonical_name(name: str) -> str:
    """REGISTRY/REPOSITORY with the registry in its canonical form (canonical_registry)."""
    registry, _, repository = name.partition("/")
    return f"{canonical_registry(registry)}/{repository}"


def parse_reference(text: str, *, default_tag: str | None = "latest") -> Reference:
    raw = text.strip()
    if not raw:
        raise BadInput("empty image reference", fix=REFERENCE_HELP)
    rest, digest = raw, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise BadInput(f'invalid digest "{digest}" in image reference "{raw}"', fix="a digest is sha256: and 64 hex digits")
    tag = None
    last_slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > last_slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise BadInput(f'invalid tag "{tag}" in image reference "{raw}"',
                           fix="a tag is up to 128 letters, digits, _ . -, not starting with . or -")
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, remainder
        if not _DOMAIN_RE.match(registry):
            raise BadInput(f'invalid registry "{registry}" in image reference "{raw}"', fix=REFERENCE_HELP)
    else:
        registry, path = "docker.io", rest
        if "/" not in path:
            path = f"library/{path}"
    if not _PATH.match(path):
        hint = " (repository names are lowercase)" if path.lower() != path else ""
        raise BadInput(f'invalid repository "{path}" in image reference "{raw}"{hint}', fix=REFERENCE_HELP)
    port = registry.rsplit(":", 1)[1] if ":" in registry and not registry.endswith("]") else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise BadInput(f'port {port} in image reference "{raw[:80]}" is not between 1 and 65535', fix=REFERENCE_HELP)
    if len(f"{registry}/{path}") > NAME_MAX:  # docker/distribution's NameTotalLengthMax
        raise BadInput(f'the repository name in "{raw[:60]}..." is {len(registry) + 1 + len(path)} characters; '
                       f"at most {NAME_MAX} are allowed", fix="use a shorter repository name")
    if tag is None and digest is None:
        return Reference(registry, path, default_tag, digest)  # the default tag is not how it was written
    return Reference(registry, path, tag, digest, spelled=raw)
