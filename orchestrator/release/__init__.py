"""Releases of several images at once: bake files resolved, every target built and verified
before any tag of any target moves."""
