"""Options defined once, as data: each option's names, value kind, default, environment variable
and help, and the groups commands share (tags, builder, outputs, verification, signing).

The Typer commands declare their parameters from these (cli/build_options.py turns an `Option`
into a typer one) and the fast path (cli/fast.py) parses argv with the same tables, so a name,
default or meaning cannot differ between the two. Nothing here imports typer: the fast path
loads this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.builds.options import BuilderOptions, OutputOptions, SigningOptions, TagOptions, VerificationOptions
from orchestrator.model.buildx_options import BUILDX_OPTIONS

_DEFAULTS: dict[str, Any] = {"text": None, "path": None, "int": None, "list": (), "flag": False, "switch": None}


@dataclass(frozen=True)
class Option:
    """One command-line option, defined once: the Typer command declares it from this and the fast
    path parses argv with it, so names, defaults and meaning cannot differ between the two."""

    key: str  # the command's parameter name
    names: tuple[str, ...]  # "--tag", "-t"
    kind: str  # text | path | int | list (repeatable) | flag | switch (--x/--no-x; None when neither)
    help: str
    metavar: str | None = None
    envvar: str | None = None  # read when the option is not given (as click does: an empty value is none)
    default: Any = None  # None: the kind's
    complete: str | None = None  # shell completion: "profiles" or "platforms"
    negative: str | None = None  # a switch's off name: --no-tlog
    field: str = ""  # the name in the dataclass that holds the value (default: key)

    @property
    def initial(self) -> Any:
        """The value when the option is not on the command line."""
        return self.default if self.default is not None else _DEFAULTS[self.kind]

    @property
    def attribute(self) -> str:
        return self.field or self.key

    def value(self, given: Mapping[str, Any]) -> Any:
        """This option's value in what a parser gave (lists as tuples, paths as text)."""
        value = given.get(self.key, self.initial)
        if self.kind == "list":
            return tuple(value or ())
        if self.kind == "path" and value is not None:
            return str(value)
        return value


@dataclass(frozen=True)
class Group:
    """Options that go together: every command that takes one takes all of them, and the values
    reach the core as one dataclass (`make`), named `name` in BuildRequest and the like."""

    name: str
    options: tuple[Option, ...]
    make: type = field(repr=False)

    def of(self, given: Mapping[str, Any]) -> Any:
        return self.make(**{option.attribute: option.value(given) for option in self.options})

    def given(self, values: Any) -> dict[str, Any]:
        """The group's dataclass as option names and values (for messages naming what was passed)."""
        return {option.names[0]: getattr(values, option.attribute) for option in self.options}


Item = Option | Group


def flat(items: Iterable[Item]) -> tuple[Option, ...]:
    return tuple(option for item in items for option in (item.options if isinstance(item, Group) else (item,)))


def values(items: Iterable[Item], given: Mapping[str, Any]) -> dict[str, Any]:
    """What a command's parser gave, by field: each option's value, each group's dataclass."""
    return {item.name: item.of(given) for item in items if isinstance(item, Group)} | {
        item.attribute: item.value(given) for item in items if isinstance(item, Option)}


def from_environment(option: Option) -> Any:
    """An option's value when the command line leaves it out: its environment variable, else its
    default (the fast path's rule; typer applies the same `envvar`)."""
    if option.envvar and os.environ.get(option.envvar):
        return os.environ[option.envvar]
    return option.initial


# -- shared by build and release ------------------------------------------------------------

PROFILE = Option("profile", ("--profile", "-p"), "text", "Profile name or YAML path.", complete="profiles")
PLATFORMS = Option("platform", ("--platform",), "list", "Platforms, comma-separated; may be repeated. Overrides "
                   "the profile's.", complete="platforms", field="platforms")
DRY_RUN = Option("dry_run", ("--dry-run",), "flag", "Print the plan as the exact commands; run nothing.")
REPRODUCIBLE = Option("reproducible", ("--reproducible",), "flag", "One commit, one digest per platform on any builder "
                      "of one BuildKit version: every timestamp at SOURCE_DATE_EPOCH, else the commit's time, "
                      "rewritten in the layers too; the BuildKit version recorded (check with orch verify "
                      "--reproduce).")
AS_JSON = Option("as_json", ("--json",), "flag", "Print the plan (with --dry-run) or the result as JSON.")

# -- the groups -------------------------------------------------------------------------------

TAGS = Group("tags", (
    Option("tag", ("--tag", "-t"), "list", "Image tag to publish, as written; may be repeated.", field="literal"),
    Option("image", ("--image",), "list", "A repository the tag rules tag (metadata-action's images); may be "
           "repeated.", field="images"),
    Option("tag_rule", ("--tag-rule",), "list", "A metadata-action tag rule, e.g. type=semver,pattern={{major}}."
           "{{minor}}; may be repeated (with --image; without rules, metadata-action's defaults: branch, tag, pr, "
           "schedule).", field="rules"),
    Option("flavor", ("--flavor",), "list", "A metadata-action flavor line: latest=auto|true|false, prefix=..., "
           "suffix=...."),
), TagOptions)

