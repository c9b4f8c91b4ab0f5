"""The data orch reasons about: platforms and their names, image references, media types."""
