"""CI file writer (authoring layer) for GitHub: the workflows `orch init --ci github` writes: one job that builds every platform, or
(`--runners native`) a job per platform on a runner that runs it and one release.

Each installs orch (ORCH_INSTALL) before any login; pull requests build and push nothing (no
login, no cache export, no release); every run keeps its HTML report as an artifact, also when
the build failed. See authoring.ci_file_settings for the image, the install and the secrets.

What a real CI's life asks of them:
* re-runs: every artifact a job uploads again on a re-run is either named for the attempt (the
  reports) or overwritten (each leg's part), so "re-run failed jobs" and "re-run all jobs" upload
  where attempt 1 already did; the release takes the latest attempt of each leg;
* a registry cache per native leg, `IMAGE:buildcache-OS-ARCH[-VARIANT]`, written by that leg and
  read by every leg, so legs never overwrite each other's;
* security-lint clean (zizmor's default persona): actions pinned by commit
  (authoring.ci_file_actions), checkout credentials not persisted, and every value from the
  event, the matrix or a secret passed to `run:` scripts through `env:`, never expanded in them;
* signing (`--sign`) only in the job that moves tags (the single job, or the release): cosign
  installed there (sigstore/cosign-installer), `id-token: write` on that job alone (keyless), or
  the key pair's secrets in that step's `env:` (key). Keyless certificates name the workflow:
  `https://github.com/OWNER/REPO/.github/workflows/image.yml@REF` (docs/ci.md).
"""

from __future__ import annotations

from orchestrator.authoring.ci_file_actions import uses
from orchestrator.authoring.ci_file_settings import (
    GITHUB_IMAGE_STEP,
    SIGN_KEY,
    SIGN_PASSWORD,
    CiSettings,
    registry_of,
    secret_options,
    secret_variable,
    sign_options,
)

PARTS = "parts"
PUSHING = "github.event_name != 'pull_request'"


# When every generated workflow runs, and the workflow's token: read-only unless a job says more.
TRIGGERS = """name: image
on:
  push:
    branches: [main]
    tags: ["v*"]
  pull_request:
concurrency:
  group: image-${{ github.ref }}
  cancel-in-progress: ${{ github.event_name == 'pull_request' }}
permissions:
  contents: read
"""


def _header(settings: CiSettings, what: str) -> str:
    image = f'\n  ORCH_IMAGE: "{settings.image}"' if settings.image else ""
    return f"""# Written by orch init: {what}
{TRIGGERS}env:
  # What installs orch: its distribution on the package index, pinned to the version that wrote this
  # file (change it here: another version, a wheel URL or a git URL at a commit).
  ORCH_INSTALL: "{settings.install}"{image}
"""


def checkout() -> str:
    return f"""      - uses: {uses("actions/checkout")}
        with: {{persist-credentials: false}}
"""


def _setup(settings: CiSettings) -> str:
    """Python and orch first (before any login), then the image when it is the CI's own."""
    image = "" if settings.image else f"""      - name: the image, ghcr.io/OWNER/REPO in lower case
        run: {GITHUB_IMAGE_STEP}
"""
    return f"""      - uses: {uses("actions/setup-python")}
        with: {{python-version: "3.12"}}
      - run: pip install "$ORCH_INSTALL"
{image}"""


def login(settings: CiSettings) -> str:
    registry = registry_of(settings.image) if settings.image else "ghcr.io"
    if registry == "ghcr.io":
        who = "username: ${{ github.actor }}\n          password: ${{ secrets.GITHUB_TOKEN }}"
    else:  # another registry: the repository's secrets hold its account
        who = "username: ${{ secrets.REGISTRY_USERNAME }}\n          password: ${{ secrets.REGISTRY_PASSWORD }}"
    server = "" if registry == "docker.io" else f"\n          registry: {registry}"
    return f"""      - uses: {uses("docker/login-action")}
        if: ${{{{ {PUSHING} }}}}
        with:{server}
          {who}
"""


def _permissions(settings: CiSettings, signs: bool = False) -> str:
    """The job's token: packages to push; an identity token only for the job that signs keyless."""
    return "{contents: read, packages: write" + (", id-token: write}" if signs and settings.sign == "keyless" else "}")


def _cosign(settings: CiSettings, condition: str = "") -> str:
    """cosign, for the job that signs (pinned as every action is)."""
    if not settings.sign:
        return ""
    when = f"\n        if: ${{{{ {condition} }}}}" if condition else ""
    return f"      - uses: {uses('sigstore/cosign-installer')}{when}\n"


def _env_lines(values: dict[str, str]) -> str:
    return "\n        env:" + "".join(f"\n          {key}: {value}" for key, value in values.items()) if values else ""


def _signing_env(settings: CiSettings, only_pushing: bool = False) -> dict[str, str]:
    """The key pair's secrets, for the step that signs with a key (cosign reads both from the environment);
    `only_pushing`: empty on pull requests, which build and sign nothing."""
    if settings.sign != "key":
        return {}
    if only_pushing:
        return {name: f"${{{{ {PUSHING} && secrets.{name} || '' }}}}" for name in (SIGN_KEY, SIGN_PASSWORD)}
    return {name: f"${{{{ secrets.{name} }}}}" for name in (SIGN_KEY, SIGN_PASSWORD)}


