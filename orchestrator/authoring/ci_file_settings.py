"""CI file writers' settings (authoring layer): what the files `orch init --ci` writes need to know, decided once: how orch is installed,
the image the CI publishes, and the build secrets the Dockerfile mounts.

* orch is installed from its own distribution, `orch-multiarch` (the name `orch` on the package
  index is another, unrelated project), pinned to the version that wrote the file, in one
  variable (ORCH_INSTALL) and before any registry login, so no code but orch's runs with the
  token. `--install SPEC` takes another pinned requirement, a wheel URL or a git URL at a commit.
  A development or local build (`0.1.0.dev0`, `1.2.0+g1234`) was never published: its version
  is no pin, so such a build asks for `--install`.
* The image: `--image`, else the CI's own registry: on GitHub `ghcr.io/OWNER/REPO` lowercased
  (from the checkout's GitHub remote when `orch init` runs, else computed in a step from
  GITHUB_REPOSITORY), on GitLab `$CI_REGISTRY_IMAGE`.
* Every `RUN --mount=type=secret` id of the Dockerfile becomes `--secret id=ID,env=VAR`, VAR a CI
  secret (GitHub) or variable (GitLab) of the id's name in upper case.
* Signing (`--sign keyless|key`): the job that moves tags signs the verified index with cosign.
  Keyless uses the CI's identity token (GitHub's `id-token: write`, GitLab's `id_tokens:`
  SIGSTORE_ID_TOKEN, aud sigstore); a key pair is read from COSIGN_PRIVATE_KEY and COSIGN_PASSWORD
  (the names `cosign generate-key-pair github://OWNER/REPO` or `gitlab://PROJECT` writes), the key
  handed to cosign as `env://COSIGN_PRIVATE_KEY`, so it never lands on the runner's disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator import __version__
from orchestrator.errors import BadInput

DISTRIBUTION = "orch-multiarch"
SQUATTED = ("orch",)  # names on the package index that are not this project
GITHUB_IMAGE_STEP = 'echo "ORCH_IMAGE=ghcr.io/${GITHUB_REPOSITORY,,}" >> "$GITHUB_ENV"'
_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.!+_-]+$")
_WHEEL = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]* @ )?https://\S+\.whl(?:#sha256=[0-9a-f]{64})?$")
# A version the package index can hold: PEP 440 without a development or local part.
_RELEASED = re.compile(r"^(\d+!)?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?$")
_GIT = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]* @ )?git\+https://\S+@[0-9a-f]{40}(?:#\S*)?$")
SIGN_KINDS = ("keyless", "key")
SIGN_KEY = "COSIGN_PRIVATE_KEY"  # the CI secret (variable) holding the private key, for cosign's env://
SIGN_PASSWORD = "COSIGN_PASSWORD"  # its password, where cosign reads it
INSTALL_FIX = (f"pass a pinned requirement ({DISTRIBUTION}==1.2.0), a wheel URL (https://.../x.whl) or a git URL "
               "at a commit (git+https://host/org/orch@<40-hex sha>)")


@dataclass(frozen=True)
class CiSettings:
    """What a CI file `orch init --ci` writes needs beside the platforms: the profile, the image,
    how orch is installed, the secrets the Dockerfile mounts and how the index is signed, if at all."""

    profile: str
    image: str | None  # None: the CI's own registry, computed where the job runs
    install: str  # what pip installs
    secrets: tuple[str, ...] = ()  # the secret ids the Dockerfile mounts
    sign: str | None = None  # "keyless", "key" or None (no signing)



def default_install(version: str = __version__) -> str:
    """`orch-multiarch==VERSION` for a released version; BadInput for a development or local build,
    whose version the package index does not hold."""
    if not _RELEASED.match(version):
        raise BadInput(f'this orch is a development or local build ("{version}"), never published as '
                       f"{DISTRIBUTION}=={version}: the CI file can pin only a released version",
                       fix=f"pass --install SPEC: {INSTALL_FIX.removeprefix('pass ')}")
    return f"{DISTRIBUTION}=={version}"


def check_install(spec: str) -> str:
    """A requirement pip installs the same way every time; BadInput quoting it otherwise."""
    spec = spec.strip()
    pinned = _PINNED.match(spec)
    if pinned and pinned.group("name").lower().replace("_", "-") in SQUATTED:
        raise BadInput(f'--install "{spec}": "{pinned.group("name")}" on the package index is another project, '
                       "not orch", fix=f"install {DISTRIBUTION} (pip install {DISTRIBUTION}==1.2.0)")
    if pinned or _WHEEL.match(spec) or _GIT.match(spec):
        return spec
    raise BadInput(f'--install "{spec}" is not pinned: a CI job must install the same orch on every run',
                   fix=INSTALL_FIX)


def secret_ids(dockerfile: str) -> tuple[str, ...]:
    """The ids of the build secrets the Dockerfile's RUN steps mount, in order (BuildKit's
    default id is the target's file name)."""
    ids: list[str] = []
    for mount in re.findall(r"--mount=(\S+)", re.sub(r"\\\n", " ", dockerfile)):
        fields = dict(field.partition("=")[::2] for field in mount.split(","))
        if fields.get("type") != "secret":
            continue
        found = fields.get("id") or (fields.get("target") or fields.get("dst") or "").rstrip("/").rsplit("/", 1)[-1]
        if found and found not in ids:
            ids.append(found)
    return tuple(ids)


def secret_variable(secret_id: str) -> str:
    """The CI secret (variable) that holds a build secret: its id in upper case, [A-Z0-9_]."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", secret_id).upper().strip("_") or "SECRET"
    return f"_{name}" if name[0].isdigit() else name


def secret_options(settings: CiSettings) -> str:
    return " ".join(f"--secret id={s},env={secret_variable(s)}" for s in settings.secrets)


def sign_options(settings: CiSettings) -> str:
    """What the signing job's orch command adds: nothing, `--sign` (keyless) or the key from the CI's secret."""
    if settings.sign == "key":
        return f"--sign --sign-key env://{SIGN_KEY}"
    return "--sign" if settings.sign == "keyless" else ""


def check_sign(sign: str) -> str:
    if sign not in SIGN_KINDS:
        raise BadInput(f'--sign "{sign}" is not keyless or key',
                       fix="pass --sign keyless (the CI's identity token) or --sign key (a cosign key pair in the "
                           "CI's secrets COSIGN_PRIVATE_KEY and COSIGN_PASSWORD)")
    return sign


def github_image(directory: Path) -> str | None:
    """ghcr.io/OWNER/REPO, lowercased, when the checkout's origin is on GitHub (commits or not)."""
    from orchestrator.processes import outputs_at_once
    from orchestrator.tags.gitinfo import public_url

    remote = outputs_at_once([("git", "-C", str(directory), "config", "--get", "remote.origin.url")])[0]
    found = re.match(r"^https://github\.com/([^/]+)/([^/]+?)/?$", public_url(remote.strip())) if remote else None
    return f"ghcr.io/{found.group(1)}/{found.group(2)}".lower() if found else None


def registry_of(image: str) -> str:
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"
