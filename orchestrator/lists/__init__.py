"""Lists from images that already exist (`orch manifest create`, manifest-tool's specs), as
buildx's imagetools makes them, published through the shared transaction."""