BUILDER = Group("builder", (
    Option("builder", ("--builder",), "text", "buildx builder to use.", field="name"),
    Option("install_emulators", ("--install-emulators",), "switch", "Install missing QEMU handlers (privileged "
           "tonistiigi/binfmt run) instead of stopping.", negative="--no-install-emulators"),
), BuilderOptions)

OUTPUTS = Group("outputs", (
    Option("metadata_file", ("--metadata-file",), "path", "Write the result JSON here."),
    Option("report", ("--report",), "path", "Write a self-contained HTML report: a timeline per platform (emulated "
           "steps marked), the verification, the tags before and after.", metavar="FILE.html"),
    Option("output_env", ("--output-env",), "path", "Write ORCH_DIGEST, ORCH_IMAGE, ORCH_TAGS, ORCH_PLATFORMS as a "
           "dotenv file (GitLab's artifacts:reports:dotenv). On GitHub Actions the step outputs and summary are "
           "written anyway.", metavar="FILE"),
), OutputOptions)

VERIFICATION = Group("verification", (
    Option("deep", ("--deep",), "flag", "Verify down to each image's binaries: read its executable from its layers "
           "and check its ELF machine, class, endianness and ARM CPU level against its platform (every layer read "
           "is checked against its digest)."),
), VerificationOptions)

SIGNING = Group("signing", (
    Option("sign", ("--sign",), "flag", "Sign the verified index with cosign before any tag moves (a key pair: "
           "--sign-key, password in COSIGN_PASSWORD; without a key, keyless with the CI's identity token and "
           "--tlog)."),
    Option("sign_key", ("--sign-key",), "text", "The cosign private key (a file `cosign generate-key-pair` wrote, "
           "or a KMS URI) for --sign.", metavar="KEY", envvar="ORCH_SIGN_KEY", field="key"),
    Option("tlog", ("--tlog",), "switch", "Upload the signature to the transparency log (default: off with a key, "
           "since it publishes the registry name and digest; keyless signing needs it).", negative="--no-tlog"),
    Option("sign_recursive", ("--sign-recursive",), "flag", "With --sign: sign each platform's manifest too, not "
           "only the index (cosign's --recursive).", field="recursive"),
), SigningOptions)

GROUPS = (TAGS, BUILDER, OUTPUTS, VERIFICATION, SIGNING)

# -- whole commands: `orch release` and `orch verify` (their Typer commands and fast paths) -----

RELEASE: tuple[Item, ...] = (PROFILE, PLATFORMS, TAGS, VERIFICATION, DRY_RUN, AS_JSON, OUTPUTS, SIGNING)

VERIFY: tuple[Item, ...] = (
    Option("profile", ("--profile", "-p"), "text", "Expect this profile's platforms.", complete="profiles"),
    Option("platform", ("--platform",), "list", "Expected platforms, comma-separated; may be repeated "
           "(with --reproduce: the platforms to rebuild).", complete="platforms", field="platforms"),
    Option("strict", ("--strict",), "flag", "Unexpected platforms and order problems fail."),
    Option("config_mismatch", ("--config-mismatch",), "text", "fail or warn when a config disagrees with its index "
           "entry.", default="fail"),
    Option("allow_duplicates", ("--allow-duplicates",), "flag", "Two entries for one platform warn instead of "
           "failing (clients take the first)."),
    VERIFICATION,
    Option("as_json", ("--json",), "flag", "Print JSON."),
    Option("key", ("--key",), "text", "Also require a valid cosign signature by this public key (a file or KMS URI) "
           "over the image's digest (checked with cosign).", metavar="PUB"),
    Option("certificate_identity", ("--certificate-identity",), "text", "Keyless: the identity the signing "
           "certificate must name (a CI workflow's URL, say); with --certificate-oidc-issuer, instead of --key.",
           field="identity"),
    Option("certificate_oidc_issuer", ("--certificate-oidc-issuer",), "text", "Keyless: the OIDC issuer of that "
           "identity (GitHub Actions: https://token.actions.githubusercontent.com).", field="issuer"),
    Option("require_attestations", ("--require-attestations",), "text", "provenance and/or sbom, comma-separated: "
           "each platform must have BuildKit's attestation of that kind in the index.", metavar="KINDS"),
    Option("reproduce", ("--reproduce",), "path", "Rebuild each platform from this context as the image records it "
           "(orch build --reproducible) and compare digests: exit 1 naming the first differing layer and the files "
           "that differ; exit 2 for another commit, an image not built reproducibly, another BuildKit version.",
           metavar="CONTEXT"),
    Option("builder", ("--builder",), "text", "With --reproduce: the buildx builder to rebuild on (default: the "
           "current one)."),
)


# -- `orch build` (its Typer command and its fast path) -----------------------------------------

