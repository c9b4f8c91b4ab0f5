"""`orch init`: the files a project needs to publish with orch, written from its Dockerfile.

* A profile whose platforms are what every base image of the Dockerfile publishes (read from
  their registries; stages built FROM --platform=$BUILDPLATFORM and FROM scratch do not limit
  it), in orch's order; offline, linux/amd64 plus arm-all's (arm64, arm/v6, arm/v7), said so.
* `orch.mk`, a Makefile include with image, push, verify and inspect targets and variables a
  caller overrides (IMAGE, TAG, PLATFORMS, PROFILE, ORCH).
* A CI workflow: GitHub Actions (checkout, QEMU, buildx, login, pip install orch, orch build)
  or GitLab CI (the same on docker:dind).

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

FALLBACK_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v6", "linux/arm/v7")
CI_KINDS = ("github", "gitlab")


@dataclass(frozen=True)
class BaseImage:
    reference: str
    platforms: tuple[Platform, ...] | None  # None: could not be read
    problem: str | None = None


@dataclass(frozen=True)
class Proposal:
    platforms: tuple[Platform, ...]
    bases: tuple[BaseImage, ...]
    note: str


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


def propose(dockerfile: str) -> Proposal:
    bases = tuple(read_platforms(image) for image in base_images(dockerfile))
    readable = [b for b in bases if b.platforms is not None]
    if not bases:
        return Proposal(tuple(order(parse_all(FALLBACK_PLATFORMS))), bases,
                        "no base image limits the platforms (FROM scratch): linux/amd64 and arm-all's proposed")
    if len(readable) < len(bases):
        unread = next(b for b in bases if b.platforms is None)
        return Proposal(tuple(order(parse_all(FALLBACK_PLATFORMS))), bases,
                        f"{unread.reference} could not be read ({unread.problem}): linux/amd64 and arm-all's "
                        "proposed; check them against what your base images publish")
    common = set(readable[0].platforms or ())
    for base in readable[1:]:
        common &= set(base.platforms or ())
    linux = [p for p in common if p.os == "linux"]
    names = ", ".join(b.reference for b in readable)
    return Proposal(tuple(order(linux)), bases, f"every platform {names} publish{'es' if len(readable) == 1 else ''}")


# -- the files --------------------------------------------------------------------


def profile_yaml(name: str, proposal: Proposal, dockerfile: str, image: str | None,
                 runners: dict[str, str] | None = None) -> str:
    platforms = "\n".join(f"  - {format_platform(p)}" for p in proposal.platforms)
    lines = [f"# Written by orch init: {proposal.note}.", f"name: {name}", "platforms:", platforms]
    if runners is not None:
        lines += ["# One runner per platform (CI): the runner that runs each platform natively; the others build",
                  "# under QEMU on the CI's amd64 runner. Add your own (self-hosted labels or runner tags).",
                  "runners:", *(f"  {platform}: {label}" for platform, label in runners.items())]
    if dockerfile != "Dockerfile":
        lines.append(f"dockerfile: {dockerfile}")
    if image:
        lines += [f"images: [{image}]", "tags:", '  - "type=semver,pattern={{version}}"',
                  '  - "type=semver,pattern={{major}}.{{minor}}"', '  - "type=ref,event=branch"', '  - "type=sha"']
    lines += ["attestations: {provenance: mode=min}", ""]
    return "\n".join(lines)


def makefile(profile: str, image: str) -> str:
    return f"""# Written by orch init. Include it from your Makefile (include orch.mk) or run make -f orch.mk.
# Override any variable: make -f orch.mk push IMAGE=registry.example.com/team/app TAG=1.0
ORCH      ?= orch
PROFILE   ?= {profile}
IMAGE     ?= {image}
TAG       ?= dev
PLATFORMS ?=
ORCH_PLATFORMS_FLAG = $(if $(PLATFORMS),--platform $(PLATFORMS),)

.PHONY: image push verify inspect

image:    ## every platform built into the local image store (nothing pushed)
\t$(ORCH) build --profile $(PROFILE) $(ORCH_PLATFORMS_FLAG) -t $(IMAGE):$(TAG)

push:     ## built, verified, staged by digest, verified again, then the tag moves
\t$(ORCH) build --profile $(PROFILE) $(ORCH_PLATFORMS_FLAG) -t $(IMAGE):$(TAG) --push

verify:   ## what the registry holds under the tag, against the profile's platforms
\t$(ORCH) verify $(IMAGE):$(TAG) $(if $(PLATFORMS),--platform $(PLATFORMS),--profile $(PROFILE))

inspect:  ## each entry's platform beside its config's
\t$(ORCH) inspect $(IMAGE):$(TAG)
"""


def github_workflow(profile: str, image: str) -> str:
    registry = image.split("/", 1)[0] if "." in image.split("/", 1)[0] or ":" in image.split("/", 1)[0] else "docker.io"
    return f"""# Written by orch init.
name: image
on:
  push:
    branches: [main]
    tags: ["v*"]
  pull_request:
jobs:
  image:
    runs-on: ubuntu-latest
    permissions: {{contents: read, packages: write}}
    steps:
      - uses: actions/checkout@v4
      - uses: docker/setup-qemu-action@v3
      - uses: docker/setup-buildx-action@v3
      - uses: docker/login-action@v3
        if: github.event_name != 'pull_request'
        with:
          registry: {registry}
          username: ${{{{ github.actor }}}}
          password: ${{{{ secrets.GITHUB_TOKEN }}}}
      - uses: actions/setup-python@v5
        with: {{python-version: "3.12"}}
      - run: pip install orch
      - id: build
        run: orch build --profile {profile} --image {image} ${{{{ github.event_name != 'pull_request' && '--push' || '' }}}}
"""


def gitlab_ci(profile: str, image: str) -> str:
    return f"""# Written by orch init.
image-build:
  image: docker:27
  services: [docker:27-dind]
  variables:
    DOCKER_TLS_CERTDIR: "/certs"
  before_script:
    - apk add --no-cache python3 py3-pip
    - pip install --break-system-packages orch
    - docker run --privileged --rm tonistiigi/binfmt --install all
    - docker buildx create --use --driver docker-container
    - echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
  script:
    - orch build --profile {profile} --image {image} --push --output-env build.env
  artifacts:
    reports:
      dotenv: build.env
"""


def write_all(files: dict[Path, str], force: bool) -> None:
    """Every file or none: an existing one stops it all before anything is written."""
    existing = [path for path in files if path.exists()]
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

