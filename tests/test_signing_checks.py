"""Signing mistakes are refused before any build step, in under a second of orch's own: cosign
missing, a key that is not a file, not a private key (the .pub given), not decrypted by
COSIGN_PASSWORD (unset or wrong), and keyless signing with no OIDC token; `orch verify --key`
with a key that checks nothing (exit 2, naming the file and what is wrong). Real runs of orch with
Debian's cosign and key pairs from `cosign generate-key-pair`: the exit code, the one sentence
quoting the file and its fix, and no build started (no buildx step line in the output)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.builds.options import SigningOptions
from orchestrator.errors import OrchError

from . import orch_processes
from .conftest import IN_CI, REPO

PASSWORD = "correct horse"
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                "SIGSTORE_ID_TOKEN", "COSIGN_PASSWORD")


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cosign") is None:
        if IN_CI:
            pytest.fail("cosign is not installed (make engine installs it)")
        pytest.skip("cosign is not installed (make engine installs it)")
    folder = tmp_path_factory.mktemp("keys")
    subprocess.run(["cosign", "generate-key-pair"], cwd=folder, check=True, capture_output=True,
                   env={**os.environ, "COSIGN_PASSWORD": PASSWORD})
    (folder / "notes.key").write_text("not a key at all\n")
    return folder


def orch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`orch build` of the example, pushed and signed: it would build if the check let it."""
    clean = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    return orch_processes.run([sys.executable, "-m", "orchestrator", "build", "-f", "Dockerfile.example", "--platform",
                               "linux/amd64", "--build-arg", "BASE_IMAGE=localhost:5000/orch/busybox:stable",
                               "-t", "localhost:5000/signing-checks/app:1", "--push", "--progress", "plain", "--sign",
                               *args], cwd=REPO, env={**clean, **env}, timeout=300)


def own_seconds(check: Callable[[], object]) -> float:
    """What `check` costs of orch's own, in this process (no interpreter start): the CPU time it
    and the programs it runs (cosign) take. On a shared machine of two busy CPUs the wall time
    is mostly waiting for a CPU; it is bounded too, so a check that waits (a prompt) fails."""
    before = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    started = time.monotonic()
    check()
    wall = time.monotonic() - started
    after = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    assert wall < 15, f"the check waited {wall:.1f} s"
    return sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before, strict=True))


