"""orch: publish multi-architecture container images with docker buildx."""

__version__ = "0.1.0.dev0"
