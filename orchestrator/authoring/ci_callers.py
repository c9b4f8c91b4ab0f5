"""CI file writers (authoring layer) for `orch init --use`: short callers of orch's CI building
blocks instead of the inline files (authoring.ci_file_github, ci_file_gitlab), each pinned to a
commit of the repository that holds them (`--from OWNER/REPO@SHA`, the release tag after `#`).

* `--use action` (GitHub): one job whose build step is the composite action, `uses:
  OWNER/REPO@SHA # TAG`, with build-push-action's and metadata-action's input names; the job
  checks out, sets up QEMU and buildx and logs in (the action installs orch itself).
* `--use reusable` (GitHub): one job that calls the reusable workflow,
  `OWNER/REPO/.github/workflows/orch.yml@SHA`; `distribute: true` with `--runners native`.
  It is granted `id-token: write`: the workflow reads its job's token to find its own commit.
* `--use component` (GitLab): `include: - component: HOST/OWNER/REPO/orch@SHA` with `inputs:`,
  included twice under `rules:` as the inline file's rules are: pushing (and signing) on the
  default branch and tags, building only on merge requests.

Tag rules stay in the profile (`tags:`), one place as in the inline files: a `tag-rules` input
would replace them, so a caller never repeats them. Pull requests push and sign nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.authoring.ci_file_actions import uses
from orchestrator.authoring.ci_file_github import PUSHING, TRIGGERS, checkout, login
from orchestrator.authoring.ci_file_settings import GITHUB_IMAGE_STEP, SIGN_KEY, SIGN_PASSWORD, CiSettings
from orchestrator.errors import BadInput

USES = {"github": ("inline", "action", "reusable"), "gitlab": ("inline", "component")}
REUSABLE = ".github/workflows/orch.yml"
COMPONENT = "orch"  # templates/orch.yml
GITLAB_HOST = "$CI_SERVER_FQDN"  # the instance running the pipeline, as GitLab's docs name components
_GITHUB_FROM = re.compile(r"^(?P<path>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)@(?P<sha>[0-9a-f]{40})(?:#(?P<tag>\S+))?$")
_GITLAB_FROM = re.compile(r"^(?P<path>[A-Za-z0-9][\w.-]*(?:/[\w.-]+)+)@(?P<sha>[0-9a-f]{40})(?:#(?P<tag>\S+))?$")


@dataclass(frozen=True)
class Block:
    """Where the building block lives: a repository's path (GitLab: its host first, or none), a commit, its tag."""

    use: str  # action, reusable or component
    path: str
    sha: str
    tag: str | None = None

    def project_url(self) -> str:
        """The git URL of a GitLab project, HOST/GROUP/.../PROJECT (parse_from puts the host first)."""
        return f"https://{self.path}.git"

    def pinned(self, suffix: str = "") -> str:
        """`PATH[SUFFIX]@SHA # TAG` (the tag comment only when --from named one)."""
        return f"{self.path}{suffix}@{self.sha}" + (f" # {self.tag}" if self.tag else "")


def parse_from(given: str, ci: str, use: str) -> Block:
    """--from OWNER/REPO@SHA[#TAG] (GitLab: [HOST/]GROUP/.../PROJECT@SHA[#TAG]); BadInput quoting it otherwise."""
    found = (_GITHUB_FROM if ci == "github" else _GITLAB_FROM).match(given.strip())
    if not found:
        shape = "OWNER/REPO" if ci == "github" else "[HOST/]GROUP/PROJECT"
        raise BadInput(f'--from "{given}" is not {shape}@SHA (a full 40-hex commit), optionally #TAG',
                       fix=f"pass --from {shape}@<40-hex commit>#v1.2.3, the commit of the release you use")
    path = found.group("path")
    if ci == "gitlab" and "." not in path.split("/", 1)[0]:
        path = f"{GITLAB_HOST}/{path}"
    return Block(use, path, found.group("sha"), found.group("tag"))


def check_use(use: str, ci: str | None, runners: str, sign: str | None) -> None:
    if ci is None:
        if use != "inline":
            raise BadInput(f"--use {use} says what the CI file calls; no --ci was given",
                           fix="add --ci github or --ci gitlab")
        return
    if use not in USES[ci]:
        raise BadInput(f'--use "{use}" is not one of {", ".join(USES[ci])} for --ci {ci}',
                       fix=f"pass --use {' or --use '.join(USES[ci])}")
    if use == "action" and runners == "native":
        raise BadInput("--use action builds every platform in one job; --runners native needs a job per platform",
                       fix="pass --use reusable (distribute: true) or --use inline with --runners native")
    if use == "component" and sign == "keyless":
        raise BadInput("--sign keyless with --use component: GitLab gives no keyless identity to jobs included "
                       "from another project (docs.gitlab.com/ci/yaml/signing_examples)",
                       fix="pass --sign key, or --use inline")


def _pushing_secret(name: str) -> str:
    return f"${{{{ {PUSHING} && secrets.{name} || '' }}}}"


