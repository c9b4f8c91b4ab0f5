"""The few registry API calls orch makes itself (the rest go through buildx)."""

from __future__ import annotations

import urllib.error
import urllib.request

from orchestrator.references import Reference


def registry_url(ref: Reference) -> str:
    scheme = "http" if ref.is_loopback else "https"
    host = "registry-1.docker.io" if ref.registry == "docker.io" else ref.registry
    return f"{scheme}://{host}"


def delete_tag(ref: Reference, timeout: float = 10.0) -> bool:
    """Delete a tag without touching the manifest it points at (OCI 1.1 tag
    deletion). Registries that only delete by digest refuse; deleting by
    digest would also remove the user's tags, so orch then keeps the tag."""
    url = f"{registry_url(ref)}/v2/{ref.repository}/manifests/{ref.tag}"
    request = urllib.request.Request(url, method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            return response.status in (200, 202)
    except (urllib.error.URLError, OSError):
        return False
