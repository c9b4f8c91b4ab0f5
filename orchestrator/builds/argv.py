"""A build spec as the words of `docker buildx build`: rendered once, when it runs or is printed."""

from __future__ import annotations

import shlex

from orchestrator.builds.spec import BuildSpec
from orchestrator.model import buildx_options
from orchestrator.redact import MASK


def buildx_build_argv(spec: BuildSpec, *, shown: bool = False) -> tuple[str, ...]:
    """The arguments after `docker` (and after the daemon's --context/--host). `shown`: for
    people (--dry-run, --json, messages), with the values of secret-looking build args masked."""
    hidden = set(spec.secret_build_args) if shown else set()
    args: list[str] = ["buildx", "build"]
    if spec.builder:
        args += ["--builder", spec.builder]
    args += ["--platform", ",".join(spec.platform_texts)]
    if spec.dockerfile:
        args += ["--file", spec.dockerfile]
    if spec.no_cache:
        args.append("--no-cache")
    for key, value in spec.build_args:
        args += ["--build-arg", f"{key}={MASK if key in hidden else value}"]
    for secret in spec.secrets:
        args += ["--secret", secret]
    args += buildx_options.argv(spec.buildx)
    for name, source in spec.build_contexts:
        args += ["--build-context", f"{name}={source}"]
    for key, value in spec.labels:
        args += ["--label", f"{key}={value}"]
    for entry in spec.cache_from:
        args += ["--cache-from", entry.render()]
    for entry in spec.cache_to:
        args += ["--cache-to", entry.render()]
    for key, value in spec.annotations:
        if key.partition(":")[0] in ANNOTATION_LEVELS:  # the user named the level (--annotation index:k=v)
            args += ["--annotation", f"{key}={value}"]
            continue
        # One flag per level: buildx 0.13 reads "index,manifest:" as part of the key.
        for level in spec.annotation_levels:
            args += ["--annotation", f"{level}:{key}={value}"]
    args.append(f"--provenance={spec.provenance}")
    if spec.sbom is not None:
        args.append(f"--sbom={'true' if spec.sbom else 'false'}")
    output = spec.output.render() + (",rewrite-timestamp=true" if spec.rewrite_timestamp else "")
    args += ["--output", output, "--metadata-file", spec.metadata_file, "--progress", spec.progress]
    args += masked_extra(spec.extra_args) if shown else spec.extra_args
    args.append(spec.context)
    return tuple(args)


ANNOTATION_LEVELS = ("index", "manifest", "index-descriptor", "manifest-descriptor")
# The environment orch adds to its buildx build and bake calls. orch reads only the digests from
# the metadata file it asks for (its own, removed after); buildx 0.30 would first resolve the
# build's provenance for that file, a step of its own after the push (10-120 ms here) that a
# build with no metadata file never runs. BUILDX_METADATA_PROVENANCE=disabled leaves it out;
# buildx before it (0.13) runs no such step and ignores the variable.
BUILDX_ENV = {"BUILDX_METADATA_PROVENANCE": "disabled"}
# buildx options orch sets itself: after `--` they are refused, naming orch's own option.
OWNED = {
    "--output": "--push (a registry, verified first) or --oci-layout DIR", "-o": "--push or --oci-layout DIR",
    "--push": "orch build --push", "--load": "orch build without --push (the image stays in the local store)",
    "--platform": "orch's --platform (or the profile's platforms)", "--metadata-file": "orch's --metadata-file",
    "--tag": "orch's -t/--tag", "-t": "orch's -t/--tag", "--builder": "orch's --builder",
    "--file": "orch's -f/--file", "-f": "orch's -f/--file", "--progress": "orch's own progress (-q for less)",
}


def check_extra(words: tuple[str, ...]) -> tuple[str, ...]:
    """Words after `orch build ... --`, passed to every buildx call; refused when orch owns the option."""
    from orchestrator.errors import BadInput

    for word in words:
        flag = word.split("=", 1)[0]
        if flag in OWNED:
            raise BadInput(f'"{word}" after -- is an option orch sets itself', fix=f"use {OWNED[flag]}")
    return words


def masked_extra(words: tuple[str, ...]) -> list[str]:
    """Passed-through words as shown to people: values of secret-looking build args masked."""
    from orchestrator.redact import looks_secret

    out, after_build_arg = [], False
    for word in words:
        if after_build_arg or word.startswith("--build-arg="):
            prefix = "--build-arg=" if word.startswith("--build-arg=") else ""
            key, sep, _ = word[len(prefix):].partition("=")
            word = f"{prefix}{key}={MASK}" if sep and looks_secret(key) else word
        after_build_arg = word == "--build-arg"
        out.append(word)
    return out


def command_line(spec: BuildSpec) -> str:
    """The whole command as a shell line, for --dry-run and messages (secrets masked)."""
    daemon = spec.daemon.flags() if spec.daemon else ()
    return "docker " + shlex.join((*daemon, *buildx_build_argv(spec, shown=True)))
