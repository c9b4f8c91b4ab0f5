"""What a profile holds, as frozen dataclasses (the YAML is read and checked elsewhere).

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

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from orchestrator.errors import BadInput
from orchestrator.model.platform import Platform, format_all

MAX_PROFILE_BYTES = 1 << 20  # a profile is a page of YAML; 1 MiB is generous
MAX_YAML_NODES = 20_000  # also bounds alias expansion ("billion laughs")
PROFILE_SUFFIXES = (".yaml", ".yml")
STRATEGIES = ("auto", "single", "per-arch")
MERGES = ("imagetools", "manifest")
DRIVERS = ("docker-container", "docker", "kubernetes", "remote")
TAG_FIELDS = ("version", "sha", "short_sha", "branch", "date", "profile")


def is_tag_rule(tag: str) -> bool:
    """A metadata-action rule (`type=...`, or a raw `value=...`) rather than a reference or template."""
    return tag.lstrip().startswith(("type=", "value="))


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
    """A node under a profile's `builder.nodes`, as written: an endpoint or an existing buildx
    builder, and the platforms it is given."""

    endpoint: str | None = None  # a docker context or endpoint
    name: str | None = None
    platforms: tuple[Platform, ...] | None = None
    builder: str | None = None  # or an existing buildx builder (per-arch fan-out)
    driver_opts: Mapping[str, str] | None = None  # this node's own (a remote node's TLS files), over the builder's


@dataclass(frozen=True)
class BuilderSpec:
    """A profile's `builder:`, as written: the builder orch uses or creates, its driver and nodes."""

    name: str | None = None
    driver: str | None = None
    driver_opts: Mapping[str, str] | None = None
    nodes: tuple[BuilderNode, ...] | None = None
    buildkitd_config: str | None = None  # a buildkitd.toml for the nodes orch starts (not remote ones)
    buildkitd_flags: str | None = None


@dataclass(frozen=True)
class Attestations:
    """A profile's `attestations:`: the provenance and SBOM BuildKit attaches to each platform."""

    provenance: str | None = None  # "false", "true", "mode=min", "mode=max"
    sbom: bool | None = None


@dataclass(frozen=True)
class Profile:
    """A profile, as read or merged through `extends`: what to build and how; None is unset, which
    inherits, unlike empty."""

    name: str
    source: str
    description: str | None = None
    extends: str | None = None
    platforms: tuple[Platform, ...] | None = None
    dockerfile: str | None = None
    context: str | None = None
    build_args: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    tags: tuple[str, ...] | None = None
    images: tuple[str, ...] | None = None
    flavor: tuple[str, ...] | None = None
    cache_from: tuple[str, ...] | None = None
    cache_to: tuple[str, ...] | None = None
    cache: Mapping[str, str] | None = None  # {registry: REF}: a registry cache, one ref per platform where built apart
    attestations: Attestations | None = None
    secrets: tuple[str, ...] | None = None
    build_contexts: Mapping[str, str] | None = None
    # buildx's pass-through options (model.buildx_options), by profile key; top-level keys in the file.
    buildx: Mapping[str, Any] | None = None
    strategy: str | None = None
    merge: str | None = None
    builder: BuilderSpec | None = None
    install_emulators: bool | None = None
    reproducible: bool | None = None  # one commit, one digest per platform (orch build --reproducible)
    # CI runners by platform for `orch init --runners native`: a GitHub runs-on label or a GitLab runner tag;
    # {github: {PLATFORM: LABEL}, gitlab: {...}}, or one flat {PLATFORM: LABEL} (authoring.runners.runner_table).
    runners: Mapping[str, Any] | None = None
    # Signing with cosign (--sign): {sign: true, key: PATH, tlog: false, recursive: false}
    signing: Mapping[str, Any] | None = None
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

        document: dict[str, Any] = plain(self)
        return {**{k: v for k, v in document.items() if k != "buildx"}, **(document.get("buildx") or {})}
