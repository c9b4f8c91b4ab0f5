"""Build profiles: YAML in profiles/ (and on the search path), validated into frozen dataclasses.

model: what a profile holds; schema: the field table and JSON Schema; yamldoc:
YAML with line numbers; validate: the checks; loader: finding, reading and
merging `extends` chains.
"""

from orchestrator.profiles.loader import available, bundled_dir, load, load_file, locate, merge, search_path
from orchestrator.profiles.model import (
    DRIVERS,
    MERGES,
    STRATEGIES,
    TAG_FIELDS,
    Attestations,
    BuilderNode,
    BuilderSpec,
    Profile,
    ProfileError,
)
from orchestrator.profiles.schema import json_schema

__all__ = [
    "DRIVERS", "MERGES", "STRATEGIES", "TAG_FIELDS", "Attestations", "BuilderNode", "BuilderSpec", "Profile",
    "ProfileError", "available", "bundled_dir", "json_schema", "load", "load_file", "locate", "merge", "search_path",
]
