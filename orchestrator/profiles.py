"""Build profiles: YAML in profiles/, validated into frozen dataclasses.

A profile says what to build (platforms, Dockerfile, args, tags, cache,
attestations, strategy, builder). ``None`` means unset, which is not the
same as empty: an unset field inherits through ``extends``, an empty one
clears what it inherits.

Merging (``extends``), field by field: scalars and lists are replaced by
the child; mappings (build_args, labels, annotations, builder.driver_opts)
are merged key by key, the child winning; ``builder`` and ``attestations``
merge their own fields the same way.

Errors name the file, the line and the key path, quote the bad value and
say what is allowed: ``profiles/x.yaml:4: platforms[1]: unknown platform
"linux/armv9" ...``.
"""

from __future__ import annotations

import difflib
import os
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.platforms import Platform, format_all, parse

MAX_PROFILE_BYTES = 1 << 20  # a profile is a page of YAML; 1 MiB is generous
MAX_YAML_NODES = 20_000  # also bounds alias expansion ("billion laughs")
PROFILE_SUFFIXES = (".yaml", ".yml")
STRATEGIES = ("auto", "single", "per-arch")
MERGES = ("imagetools", "manifest")
DRIVERS = ("docker-container", "docker", "kubernetes", "remote")
TAG_FIELDS = ("version", "sha", "short_sha", "branch", "date", "profile")
REPO_PROFILES = Path(__file__).resolve().parent.parent / "profiles"
PACKAGED_PROFILES = Path(__file__).resolve().parent / "bundled_profiles"


class ProfileError(BadInput):
    def __init__(self, source: str, line: int | None, key_path: str, problem: str, fix: str | None = None):
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {key_path + ': ' if key_path else ''}{problem}", fix=fix)
        self.source = source
        self.line = line
        self.key_path = key_path


# -- the model --------------------------------------------------------------


@dataclass(frozen=True)
class BuilderNode:
    endpoint: str | None = None  # a docker context or endpoint
    name: str | None = None
    platforms: tuple[Platform, ...] | None = None
    builder: str | None = None  # or an existing buildx builder (per-arch fan-out)


@dataclass(frozen=True)
class BuilderSpec:
    name: str | None = None
    driver: str | None = None
    driver_opts: Mapping[str, str] | None = None
    nodes: tuple[BuilderNode, ...] | None = None


@dataclass(frozen=True)
class Attestations:
    provenance: str | None = None  # "false", "true", "mode=min", "mode=max"
    sbom: bool | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    source: str
    description: str | None = None
    extends: str | None = None
    platforms: tuple[Platform, ...] | None = None
    dockerfile: str | None = None
    context: str | None = None
    target: str | None = None
    build_args: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    tags: tuple[str, ...] | None = None
    cache_from: tuple[str, ...] | None = None
    cache_to: tuple[str, ...] | None = None
    attestations: Attestations | None = None
    strategy: str | None = None
    merge: str | None = None
    builder: BuilderSpec | None = None
    install_emulators: bool | None = None
    # The chain of files this profile was merged from, child last.
    sources: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Platform):
                return format_all(value)
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            if isinstance(value, Mapping):
                return {k: plain(v) for k, v in value.items()}
            if hasattr(value, "__dataclass_fields__"):
                return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
            return value

        return plain(self)


# -- the field table: drives validation and the JSON Schema ---------------


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # str, bool, str_list, str_map, platform_list, enum, provenance, object, object_list
    help: str
    choices: tuple[str, ...] = ()
    children: Mapping[str, FieldSpec] | None = None
    required: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()  # exactly one of these keys


