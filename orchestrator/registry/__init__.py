"""Talking to registries: orch's own client (auth, reads, copies, tags) and local OCI layouts."""
