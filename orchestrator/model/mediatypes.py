"""Media types of the manifests orch reads and writes, and how attestations are marked."""

from __future__ import annotations

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json": "OCI image index",
    "application/vnd.docker.distribution.manifest.list.v2+json": "Docker manifest list",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json": "OCI image manifest",
    "application/vnd.docker.distribution.manifest.v2+json": "Docker image manifest",
}
# What a registry is asked for when orch reads a manifest by tag or digest.
ACCEPT = ", ".join([*INDEX_TYPES, *MANIFEST_TYPES])
# buildx marks attestation manifests in an index with this annotation value.
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_TYPE = "attestation-manifest"
