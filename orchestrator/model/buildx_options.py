"""buildx's own options that orch passes through as they are, each defined once: its flag, its
profile key (also the build spec's field), its help, how a command-line value meets the
profile's, and its words on the buildx command line. The CLI, the profile schema, the build
spec, argv, the rerun fingerprint and export-bake are all made from this table, so a new
pass-through option is one entry here (as pip's cmdoptions defines each option once).

Options orch gives meaning to are not here, because they are more than words for buildx:
labels and annotations (merged with the tag rules' and given levels), build args (secret ones
masked), secrets (checked), cache entries (one ref per platform), build contexts, provenance
and SBOM (defaults from the profile's attestations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("text", "list", "flag")


@dataclass(frozen=True)
class BuildxOption:
    """A buildx option orch passes through, defined once: its flag, its profile key, and how the
    command line's value combines with the profile's."""

    flag: str  # buildx's flag, which orch's CLI takes as it is
    key: str  # the profile key and the build spec's field
    kind: str  # text: one value, the CLI's replaces the profile's; list: the CLI's add to the profile's; flag: on/off
    help: str
    metavar: str | None = None
    bake: str | None = None  # the key `orch profiles export-bake` writes it under; None: not exported

    def merged(self, profile: Any, cli: Any) -> Any:
        """The value a build uses: what the command line says over (or, for lists, after) the profile's."""
        if self.kind == "list":
            return (*(profile or ()), *(cli or ()))
        if self.kind == "flag":
            return bool(cli) or bool(profile)
        return cli or profile or None

    def argv(self, value: Any) -> list[str]:
        """The words buildx takes for `value` (none when unset)."""
        if self.kind == "list":
            return [word for item in value or () for word in (self.flag, item)]
        if self.kind == "flag":
            return [self.flag] if value else []
        return [self.flag, value] if value else []


BUILDX_OPTIONS: tuple[BuildxOption, ...] = (
    BuildxOption("--target", "target", "text", "Dockerfile stage to build.", "STAGE", bake="target"),
    BuildxOption("--ssh", "ssh", "list", "SSH agent socket or keys to expose: default, or ID=PATH; may be repeated.",
                 "SPEC"),
    BuildxOption("--pull", "pull", "flag", "Always pull the base images."),
    BuildxOption("--network", "network", "text", "Network for RUN steps: default, none or host.", "MODE"),
    BuildxOption("--add-host", "add_hosts", "list", "HOST:IP for /etc/hosts in RUN steps; may be repeated.",
                 "HOST:IP"),
    BuildxOption("--allow", "allow", "list", "Entitlement: network.host, security.insecure; may be repeated.",
                 "ENTITLEMENT"),
    BuildxOption("--shm-size", "shm_size", "text", "Size of /dev/shm for RUN steps.", "SIZE"),
    BuildxOption("--ulimit", "ulimits", "list", "Ulimit for RUN steps, e.g. nofile=1024:1024; may be repeated.",
                 "ULIMIT"),
)
BY_KEY: Mapping[str, BuildxOption] = {option.key: option for option in BUILDX_OPTIONS}


def merged_values(profile: Mapping[str, Any] | None, cli: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Every table option's value for a build, in table order, unset ones left out."""
    out = []
    for option in BUILDX_OPTIONS:
        value = option.merged((profile or {}).get(option.key), cli.get(option.key))
        if value not in (None, False, ()):
            out.append((option.key, value))
    return tuple(out)


def argv(values: tuple[tuple[str, Any], ...]) -> list[str]:
    """The buildx words for a build's table options, in table order."""
    given = dict(values)
    return [word for option in BUILDX_OPTIONS for word in option.argv(given.get(option.key))]
