"""The profile field table: drives validation and the JSON Schema for editors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.model.buildx_options import BUILDX_OPTIONS
from orchestrator.profiles.model import DRIVERS, MERGES, STRATEGIES, TAG_FIELDS

RUNNER_CIS = ("github", "gitlab")  # the keys of a per-CI runners table
OPTION_KINDS = {"text": "str", "list": "str_list", "flag": "bool"}  # a buildx option's kind as a profile field


@dataclass(frozen=True)
class FieldSpec:
    """One profile field: its kind and help, and for a mapping the fields it holds; validation
    and the JSON Schema both read it."""

    kind: str  # str, bool, str_list, str_map, platform_list, enum, provenance, object, object_list, runners
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
    "driver_opts": FieldSpec("str_map", "This node's driver options over the builder's (a remote node's cacert, "
                             "cert, key, servername)."),
}
BUILDER_FIELDS = {
    "name": FieldSpec("str", "Builder name; orch creates it if missing. 'default' means the daemon's own."),
    "driver": FieldSpec("enum", "buildx driver.", DRIVERS),
    "driver_opts": FieldSpec("str_map", "Driver options (--driver-opt KEY=VALUE)."),
    "nodes": FieldSpec("object_list", "Build nodes, each with the platforms it serves natively.",
                       children=NODE_FIELDS, one_of=("endpoint", "builder")),
    "buildkitd_config": FieldSpec("str", "A buildkitd.toml for every node the driver starts (docker-container, "
                                  "kubernetes; a remote node reads its own), relative to this file."),
    "buildkitd_flags": FieldSpec("str", "buildkitd flags for every node the driver starts, e.g. "
                                 "'--allow-insecure-entitlement network.host'."),
}
SIGNING_FIELDS = {
    "sign": FieldSpec("bool", "Sign every publish of this profile, as --sign."),
    "key": FieldSpec("str", "The cosign private key (a file, relative to the current directory, or a KMS URI); "
                     "its password in COSIGN_PASSWORD."),
    "tlog": FieldSpec("bool", "Upload signatures to the transparency log (default: off with a key)."),
    "recursive": FieldSpec("bool", "Sign each platform's manifest too, as --sign-recursive."),
}
CACHE_FIELDS = {"registry": FieldSpec("str", "Registry reference of the cache, e.g. ghcr.io/acme/app:buildcache.")}
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
    "build_args": FieldSpec("str_map", "Build arguments (--build-arg)."),
    "labels": FieldSpec("str_map", "Image labels (--label)."),
    "annotations": FieldSpec("str_map", "OCI annotations on the index and manifests."),
    "tags": FieldSpec("str_list", "Tags: references (templates may use {" + "}, {".join(TAG_FIELDS) + "}), or "
                      "metadata-action rules (type=semver,pattern={{version}}, type=ref,event=branch, ...) "
                      "applied to `images`."),
    "images": FieldSpec("str_list", "Repositories the tag rules tag (metadata-action's images)."),
    "flavor": FieldSpec("str_list", "metadata-action's flavor lines: latest=auto|true|false, prefix=..., "
                        "suffix=... (onlatest=true)."),
    "cache_from": FieldSpec("str_list", "Cache sources (--cache-from), e.g. type=registry,ref=REPO:cache."),
    "cache_to": FieldSpec("str_list", "Cache exports (--cache-to), e.g. type=registry,ref=REPO:cache,mode=max."),
    "cache": FieldSpec("object", "One registry cache for every build: read and written (mode=max) at REF; "
                       "builds of one platform (per-arch, and each node of a multi-node builder) use REF-OS-ARCH[-VARIANT] "
                       "of their own, so no node overwrites another's.", children=CACHE_FIELDS),
    "attestations": FieldSpec("object", "Attestations to attach.", children=ATTESTATION_FIELDS),
    "secrets": FieldSpec("str_list", "Build secrets by reference (--secret): id=NAME,env=VAR or id=NAME,src=FILE."),
    "build_contexts": FieldSpec("str_map", "Named build contexts (--build-context NAME=PATH or docker-image://)."),
    **{option.key: FieldSpec(OPTION_KINDS[option.kind], f"{option.help} ({option.flag})")
       for option in BUILDX_OPTIONS},
    "strategy": FieldSpec("enum", "single: one buildx call; per-arch: one per platform, merged; auto: "
                          "single, falling back to per-arch.", STRATEGIES),
    "merge": FieldSpec("enum", "How per-arch builds become one list: imagetools (OCI index, keeps attestations) "
                       "or manifest (docker manifest create/annotate/push: a Docker manifest list).", MERGES),
    "builder": FieldSpec("object", "The buildx builder to use or create.", children=BUILDER_FIELDS),
    "install_emulators": FieldSpec("bool", "Install missing QEMU handlers (tonistiigi/binfmt) without asking."),
    "reproducible": FieldSpec("bool", "One commit, one digest per platform: every timestamp at the commit's time "
                              "(or SOURCE_DATE_EPOCH), rewritten in the layers too (--reproducible)."),
    "signing": FieldSpec("object", "Signing with cosign before any tag moves (--sign).", children=SIGNING_FIELDS),
    "runners": FieldSpec("runners", "CI runners by platform, for one runner per platform (orch init --runners "
                         "native), one table per CI: {github: {linux/arm64: ubuntu-24.04-arm}, gitlab: "
                         "{linux/arm64: saas-linux-small-arm64}}, a GitHub runs-on label or a GitLab runner tag that "
                         "runs the platform natively. Platforms not listed build under QEMU on the CI's amd64 runner. "
                         "A flat table (no github:/gitlab: level) is the table of the CI whose file the project has "
                         "(GitHub where it has both or neither).", choices=RUNNER_CIS),
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
        elif spec.kind == "runners":  # a table per CI, or one flat table
            table = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
            out["anyOf"] = [{"type": "object", "additionalProperties": False,
                             "properties": {ci: table for ci in spec.choices}}, table]
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
