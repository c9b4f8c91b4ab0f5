"""The typed build spec: everything one `docker buildx build` does, as data.

Planning makes one spec for the single build and one per platform for the
per-arch path. Per-arch jobs, attestation stripping, builder choice and
per-platform cache are transformations of a spec (methods returning a new
one), never edits of argv; argv is rendered from a spec by one function,
builds.argv.buildx_build_argv, when the command runs or is printed.
Fingerprints (what a rerun may reuse) are computed from the spec too.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.docker.runner import Daemon
from orchestrator.model.platform import Platform, format_platform, platform_slug
from orchestrator.redact import looks_secret

# Labels that change on every run without changing what is built.
VOLATILE_LABELS = ("org.opencontainers.image.created",)
INDEX_AND_MANIFEST = ("index", "manifest")


@dataclass(frozen=True)
class CacheEntry:
    """One --cache-from / --cache-to value: buildx's comma-separated key=value attributes."""

    attrs: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> CacheEntry:
        fields = next(csv.reader([text]), [])
        if len(fields) == 1 and "=" not in fields[0]:
            # buildx's shorthand: a bare reference is a registry cache.
            return cls((("type", "registry"), ("ref", fields[0])))
        return cls(tuple((key.strip(), value) for key, _, value in (f.partition("=") for f in fields)))

    def get(self, key: str) -> str | None:
        return next((value for k, value in self.attrs if k == key), None)

    def render(self) -> str:
        return ",".join(f'"{k}={v}"' if "," in v or '"' in v else f"{k}={v}" for k, v in self.attrs)

    def for_platform(self, platform: Platform) -> CacheEntry:
        """A registry cache ref of its own for one platform (`REF-linux-arm-v7`): per-arch builds
        running at once would otherwise overwrite each other's cache manifest."""
        ref = self.get("ref")
        if ref is None or (self.get("type") or "registry") != "registry" or ref.endswith(f"-{platform_slug(platform)}"):
            return self  # not a registry ref, or already this platform's own (a part's --cache)
        return CacheEntry(tuple((k, f"{v}-{platform_slug(platform)}" if k == "ref" else v) for k, v in self.attrs))


@dataclass(frozen=True)
class Output:
    """Where a build's result goes: a registry reference, the daemon's image store, or an OCI layout."""

    type: str  # registry | image | docker (loaded into the daemon from a BuildKit builder) | oci
    names: tuple[str, ...] = ()
    dest: str | None = None  # oci: the layout directory
    oci_mediatypes: bool = True  # False: Docker media types (what `docker manifest create` takes)
    push_by_digest: bool = False  # registry: push with no tag (container drivers only)

    def render(self) -> str:
        media = "" if self.oci_mediatypes else ",oci-mediatypes=false"
        if self.type == "registry":
            return f"type=registry,name={self.names[0]}" + (",push-by-digest=true" if self.push_by_digest else "") + media
        if self.type == "oci":
            named = f',"name={",".join(self.names)}"' if self.names else ""
            return f"type=oci,dest={self.dest},tar=false{named}{media}"
        return f'type={self.type},"name={",".join(self.names)}"'