def _with(values: dict[str, str], indent: str) -> str:
    return "".join(f"\n{indent}{key}: {value}" for key, value in values.items() if value != "")


def _permissions(settings: CiSettings, token: bool) -> str:
    return "{contents: read, packages: write" + (", id-token: write}" if token else "}")


def github_action(settings: CiSettings, block: Block, platforms: str, dockerfile: str) -> str:
    image = "" if settings.image else f"""      - name: the image, ghcr.io/OWNER/REPO in lower case
        run: {GITHUB_IMAGE_STEP}
"""
    values = {"context": ".", "file": dockerfile, "platforms": platforms, "profile": settings.profile,
              "images": settings.image or "${{ env.ORCH_IMAGE }}", "push": f"${{{{ {PUSHING} }}}}"}
    if settings.sign:
        values["sign"] = f"${{{{ {PUSHING} }}}}"
    if settings.sign == "key":
        values.update({"sign-key": _pushing_secret(SIGN_KEY), "sign-password": _pushing_secret(SIGN_PASSWORD)})
    if settings.secrets:
        from orchestrator.authoring.ci_file_settings import secret_variable

        values["secrets"] = "|" + "".join(f"\n            {s}=${{{{ secrets.{secret_variable(s)} }}}}"
                                          for s in settings.secrets)
    return f"""# Written by orch init: every platform in one build by the orch action ({block.path}, pinned by
# commit), verified before any tag moves. Tag rules: the profile's tags:.
{TRIGGERS}jobs:
  image:
    runs-on: ubuntu-latest
    permissions: {_permissions(settings, settings.sign == "keyless")}
    steps:
{checkout()}{image}      - uses: {uses("docker/setup-qemu-action")}
      - uses: {uses("docker/setup-buildx-action")}
{login(settings)}      - id: orch
        uses: {block.pinned()}
        with:{_with(values, "          ")}
"""


def github_reusable(settings: CiSettings, block: Block, platforms: str, native: bool) -> str:
    values = {"profile": settings.profile, "platforms": platforms,
              "images": settings.image or "ghcr.io/${{ github.repository }}", "push": f"${{{{ {PUSHING} }}}}",
              "sign": f"${{{{ {PUSHING} }}}}" if settings.sign else "", "distribute": "true" if native else "false"}
    secrets = _with({"sign-key": _pushing_secret(SIGN_KEY), "sign-password": _pushing_secret(SIGN_PASSWORD)}, "      ") \
        if settings.sign == "key" else ""
    lower = "" if settings.image else "\n# The image is ghcr.io/OWNER/REPO: write it in lower case if OWNER or REPO has capitals."
    mounts = f"\n# The Dockerfile mounts build secrets ({', '.join(settings.secrets)}): the reusable workflow " \
        "takes none; use --use action or inline." if settings.secrets else ""
    how = "each platform on a runner that runs it natively, then one release" if native else \
        "every platform in one job"
    return f"""# Written by orch init: orch's reusable workflow ({block.path}, pinned by commit) builds {how},
# verified before any tag moves. Tag rules: the profile's tags:.{lower}{mounts}
{TRIGGERS}jobs:
  image:
    # id-token: write: the workflow finds its own commit from its job's token (and signs keyless).
    permissions: {_permissions(settings, True)}
    uses: {block.pinned("/" + REUSABLE)}
    with:{_with(values, "      ")}
""" + (f"    secrets:{secrets}\n" if secrets else "")


def gitlab_component(settings: CiSettings, block: Block, platforms: str, native: bool) -> str:
    # The component's own inputs (templates/orch.yml): `image`, and `project-url`, the git URL orch
    # is installed from at the component's commit (GitLab tells a component its sha, not its project).
    values = {"profile": settings.profile, "platforms": platforms, "image": settings.image or "$CI_REGISTRY_IMAGE",
              "project-url": block.project_url(), "distribute": "true" if native else "false"}
    pushing = {**values, "push": "true", "sign": "true" if settings.sign else ""}
    building = {**values, "push": "false"}
    key = ("\n# Signing: the private key in a file-type CI/CD variable ORCH_SIGN_KEY and its password in "
           "COSIGN_PASSWORD\n# (masked), as the component reads them.") if settings.sign == "key" else ""
    component = f"{block.path}/{COMPONENT}@{block.sha}" + (f"  # {block.tag}" if block.tag else "")
    return f"""# Written by orch init: orch's CI/CD component ({block.path}, pinned by commit) builds every
# platform{' on its own runner, then one release' if native else ' in one job'}, verified before any tag moves. Tag rules: the
# profile's tags:. The default branch and tags push; merge requests build and push nothing.{key}
include:
  - component: {component}
    rules:
      - if: $CI_COMMIT_TAG || $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
    inputs:{_with(pushing, "      ")}
  - component: {component}
    rules:
      - if: $CI_PIPELINE_SOURCE == "merge_request_event"
    inputs:{_with(building, "      ")}
"""
