"""CI file writer (authoring layer) for GitHub: the workflows `orch init --ci github` writes: one job that builds every platform, or
(`--runners native`) a job per platform on a runner that runs it and one release.

Each installs orch (ORCH_INSTALL) before any login; pull requests build and push nothing (no
login, no cache export, no release); every run keeps its HTML report as an artifact, also when
the build failed. See authoring.ci_file_settings for the image, the install and the secrets.
"""

from __future__ import annotations

from orchestrator.authoring.ci_file_settings import (
    GITHUB_IMAGE_STEP,
    CiSettings,
    registry_of,
    secret_options,
    secret_variable,
)

PARTS = "parts"
PUSHING = "github.event_name != 'pull_request'"


def _header(settings: CiSettings, what: str) -> str:
    image = f'\n  ORCH_IMAGE: "{settings.image}"' if settings.image else ""
    return f"""# Written by orch init: {what}
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
env:
  # What installs orch: its distribution on the package index, pinned to the version that wrote this
  # file (change it here: another version, a wheel URL or a git URL at a commit).
  ORCH_INSTALL: "{settings.install}"{image}
"""


def _setup(settings: CiSettings) -> str:
    """Python and orch first (before any login), then the image when it is the CI's own."""
    image = "" if settings.image else f"""      - name: the image, ghcr.io/OWNER/REPO in lower case
        run: {GITHUB_IMAGE_STEP}
"""
    return f"""      - uses: actions/setup-python@v5
        with: {{python-version: "3.12"}}
      - run: pip install "$ORCH_INSTALL"
{image}"""


def _login(settings: CiSettings) -> str:
    registry = registry_of(settings.image) if settings.image else "ghcr.io"
    if registry == "ghcr.io":
        who = "username: ${{ github.actor }}\n          password: ${{ secrets.GITHUB_TOKEN }}"
    else:  # another registry: the repository's secrets hold its account
        who = "username: ${{ secrets.REGISTRY_USERNAME }}\n          password: ${{ secrets.REGISTRY_PASSWORD }}"
    server = "" if registry == "docker.io" else f"\n          registry: {registry}"
    return f"""      - uses: docker/login-action@v3
        if: ${{{{ {PUSHING} }}}}
        with:{server}
          {who}
"""


def _secrets_env(settings: CiSettings) -> str:
    if not settings.secrets:
        return ""
    lines = "".join(f"\n          {secret_variable(s)}: ${{{{ secrets.{secret_variable(s)} }}}}" for s in settings.secrets)
    return f"\n        env:{lines}"


def _build_command(settings: CiSettings, platform: str = "", part: bool = False) -> str:
    words = [f"orch build --profile {settings.profile}", platform, '--image "$ORCH_IMAGE"',
             "--report orch-report.html", secret_options(settings)]
    pushing = '--push --cache "$ORCH_IMAGE:buildcache"' + (f" --part {PARTS}" if part else "")
    return " ".join(w for w in words if w) + f"\n          ${{{{ {PUSHING} && '{pushing}' || '' }}}}"


def _report(name: str) -> str:
    return f"""      - uses: actions/upload-artifact@v4
        if: ${{{{ always() }}}}
        with:
          name: {name}
          path: orch-report.html
          if-no-files-found: ignore
"""


def github_single(settings: CiSettings) -> str:
    return _header(settings, "every platform in one build, verified before any tag moves.") + f"""jobs:
  image:
    runs-on: ubuntu-latest
    permissions: {{contents: read, packages: write}}
    steps:
      - uses: actions/checkout@v4
{_setup(settings)}      - uses: docker/setup-qemu-action@v3
      - uses: docker/setup-buildx-action@v3
{_login(settings)}      - id: build{_secrets_env(settings)}
        run: >
          {_build_command(settings)}
{_report("orch-report")}"""


def github_native(settings: CiSettings) -> str:
    return _header(settings, """each platform built on a runner that runs it natively (the profile's
# runners: table, read when the workflow runs; others under QEMU), verified and staged by digest
# with no tag; then one release merges the parts, verifies the index and moves every tag or none.""") + f"""jobs:
  plan:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.runners.outputs.matrix }}}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.12"}}
      - run: pip install "$ORCH_INSTALL"
      - id: runners
        run: echo "matrix=$(orch profiles runners {settings.profile} --ci github --json)" >> "$GITHUB_OUTPUT"
{_native_build(settings)}{_native_release(settings)}"""


def _native_build(settings: CiSettings) -> str:
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
{_setup(settings)}      - uses: docker/setup-qemu-action@v3
        if: ${{{{ matrix.qemu }}}}
      - uses: docker/setup-buildx-action@v3
{_login(settings)}      - id: build{_secrets_env(settings)}
        run: >
          {_build_command(settings, '--platform "${{ matrix.platform }}"', part=True)}
      - uses: actions/upload-artifact@v4
        if: ${{{{ {PUSHING} }}}}
        with:
          name: orch-part-${{{{ matrix.slug }}}}
          path: {PARTS}/
          if-no-files-found: error
          retention-days: 1
          overwrite: true
{_report("orch-report-${{ matrix.slug }}")}"""


def _native_release(settings: CiSettings) -> str:
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
{_setup(settings)}      - uses: actions/download-artifact@v4
        with:
          pattern: orch-part-*
          path: {PARTS}
          merge-multiple: true
{_login(settings)}      - id: release
        run: orch release {PARTS} --profile {settings.profile} --image "$ORCH_IMAGE" --report orch-report.html
{_report("orch-report-release")}"""
