"""Release cycles as users run them: a base image with real layers (5 MB and 60 MB, over the
4 MiB answer bound), an app whose code and labels change between releases v1, v2 and v3 (no fixed
epoch, a new commit each time), published again and again through every path orch has: one
buildx call, per-arch, a bake release, native-runner parts with `orch release`, and `manifest
create` from those parts. One publish has tags in two repositories of two registries, signed.
Each release is checked with `orch verify --deep`, each signature with cosign at every tag.

It runs on the builder and buildx the suite runs with (ORCH_TEST_BUILDER, ORCH_TEST_BUILDX):
`make test-builders` covers every pair, CI a diagonal.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, Registry, buildx_push, start_registry
from .registry_api import digest_at, raw_manifest
from .test_signing import PASSWORD, cosign_verify, keys  # noqa: F401 - the keys fixture

pytestmark = pytest.mark.engine

SEED = "localhost:5000/orch/busybox:stable"
PLATFORMS = ["linux/amd64", "linux/arm64"]
MB = 1000 * 1000
RELEASES = (1, 2, 3)


def random_file(path: Path, size: int, seed: int) -> None:
    """Bytes that do not compress, the same for the same seed (the base is the same every run)."""
    path.write_bytes(random.Random(seed).randbytes(size))


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
                               "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com"})
    return done.stdout.strip()


def orch(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900, env={**os.environ, "COSIGN_PASSWORD": PASSWORD, **(env or {})})


def ok(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout) if done.stdout.lstrip().startswith("{") else {}


class Cycle:
    """A registry holding the realistic base, and an app checkout that changes per release."""

    def __init__(self, root: Path, registry: Registry) -> None:
        self.root, self.registry = root, registry
        self.base = registry.ref("base/realistic", "1")
        context = root / "base"
        context.mkdir()
        random_file(context / "five.bin", 5 * MB, 5)
        random_file(context / "sixty.bin", 60 * MB, 60)
        (context / "Dockerfile").write_text(f"FROM {SEED}\nCOPY five.bin /opt/base/five.bin\n"
                                            "COPY sixty.bin /opt/base/sixty.bin\n")
        buildx_push(context, ",".join(PLATFORMS), f"type=registry,name={self.base}", "--provenance=false")

    def app(self, name: str) -> App:
        return App(self.root / name, self)


class App:
    """One user's checkout: a Dockerfile on the realistic base, an asset over 4 MiB that changes
    at v2, a script that changes every release (and a RUN step that runs it, under QEMU where
    foreign), a commit per release."""

    def __init__(self, checkout: Path, cycle: Cycle) -> None:
        self.checkout, self.cycle, self.registry = checkout, cycle, cycle.registry
        checkout.mkdir()
        (checkout / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY asset.bin /opt/app/asset.bin\nCOPY app.sh /opt/app/app.sh\n"
            "RUN sh /opt/app/app.sh > /opt/app/built\nCMD [\"sh\", \"/opt/app/app.sh\"]\n")
        git(checkout, "init", "-q", "-b", "main")

    def release(self, number: int) -> None:
        random_file(self.checkout / "asset.bin", 6 * MB, 1 if number == 1 else 2)
        (self.checkout / "app.sh").write_text(f"echo 'app release {number}'; uname -m\n")
        git(self.checkout, "add", "-A")
        git(self.checkout, "commit", "-q", "-m", f"release {number}")

    def build_args(self, number: int) -> list[str]:
        return ["--build-arg", f"BASE_IMAGE={self.cycle.base}", "--label", f"org.example.release=1.0.{number}"]

    def checked(self, tag: str, number: int, digest: str, *extra: str, revision: bool = True) -> None:
        """The tag holds `digest`, every platform verifies with --deep and carries this release's
        label (and commit, where orch writes the labels: a bake file's labels are its own)."""
        host, _, rest = tag.partition("/")
        repository, _, name = rest.rpartition(":")
        port = int(host.rpartition(":")[2])
        assert digest_at(port, repository, name) == digest, tag
        verified = orch("verify", tag, "--platform", ",".join(PLATFORMS), "--deep", *extra)
        assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]
        index, _ = raw_manifest(port, repository, digest)
        images = [m for m in index["manifests"] if m.get("platform", {}).get("os") != "unknown"]
        assert sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in images) == sorted(PLATFORMS)
        for entry in images:
            manifest, _ = raw_manifest(port, repository, entry["digest"])
            config = json.loads(_blob(port, repository, manifest["config"]["digest"]))
            labels = config["config"]["Labels"]
            assert labels["org.example.release"] == f"1.0.{number}", (tag, entry["platform"])
            if revision:
                assert labels["org.opencontainers.image.revision"] == git(self.checkout, "rev-parse", "HEAD")
            sizes = [layer["size"] for layer in manifest["layers"]]
            assert max(sizes) > 50 * MB and sum(s > 4 * 1024 * 1024 for s in sizes) >= 3, sizes


def _blob(port: int, repository: str, digest: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/{repository}/blobs/{digest}", timeout=60) as answer:
        return answer.read()


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory, engine_ready: None) -> Iterator[Cycle]:
    root = tmp_path_factory.mktemp("cycle")
    registry = start_registry(root / "registry")
    try:
        yield Cycle(root, registry)
    finally:
        registry.stop()