def refused(monkeypatch: pytest.MonkeyPatch, key: str | None, env: dict[str, str]) -> float:
    """The seconds of orch's own the check takes to refuse `key` in `env`."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def check() -> None:
        with pytest.raises(OrchError):
            SigningOptions(sign=True, key=key).signing()

    return own_seconds(check)


CASES = {
    # name: (key file, environment, exit code, the message)
    "password unset": ("cosign.key", {}, 2, '--sign-key "{key}" is encrypted and COSIGN_PASSWORD is not set'),
    "wrong password": ("cosign.key", {"COSIGN_PASSWORD": "wrong"}, 2, 'COSIGN_PASSWORD does not decrypt --sign-key "{key}"'),
    "public key": ("cosign.pub", {"COSIGN_PASSWORD": PASSWORD}, 2,
                   '--sign-key "{key}" is a public key, which checks signatures but cannot make them'),
    "not a key": ("notes.key", {"COSIGN_PASSWORD": PASSWORD}, 2, '--sign-key "{key}" is not a cosign private key'),
    "missing": ("gone.key", {"COSIGN_PASSWORD": PASSWORD}, 2, '--sign-key "{key}" is not a file'),
    "keyless outside CI": (None, {}, 3, "keyless signing (no --sign-key) needs an OIDC identity token, and there is "
                                        "none here"),
    "keyless on GitHub without id-token": (None, {"GITHUB_ACTIONS": "true"}, 3, "keyless signing (no --sign-key) needs "
                                           "an OIDC identity token, and this GitHub Actions job gets none"),
    "keyless on GitLab without id_tokens": (None, {"GITLAB_CI": "true"}, 3, "keyless signing (no --sign-key) needs an "
                                            "OIDC identity token, and this GitLab job has none"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_signing_mistake_is_refused_before_any_build_step(case: str, key_pair: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    name, env, code, message = CASES[case]
    key = str(key_pair / name) if name else None
    done = orch(*(["--sign-key", key] if key else []), env=env)
    assert done.returncode == code, done.stderr[-2000:]
    assert f"orch: error: {message.format(key=key)}" in done.stderr and "\n  fix: " in done.stderr
    assert "#1 " not in done.stderr and "[internal]" not in done.stderr and "buildx build" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert refused(monkeypatch, key, env) < 1.0


def test_no_cosign_is_exit_3_before_any_build_step(key_pair: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"  # docker and git, but no cosign
    bin_dir.mkdir()
    for program in ("docker", "git"):
        found = shutil.which(program)
        if found:
            (bin_dir / program).symlink_to(found)
    env = {"PATH": str(bin_dir), "COSIGN_PASSWORD": PASSWORD}
    done = orch("--sign-key", str(key_pair / "cosign.key"), env=env)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "orch: error: signing needs cosign, which is not installed" in done.stderr
    assert "fix: install cosign" in done.stderr and "#1 " not in done.stderr
    assert refused(monkeypatch, str(key_pair / "cosign.key"), env) < 1.0


def test_a_right_key_and_password_pass_the_check_in_under_a_second(key_pair: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)
    checked = []
    assert own_seconds(lambda: checked.append(SigningOptions(sign=True, key=str(key_pair / "cosign.key")).signing())) < 1
    assert checked[0] is not None and checked[0].key == str(key_pair / "cosign.key")
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", "a.b.c")  # an ambient token (GitLab's id_tokens)
    assert SigningOptions(sign=True).signing() is not None


@pytest.mark.parametrize("name, problem", [("gone.pub", "is not a file"),
                                           ("cosign.key", "is a private key, and a signature is checked with the "
                                                          "public one"),
                                           ("notes.key", "is not a public key")])
def test_verify_refuses_a_key_that_checks_nothing(key_pair: Path, name: str, problem: str) -> None:
    key = str(key_pair / name)
    done = orch_processes.run([sys.executable, "-m", "orchestrator", "verify", "localhost:1/nothing/here:1", "--platform",
                               "linux/amd64", "--key", key], cwd=REPO, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f'orch: error: --key "{key}" {problem}' in done.stderr and "\n  fix: " in done.stderr
    if name == "cosign.key":
        assert f"({key_pair / 'cosign.pub'})" in done.stderr  # the public half, named
    assert "fix: sign it" not in done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_verify_refuses_an_unreadable_key(key_pair: Path, tmp_path: Path) -> None:
    key = tmp_path / "cosign.pub"
    shutil.copy(key_pair / "cosign.pub", key)
    key.chmod(0)
    done = orch_processes.run([sys.executable, "-m", "orchestrator", "verify", "localhost:1/nothing/here:1", "--platform",
                               "linux/amd64", "--key", str(key)], cwd=REPO, timeout=120)
    assert done.returncode == 2 and f'--key "{key}" cannot be read (Permission denied)' in done.stderr, done.stderr


def test_a_job_wide_sign_key_variable_does_not_stop_builds_that_do_not_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI sets ORCH_SIGN_KEY for a whole job or pipeline (a secret variable): the builds there that do not
    sign go on; a --sign-key typed on the command line without --sign is still pointed out."""
    from types import SimpleNamespace

    from orchestrator.builds.request import signing_of

    def asked(key: str) -> object:
        return SimpleNamespace(signing=SigningOptions(sign=False, key=key), push=True)

    unsigned = SimpleNamespace(signing=None)
    monkeypatch.setenv("ORCH_SIGN_KEY", "/run/secrets/cosign.key")
    assert signing_of(asked("/run/secrets/cosign.key"), unsigned) is None  # type: ignore[arg-type]
    with pytest.raises(OrchError, match="--sign-key names the key for --sign, which was not given"):
        signing_of(asked("other.key"), unsigned)  # type: ignore[arg-type]
    monkeypatch.delenv("ORCH_SIGN_KEY")
    with pytest.raises(OrchError, match="which was not given"):
        signing_of(asked("/run/secrets/cosign.key"), unsigned)  # type: ignore[arg-type]


def test_a_release_signs_as_its_profile_says(tmp_path: Path) -> None:
    """A profile's `signing:` holds for `orch release` as for `orch build`: its key is checked before
    the parts are read (a missing key file is the sentence about the key, not about the parts)."""
    (tmp_path / "parts").mkdir()
    (tmp_path / "svc.yaml").write_text("platforms: [amd64, arm64]\nsigning:\n  sign: true\n  key: missing.key\n")
    from .orch_processes import run

    done = run([sys.executable, "-m", "orchestrator", "release", "parts", "--profile", "svc.yaml"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert 'orch: error: --sign-key "missing.key" is not a file' in done.stderr