NODE_FIELDS = {
    "name": FieldSpec("str", "Node name in the builder."),
    "endpoint": FieldSpec("str", "Docker context name or endpoint (unix://, tcp://, ssh://)."),
    "platforms": FieldSpec("platform_list", "Platforms this node builds natively (any alias)."),
    "builder": FieldSpec("str", "Instead of an endpoint: an existing buildx builder that builds this node's "
                         "platforms (with driver: docker, per-arch builds go to it)."),
}
BUILDER_FIELDS = {
    "name": FieldSpec("str", "Builder name; orch creates it if missing. 'default' means the daemon's own."),
    "driver": FieldSpec("enum", "buildx driver.", DRIVERS),
    "driver_opts": FieldSpec("str_map", "Driver options (--driver-opt KEY=VALUE)."),
    "nodes": FieldSpec("object_list", "Build nodes, each with the platforms it serves natively.",
                       children=NODE_FIELDS, one_of=("endpoint", "builder")),
}
ATTESTATION_FIELDS = {
    "provenance": FieldSpec("provenance", "SLSA provenance: true, false, mode=min or mode=max."),
    "sbom": FieldSpec("bool", "Attach an SBOM attestation."),
}
PROFILE_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("str", "Profile name (defaults to the file name)."),
    "description": FieldSpec("str", "One line for `orch profiles list`."),
    "extends": FieldSpec("str", "Another profile (name or path) this one builds on."),
    "platforms": FieldSpec("platform_list", "Platforms to build, any alias (arm32v7, armhf, linux/arm/v7...)."),
    "dockerfile": FieldSpec("str", "Dockerfile path, relative to the context (as buildx -f)."),
    "context": FieldSpec("str", "Build context directory (relative to the current directory)."),
    "target": FieldSpec("str", "Dockerfile stage to build (--target)."),
    "build_args": FieldSpec("str_map", "Build arguments (--build-arg)."),
    "labels": FieldSpec("str_map", "Image labels (--label)."),
    "annotations": FieldSpec("str_map", "OCI annotations on the index and manifests."),
    "tags": FieldSpec("str_list", "Tags; templates may use {" + "}, {".join(TAG_FIELDS) + "}."),
    "cache_from": FieldSpec("str_list", "Cache sources (--cache-from), e.g. type=registry,ref=REPO:cache."),
    "cache_to": FieldSpec("str_list", "Cache exports (--cache-to), e.g. type=registry,ref=REPO:cache,mode=max."),
    "attestations": FieldSpec("object", "Attestations to attach.", children=ATTESTATION_FIELDS),
    "strategy": FieldSpec("enum", "single: one buildx call; per-arch: one per platform, merged; auto: "
                          "single, falling back to per-arch.", STRATEGIES),
    "merge": FieldSpec("enum", "How per-arch builds become one list: imagetools (OCI index, keeps attestations) "
                       "or manifest (docker manifest create/annotate/push: a Docker manifest list).", MERGES),
    "builder": FieldSpec("object", "The buildx builder to use or create.", children=BUILDER_FIELDS),
    "install_emulators": FieldSpec("bool", "Install missing QEMU handlers (tonistiigi/binfmt) without asking."),
}


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for profile files, from the field table."""

    def schema_for(spec: FieldSpec) -> dict[str, Any]:
        out: dict[str, Any] = {"description": spec.help}
        if spec.kind == "str":
            out["type"] = "string"
        elif spec.kind == "bool":
            out["type"] = "boolean"
        elif spec.kind in ("str_list", "platform_list"):
            out.update(type="array", items={"type": "string"})
        elif spec.kind == "str_map":
            out.update(type="object", additionalProperties={"type": ["string", "number", "boolean"]})
        elif spec.kind == "enum":
            out.update(type="string", enum=list(spec.choices))
        elif spec.kind == "provenance":
            out["anyOf"] = [{"type": "boolean"}, {"type": "string", "enum": ["mode=min", "mode=max"]}]
        elif spec.kind == "object":
            out.update(object_schema(spec.children or {}, spec.required, spec.one_of))
        elif spec.kind == "object_list":
            out.update(type="array", items=object_schema(spec.children or {}, spec.required, spec.one_of))
        return out

    def object_schema(children: Mapping[str, FieldSpec], required: tuple[str, ...],
                      one_of: tuple[str, ...] = ()) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: schema_for(spec) for name, spec in children.items()},
        }
        if required:
            schema["required"] = list(required)
        if one_of:
            schema["oneOf"] = [{"required": [key]} for key in one_of]
        return schema

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://orch.invalid/profile.schema.json",
        "title": "orch build profile",
        **object_schema(PROFILE_FIELDS, ()),
    }


# -- YAML with line numbers, bounded --------------------------------------


@dataclass
class _Document:
    source: str
    data: Any
    lines: dict[str, int]

    def line(self, key_path: str) -> int | None:
        while key_path:
            if key_path in self.lines:
                return self.lines[key_path]
            key_path = key_path.rpartition(".")[0] if "." in key_path else key_path.rpartition("[")[0]
        return self.lines.get("")


def _read_yaml(path: Path, shown: str) -> _Document:
    import yaml

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ProfileError(shown, None, "", f"cannot read the profile: {exc.strerror}") from None
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(shown, None, "", f"file is {size} bytes; a profile may be at most {MAX_PROFILE_BYTES}",
                           fix="a profile is a short YAML mapping: check that this is the right file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ProfileError(shown, None, "", "file is not UTF-8 text", fix="save the profile as UTF-8 YAML") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ProfileError(shown, line, "", f"malformed YAML: {exc.problem}",
                           fix="fix the YAML syntax at that line (indentation, quotes, colons)") from None
    except yaml.YAMLError as exc:
        raise ProfileError(shown, None, "", f"malformed YAML: {exc}") from None
    except RecursionError:
        raise ProfileError(shown, None, "", "YAML nested too deeply", fix="a profile needs a few levels at most") from None
    if node is None:
        raise ProfileError(shown, None, "", "the profile is empty",
                           fix="write a YAML mapping, at least `platforms: [linux/amd64, linux/arm64]`")
    lines: dict[str, int] = {}
    budget = [MAX_YAML_NODES]
    data = _to_python(node, "", lines, budget, shown)
    return _Document(shown, data, lines)


def _to_python(node: Any, path: str, lines: dict[str, int], budget: list[int], shown: str) -> Any:
    import yaml

    budget[0] -= 1
    if budget[0] < 0:
        raise ProfileError(shown, node.start_mark.line + 1, path,
                           f"the YAML expands to more than {MAX_YAML_NODES} values (aliases?)",
                           fix="a profile is small: write values out instead of nesting aliases")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ProfileError(shown, key_node.start_mark.line + 1, path, "keys must be plain strings")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ProfileError(shown, key_node.start_mark.line + 1, path, "YAML merge keys (<<) are not supported",
                                   fix="use `extends: OTHER_PROFILE` to build on another profile")
            key = key_node.value
            child = f"{path}.{key}" if path else key
            if key in out:
                raise ProfileError(shown, key_node.start_mark.line + 1, child, f'duplicate key "{key}"',
                                   fix="keep one of them")
            lines[child] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, child, lines, budget, shown)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, f"{path}[{i}]", lines, budget, shown) for i, item in enumerate(node.value)]
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ProfileError(shown, node.start_mark.line + 1, path, f"bad value: {exc}") from None


# -- validation -------------------------------------------------------------


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(type(value))
    return kind or type(value).__name__


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class _Validator:
    def __init__(self, doc: _Document) -> None:
        self.doc = doc

    def fail(self, path: str, problem: str, fix: str | None = None) -> ProfileError:
        return ProfileError(self.doc.source, self.doc.line(path), path, problem, fix)

    def mapping(self, value: Any, path: str, spec: Mapping[str, FieldSpec],
                required: tuple[str, ...] = (), one_of: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            where = path or "the profile"
            raise self.fail(path, f"{where} must be a mapping of keys to values, got {_describe(value)}",
                            "write `key: value` lines, e.g. `platforms: [linux/arm64]`")
        out: dict[str, Any] = {}
        for key, item in value.items():
            key_path = f"{path}.{key}" if path else str(key)
            if key not in spec:
                allowed = ", ".join(spec)
                raise self.fail(key_path, f'unknown key "{key}"{_did_you_mean(str(key), list(spec))}',
                                f"allowed keys here: {allowed}")
            out[key] = self.value(item, key_path, spec[key])
        for key in required:
            if key not in value:
                raise self.fail(path, f'"{key}" is required here', f"add `{key}: ...`")
        if one_of and sum(key in value for key in one_of) != 1:
            names = " or ".join(f'"{key}"' for key in one_of)
            raise self.fail(path, f"give exactly one of {names}", f"e.g. `{one_of[0]}: ...`")
        return out

    def value(self, value: Any, path: str, spec: FieldSpec) -> Any:
        kind = spec.kind
        if value is None and kind not in ("object", "object_list"):
            return None
        if kind == "str":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise self.fail(path, f"expected text, got {_describe(value)} {value!r}")
            return str(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(path, f"expected true or false, got {value!r}")
            return value
        if kind == "enum":
            if value not in spec.choices:
                raise self.fail(path, f'"{value}" is not one of {", ".join(spec.choices)}'
                                      f"{_did_you_mean(str(value), list(spec.choices))}")
            return value
        if kind == "provenance":
            if isinstance(value, bool):
                return "true" if value else "false"
            if value in ("mode=min", "mode=max", "true", "false"):
                return value
            raise self.fail(path, f'"{value}" is not a provenance setting', "use true, false, mode=min or mode=max")
        if kind in ("str_list", "platform_list"):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list):
                raise self.fail(path, f"expected a list, got {_describe(value)}", "write `[a, b]` or one `- a` per line")
            out = []
            for i, item in enumerate(items):
                item_path = f"{path}[{i}]"
                if not isinstance(item, (str, int, float)) or isinstance(item, bool):
                    raise self.fail(item_path, f"expected text, got {_describe(item)} {item!r}")
                if kind == "platform_list":
                    try:
                        out.append(parse(str(item)))
                    except BadInput as exc:
                        raise self.fail(item_path, exc.message, exc.fix) from None
                else:
                    out.append(str(item))
            return tuple(out)
        if kind == "str_map":
            if not isinstance(value, dict):
                raise self.fail(path, f"expected a mapping of names to values, got {_describe(value)}",
                                "write `NAME: value` lines under it")
            result = {}
            for key, item in value.items():
                if isinstance(item, (dict, list)):
                    raise self.fail(f"{path}.{key}", f"expected a plain value, got {_describe(item)}")
                result[str(key)] = "" if item is None else (str(item).lower() if isinstance(item, bool) else str(item))
            return result
        if kind == "object":
            return self.mapping({} if value is None else value, path, spec.children or {}, spec.required,
                                spec.one_of)
        if kind == "object_list":
            if not isinstance(value, list):
                raise self.fail(path, f"expected a list, got {_describe(value)}")
            return [self.mapping(item, f"{path}[{i}]", spec.children or {}, spec.required, spec.one_of)
                    for i, item in enumerate(value)]
        raise AssertionError(kind)


def _check_tag_templates(validator: _Validator, tags: tuple[str, ...] | None) -> None:
    for i, tag in enumerate(tags or ()):
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(tag) if name is not None]
        except ValueError as exc:
            raise validator.fail(f"tags[{i}]", f'bad template "{tag}": {exc}', "use {name} placeholders, {{ for a brace")
        for name in names:
            if name not in TAG_FIELDS:
                raise validator.fail(f"tags[{i}]", f'unknown placeholder "{{{name}}}" in "{tag}"'
                                     f"{_did_you_mean(name, list(TAG_FIELDS))}",
                                     "allowed: {" + "}, {".join(TAG_FIELDS) + "}")


def _check_cache_entries(validator: _Validator, values: dict[str, Any]) -> None:
    """`cache_from: [type=registry,ref=r:cache]` is two YAML items, "type=registry" and
    "ref=r:cache": a bare comma splits a flow list. Catch the split halves."""
    for key in ("cache_from", "cache_to"):
        for i, entry in enumerate(values.get(key) or ()):
            if "=" in entry and "type=" not in entry:
                raise validator.fail(f"{key}[{i}]", f'"{entry}" has no type=: a YAML list split it at a comma',
                                     f'quote the whole value: {key}: ["type=registry,ref=REPO:cache"]')


def profile_from_document(doc: _Document, default_name: str) -> Profile:
    validator = _Validator(doc)
    values = validator.mapping(doc.data, "", PROFILE_FIELDS)
    _check_tag_templates(validator, values.get("tags"))
    _check_cache_entries(validator, values)
    builder = values.get("builder")
    if builder is not None:
        nodes = builder.get("nodes")
        builder = BuilderSpec(
            name=builder.get("name"),
            driver=builder.get("driver"),
            driver_opts=builder.get("driver_opts"),
            nodes=None if nodes is None else tuple(BuilderNode(**node) for node in nodes),
        )
        if builder.name == "default" and builder.driver not in (None, "docker"):
            raise validator.fail("builder.name", '"default" is the daemon\'s own builder (docker driver)',
                                 "pick another name for a builder orch should create")
    attestations = values.get("attestations")
    return Profile(
        name=values.get("name") or default_name,
        source=doc.source,
        **{k: v for k, v in values.items() if k not in ("name", "builder", "attestations")},
        builder=builder,
        attestations=None if attestations is None else Attestations(**attestations),
        sources=(doc.source,),
    )


# -- merge ------------------------------------------------------------------

_MAPPING_FIELDS = {"build_args", "labels", "annotations"}


def _merge_dataclass(parent: Any, child: Any, mapping_fields: set[str]) -> Any:
    if parent is None:
        return child
    if child is None:
        return parent
    updates = {}
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
    merged = _merge_dataclass(parent, replace(child, attestations=None, builder=None, sources=()), _MAPPING_FIELDS)
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
    hint = _did_you_mean(ref, list(names))
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
    doc = _read_yaml(path, _shown(path))
    return profile_from_document(doc, default_name=path.stem)


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


# -- tags -------------------------------------------------------------------


def render_tags(tags: tuple[str, ...], values: Mapping[str, str | None]) -> list[str]:
    """Fill {version}, {short_sha}... ; a template needing an unknown value is an error."""
    out = []
    for tag in tags:
        needed = [name for _, name, _, _ in string.Formatter().parse(tag) if name]
        missing = [name for name in needed if not values.get(name)]
        if missing:
            raise BadInput(f'tag template "{tag}" needs {", ".join("{" + m + "}" for m in missing)}, '
                           "which is unknown here", fix="build from a git checkout, or pass -t with a literal tag")
        out.append(tag.format(**{name: values[name] for name in needed}))
    return out
