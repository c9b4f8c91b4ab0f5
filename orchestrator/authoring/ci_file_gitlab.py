"""CI file writer (authoring layer) for GitLab: the files `orch init --ci gitlab` writes: one job that builds every platform, or
(`--runners native`) a `parallel:matrix` job per platform on a runner tag and one release.

`rules:` push on the default branch and on tags, and build without pushing on merge requests
(ORCH_PUSH empty: no login, no cache export, no release). orch is installed (ORCH_INSTALL) before
any login; the image is `$CI_REGISTRY_IMAGE` unless `--image` named one; pushing jobs share a
`resource_group`, so two pipelines never move the same tags at once; the HTML report is kept
as an artifact, also when the build failed.

Signing (`--sign`): the job that moves tags installs cosign (Alpine's package) and signs when it
pushes (ORCH_SIGN, set by the pushing rule). Keyless: that job alone asks for an identity token,
`id_tokens: SIGSTORE_ID_TOKEN` with aud sigstore, which cosign reads; its certificate names the
pipeline file, `https://gitlab.com/GROUP/PROJECT//.gitlab-ci.yml@REF` (docs/ci.md). Key: the
project's CI/CD variables COSIGN_PRIVATE_KEY and COSIGN_PASSWORD (`cosign generate-key-pair
gitlab://GROUP/PROJECT` writes them), the key read by cosign from the environment.
"""

from __future__ import annotations

from orchestrator.authoring.ci_file_settings import CiSettings, secret_options, sign_options
from orchestrator.authoring.runners import RunnerJob
from orchestrator.model.platform import format_platform, platform_slug

PARTS = "parts"


def _sign_variable(settings: CiSettings) -> str:
    """ORCH_SIGN beside ORCH_PUSH in a pushing rule's variables: the signing options, when asked."""
    return f', ORCH_SIGN: "{sign_options(settings)}"' if settings.sign else ""


def _signing_job(settings: CiSettings) -> str:
    """What the job that signs adds: keyless, its identity token for cosign (aud sigstore)."""
    if settings.sign != "keyless":
        return ""
    return """  id_tokens:
    SIGSTORE_ID_TOKEN:
      aud: sigstore
"""


def _cosign_line(settings: CiSettings) -> str:
    return "    - apk add --no-cache cosign\n" if settings.sign else ""


def _common(settings: CiSettings, what: str) -> str:
    return f"""# Written by orch init: {what}
stages: [build, release]

variables:
  # What installs orch: its distribution on the package index, pinned to the version that wrote this
  # file (change it here: another version, a wheel URL or a git URL at a commit).
  ORCH_INSTALL: "{settings.install}"
  ORCH_IMAGE: "{settings.image or '$CI_REGISTRY_IMAGE'}"

.orch:
  image: docker:27
  services: [docker:27-dind]
  variables:
    DOCKER_TLS_CERTDIR: "/certs"
  interruptible: true
  before_script:
    - apk add --no-cache python3 py3-pip
    - pip install --break-system-packages "$ORCH_INSTALL"
    - if [ -n "$ORCH_PUSH" ]; then echo "$CI_REGISTRY_PASSWORD" | docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"; fi
  rules:
    - if: $CI_COMMIT_TAG || $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      variables: {{ORCH_PUSH: "--push --cache $ORCH_IMAGE:buildcache"{_sign_variable(settings)}}}
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      variables: {{ORCH_PUSH: ""}}
  artifacts:
    when: always
    expire_in: 1 week
    paths: [orch-report.html]
"""


def _build_line(settings: CiSettings, signs: bool = False) -> str:
    words = [f"orch build --profile {settings.profile}", '--image "$ORCH_IMAGE"',
             "--report orch-report.html", secret_options(settings), "$ORCH_PUSH",
             "$ORCH_SIGN" if settings.sign and signs else ""]
    return " ".join(w for w in words if w)


def gitlab_single(settings: CiSettings) -> str:
    return _common(settings, "every platform in one build, verified before any tag moves.") + f"""
image-build:
  extends: .orch
  stage: build
  resource_group: image-$CI_COMMIT_REF_SLUG
{_signing_job(settings)}  script:
{_cosign_line(settings)}    - docker run --privileged --rm tonistiigi/binfmt --install all
    - docker buildx create --use --driver docker-container
    - {_build_line(settings, signs=True)} --output-env build.env
  artifacts:
    when: always
    paths: [orch-report.html]
    reports:
      dotenv: build.env
"""


def gitlab_native(settings: CiSettings, jobs: tuple[RunnerJob, ...]) -> str:
    matrix = "".join(f"""      - PLATFORM: {format_platform(job.platform)}
        SLUG: {platform_slug(job.platform)}
        RUNNER_TAG: {job.runner}
        QEMU: "{'yes' if job.qemu else 'no'}"
""" for job in jobs)
    caches = " ".join(platform_slug(job.platform) for job in jobs)
    # Pushing: a part (no tag); this leg's own cache written, every leg's read.
    leg = ('set -- --platform "$PLATFORM"; if [ -n "$ORCH_PUSH" ]; then set -- "$@" --push --part '
           f'{PARTS} --cache-to "type=registry,ref=$ORCH_IMAGE:buildcache-$SLUG,mode=max"; for leg in {caches}; '
           'do set -- "$@" --cache-from "type=registry,ref=$ORCH_IMAGE:buildcache-$leg"; done; fi; '
           + _build_line(settings).replace(" $ORCH_PUSH", "") + ' "$@"')
    return _common(settings, f"""each platform built on a runner that runs it natively (the profile's
# runners: table; `orch profiles runners {settings.profile} --ci gitlab` prints it again after an edit),
# verified and staged by digest with no tag; then one release merges the parts, verifies the index
# and moves every tag or none. Merge requests build each platform and push nothing.""") + f"""
image-build:
  extends: .orch
  stage: build
  tags: ["$RUNNER_TAG"]
  parallel:
    matrix:
{matrix}  script:
    - if [ "$QEMU" = yes ]; then docker run --privileged --rm tonistiigi/binfmt --install all; fi
    - docker buildx create --use --driver docker-container
    - {leg}
  artifacts:
    when: always
    expire_in: 1 day
    paths: [{PARTS}/, orch-report.html]

image-release:
  extends: .orch
  stage: release
  needs: [image-build]
  resource_group: image-$CI_COMMIT_REF_SLUG
{_signing_job(settings)}  rules:
    - if: $CI_COMMIT_TAG || $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
      variables: {{ORCH_PUSH: "--push"{_sign_variable(settings)}}}
  script:
{_cosign_line(settings)}    - {_release_line(settings)}
  artifacts:
    when: always
    paths: [orch-report.html]
    reports:
      dotenv: release.env
"""


def _release_line(settings: CiSettings) -> str:
    line = f'orch release {PARTS} --profile {settings.profile} --image "$ORCH_IMAGE" --report orch-report.html'
    return line + " --output-env release.env" + (" $ORCH_SIGN" if settings.sign else "")
