"""Find profiles (search path, names, paths), read them and merge their `extends` chains."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.profiles.model import PROFILE_SUFFIXES, Profile, ProfileError
from orchestrator.profiles.validate import did_you_mean, profile_from_document
from orchestrator.profiles.yamldoc import read_yaml

REPO_PROFILES = Path(__file__).resolve().parent.parent.parent / "profiles"
PACKAGED_PROFILES = Path(__file__).resolve().parent.parent / "bundled_profiles"


_MAPPING_FIELDS = {"build_args", "labels", "annotations", "buildx"}


def _merge_dataclass(parent: Any, child: Any, mapping_fields: set[str]) -> Any:
    if parent is None:
        return child
    if child is None:
        return parent
    updates: dict[str, Any] = {}
    for f in fields(child):
        mine = getattr(child, f.name)
        if mine is None:
            continue
        theirs = getattr(parent, f.name)
        if f.name in mapping_fields and theirs is not None:
            updates[f.name] = {**theirs, **mine}
        else:
            updates[f.name] = mine
    return replace(parent, **updates)


def merge(parent: Profile, child: Profile) -> Profile:
    """The child's fields over the parent's, as the module docstring says."""
    merged: Profile = _merge_dataclass(parent, replace(child, attestations=None, builder=None, sources=()),
                                       _MAPPING_FIELDS)
    return replace(
        merged,
        name=child.name,
        source=child.source,
        description=child.description if child.description is not None else parent.description,
        extends=child.extends,
        attestations=_merge_dataclass(parent.attestations, child.attestations, set()),
        builder=_merge_dataclass(parent.builder, child.builder, {"driver_opts"}),
        sources=parent.sources + child.sources,
    )


# -- finding profiles -------------------------------------------------------


def bundled_dir() -> Path:
    # In a wheel the profiles ship inside the package; in a checkout they sit
    # at the top of the repository.
    return PACKAGED_PROFILES if PACKAGED_PROFILES.is_dir() else REPO_PROFILES


def search_path(cwd: Path | None = None) -> list[Path]:
    """User directories first ($ORCH_PROFILE_PATH, then ./profiles), bundled last."""
    dirs = [Path(p) for p in os.environ.get("ORCH_PROFILE_PATH", "").split(os.pathsep) if p]
    dirs.append((cwd or Path.cwd()) / "profiles")
    dirs.append(bundled_dir())
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def available(dirs: list[Path] | None = None) -> dict[str, Path]:
    """Profile name -> file, earlier directories overriding later ones."""
    found: dict[str, Path] = {}
    for directory in reversed(dirs if dirs is not None else search_path()):
        if directory.is_dir():
            for entry in sorted(directory.iterdir()):
                if entry.suffix in PROFILE_SUFFIXES and entry.is_file():
                    found[entry.stem] = entry
    return dict(sorted(found.items()))


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or ref.endswith(PROFILE_SUFFIXES)


def locate(ref: str, relative_to: Path | None = None, dirs: list[Path] | None = None) -> Path:
    """A profile file from a name (searched) or a path."""
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        if path.is_file():
            return path
        raise BadInput(f'profile file "{ref}" does not exist', fix="check the path, or give a profile name")
    names = available(dirs)
    if ref in names:
        return names[ref]
    hint = did_you_mean(ref, list(names))
    raise BadInput(
        f'unknown profile "{ref}"{hint}',
        fix=f"available: {', '.join(names) or 'none'}; or pass a path to a YAML file "
            f"(searched: {', '.join(str(d) for d in (dirs if dirs is not None else search_path()))})",
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_file(path: Path) -> Profile:
    """One file, validated, without resolving `extends`."""
    doc = read_yaml(path, _shown(path))
    return profile_from_document(doc, default_name=path.stem)


def load_text(text: str, path: Path) -> Profile:
    """A profile's text as the file `path` would hold it, validated, without resolving `extends`."""
    from orchestrator.profiles.yamldoc import document_of

    return profile_from_document(document_of(text, _shown(path)), default_name=path.stem)


def load(ref: str, dirs: list[Path] | None = None,
         _reader: Callable[[Path], Profile] = load_file) -> Profile:
    """A profile by name or path, with its `extends` chain merged in."""
    chain: list[Path] = []
    path = locate(ref, dirs=dirs)
    profiles: list[Profile] = []
    while True:
        resolved = path.resolve()
        if resolved in chain:
            names = " -> ".join(_shown(p) for p in [*chain, resolved])
            raise BadInput(f"profile extends itself: {names}", fix="remove `extends` from one of them")
        chain.append(resolved)
        profile = _reader(path)
        profiles.append(profile)
        if not profile.extends:
            break
        try:
            path = locate(profile.extends, relative_to=path.parent, dirs=dirs)
        except BadInput as exc:
            raise ProfileError(profile.source, None, "extends", exc.message, exc.fix) from None
    merged = profiles[-1]
    for child in reversed(profiles[:-1]):
        merged = merge(merged, child)
    return merged
