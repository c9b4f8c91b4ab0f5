"""A build spec as the words of `docker buildx build`: rendered once, when it runs or is printed."""

from __future__ import annotations

import shlex

from orchestrator.publish.spec import BuildSpec
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
    if spec.target:
        args += ["--target", spec.target]
    if spec.no_cache:
        args.append("--no-cache")
    for key, value in spec.build_args:
        args += ["--build-arg", f"{key}={MASK if key in hidden else value}"]
    for secret in spec.secrets:
        args += ["--secret", secret]
    for key, value in spec.labels:
        args += ["--label", f"{key}={value}"]
    for entry in spec.cache_from:
        args += ["--cache-from", entry.render()]
    for entry in spec.cache_to:
        args += ["--cache-to", entry.render()]
    for key, value in spec.annotations:
        # One flag per level: buildx 0.13 reads "index,manifest:" as part of the key.
        for level in spec.annotation_levels:
            args += ["--annotation", f"{level}:{key}={value}"]
    args.append(f"--provenance={spec.provenance}")
    if spec.sbom is not None:
        args.append(f"--sbom={'true' if spec.sbom else 'false'}")
    args += ["--output", spec.output.render(), "--metadata-file", spec.metadata_file, "--progress", spec.progress,
             spec.context]
    return tuple(args)


def command_line(spec: BuildSpec) -> str:
    """The whole command as a shell line, for --dry-run and messages (secrets masked)."""
    daemon = spec.daemon.flags() if spec.daemon else ()
    return "docker " + shlex.join((*daemon, *buildx_build_argv(spec, shown=True)))