def _step_env(settings: CiSettings, values: dict[str, str], signs: bool = False) -> str:
    """The build step's environment: what its script reads, secrets included (never `${{ }}` in it)."""
    values = {"PUSHING": f"${{{{ {PUSHING} }}}}", **values}
    values.update({secret_variable(s): f"${{{{ secrets.{secret_variable(s)} }}}}" for s in settings.secrets})
    if signs:
        values.update(_signing_env(settings, only_pushing=True))
    return _env_lines(values)


def _orch_build(settings: CiSettings) -> str:
    words = [f"orch build --profile {settings.profile}", '--image "$ORCH_IMAGE"', "--report orch-report.html",
             secret_options(settings), '"$@"']
    return " ".join(w for w in words if w)


def _report(name: str) -> str:
    """The HTML report, also when the build failed; named for the attempt, so a re-run uploads its own."""
    return f"""      - uses: {uses("actions/upload-artifact")}
        if: ${{{{ always() }}}}
        with:
          name: {name}-attempt-${{{{ github.run_attempt }}}}
          path: orch-report.html
          if-no-files-found: ignore
"""


def github_single(settings: CiSettings) -> str:
    return _header(settings, "every platform in one build, verified before any tag moves.") + f"""jobs:
  image:
    runs-on: ubuntu-latest
    permissions: {_permissions(settings, signs=True)}
    steps:
{checkout()}{_setup(settings)}{_cosign(settings, PUSHING)}      - uses: {uses("docker/setup-qemu-action")}
      - uses: {uses("docker/setup-buildx-action")}
{login(settings)}      - id: build{_step_env(settings, {}, signs=True)}
        run: |
          if [ "$PUSHING" = true ]; then set -- {_pushing(settings)}; fi
          {_orch_build(settings)}
{_report("orch-report")}"""


def _pushing(settings: CiSettings) -> str:
    words = ['--push --cache "$ORCH_IMAGE:buildcache"', sign_options(settings)]
    return " ".join(w for w in words if w)


def github_native(settings: CiSettings) -> str:
    return _header(settings, """each platform built on a runner that runs it natively (the profile's
# runners: table, read when the workflow runs; others under QEMU), verified and staged by digest
# with no tag; then one release merges the parts, verifies the index and moves every tag or none.""") + f"""jobs:
  plan:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{{{ steps.runners.outputs.matrix }}}}
    steps:
{checkout()}      - uses: {uses("actions/setup-python")}
        with: {{python-version: "3.12"}}
      - run: pip install "$ORCH_INSTALL"
      - id: runners
        run: echo "matrix=$(orch profiles runners {settings.profile} --ci github --json)" >> "$GITHUB_OUTPUT"
{_native_build(settings)}{_native_release(settings)}"""


def _native_build(settings: CiSettings) -> str:
    leg = {"PLATFORM": "${{ matrix.platform }}", "SLUG": "${{ matrix.slug }}", "CACHES": "${{ matrix.caches }}"}
    return f"""  build:
    needs: plan
    name: build ${{{{ matrix.platform }}}}
    runs-on: ${{{{ matrix.runner }}}}
    permissions: {_permissions(settings)}
    strategy:
      fail-fast: false
      matrix: ${{{{ fromJSON(needs.plan.outputs.matrix) }}}}
    steps:
{checkout()}{_setup(settings)}      - uses: {uses("docker/setup-qemu-action")}
        if: ${{{{ matrix.qemu }}}}
      - uses: {uses("docker/setup-buildx-action")}
{login(settings)}      - id: build{_step_env(settings, leg)}
        # Pushing: a part (no tag), this leg's own cache written, every leg's read.
        run: |
          set -- --platform "$PLATFORM"
          if [ "$PUSHING" = true ]; then
            set -- "$@" --push --part {PARTS} --cache-to "type=registry,ref=$ORCH_IMAGE:buildcache-$SLUG,mode=max"
            for leg in $CACHES; do set -- "$@" --cache-from "type=registry,ref=$ORCH_IMAGE:buildcache-$leg"; done
          fi
          {_orch_build(settings)}
      - uses: {uses("actions/upload-artifact")}
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
    permissions: {_permissions(settings, signs=True)}
    outputs:
      digest: ${{{{ steps.release.outputs.digest }}}}
      tags: ${{{{ steps.release.outputs.tags }}}}
      version: ${{{{ steps.release.outputs.version }}}}
    steps:
{checkout()}{_setup(settings)}{_cosign(settings)}      - uses: {uses("actions/download-artifact")}
        with:
          pattern: orch-part-*
          path: {PARTS}
          merge-multiple: true
{login(settings)}      - id: release{_env_lines(_signing_env(settings))}
        run: {_release_line(settings)}
{_report("orch-report-release")}"""


def _release_line(settings: CiSettings) -> str:
    words = [f"orch release {PARTS} --profile {settings.profile}", '--image "$ORCH_IMAGE"',
             "--report orch-report.html", sign_options(settings)]
    return " ".join(w for w in words if w)
