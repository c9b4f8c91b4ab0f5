"""Build profiles: YAML in profiles/ (and on the search path), validated into frozen dataclasses.

model: what a profile holds; schema: the field table and JSON Schema; yamldoc:
YAML with line numbers; validate: the checks; loader: finding, reading and
merging `extends` chains.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # what __getattr__ gives, as the type checker should see it
    from orchestrator.profiles.loader import (
        available,
        bundled_dir,
        load,
        load_file,
        load_text,
        locate,
        merge,
        search_path,
    )
    from orchestrator.profiles.schema import json_schema

# Reading profiles (YAML, validation, the search path) is loaded on first use: a command given no
# profile (orch release -t ..., orch verify --platform ...) never pays for it.
_LOADER = ("available", "bundled_dir", "load", "load_file", "load_text", "locate", "merge", "search_path")


def __getattr__(name: str) -> Any:
    if name in _LOADER:
        from orchestrator.profiles import loader

        return getattr(loader, name)
    if name == "json_schema":
        from orchestrator.profiles.schema import json_schema

        return json_schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DRIVERS", "MERGES", "STRATEGIES", "TAG_FIELDS", "Attestations", "BuilderNode", "BuilderSpec", "Profile",
    "ProfileError", "available", "bundled_dir", "json_schema", "load", "load_file", "load_text", "locate", "merge", "search_path",
]