def test_build_push_release_after_release(cycle: Cycle) -> None:
    app, seen = cycle.app("one-call"), set()
    for number in RELEASES:
        app.release(number)
        tag = cycle.registry.ref("cycle/app", f"1.0.{number}")
        done = ok(orch("build", str(app.checkout), "--platform", ",".join(PLATFORMS), *app.build_args(number),
                       "-t", tag, "-t", cycle.registry.ref("cycle/app", "latest"), "--push", "--json"))
        assert done["digest"] not in seen
        seen.add(done["digest"])
        app.checked(tag, number, done["digest"])
        app.checked(cycle.registry.ref("cycle/app", "latest"), number, done["digest"])


def test_per_arch_release_after_release(cycle: Cycle) -> None:
    app = cycle.app("per-arch")
    for number in RELEASES:
        app.release(number)
        tag = cycle.registry.ref("cycle/per-arch", "latest")
        done = ok(orch("build", str(app.checkout), "--platform", ",".join(PLATFORMS), *app.build_args(number),
                       "--strategy", "per-arch", "-t", tag, "--push", "--json"))
        assert done["strategy"] == "per-arch"
        app.checked(tag, number, done["digest"])


def test_bake_release_after_release(cycle: Cycle) -> None:
    """A bake file as projects write it: outputs, labels and args in the file (buildx 0.30.1
    prints the output as an object, 0.13.1 as a string)."""
    app = cycle.app("bake")
    (app.checkout / "docker-bake.hcl").write_text(
        'variable "RELEASE" {}\n'
        'target "app" {\n  context = "."\n'
        f'  platforms = {json.dumps(PLATFORMS)}\n'
        f'  args = {{ BASE_IMAGE = "{cycle.base}" }}\n'
        '  labels = { "org.example.release" = "1.0.${RELEASE}" }\n'
        f'  tags = ["{cycle.registry.ref("cycle/bake", "latest")}"]\n'
        '  output = ["type=registry"]\n}\n')
    for number in RELEASES:
        app.release(number)
        done = ok(orch("build", "--bake", "docker-bake.hcl", "app", "--push", "--json", cwd=app.checkout,
                       env={"RELEASE": str(number)}))
        app.checked(cycle.registry.ref("cycle/bake", "latest"), number, done["targets"]["app"]["digest"],
                    revision=False)


def test_parts_then_release_then_manifest_create_release_after_release(cycle: Cycle) -> None:
    """One runner per platform writes a part, one `orch release` moves the tags; `orch manifest
    create` lists the same per-platform images under a repository of its own."""
    app = cycle.app("parts")
    repository = cycle.registry.ref("cycle/parts", "x").rpartition(":")[0]
    for number in RELEASES:
        app.release(number)
        parts = cycle.root / f"parts-{number}"
        for platform in PLATFORMS:
            built = orch("build", str(app.checkout), "--platform", platform, *app.build_args(number), "--image",
                         repository, "--push", "--part", str(parts / platform.replace("/", "-")),
                         env={"ORCH_STATE_HOME": str(cycle.root / f"runner-{platform.replace('/', '-')}")})
            assert built.returncode == 0, built.stderr[-3000:]
        tag = f"{repository}:1.0.{number}"
        released = ok(orch("release", str(parts), "--platform", ",".join(PLATFORMS), "-t", tag, "--deep", "--json",
                           cwd=app.checkout))
        app.checked(tag, number, released["digest"])

        records = [json.loads(p.read_text()) for p in sorted(parts.rglob("*.json"))]
        spec = cycle.root / f"list-{number}.yaml"
        listed_tag = cycle.registry.ref("cycle/listed", f"1.0.{number}")
        spec.write_text(f"image: {listed_tag}\nmanifests:\n" + "".join(
            f"  - image: {repository}@{record['digest']}\n"
            f"    platform: {{os: linux, architecture: {record['platforms'][0].split('/')[1]}}}\n"
            for record in records))
        listed = ok(orch("manifest", "create", "--spec", str(spec), "--json"))
        app.checked(listed_tag, number, listed["digest"])


def test_a_signed_release_with_tags_in_two_repositories_and_two_registries(cycle: Cycle, keys,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    """Copies of 65 MB across registries, the second release asking after blobs both hold; the
    index signed wherever a tag is, before any moves."""
    other = start_registry(tmp_path / "second")
    try:
        app = cycle.app("signed")
        for number in (1, 2):
            app.release(number)
            tags = [cycle.registry.ref("cycle/signed", "latest"), cycle.registry.ref("cycle/mirror", "latest"),
                    other.ref("team/app", "latest")]
            done = ok(orch("build", str(app.checkout), "--platform", ",".join(PLATFORMS), *app.build_args(number),
                           *[w for tag in tags for w in ("-t", tag)], "--push", "--json", "--sign", "--sign-key",
                           str(keys["ours"])))
            for tag in tags:
                app.checked(tag, number, done["digest"], "--key", str(keys["ours.pub"]))
                repository = tag.rpartition(":")[0]
                signed = cosign_verify(f"{repository}@{done['digest']}", keys["ours.pub"])
                assert signed.returncode == 0, (tag, signed.stderr[-2000:])
    finally:
        other.stop()
