"""`orch build --part` on each runner and `orch release` of the parts: what is refused before any
registry is read (no engine), then runner processes and releases on the real engine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestrator.publish.parts import read_parts, write_part

from .conftest import Registry, start_registry
from .test_build import BASE_ARG, orch

REPO_NAME = "localhost:5999/team/app"
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
REVISION = "0123456789abcdef0123456789abcdef01234567"
THREE = "linux/amd64,linux/arm64,linux/arm/v7"


def part(directory: Path, platform: object, digest: str, **fields: object) -> Path:
    """A part record as `orch build --part` writes it (the fields a test does not name: defaults)."""
    document = {"repository": REPO_NAME, "digest": digest, "platforms": [platform], "revision": REVISION,
                "labels": {"org.opencontainers.image.revision": REVISION,
                           "org.opencontainers.image.created": f"2026-12-01T10:00:0{len(str(platform)) % 10}Z"},
                "ci": None, "builder": "default", "seconds": 1.5, **fields}
    if isinstance(platform, dict):  # write_part names the file from a string; the reader takes both
        path = write_part(str(directory), {**document, "platforms": ["linux/arm/v7"]})
        record = json.loads(path.read_text())
        record["platforms"] = [platform]
        path.write_text(json.dumps(record))
        return path
    return write_part(str(directory), document)


def release(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return orch("release", *args, env=env, cwd=Path(args[0]))  # not in a checkout: no git to agree with


def three_parts(directory: Path) -> None:
    part(directory, "linux/amd64", A)
    part(directory, "linux/arm64", B)
    part(directory, {"os": "linux", "architecture": "arm", "variant": "v7"}, "sha256:" + "c" * 64)


# -- no engine: reading and checking the parts ------------------------------


def test_a_part_is_written_whole_under_a_name_no_other_runner_writes(tmp_path) -> None:
    three_parts(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["orch-part-linux-amd64-aaaaaaaaaaaa.json", "orch-part-linux-arm-v7-cccccccccccc.json",
                     "orch-part-linux-arm64-bbbbbbbbbbbb.json"]
    records = read_parts([str(tmp_path)])
    assert sorted(r.label for r in records) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    assert not list(tmp_path.glob(".orch-part-*"))  # no temporary file left


def test_the_plan_lists_parts_in_first_match_safe_order_from_nested_artifact_folders(tmp_path) -> None:
    for name, platform, digest in (("part-arm64", "linux/arm64", B), ("part-amd64", "linux/amd64", A),
                                   ("part-armv7", "linux/arm/v7", "sha256:" + "c" * 64)):
        (tmp_path / name).mkdir()
        part(tmp_path / name, platform, digest)
    result = release(str(tmp_path), "--platform", "linux/arm/v7,linux/arm64,linux/amd64", "-t", f"{REPO_NAME}:1",
                     "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [p["platforms"] for p in plan["parts"]] == [["linux/amd64"], ["linux/arm64"], ["linux/arm/v7"]]
    assert plan["tags"] == [f"{REPO_NAME}:1"] and plan["revision"] == REVISION


@pytest.mark.parametrize(("damage", "said"), [
    (lambda p: p.write_text("{not json"), "is not JSON"),
    (lambda p: p.write_text(json.dumps({"digest": A})), 'is not a part record (no "kind": "orch-part")'),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "format": 9})), "is format 9"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "digest": "sha256:short"})),
     'is damaged: digest "sha256:short" is not sha256:<64 hex>'),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "platforms": ["linux/armm"]})),
     "is damaged: unknown platform"),
    (lambda p: p.write_text(" " * (1 << 20) + "{}"), "is 1048578 bytes; a part record is at most 1048576"),
])
def test_a_damaged_part_file_is_exit_2_naming_the_file(tmp_path, damage, said) -> None:
    three_parts(tmp_path)
    damaged = next(tmp_path.glob("*arm64*"))
    damage(damaged)
    result = release(str(tmp_path), "--platform", THREE, "-t", f"{REPO_NAME}:1")
    assert result.returncode == 2, result.stderr
    assert f'part file "{damaged}" {said}' in result.stderr and "Traceback" not in result.stderr


def test_parts_of_another_repository_or_revision_are_exit_2(tmp_path) -> None:
    three_parts(tmp_path / "one")
    part(tmp_path / "one", "linux/s390x", "sha256:" + "d" * 64, repository="localhost:5999/team/other")
    result = release(str(tmp_path / "one"), "--platform", THREE + ",linux/s390x", "-t", f"{REPO_NAME}:1")
    assert result.returncode == 2, result.stderr
    assert 'the parts are of more than one repository: "localhost:5999/team/app"' in result.stderr
    three_parts(tmp_path / "two")
    older = "f" * 40
    part(tmp_path / "two", "linux/s390x", "sha256:" + "d" * 64, revision=older,
         labels={"org.opencontainers.image.revision": older})
    result = release(str(tmp_path / "two"), "--platform", THREE + ",linux/s390x", "-t", f"{REPO_NAME}:1")
    assert result.returncode == 2, result.stderr
    assert f'the parts are of more than one revision: "{REVISION}"' in result.stderr and older in result.stderr


def test_a_missing_platform_is_exit_1_naming_it_and_an_unexpected_one_exit_2(tmp_path) -> None:
    part(tmp_path, "linux/amd64", A)
    part(tmp_path, "linux/arm64", B)
    result = release(str(tmp_path), "--platform", THREE, "-t", f"{REPO_NAME}:1")
    assert result.returncode == 1, result.stderr
    assert "no part for linux/arm/v7: its runner failed or its part was not downloaded; no tag was changed" \
        in result.stderr
    result = release(str(tmp_path), "--platform", "linux/amd64", "-t", f"{REPO_NAME}:1")
    assert result.returncode == 2, result.stderr
    assert "is for linux/arm64, which this release does not expect (linux/amd64)" in result.stderr


def test_two_parts_for_one_platform_are_exit_2_unless_one_is_a_later_attempt_of_the_same_job(tmp_path) -> None:
    three_parts(tmp_path / "two")
    part(tmp_path / "two", "linux/arm64", "sha256:" + "e" * 64)
    result = release(str(tmp_path / "two"), "--platform", THREE, "-t", f"{REPO_NAME}:1")
    assert result.returncode == 2, result.stderr
    assert "two parts for linux/arm64:" in result.stderr

    job = {"provider": "github", "pipeline": "4242", "job": "build", "runner": "arm-runner-1"}
    part(tmp_path / "rerun", "linux/amd64", A)
    part(tmp_path / "rerun", "linux/arm/v7", "sha256:" + "c" * 64)
    part(tmp_path / "rerun", "linux/arm64", "sha256:" + "e" * 64, ci={**job, "attempt": 2})
    part(tmp_path / "rerun", "linux/arm64", B, ci={**job, "attempt": 1})
    result = release(str(tmp_path / "rerun"), "--platform", THREE, "-t", f"{REPO_NAME}:1", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [p["digest"] for p in plan["parts"] if p["platforms"] == ["linux/arm64"]] == ["sha256:" + "e" * 64]
    assert plan["replaced"] == ["linux/arm64: github job build (attempt 2) on arm-runner-1 replaces attempt 1 "
                                f"({B[:19]})"]


def test_parts_whose_labels_disagree_are_exit_2_the_build_time_aside(tmp_path) -> None:
    three_parts(tmp_path)  # their created labels differ: each runner has its own clock
    part(tmp_path, "linux/s390x", "sha256:" + "d" * 64,
         labels={"org.opencontainers.image.revision": REVISION, "org.opencontainers.image.version": "9.9"})
    result = release(str(tmp_path), "--platform", THREE + ",linux/s390x", "-t", f"{REPO_NAME}:1")
    assert result.returncode == 2, result.stderr
    assert 'the parts disagree on label org.opencontainers.image.version: "None" (linux/amd64) and "9.9" ' \
           "(linux/s390x)" in result.stderr


@pytest.mark.parametrize(("args", "said"), [
    ((), "orch release needs the platforms the release must hold"),
    (("--platform", THREE), "orch release has no tag to move"),
])
def test_a_release_needs_its_platforms_and_a_tag(tmp_path, args, said) -> None:
    three_parts(tmp_path)
    result = release(str(tmp_path), *args)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr


@pytest.mark.parametrize(("args", "said"), [
    (("-t", "localhost:5999/team/app:1"), '-t "localhost:5999/team/app:1" with --part: tags move only when'),
    (("--image", "localhost:5999/a", "--image", "localhost:5999/b"),
     "--part stages in one repository, not localhost:5999/a, localhost:5999/b"),
    (("--image", "localhost:5999/a", "--no-push"), "--part records a part that was pushed: add --push"),
])
def test_build_part_refusals(tmp_path, args, said) -> None:
    push = () if "--no-push" in args else ("--push",)
    result = orch("build", "-f", "Dockerfile.example", "--platform", "linux/arm64", *push,
                  *[a for a in args if a != "--no-push"], "--part", str(tmp_path / "parts"), "--dry-run")
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr


# -- runners and releases on the real engine --------------------------------

RULES = ("--tag-rule", "type=semver,pattern={{version}}", "--tag-rule", "type=semver,pattern={{major}}.{{minor}}")


def git(checkout: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", "-C", str(checkout), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def tags_of(registry: Registry, repository: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{registry.port}/v2/{repository}/tags/list", timeout=10) as r:
            return sorted(json.load(r).get("tags") or [])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # a repository with no tag at all
            return []
        raise


class Runners:
    """A checkout at v1.2.3 and three runner processes, each with a state directory of its own
    and another builder: the daemon's own (amd64), the two-node remote builder (arm64, on its
    arm node) and the docker-container builder (arm/v7)."""

    BUILDERS = {"linux/amd64": None, "linux/arm64": "orch-farm", "linux/arm/v7": "orch-container"}

    def __init__(self, root: Path, registry: Registry) -> None:
        self.root, self.registry = root, registry
        self.repository = f"{registry.host}/team/app"
        self.checkout = root / "checkout"
        self.checkout.mkdir()
        (self.checkout / "Dockerfile").write_text(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG TARGETPLATFORM\nARG FAIL=no\nARG ROUND=1\n"
            'RUN test "$FAIL" = no && echo "$TARGETPLATFORM $ROUND" > /etc/part\n')
        git(self.checkout, "init", "-q", "-b", "main")
        git(self.checkout, "add", ".")
        git(self.checkout, "commit", "-q", "-m", "one")
        git(self.checkout, "tag", "v1.2.3")

    def run(self, platform: str, parts: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        builder = self.BUILDERS[platform]
        state = self.root / f"state-{platform.replace('/', '-')}"
        environ = {"ORCH_STATE_HOME": str(state), **(env or {})}
        if builder is None:
            environ["BUILDX_BUILDER"] = ""
        return orch("build", str(self.checkout), "--platform", platform, "--build-arg", BASE_ARG, "--image",
                    self.repository, *RULES, "--push", "--part", str(parts), *extra,
                    *(("--builder", builder) if builder else ()), env=environ)

    def release(self, *dirs: Path, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*orch_argv(), "release", *map(str, dirs), "--platform", THREE, *RULES, "--json"],
                              capture_output=True, text=True, cwd=self.checkout, timeout=600,
                              env={**os.environ, "ORCH_STATE_HOME": str(self.root / "state-release"), **(env or {})})

    def all_three(self, parts: Path, *extra: str, env: dict | None = None) -> None:
        for platform in THREE.split(","):
            ran = self.run(platform, parts / platform.replace("/", "-"), *extra, env=env)
            assert ran.returncode == 0, ran.stderr[-3000:]

    def where_tags_are(self, repository: str = "team/app") -> dict[str, str | None]:
        from orchestrator.model.references import parse_reference
        from orchestrator.registry.client import Registry

        registry = Registry.of(parse_reference(f"{self.registry.host}/{repository}"))
        return {tag: registry.head_digest(parse_reference(f"{self.registry.host}/{repository}:{tag}"))
                for tag in tags_of(self.registry, repository)}

    def github(self, tmp: Path, attempt: int) -> dict[str, str]:
        """What GitHub Actions sets in a job of run 4242 of a tag push (re-runs count attempts)."""
        return {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "4242", "GITHUB_JOB": "build",
                "GITHUB_RUN_ATTEMPT": str(attempt), "GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_EVENT_NAME": "push",
                "GITHUB_SHA": git(self.checkout, "rev-parse", "HEAD"), "GITHUB_OUTPUT": str(tmp / "outputs"),
                "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "RUNNER_NAME": f"runner-{attempt}"}


def orch_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "orchestrator"]


@pytest.fixture(scope="module")
def runners(tmp_path_factory, engine_ready, buildkit_builders) -> Runners:
    root = tmp_path_factory.mktemp("runners")
    registry = start_registry(root)
    yield Runners(root, registry)
    registry.stop()


@pytest.mark.engine
def test_three_runners_and_one_release_publish_a_verified_index_under_the_rule_tags_only(runners) -> None:
    parts = runners.root / "parts"
    for platform in THREE.split(","):
        ran = runners.run(platform, parts / platform.replace("/", "-"))
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "no tag moved (orch release merges it)" in ran.stdout
    assert tags_of(runners.registry, "team/app") == []  # no runner tagged anything, not even latest
    records = sorted(read_parts([str(parts)]), key=lambda r: r.label)
    assert [(r.label, r.builder) for r in records] == [
        ("linux/amd64", "default"), ("linux/arm/v7", "orch-container"), ("linux/arm64", "orch-farm")]
    assert {r.revision for r in records} == {git(runners.checkout, "rev-parse", "HEAD")}
    assert {r.labels["org.opencontainers.image.version"] for r in records} == {"1.2.3"}

    released = runners.release(parts)
    assert released.returncode == 0, released.stderr[-3000:]
    document = json.loads(released.stdout)
    assert [row["platform"] for row in document["platforms"]] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    # metadata-action's rules: latest comes with semver tags (flavor latest=auto)
    assert [(m["tag"], m["state"]) for m in document["promotion"]] == [
        (f"{runners.repository}:{tag}", "moved") for tag in ("1.2.3", "1.2", "latest")]
    assert tags_of(runners.registry, "team/app") == ["1.2", "1.2.3", "latest"]  # what was asked, nothing else
    verified = orch("verify", f"{runners.repository}:1.2.3", "--platform", THREE)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.engine
def test_a_failed_runner_moves_no_tag_and_its_rerun_completes_the_release(runners, tmp_path) -> None:
    runners.all_three(tmp_path / "first")
    first = runners.release(tmp_path / "first")
    assert first.returncode == 0, first.stderr[-3000:]
    before = runners.where_tags_are()

    # Round 2 on "GitHub": the arm/v7 runner's build fails; the other two leave their parts.
    attempt1 = runners.github(tmp_path, 1)
    parts = tmp_path / "second"
    for platform in ("linux/amd64", "linux/arm64"):
        ran = runners.run(platform, parts / platform.replace("/", "-"), "--build-arg", "ROUND=2", env=attempt1)
        assert ran.returncode == 0, ran.stderr[-3000:]
    failed = runners.run("linux/arm/v7", parts / "linux-arm-v7", "--build-arg", "ROUND=2", "--build-arg",
                         "FAIL=yes", env=attempt1)
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert not (parts / "linux-arm-v7").exists() or not list((parts / "linux-arm-v7").iterdir())
    release = runners.release(parts, env=attempt1)
    assert release.returncode == 1, release.stderr[-3000:]
    assert "no part for linux/arm/v7: its runner failed" in release.stderr
    assert runners.where_tags_are() == before  # every tag where it was
    assert "### orch release: FAILED, no tag was changed" in (tmp_path / "summary.md").read_text()
    assert "result=failure" in (tmp_path / "outputs").read_text()
    assert "failed-platform=linux/arm/v7" in (tmp_path / "outputs").read_text()

    # The failed job re-run (attempt 2) leaves its part; the release then moves every tag.
    attempt2 = runners.github(tmp_path, 2)
    rerun = runners.run("linux/arm/v7", parts / "linux-arm-v7", "--build-arg", "ROUND=2", env=attempt2)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    release = runners.release(parts, env=attempt2)
    assert release.returncode == 0, release.stderr[-3000:]
    document = json.loads(release.stdout)
    after = runners.where_tags_are()
    assert set(after) == set(before) and set(after.values()) == {document["digest"]} != set(before.values())
    summary = (tmp_path / "summary.md").read_text()
    assert f"### orch release: `{document['digest']}`" in summary
    assert "| linux/arm/v7 |" in summary and "github job build (attempt 2) on runner-2" in summary
    assert f"digest={document['digest']}" in (tmp_path / "outputs").read_text()


@pytest.mark.engine
def test_releases_that_cannot_be_vouched_for_move_no_tag(runners, tmp_path) -> None:
    parts = tmp_path / "parts"
    runners.all_three(parts, "--build-arg", "ROUND=3")
    assert runners.release(parts).returncode == 0
    before = runners.where_tags_are()

    # Two runners built linux/amd64 (one of them from other inputs): which one is meant? exit 2.
    doubled = tmp_path / "doubled"
    shutil.copytree(parts, doubled)
    extra = runners.run("linux/amd64", doubled / "again", "--build-arg", "ROUND=4")
    assert extra.returncode == 0, extra.stderr[-3000:]
    result = runners.release(doubled)
    assert result.returncode == 2 and "two parts for linux/amd64:" in result.stderr, result.stderr[-3000:]

    # A part whose digest the registry does not hold (its push never landed): exit 1.
    lost = tmp_path / "lost"
    shutil.copytree(parts, lost)
    record = next((lost / "linux-arm64").glob("*.json"))
    record.write_text(record.read_text().replace(json.loads(record.read_text())["digest"], "sha256:" + "9" * 64))
    result = runners.release(lost)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"the registry does not hold linux/arm64 ({runners.repository}@sha256:{'9' * 64}" in result.stderr

    # A runner that built a later commit: parts of two revisions, exit 2.
    mixed = tmp_path / "mixed"
    shutil.copytree(parts, mixed)
    (runners.checkout / "NEWS").write_text("later\n")
    git(runners.checkout, "add", "NEWS")
    git(runners.checkout, "commit", "-q", "-m", "two")
    try:
        later = runners.run("linux/arm/v7", mixed / "linux-arm-v7-later", "--build-arg", "ROUND=3")
        assert later.returncode == 0, later.stderr[-3000:]
        shutil.rmtree(mixed / "linux-arm-v7")
        result = runners.release(mixed)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "the parts are of more than one revision" in result.stderr
    finally:
        git(runners.checkout, "reset", "-q", "--hard", "v1.2.3")
    assert runners.where_tags_are() == before  # none of the three moved a tag


@pytest.mark.engine
def test_runners_and_the_release_read_one_profile_and_verify_down_to_the_binaries(runners, tmp_path) -> None:
    """From a profile (platforms, images, tag rules): each runner builds the platform it is given with
    --deep, and the release takes the expected platforms and the tags from the same profile."""
    profile = tmp_path / "svc.yaml"
    profile.write_text(f"platforms: [linux/amd64, linux/arm64]\nimages: [{runners.registry.host}/team/profiled]\n"
                       "tags: ['type=semver,pattern={{version}}', 'type=sha']\nflavor: [latest=false]\n")
    parts = tmp_path / "parts"
    for platform in ("linux/amd64", "linux/arm64"):
        ran = orch("build", str(runners.checkout), "--profile", str(profile), "--platform", platform, "--build-arg",
                   BASE_ARG, "--push", "--part", str(parts), "--deep",
                   env={"ORCH_STATE_HOME": str(tmp_path / f"state-{platform.replace('/', '-')}")})
        assert ran.returncode == 0, ran.stderr[-3000:]
        assert "(--deep) ... ok" in ran.stderr
    released = subprocess.run([*orch_argv(), "release", str(parts), "--profile", str(profile), "--deep", "--json"],
                              capture_output=True, text=True, cwd=runners.checkout, timeout=600)
    assert released.returncode == 0, released.stderr[-3000:]
    assert "(--deep) ... ok" in released.stderr
    sha = git(runners.checkout, "rev-parse", "HEAD")
    assert tags_of(runners.registry, "team/profiled") == sorted(["1.2.3", f"sha-{sha[:7]}"])
    assert [row["platform"] for row in json.loads(released.stdout)["platforms"]] == ["linux/amd64", "linux/arm64"]


def test_the_fast_path_takes_release_as_written_in_ci_and_leaves_anything_else_to_the_cli() -> None:
    from orchestrator.cli.fast import release_args

    args, verbose = release_args(["-q", "release", "parts", "more", "--profile", "svc", "-t", "r/a:1", "--tag=r/a:2",
                                  "--deep", "--json", "--output-env", "release.env"])
    assert (args.directories, args.profile, args.tags.literal, args.verification.deep, args.as_json,
            args.outputs.output_env, args.quiet, verbose) == (("parts", "more"), "svc", ("r/a:1", "r/a:2"), True, True,
                                                              "release.env", True, False)
    for argv in (["release"], ["release", "parts", "--help"], ["release", "parts", "--profile"],
                 ["release", "parts", "--profile", "a", "--profile", "b"], ["-q", "-v", "release", "parts"],
                 ["release", "parts", "--no-such"], ["build", "."]):
        assert release_args(argv) is None, argv


# -- part records are data from another machine: checked whole, shown inert --------------------


@pytest.mark.parametrize(("field", "value", "said"), [
    ("ci", {"provider": "github", "pipeline": "1", "job": "build", "attempt": "2"}, 'ci.attempt is a string "2"'),
    ("entries", [{"platform": "linux/amd64", "node": 7}], "entries[0].node is a number 7, not a string"),
    ("entries", [{"platform": "linux/amd64", "steps": "RUN make"}], "entries[0].steps is a string"),
    ("seconds", "NaN", "seconds is a string"),
    ("builder", ["a"], "builder is a list, not a string"),
    ("labels", {"a": 1}, "labels.a is a number 1, not a string"),
    ("builder", "x" * 5000, "builder is 5000 characters long"),
])
def test_a_field_of_the_wrong_type_is_exit_2_naming_the_file_and_the_field(tmp_path, field, value, said) -> None:
    three_parts(tmp_path)
    damaged = part(tmp_path, "linux/s390x", "sha256:" + "e" * 64, **{field: value})
    result = orch("release", str(tmp_path), "--platform", THREE + ",linux/s390x", "-t", f"{REPO_NAME}:1",
                  "--json")
    assert result.returncode == 2, result.stderr
    assert f'part file "{damaged}" is damaged: {said}' in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("text", ['{"seconds": NaN}', "[" * 100000 + "]" * 100000])
def test_nan_and_deep_nesting_are_exit_2_not_a_traceback(tmp_path, text) -> None:
    three_parts(tmp_path)
    bad = tmp_path / "orch-part-x.json"
    bad.write_text(text)
    result = orch("release", str(tmp_path), "--platform", THREE, "-t", f"{REPO_NAME}:1", "--dry-run")
    assert result.returncode == 2 and f'part file "{bad}"' in result.stderr and "Traceback" not in result.stderr


def test_hostile_runner_and_builder_names_reach_the_log_and_summary_inert(tmp_path) -> None:
    from orchestrator.report.ci_outputs import parts_release_markdown

    hostile = "evil\n::error title=x::pwned\x1b[31m<script>alert(1)</script>"
    part(tmp_path, "linux/amd64", A, builder=hostile,
         ci={"provider": "github", "pipeline": "9", "job": hostile, "attempt": 1, "runner": hostile})
    part(tmp_path, "linux/amd64", "sha256:" + "f" * 64, builder=hostile,
         ci={"provider": "github", "pipeline": "9", "job": hostile, "attempt": 2, "runner": hostile})
    part(tmp_path, "linux/arm64", B)
    part(tmp_path, "linux/arm/v7", "sha256:" + "c" * 64)
    result = orch("release", str(tmp_path), "--platform", THREE, "-t", f"{REPO_NAME}:1", "--dry-run")
    assert result.returncode == 0, result.stderr
    for line in (result.stdout + result.stderr).splitlines():
        assert not line.lstrip().startswith("::") and "\x1b" not in line, line
    assert "evil ::error" in result.stdout  # shown, on one line
    row = {"platform": "linux/amd64", "digest": A, "runner": hostile, "builder": hostile, "node": hostile,
           "seconds": 1.0}
    markdown = parts_release_markdown({"digest": A, "repository": REPO_NAME, "parts": [{}], "platforms": [row],
                                       "replaced": [hostile]})
    assert "<" not in markdown and ">" not in markdown and "\x1b" not in markdown
    assert "&lt;script&gt;" in markdown