@dataclass(frozen=True)
class BuildSpec:
    """One `docker buildx build`."""

    platforms: tuple[Platform, ...]
    context: str
    output: Output
    metadata_file: str
    dockerfile: str | None = None
    buildx: tuple[tuple[str, Any], ...] = ()  # pass-through options (model.buildx_options), by key, set ones only
    build_args: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    annotation_levels: tuple[str, ...] = INDEX_AND_MANIFEST  # a per-arch image: the merge adds the index's
    cache_from: tuple[CacheEntry, ...] = ()
    cache_to: tuple[CacheEntry, ...] = ()
    secrets: tuple[str, ...] = ()  # --secret values: id=NAME,src=FILE or id=NAME,env=VAR (never the secret itself)
    build_contexts: tuple[tuple[str, str], ...] = ()  # --build-context NAME=PATH|docker-image://...
    extra_args: tuple[str, ...] = ()  # words after `orch build ... --`, for every buildx call
    provenance: str = "mode=min"  # true | false | mode=min | mode=max
    sbom: bool | None = None  # None: buildx's default
    builder: str | None = None
    daemon: Daemon | None = None  # a node's own daemon (fan-out); None: the current context
    no_cache: bool = False
    progress: str = "plain"
    rewrite_timestamp: bool = False  # --reproducible: every file's mtime clamped to SOURCE_DATE_EPOCH, on every output

    # -- transformations ---------------------------------------------------

    def for_platform(self, platform: Platform, output: Output, metadata_file: str) -> BuildSpec:
        """This build for one platform, pushed on its own (the per-arch path): manifest-level
        annotations only, and registry cache refs of its own beside the shared ones it reads."""
        cache_from: list[CacheEntry] = []
        for entry in self.cache_from:
            own = entry.for_platform(platform)
            cache_from += [e for e in ((entry,) if own == entry else (entry, own)) if e not in cache_from]
        return replace(self, platforms=(platform,), output=output, metadata_file=metadata_file,
                       annotation_levels=("manifest",), cache_from=tuple(cache_from),
                       cache_to=tuple(entry.for_platform(platform) for entry in self.cache_to))

    def without_attestations(self) -> BuildSpec:
        """For builders that cannot attach them (the docker driver on the classic store) and for
        `docker manifest create`, which takes only plain manifests."""
        return replace(self, provenance="false", sbom=False)

    def with_label(self, key: str, value: str) -> BuildSpec:
        return replace(self, labels=(*((k, v) for k, v in self.labels if k != key), (key, value)))

    def on_builder(self, name: str | None) -> BuildSpec:
        return replace(self, builder=name)

    def pushed_by_digest(self, repository: str) -> BuildSpec:
        """Pushed by buildx with no tag (container drivers), instead of written to a layout."""
        return replace(self, output=Output("registry", (repository,), oci_mediatypes=self.output.oci_mediatypes,
                                           push_by_digest=True))

    def on_daemon(self, daemon: Daemon) -> BuildSpec:
        """On a node's own daemon, with that daemon's own builder."""
        return replace(self, daemon=daemon, builder=None)

    # -- what identifies it -------------------------------------------------

    @property
    def platform_texts(self) -> list[str]:
        return [format_platform(p) for p in self.platforms]

    @property
    def secret_build_args(self) -> tuple[str, ...]:
        """Names of build args that look like secrets (masked wherever orch shows them)."""
        return tuple(key for key, _ in self.build_args if looks_secret(key))

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Their values, to scrub from anything printed (a RUN step may echo one)."""
        secret = set(self.secret_build_args)
        return tuple(value for key, value in self.build_args if key in secret and value)

    def fingerprint(self, context_hash: str) -> str:
        """A hash of every input that changes what this spec builds (not the timestamp label,
        the metadata file or the progress style), with the build context's own hash."""
        fields: dict[str, Any] = {
            # Where the result is written changes every run (a private directory); what is written does not.
            "platforms": self.platform_texts, "context": self.context,
            "output": [self.output.type, self.output.names, self.output.oci_mediatypes, self.output.push_by_digest],
            "dockerfile": self.dockerfile, "buildx": [list(pair) for pair in self.buildx],
            "build_args": self.build_args,
            "labels": [pair for pair in self.labels if pair[0] not in VOLATILE_LABELS],
            "annotations": self.annotations, "levels": self.annotation_levels,
            "cache_from": [c.render() for c in self.cache_from], "cache_to": [c.render() for c in self.cache_to],
            "secrets": self.secrets, "build_contexts": self.build_contexts, "extra_args": self.extra_args,
            "provenance": self.provenance, "sbom": self.sbom, "builder": self.builder,
            "daemon": list(self.daemon.flags()) if self.daemon else [], "no_cache": self.no_cache,
            "rewrite_timestamp": self.rewrite_timestamp, "context_hash": context_hash,
        }
        import hashlib

        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