FILE = Option("file", ("--file", "-f"), "text", "Dockerfile (relative to the current directory).")
META = Option("meta", ("--meta",), "text", "Tags, labels and annotations from docker/metadata-action's output: env "
              "reads $DOCKER_METADATA_OUTPUT_JSON, FILE its JSON or bake file.", metavar="env|FILE")
BUILD_ARGS = Option("build_arg", ("--build-arg",), "list", "KEY=VALUE; may be repeated. Values of names that look "
                    "secret (PASSWORD, TOKEN, KEY...) are masked in output; use --secret for them.")
SECRETS = Option("secret", ("--secret",), "list", "A build secret, as buildx takes it: id=NAME,env=VAR or "
                 "id=NAME,src=FILE (read with RUN --mount=type=secret,id=NAME); may be repeated.")
PUSH = Option("push", ("--push",), "flag", "Build, verify, stage by digest, verify again, then move the tags.")
OCI_LAYOUT = Option("oci_layout", ("--oci-layout",), "path", "Without --push: write the multi-platform image to this "
                    "OCI layout directory (read it with orch inspect oci-layout://DIR).", metavar="DIR")
STRATEGY = Option("strategy", ("--strategy",), "text", "single: one buildx call for every platform; per-arch: one per "
                  "platform, merged; auto (default): single, falling back to per-arch when only some platforms fail or "
                  "the builder takes one platform per call.")
MERGE = Option("merge", ("--merge",), "text", "Per-arch merge: imagetools (OCI index, keeps attestations; default) "
               "or manifest (docker manifest create/annotate/push: a Docker manifest list, no attestations).")
JOBS = Option("jobs", ("--jobs", "-j"), "int", "Per-arch builds at once (default: 2 per builder node, at least 2).")
NO_CACHE = Option("no_cache", ("--no-cache",), "flag", "Build without BuildKit's cache, and rebuild every platform on "
                  "the per-arch path.")
PROGRESS = Option("progress", ("--progress",), "text", "auto (a live view per platform on a terminal, plain lines in "
                  "CI and when piped), tty, plain or quiet.", default="auto")
PART = Option("part", ("--part",), "path", "One runner's part of a release: stage the verified result by digest in the "
              "--image repository, move no tag, and write its record into DIR for `orch release` to merge.",
              metavar="DIR")
LABELS = Option("label", ("--label",), "list", "KEY=VALUE image label; may be repeated.")
ANNOTATIONS = Option("annotation", ("--annotation",), "list", "[LEVEL:]KEY=VALUE; without a level, on the index and "
                     "each manifest.")
CACHE_FROM = Option("cache_from", ("--cache-from",), "list", "Cache source, as buildx takes it.")
CACHE_TO = Option("cache_to", ("--cache-to",), "list", "Cache export, as buildx takes it.")
CACHE = Option("cache", ("--cache",), "text", "A registry cache read and written (mode=max) at REF; builds of one "
               "platform use REF-OS-ARCH[-VARIANT] of their own, so nodes never overwrite each other's. Replaces the "
               "profile's cache.", metavar="REF")
BUILD_CONTEXTS = Option("build_context", ("--build-context",), "list", "NAME=PATH or NAME=docker-image://REF: a named "
                        "context.")
PROVENANCE = Option("provenance", ("--provenance",), "text", "true, false, mode=min or mode=max (default: the "
                    "profile's, else mode=min).")
SBOM = Option("sbom", ("--sbom",), "switch", "Attach an SBOM attestation.", negative="--no-sbom")
BAKE = Option("bake", ("--bake",), "list", "Bake file(s) (HCL, JSON, compose), resolved by `docker buildx bake "
              "--print`: every target is built, verified, and then all their tags move together, or none.",
              metavar="FILE")
BAKE_SET = Option("bake_set", ("--set",), "list", "With --bake: override a target value, as bake's --set (e.g. "
                  "app.platform=linux/arm64, *.args.V=1).")
# buildx's own options, passed through as they are (model.buildx_options defines them).
BUILDX: tuple[Option, ...] = tuple(Option(o.key, (o.flag,), o.kind, o.help, o.metavar) for o in BUILDX_OPTIONS)

# Every option of `orch build`, in the order its --help lists them (its Typer command declares them
# in this order; the fast path parses the same table).
BUILD: tuple[Item, ...] = (
    PROFILE, FILE, TAGS, META, PLATFORMS, BUILD_ARGS, SECRETS, PUSH, BUILDER, OCI_LAYOUT, STRATEGY, MERGE, JOBS,
    NO_CACHE, DRY_RUN, OUTPUTS, PROGRESS, AS_JSON, VERIFICATION, LABELS, ANNOTATIONS, CACHE_FROM, CACHE_TO, CACHE,
    BUILD_CONTEXTS, PROVENANCE, SBOM, BAKE, BAKE_SET, PART, SIGNING, REPRODUCIBLE, *BUILDX)
