"""How to reach a registry host the way docker does: through which proxy, with which TLS material,
and whether it may be spoken to without verified TLS.

* Proxies: HTTPS_PROXY for https, HTTP_PROXY for http (or the lower-case names), except hosts
  NO_PROXY names, by the rules docker's Go runtime applies: loopback and localhost are never
  proxied; a NO_PROXY entry is `*`, a domain (`example.com` matches it and its subdomains,
  `.example.com` and `*.example.com` only its subdomains), an IP address or a CIDR, each with
  an optional `:port`.
* TLS: docker's certs.d directory (/etc/docker/certs.d, or ORCH_CERTS_D), HOST[:PORT]/ below it:
  every `*.crt` is a CA trusted beside the system's, and `NAME.cert` with `NAME.key` is a client
  certificate.
* Insecure registries: loopback (docker's default 127.0.0.0/8), and what the daemon reports in
  `docker info` (a registry listed as not secure, or an address in an insecure CIDR), given by
  the command that chose the daemon (`given_daemon_config`: the registry client runs no docker).
  Asked only when TLS has failed, which is also when docker falls back: first TLS without
  verification, then plain HTTP.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CERTS_D = Path("/etc/docker/certs.d")


@dataclass(frozen=True)
class Proxy:
    """The HTTP proxy a registry host is reached through, with its credentials if the URL had any."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # Proxy-Authorization, from user:password@

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def split_netloc(netloc: str, default_port: int) -> tuple[str, int]:
    host, sep, port = netloc.rpartition(":")
    if not sep or not port.isdigit() or (host.startswith("[") is not host.endswith("]")):
        return netloc.strip("[]"), default_port
    return host.strip("[]"), int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env(environ: Any, name: str) -> str:
    return environ.get(name.upper()) or environ.get(name.lower()) or ""


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry_host, entry_port = split_netloc(entry, 0) if "/" not in entry else (entry, 0)
        if entry_port and entry_port != port:
            continue
        if "/" in entry_host:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry_host, strict=False):
                    return True
            except ValueError:
                pass
            continue
        if entry_host.startswith("*."):
            entry_host = entry_host[1:]
        if entry_host.startswith("."):  # subdomains only
            if host.endswith(entry_host):
                return True
        elif host == entry_host or host.endswith("." + entry_host):
            return True
    return False


def proxy_for(scheme: str, netloc: str, environ: Any = None) -> Proxy | None:
    """The proxy a request to scheme://netloc goes through, if any."""
    environ = os.environ if environ is None else environ
    setting = _env(environ, "https_proxy" if scheme == "https" else "http_proxy")
    if not setting:
        return None
    host, port = split_netloc(netloc.lower(), 443 if scheme == "https" else 80)
    if _is_loopback(host) or _bypassed(host, port, _env(environ, "no_proxy")):
        return None
    parts = urllib.parse.urlsplit(setting if "://" in setting else f"http://{setting}")
    authorization = None
    if parts.username is not None:
        import base64

        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    return Proxy(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), authorization)


def certs_dir(netloc: str) -> Path:
    return Path(os.environ.get("ORCH_CERTS_D") or CERTS_D) / netloc


def tls_context(netloc: str, *, verify: bool = True) -> Any:
    """An ssl.SSLContext for this registry: the system's CAs plus certs.d's, and its client certificate."""
    import ssl  # only registries over TLS pay for it

    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    folder = certs_dir(netloc)
    try:
        files = sorted(folder.iterdir())
    except OSError:
        return context
    for path in files:
        if path.suffix == ".crt" and verify:
            context.load_verify_locations(cafile=str(path))
        elif path.suffix == ".cert":
            key = path.with_suffix(".key")
            if not key.exists():
                from orchestrator.errors import EnvironmentMissing

                raise EnvironmentMissing(f"{path} has no key beside it ({key.name})",
                                         fix=f"put the client certificate's key at {key}, as docker expects")
            context.load_cert_chain(certfile=str(path), keyfile=str(key))
    return context


# Where the daemon's registry settings come from: given by the command that chose the daemon
# (from docker.probe's one `docker info`), so the registry client runs no program itself and goes
# by that daemon, not another. Asked only when TLS has failed. None: nothing given.
_daemon_config: Callable[[], dict[str, Any]] | None = None


def given_daemon_config(source: Callable[[], dict[str, Any]] | None) -> None:
    """The daemon's RegistryConfig comes from `source` (called at most once per TLS failure)."""
    global _daemon_config
    _daemon_config = source


def daemon_registry_config() -> dict[str, Any]:
    """The daemon's RegistryConfig (its insecure-registries) as given; {} when none was given, or
    when the daemon does not answer."""
    from orchestrator.errors import OrchError

    if _daemon_config is None:
        return {}
    try:
        config = _daemon_config()
    except OrchError:
        return {}
    return config if isinstance(config, dict) else {}


def insecure_in(config: dict[str, Any], netloc: str) -> bool:
    """Whether the daemon's registry config lets this registry go without verified TLS."""
    listed = (config.get("IndexConfigs") or {}).get(netloc)
    if listed is not None:
        return listed.get("Secure") is False
    host, _ = split_netloc(netloc, 0)
    addresses = []
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        import socket

        try:
            addresses = [ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, None)]
        except (OSError, ValueError):
            addresses = []
    networks = []
    for cidr in config.get("InsecureRegistryCIDRs") or []:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    return any(address in network for address in addresses for network in networks)
