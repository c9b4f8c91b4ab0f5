"""CI files for one runner per platform (`orch init --ci github|gitlab --runners native`).

Docker's recipe for distributing a build across runners, with orch at both ends: each platform's
job builds on a runner that runs it natively (the profile's `runners:` table, see
authoring.runners), verifies it and stages it by digest with no tag (`orch build --part`), and
uploads the part record as an artifact; one release job downloads them all and runs
`orch release`, which refuses a missing platform and moves every tag or none. Pull requests
build each platform and push nothing (no login, no release).

On GitHub the matrix is read from the profile when the workflow runs (`orch profiles runners
--json` in a first job), so editing `runners:` is enough. GitLab fixes `parallel:matrix` when the
pipeline is made, so the table is written into the file; `orch profiles runners P --ci gitlab`
prints it again after an edit.
"""

from __future__ import annotations

from orchestrator.authoring.runners import RunnerJob
from orchestrator.model.platform import format_platform

PARTS = "parts"


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


PUSHING = "github.event_name != 'pull_request'"
SETUP_ORCH = """      - uses: actions/setup-python@v5
        with: {python-version: "3.12"}
      - run: pip install orch
"""


def github_login(image: str) -> str:
    """Login steps run only where something is pushed (never for a pull request)."""
    return f"""      - uses: docker/login-action@v3
        if: ${{{{ {PUSHING} }}}}
        with:
          registry: {registry_of(image)}
          username: ${{{{ github.actor }}}}
          password: ${{{{ secrets.GITHUB_TOKEN }}}}
"""


def github_native(profile: str, image: str) -> str:
    return f"""# Written by orch init: each platform built on a runner that runs it natively (the profile's
# runners: table, read when the workflow runs; others under QEMU), verified and staged by digest
# with no tag; then one release merges the parts, verifies the index and moves every tag or none.
name: image
on:
  push:
    branches: [main]
    tags: ["v*"]
  pull_request:
concurrency:
  group: image-${{{{ github.ref }}}}
  cancel-in-progress: ${{{{ github.event_name == 'pull_request' }}}}
permissions:
  contents: read
jobs:
  plan:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.runners.outputs.matrix }}}}
    steps:
      - uses: actions/checkout@v4
{SETUP_ORCH}      - id: runners
        run: echo "matrix=$(orch profiles runners {profile} --ci github --json)" >> "$GITHUB_OUTPUT"
{github_build_job(profile, image)}{github_release_job(profile, image)}"""


def github_build_job(profile: str, image: str) -> str:
    return f"""  build:
    needs: plan
    name: build ${{{{ matrix.platform }}}}
    runs-on: ${{{{ matrix.runner }}}}
    permissions: {{contents: read, packages: write}}
    strategy:
      fail-fast: false
      matrix: ${{{{ fromJSON(needs.plan.outputs.matrix) }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: docker/setup-qemu-action@v3
        if: ${{{{ matrix.qemu }}}}
      - uses: docker/setup-buildx-action@v3
{github_login(image)}{SETUP_ORCH}      - run: >
          orch build --profile {profile} --platform "${{{{ matrix.platform }}}}" --image {image}
          ${{{{ {PUSHING} && '--push --part {PARTS}' || '' }}}}
      - uses: actions/upload-artifact@v4
        if: ${{{{ {PUSHING} }}}}
        with:
          name: orch-part-${{{{ matrix.slug }}}}
          path: {PARTS}/
          if-no-files-found: error
          retention-days: 1
          overwrite: true
"""


def github_release_job(profile: str, image: str) -> str:
    return f"""  release:
    needs: build
    if: ${{{{ {PUSHING} }}}}
    runs-on: ubuntu-latest
    permissions: {{contents: read, packages: write}}
    outputs:
      digest: ${{{{ steps.release.outputs.digest }}}}
      tags: ${{{{ steps.release.outputs.tags }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/download-artifact@v4
        with:
          pattern: orch-part-*
          path: {PARTS}
          merge-multiple: true
{github_login(image)}{SETUP_ORCH}      - id: release
        run: orch release {PARTS} --profile {profile}
"""


def gitlab_native(profile: str, image: str, jobs: tuple[RunnerJob, ...]) -> str:
    matrix = "".join(f"""      - PLATFORM: {format_platform(job.platform)}
        RUNNER_TAG: {job.runner}
        QEMU: "{'yes' if job.qemu else 'no'}"
""" for job in jobs)
    return f"""# Written by orch init: each platform built on a runner that runs it natively (the profile's
# runners: table; `orch profiles runners {profile} --ci gitlab` prints it again after an edit),
# verified and staged by digest with no tag; then one release merges the parts, verifies the index
# and moves every tag or none. Merge requests build each platform and push nothing.
stages: [build, release]

.orch:
  image: docker:27
  services: [docker:27-dind]
  variables:
    DOCKER_TLS_CERTDIR: "/certs"
  before_script:
    - apk add --no-cache python3 py3-pip
    - pip install --break-system-packages orch

image-build:
  extends: .orch
  stage: build
  tags: ["$RUNNER_TAG"]
  parallel:
    matrix:
{matrix}  script:
    - if [ "$QEMU" = yes ]; then docker run --privileged --rm tonistiigi/binfmt --install all; fi
    - docker buildx create --use --driver docker-container
    - |
      if [ -n "$CI_MERGE_REQUEST_IID" ]; then
        orch build --profile {profile} --platform "$PLATFORM" --image {image}
      else
        echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
        orch build --profile {profile} --platform "$PLATFORM" --image {image} --push --part {PARTS}
      fi
  artifacts:
    paths: [{PARTS}/]
    expire_in: 1 day

image-release:
  extends: .orch
  stage: release
  needs: [image-build]
  rules:
    - if: $CI_MERGE_REQUEST_IID
      when: never
    - when: on_success
  script:
    - echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"
    - orch release {PARTS} --profile {profile} --output-env release.env
  artifacts:
    reports:
      dotenv: release.env
"""
