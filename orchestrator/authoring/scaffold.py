"""`orch init`: the files a project needs to publish with orch, written from its Dockerfile.

* A profile whose platforms are what every base image of the Dockerfile publishes (read from
  their registries; stages built FROM --platform=$BUILDPLATFORM and FROM scratch do not limit
  it) of linux/amd64, arm64 and arm/v7, in orch's order, the others named; offline, those three,
  said so. `--platform` asks for others.
* `orch.mk`, a Makefile include with image, push, verify and inspect targets and variables a
  caller overrides (IMAGE, TAG, PLATFORMS, PROFILE, ORCH, BUILD_ARGS, SECRETS).
* CI files: authoring.ci_file_github and authoring.ci_file_gitlab.

Nothing is overwritten unless asked (`force`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BadInput, OrchError
from orchestrator.model.platform import Platform, format_platform
from orchestrator.model.platform_match import order
from orchestrator.model.platform_parse import parse_all
from orchestrator.model.references import parse_reference

# What most images ship for: the platforms proposed when the base images publish more (the rest
# are named, not dropped in silence), and offline.
FALLBACK_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
CI_KINDS = ("github", "gitlab")


@dataclass(frozen=True)
class BaseImage:
    """An image the Dockerfile starts FROM, with the platforms its registry publishes (None, and
    the problem, when they could not be read)."""

    reference: str
    platforms: tuple[Platform, ...] | None  # None: could not be read
    problem: str | None = None


@dataclass(frozen=True)
class Proposal:
    """The platforms `orch init` writes into the profile, the base images they were read from, and
    a note saying why these (the ones left out named)."""

    platforms: tuple[Platform, ...]
    bases: tuple[BaseImage, ...]
    note: str
    left_out: tuple[Platform, ...] = ()  # what the base images publish beyond the proposed


def base_images(dockerfile: str) -> list[str]:
    """The images the Dockerfile's stages start FROM on the target platform: ARG defaults
    filled in; stage names, scratch and FROM --platform=$BUILDPLATFORM stages left out."""
    text = re.sub(r"\\\n", " ", dockerfile)
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "ARG" and not images:
            name, _, default = rest.strip().partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        elif word.upper() == "FROM":
            parts = rest.split()
            platform = next((p for p in parts if p.startswith("--platform=")), "")
            names = [p for p in parts if not p.startswith("--")]
            if not names:
                continue
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), names[0])
            if len(names) >= 3 and names[1].upper() == "AS":
                stages.add(names[2].lower())
            if "BUILDPLATFORM" in platform or image.lower() in stages or image == "scratch" or not image:
                continue
            images.append(image)
    return list(dict.fromkeys(images))


def read_platforms(reference: str, timeout: float = 5.0) -> BaseImage:
    from orchestrator.image.model import image_descriptors, platform_from
    from orchestrator.model.mediatypes import INDEX_TYPES
    from orchestrator.registry.client import Registry

    try:
        ref = parse_reference(reference)
        document, media_type, _ = Registry(ref, timeout=timeout).manifest(ref)
    except OrchError as exc:
        return BaseImage(reference, None, exc.message)
    if (media_type or document.get("mediaType")) not in INDEX_TYPES:
        return BaseImage(reference, None, "a single-platform image (its config names one platform)")
    platforms = [p for p in (platform_from(d.get("platform")) for d in image_descriptors(document)) if p]
    return BaseImage(reference, tuple(p.without_os_version() for p in platforms))


def propose(dockerfile: str, asked: tuple[str, ...] = ()) -> Proposal:
    """The platforms to build: `asked` (--platform), else what every base image publishes of
    FALLBACK_PLATFORMS (all of theirs when they publish none of those), the rest left out."""
    bases = tuple(read_platforms(image) for image in base_images(dockerfile))
    if asked:
        return Proposal(tuple(order(parse_all(asked))), bases, "asked with --platform")
    readable = [b for b in bases if b.platforms is not None]
    if not bases:
        return Proposal(tuple(order(parse_all(FALLBACK_PLATFORMS))), bases,
                        "no base image limits the platforms (FROM scratch): linux/amd64, arm64 and arm/v7 proposed")
    if len(readable) < len(bases):
        unread = next(b for b in bases if b.platforms is None)
        return Proposal(tuple(order(parse_all(FALLBACK_PLATFORMS))), bases,
                        f"{unread.reference} could not be read ({unread.problem}): linux/amd64, arm64 and arm/v7 "
                        "proposed; check them against what your base images publish")
    common = set(readable[0].platforms or ())
    for base in readable[1:]:
        common &= set(base.platforms or ())
    linux = order(p for p in common if p.os == "linux")
    wanted = set(parse_all(FALLBACK_PLATFORMS))
    chosen = [p for p in linux if p in wanted] or linux
    names = ", ".join(b.reference for b in readable)
    return Proposal(tuple(chosen), bases, f"every platform {names} publish{'es' if len(readable) == 1 else ''}"
                    + (", of linux/amd64, arm64 and arm/v7" if len(chosen) < len(linux) else ""),
                    tuple(p for p in linux if p not in chosen))


# -- the files --------------------------------------------------------------------


def profile_yaml(name: str, proposal: Proposal, dockerfile: str, image: str | None,
                 runners: dict[str, dict[str, str]] | None = None, rules: bool = False) -> str:
    """The profile; with `image`, its repository, and with it or `rules` (a CI passes --image) the
    tag rules people use with metadata-action; `runners`, a table per CI."""
    from orchestrator.authoring.profile_edit import RUNNERS_COMMENT, TAG_RULES, table_lines

    platforms = "\n".join(f"  - {format_platform(p)}" for p in proposal.platforms)
    lines = [f"# Written by orch init: {proposal.note}.", f"name: {name}", "platforms:", platforms]
    if runners is not None:
        lines += [*RUNNERS_COMMENT.splitlines(), "runners:",
                  *(line for ci, table in runners.items() for line in [f"  {ci}:", *table_lines(table, "    ")])]
    if dockerfile != "Dockerfile":
        lines.append(f"dockerfile: {dockerfile}")
    if image:
        lines.append(f"images: [{image}]")
    if image or rules:
        lines += ["tags:", *TAG_RULES]
    lines += ["attestations: {provenance: mode=min}", ""]
    return "\n".join(lines)


def makefile(profile: str, image: str, secrets: tuple[str, ...] = ()) -> str:
    """orch.mk; SECRETS starts with the Dockerfile's secret mounts, each read from an environment
    variable of its id's name in upper case."""
    from orchestrator.authoring.ci_file_settings import secret_variable

    wired = " ".join(f"id={s},env={secret_variable(s)}" for s in secrets)
    return f"""# Written by orch init. Include it from your Makefile (include orch.mk) or run make -f orch.mk.
# Override any variable: make -f orch.mk push IMAGE=registry.example.com/team/app TAG=1.0
ORCH       ?= orch
PROFILE    ?= {profile}
IMAGE      ?= {image}
TAG        ?= dev
PLATFORMS  ?=
# KEY=VALUE words, each a --build-arg: make -f orch.mk push BUILD_ARGS="VERSION=1.2 DEBUG=0"
BUILD_ARGS ?=
# Build secrets, each a --secret: id=NAME,env=VARIABLE or id=NAME,src=FILE (never a build arg)
SECRETS    ?= {wired}
ORCH_FLAGS  = $(if $(PLATFORMS),--platform $(PLATFORMS),) $(foreach a,$(BUILD_ARGS),--build-arg $(a)) \\
              $(foreach s,$(SECRETS),--secret $(s))

.PHONY: image push verify inspect

image:    ## every platform built into the local image store (nothing pushed)
\t$(ORCH) build --profile $(PROFILE) $(ORCH_FLAGS) -t $(IMAGE):$(TAG)

push:     ## built, verified, staged by digest, verified again, then the tag moves
\t$(ORCH) build --profile $(PROFILE) $(ORCH_FLAGS) -t $(IMAGE):$(TAG) --push

verify:   ## what the registry holds under the tag, against the profile's platforms
\t$(ORCH) verify $(IMAGE):$(TAG) $(if $(PLATFORMS),--platform $(PLATFORMS),--profile $(PROFILE))

inspect:  ## each entry's platform beside its config's
\t$(ORCH) inspect $(IMAGE):$(TAG)
"""


def write_all(files: dict[Path, str], force: bool, replaced: set[Path] | frozenset[Path] = frozenset()) -> None:
    """Every file or none: an existing one stops it all before anything is written (but those
    `replaced`, edited in place)."""
    existing = [path for path in files if path.exists() and path not in replaced]
    if existing and not force:
        raise BadInput(f'"{existing[0]}" exists; orch init does not overwrite it', fix="pass --force to replace it")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise BadInput(f'profile name "{name}" is not lower-case letters, digits, ".", "_" or "-"',
                       fix="pass --profile my-app")
    return name


def default_image(name: str) -> str:
    return f"localhost:5000/{name}"


def platform_list(platforms: tuple[Platform, ...]) -> str:
    return ",".join(format_platform(p) for p in platforms)

