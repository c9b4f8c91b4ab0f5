"""Trust under faults: a fault-injecting proxy in front of a real registry, real builds, real
signals, two runs at once. After any fault every tag is where it was or where it was meant
to go, and orch's output says which."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ONE_CALL, REPO, Registry, docker_config_dir, free_port
from .faultproxy import FaultProxy, Rule
from .registry_api import digest_at, manifest_body, put_manifest, upload_blob
from .test_build import BASE_ARG, orch
from .waiting import Watched

PLATFORMS = "linux/amd64,linux/arm64"


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    started = FaultProxy(registry.port).start()
    yield started
    started.stop()


@pytest.fixture
def flavoured(tmp_path: Path) -> Path:
    """A context whose image content follows the FLAVOUR build arg."""
    ctx = tmp_path / "flavoured"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOUR=a\n"
                                    "RUN echo \"$FLAVOUR\" > /flavour\nCMD [\"cat\", \"/flavour\"]\n")
    return ctx


def build_args(ctx: Path, flavour: str, *tags: str, extra: tuple[str, ...] = ()) -> list[str]:
    args = [sys.executable, "-m", "orchestrator", "build", str(ctx), "--platform", PLATFORMS,
            "--build-arg", BASE_ARG, "--build-arg", f"FLAVOUR={flavour}", "--push", *extra]
    for tag in tags:
        args += ["-t", tag]
    return args


def build(ctx: Path, flavour: str, *tags: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(build_args(ctx, flavour, *tags, extra=extra), capture_output=True, text=True, cwd=REPO,
                          timeout=600)


def tags_in(registry: Registry, repository: str) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{registry.port}/v2/{repository}/tags/list", timeout=10) as r:
        return sorted(json.load(r).get("tags") or [])


def published(ctx: Path, flavour: str, *tags: str, proxy: FaultProxy | None = None) -> str:
    first = build(ctx, flavour, *tags, extra=("--json",))
    assert first.returncode == 0, first.stderr[-3000:]
    if proxy is not None:
        proxy.log.clear()  # what follows is the run under test
    return json.loads(first.stdout)["digest"]


# -- promotion ----------------------------------------------------------------


@pytest.mark.engine
def test_a_tag_the_registry_keeps_refusing_puts_every_moved_tag_back(registry, proxy, flavoured) -> None:
    v1, v1b = proxy.ref("app", "v1"), proxy.ref("app", "v1b")
    old = published(flavoured, "a", v1, v1b, proxy=proxy)
    proxy.add(Rule("PUT", r"/manifests/v1b$", "status", status=500, times=99))

    result = build(flavoured, "b", v1, v1b)
    assert result.returncode == 1, result.stderr[-3000:]
    assert digest_at(registry, "app", "v1") == old and digest_at(registry, "app", "v1b") == old
    assert f"{v1}: put back at {old}" in result.stderr
    assert f"{v1b}: not moved, still at {old}" in result.stderr
    assert "no tag was changed" in result.stderr and "Traceback" not in result.stderr
    # The 500s were retried before orch gave up (bounded).
    assert proxy.done("PUT", r"/manifests/v1b$") == ["status 500"] * 4


@pytest.mark.engine
def test_one_500_on_a_tag_is_retried_and_every_tag_moves(registry, proxy, flavoured) -> None:
    v1, v1b = proxy.ref("app", "v1"), proxy.ref("app", "v1b")
    published(flavoured, "a", v1, v1b, proxy=proxy)
    proxy.add(Rule("PUT", r"/manifests/v1b$", "status", status=500, times=1))

    result = build(flavoured, "b", v1, v1b, extra=("--json",))
    assert result.returncode == 0, result.stderr[-3000:]
    new = json.loads(result.stdout)["digest"]
    assert digest_at(registry, "app", "v1") == new and digest_at(registry, "app", "v1b") == new
    assert proxy.done("PUT", r"/manifests/v1b$") == ["status 500", "forwarded 201"]
    moves = json.loads(result.stdout)["promotion"]
    assert [(m["tag"], m["state"], m["after"]) for m in moves] == [(v1, "moved", new), (v1b, "moved", new)]
    assert all(m["before"] and m["before"] != new for m in moves)


@pytest.mark.engine
def test_registry_gone_during_promotion_leaves_each_tag_where_the_output_says(registry, proxy, flavoured) -> None:
    v1, v1b = proxy.ref("app", "v1"), proxy.ref("app", "v1b")
    old = published(flavoured, "a", v1, v1b)

    def go_down(_method: str, _path: str) -> None:
        proxy.down = True  # from the second tag's PUT on, every connection is dropped

    proxy.add(Rule("PUT", r"/manifests/v1b$", "hook", hook=go_down))
    result = build(flavoured, "b", v1, v1b)
    assert result.returncode == 1, result.stderr[-3000:]
    proxy.clear()
    new = digest_at(registry, "app", "v1")
    assert new != old and digest_at(registry, "app", "v1b") == old
    # The output says exactly that, and that it could not be confirmed.
    assert f"{v1}: left at {new} (was {old}) (could not put it back" in result.stderr
    assert f"{v1b}: not moved, still at {old}" in result.stderr
    assert "not confirmed" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.engine
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_promotion_finishes_it_and_says_so(registry, proxy, flavoured, signum, code) -> None:
    v1, v1b = proxy.ref("app", "v1"), proxy.ref("app", "v1b")
    old = published(flavoured, "a", v1, v1b)
    run = Watched(build_args(flavoured, "b", v1, v1b), cwd=REPO, start_new_session=True)

    def interrupt(_method: str, _path: str) -> None:
        os.killpg(run.pid, signum)  # as Ctrl-C (or a CI runner's stop) reaches the whole group
        # Hold this PUT until orch has taken the signal, so it lands while the PUT is in flight.
        run.wait_for(f"{signal.Signals(signum).name} received while moving tags: finishing that first")

    proxy.add(Rule("PUT", r"/manifests/v1$", "hook", hook=interrupt))
    returncode, out, err = run.finish()
    assert returncode == code, err[-3000:]
    new = digest_at(registry, "app", "v1")
    assert new != old and digest_at(registry, "app", "v1b") == new  # never split
    assert f"interrupted by {signal.Signals(signum).name} while moving tags; finished first" in err
    assert f"{v1}: moved {old} -> {new}" in err and f"{v1b}: moved {old} -> {new}" in err


@pytest.mark.engine
def test_sigterm_during_the_build_stops_buildx_and_moves_nothing(registry, flavoured) -> None:
    tag = registry.ref("app", "v1")
    old = published(flavoured, "a", tag)
    slow = flavoured.parent / "slow"
    slow.mkdir()
    (slow / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 60\n")
    run = Watched(build_args(slow, "b", tag), cwd=REPO)
    run.wait_for(r"\] RUN sleep 60")  # buildx has started the RUN step
    run.process.send_signal(signal.SIGTERM)  # to orch alone: it must stop its own buildx
    returncode, out, err = run.finish(timeout=120)
    assert returncode == 143, err[-3000:]
    assert "interrupted by SIGTERM while building; no tag was changed" in err
    assert digest_at(registry, "app", "v1") == old
    left = subprocess.run(["pgrep", "-f", f"orch-stage-{run.pid}-"], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"buildx still running: {left.stdout}"
    stage = Path(os.environ["ORCH_STATE_HOME"]) / "stage"  # this test's state directory (conftest)
    assert not list(stage.glob(f"orch-stage-{run.pid}-*")) and not list(Path("/tmp").glob(f"orch-stage-{run.pid}-*"))


@pytest.mark.engine
def test_two_publishes_to_one_tag_at_once_each_publish_their_own_or_say_they_were_raced(registry, flavoured) -> None:
    tag = registry.ref("app", "shared")
    runs = [subprocess.Popen(build_args(flavoured, flavour, tag, extra=("--json",)), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO) for flavour in ("left", "right")]
    outcomes = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    final = digest_at(registry, "app", "shared")
    reported = []
    for code, out, err in outcomes:
        assert code in (0, 1), err[-3000:]
        if code == 0:
            document = json.loads(out)
            reported.append(document["digest"])
            assert [m["state"] for m in document["promotion"]] == ["moved"]
            assert document["promotion"][0]["after"] == document["digest"]
        else:
            assert "moved by another publish meanwhile" in err, err[-3000:]
    # Different contents, different indexes: neither run took the other's as its own.
    assert len(set(reported)) == len(reported)
    assert final in reported or any(code == 1 for code, _, _ in outcomes)
    verified = orch("verify", tag, "--platform", PLATFORMS)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert tags_in(registry, "app") == ["shared"]  # and nothing else was left behind


@pytest.mark.engine
def test_a_publish_leaves_no_tag_but_the_users_on_a_registry_that_cannot_delete_tags(registry, flavoured) -> None:
    for strategy in ("single", "per-arch") if ONE_CALL else ("per-arch",):
        result = build(flavoured, strategy, registry.ref("app", "1"), registry.ref("app", "latest"),
                       extra=("--strategy", strategy))
        assert result.returncode == 0, result.stderr[-3000:]
        assert tags_in(registry, "app") == ["1", "latest"]
    delete = urllib.request.Request(f"http://127.0.0.1:{registry.port}/v2/app/manifests/1", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as refused:  # distribution 2.8 cannot delete a tag
        urllib.request.urlopen(delete, timeout=10)
    assert refused.value.code == 400


# -- every byte ----------------------------------------------------------------


@pytest.mark.engine
def test_an_index_swapped_for_another_is_a_verification_failure_naming_both_digests(registry, proxy,
                                                                                    flavoured) -> None:
    published(flavoured, "a", registry.ref("app", "a"))
    published(flavoured, "b", registry.ref("app", "b"))
    _, wanted = manifest_body(registry, "app", "a")
    other, other_digest = manifest_body(registry, "app", "b")
    proxy.add(Rule("GET", rf"/manifests/{wanted}$", "swap", body=other, times=99))

    result = orch("verify", f"{proxy.host}/app@{wanted}", "--platform", PLATFORMS)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"served content whose digest is {other_digest}, not {wanted}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.engine
def test_a_config_swapped_for_an_empty_one_fails_verification(registry, proxy, flavoured) -> None:
    published(flavoured, "a", registry.ref("app", "a"))
    body, _ = manifest_body(registry, "app", "a")
    child = json.loads(body)["manifests"][0]["digest"]
    manifest, _ = manifest_body(registry, "app", child)
    config = json.loads(manifest)["config"]["digest"]
    proxy.add(Rule("GET", rf"/blobs/{config}$", "swap", body=b"{}", times=99))

    result = orch("verify", proxy.ref("app", "a"), "--platform", PLATFORMS)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"served content whose digest is sha256:{hashlib.sha256(b'{}').hexdigest()}, not {config}" \
        in result.stderr


@pytest.mark.engine
def test_an_image_whose_config_really_is_empty_fails_verification(registry) -> None:
    """A config with the right digest but no os or architecture: no client can run it."""
    config = b"{}"
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": upload_blob(registry, "empty", config), "size": len(config)}, "layers": []}
    put_manifest(registry, "empty", "1", manifest)

    result = orch("verify", registry.ref("empty", "1"), "--platform", "linux/amd64", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [f for f in json.loads(result.stdout)["findings"] if f["level"] == "fail"]
    assert any(f["check"] == "config" and "not a valid image config" in f["message"]
               and "has no architecture and no os" in f["message"] for f in failed), failed


@pytest.mark.engine
def test_reads_retry_a_503_and_a_cut_off_answer_and_fail_cleanly_when_it_persists(registry, proxy,
                                                                                  flavoured) -> None:
    published(flavoured, "a", registry.ref("app", "a"))
    proxy.add(Rule("GET", r"/manifests/a$", "status", status=503, times=1))
    proxy.add(Rule("GET", r"/blobs/sha256:", "cut", cut_after=7, times=1))
    ok = orch("verify", proxy.ref("app", "a"), "--platform", PLATFORMS)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert proxy.done("GET", r"/manifests/a$") == ["status 503", "forwarded 200"]
    assert "dropped" in proxy.done("GET", r"/blobs/sha256:")

    proxy.clear()
    proxy.add(Rule("GET", r"/manifests/a$", "cut", cut_after=7, times=99))
    cut = orch("verify", proxy.ref("app", "a"), "--platform", PLATFORMS)
    assert cut.returncode == 3, cut.stdout + cut.stderr
    assert "the answer was cut off after 7 bytes (4 attempts)" in cut.stderr and "Traceback" not in cut.stderr


# -- before building ------------------------------------------------------------------


@pytest.fixture
def endless(tmp_path: Path) -> Path:
    """A context whose build runs ten minutes (a step no cache holds, FLAVOUR being new each run):
    a run of it that ends within the tests' timeout was stopped, or never started."""
    ctx = tmp_path / "endless"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG FLAVOUR\n"
                                    "RUN echo \"started $FLAVOUR\" && sleep 600\n")
    return ctx


STOPPED_WITHIN = 300  # seconds: the build would take 600
BUILD_STARTED = "[internal] load build definition"


@pytest.mark.engine
def test_a_registry_down_from_the_start_stops_orch_before_any_build_step(endless) -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run(build_args(endless, str(time.time_ns()), f"localhost:{port}/app:1"), capture_output=True,
                            text=True, cwd=REPO, timeout=STOPPED_WITHIN)
    assert result.returncode == 3, result.stderr[-3000:]
    assert f"cannot reach the registry localhost:{port}" in result.stderr, result.stderr[-3000:]
    assert "no build was started" in result.stderr and BUILD_STARTED not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.engine
def test_an_open_registry_that_refuses_pushes_stops_the_build_it_let_start(registry, endless) -> None:
    """A registry on this machine that answers GET /v2/ to anyone (no login) is only looked at
    before the build; its upload session is tried beside the build. This one refuses uploads
    (distribution's read-only mode answers 405 UNSUPPORTED): the build, which would take 600 s,
    is stopped, the registry's refusal is the error, and no tag is written."""
    refusal = json.dumps({"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}).encode()
    proxy = FaultProxy(registry.port).start()
    try:
        proxy.add(Rule("POST", r"^/v2/readonly/app/blobs/uploads/", "status", status=405, body=refusal))
        started = time.monotonic()
        result = subprocess.run(build_args(endless, str(time.time_ns()), proxy.ref("readonly/app", "1")),
                                capture_output=True, text=True, cwd=REPO, timeout=STOPPED_WITHIN)
        took = time.monotonic() - started
    finally:
        proxy.stop()
    assert result.returncode == 3, result.stderr[-3000:]
    assert f"registry {proxy.host}" in result.stderr and "unsupported" in result.stderr.lower(), result.stderr[-3000:]
    assert "the build was stopped" in result.stderr or "no tag was moved" in result.stderr, result.stderr[-3000:]
    assert took < STOPPED_WITHIN
    assert proxy.done("GET", r"^/v2/$")  # the look before the build
    assert not proxy.done("PUT", r"/manifests/1$")  # no tag


@pytest.mark.engine
def test_a_registry_that_wants_a_login_stops_orch_before_building_with_the_fix(tmp_path, endless) -> None:
    from .conftest import start_registry
    from .test_deep import _htpasswd

    _htpasswd(tmp_path / "htpasswd", "ci", "orch-Secret-1")
    secured = start_registry(tmp_path, htpasswd=tmp_path / "htpasswd")
    try:
        docker_config_dir(tmp_path / "no-login")  # the builders and buildx as well; only the logins are not
        result = subprocess.run(build_args(endless, str(time.time_ns()), secured.ref("app", "1")), capture_output=True,
                                text=True, cwd=REPO, timeout=STOPPED_WITHIN,
                                env={**os.environ, "DOCKER_CONFIG": str(tmp_path / "no-login")})
        assert result.returncode == 3, result.stderr[-3000:]
        assert f"docker login {secured.host}" in result.stderr and "no build was started" in result.stderr
        assert BUILD_STARTED not in result.stderr
    finally:
        secured.stop()


def test_a_metadata_file_that_is_a_directory_is_bad_input_before_anything_runs(tmp_path) -> None:
    result = orch("build", "--platform", "linux/arm64", "-f", "Dockerfile.example", "-t", "localhost:5000/x/y:1",
                  "--push", "--metadata-file", str(tmp_path), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.returncode == 2, result.stderr
    assert f'--metadata-file "{tmp_path}" is a directory' in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("epoch", ["99999999999999", "-5", "1.5e9"])
def test_an_insane_source_date_epoch_is_bad_input(epoch: str) -> None:
    result = orch("build", "--platform", "linux/arm64", "-f", "Dockerfile.example", "--dry-run",
                  env={"SOURCE_DATE_EPOCH": epoch})
    assert result.returncode == 2, result.stderr
    assert f'SOURCE_DATE_EPOCH "{epoch}"' in result.stderr and "Traceback" not in result.stderr


def test_every_foreign_platform_needs_an_emulator_ppc64_and_mips_included() -> None:
    from orchestrator.docker.emulation import missing_emulators, parse_handler
    from orchestrator.model.platform_parse import parse, parse_all

    handlers = [parse_handler(f"qemu-{name}", "enabled\nflags: F\n") for name in ("aarch64", "arm", "ppc64le")]
    missing = missing_emulators(parse_all(["linux/ppc64", "linux/mips", "linux/mipsle", "linux/arm64",
                                           "linux/ppc64le", "windows/amd64"]), "x86_64", handlers)
    assert missing == {
        parse("linux/ppc64"): "no qemu-ppc64 binfmt handler",
        parse("linux/mips"): "no qemu-mips binfmt handler",
        parse("linux/mipsle"): "no qemu-mipsel binfmt handler",
        parse("windows/amd64"): "no emulator runs windows build steps on this Linux host; build it on a windows node",
    }


# -- secrets ---------------------------------------------------------------------------


def test_secret_looking_build_args_are_masked_in_dry_runs_and_json_and_point_to_secret() -> None:
    password = "hunter2-reg-Pw"
    for extra in ((), ("--json",)):
        result = orch("build", "--platform", "linux/arm64", "-f", "Dockerfile.example", "-t", "localhost:5000/x/y:1",
                      "--push", "--build-arg", f"REG_PASSWORD={password}", "--build-arg", "PLAIN=visible",
                      "--dry-run", *extra)
        assert result.returncode == 0, result.stderr
        assert password not in result.stdout + result.stderr
        assert "REG_PASSWORD=*****" in result.stdout or '"REG_PASSWORD": "*****"' in result.stdout
        assert "PLAIN=visible" in result.stdout or '"PLAIN": "visible"' in result.stdout
        assert "--secret id=REG_PASSWORD,env=REG_PASSWORD" in result.stderr


@pytest.mark.engine
@pytest.mark.parametrize("strategy", ["auto", "per-arch"])  # per-arch: the failure is each platform's own
def test_a_secret_build_arg_echoed_by_a_step_never_reaches_orchs_output(registry, tmp_path, strategy: str) -> None:
    password = "hunter2-echoed-Pw"
    ctx = tmp_path / "leaky"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG API_TOKEN\n"
                                    "RUN echo \"token is $API_TOKEN\" && false\n")
    result = orch("build", str(ctx), "--platform", "linux/amd64", "--build-arg", BASE_ARG,
                  "--build-arg", f"API_TOKEN={password}", "-t", registry.ref("app", "1"), "--push",
                  "--strategy", strategy)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "token is *****" in result.stderr
    assert password not in result.stdout + result.stderr


@pytest.mark.engine
def test_a_node_daemon_killed_during_fan_out_is_named_with_what_it_was_building(registry, tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a second daemon needs root (scripts/engine-node.sh)")
    from .conftest import sh

    node = "orch-test-doomed"
    script = str(REPO / "scripts" / "engine-node.sh")
    sh("bash", script, "start", node)
    try:
        ctx = tmp_path / "slow-on-arm"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
                                        "RUN if [ \"$(uname -m)\" = aarch64 ]; then sleep 60; fi\n")
        profile = tmp_path / "farm.yaml"
        profile.write_text("platforms: [amd64, arm64]\nstrategy: per-arch\nbuilder:\n  driver: docker\n  nodes:\n"
                           "    - {name: x86, endpoint: default, platforms: [amd64]}\n"
                           f"    - {{name: doomed, endpoint: {node}, platforms: [arm64]}}\n")
        run = Watched([sys.executable, "-m", "orchestrator", "build", str(ctx), "--profile", str(profile),
                       "--build-arg", BASE_ARG, "-t", registry.ref("app", "1"), "--push"], cwd=REPO)
        run.wait_for(r"linux/arm64.*RUN if")  # arm64 is in its RUN step on the node
        pid = Path(f"/var/lib/orch-engine/nodes/{node}/dockerd.pid").read_text().strip()
        os.kill(int(pid), signal.SIGKILL)
        returncode, out, err = run.finish(timeout=300)
        assert returncode == 3, err[-3000:]  # the node stopped answering: no step failed
        assert "node doomed stopped answering" in err and "no step failed" in err, err[-3000:]
        assert "linux/arm64 on node doomed:" in err, err[-3000:]
        assert f"(daemon --context {node})" in err
        assert "check or restart node doomed" in err and "only linux/arm64 is built again" in err
        assert digest_at(registry, "app", "1") is None  # nothing was published
    finally:
        subprocess.run(["bash", script, "stop", node], capture_output=True, timeout=120)


@pytest.mark.engine
def test_tags_in_other_repositories_and_registries_get_the_samemanifest_body(registry, flavoured, tmp_path) -> None:
    from .conftest import start_registry

    other = start_registry(tmp_path / "other")
    try:
        tags = [registry.ref("app", "1"), registry.ref("mirror/app", "1"), other.ref("app", "1")]
        result = build(flavoured, "a", *tags, extra=("--json",))
        assert result.returncode == 0, result.stderr[-3000:]
        digest = json.loads(result.stdout)["digest"]
        assert digest_at(registry, "app", "1") == digest
        assert digest_at(registry, "mirror/app", "1") == digest  # blobs mounted within the registry
        assert digest_at(other, "app", "1") == digest  # blobs streamed to the other registry
        for tag in tags:
            verified = orch("verify", tag, "--platform", PLATFORMS)
            assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        other.stop()


@pytest.mark.engine
def test_kill_9_during_promotion_is_reported_and_repaired_by_the_next_run(registry, proxy, flavoured) -> None:
    v1, v1b = proxy.ref("app", "v1"), proxy.ref("app", "v1b")
    old = published(flavoured, "a", v1, v1b)
    run = Watched(build_args(flavoured, "b", v1, v1b), cwd=REPO, start_new_session=True)

    def kill(_method: str, _path: str) -> None:
        os.killpg(run.pid, signal.SIGKILL)  # orch, with no chance to finish or put anything back
        proxy.down = True  # and the PUT it had sent never lands

    proxy.add(Rule("PUT", r"/manifests/v1b$", "hook", hook=kill))
    returncode, _, _ = run.finish()
    assert returncode == -signal.SIGKILL
    proxy.clear()
    cut = digest_at(registry, "app", "v1")
    assert cut != old and digest_at(registry, "app", "v1b") == old  # split, as kill -9 leaves it

    # Any later command on the repository says which tags point where, and so does orch doctor.
    verified = subprocess.run([sys.executable, "-m", "orchestrator", "verify", v1b, "--platform", "linux/amd64"],
                              capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "stopped before its last tag moved" in verified.stderr
    assert f"{v1} -> {cut} (moved)" in verified.stderr and f"{v1b} -> {old} (not moved)" in verified.stderr
    doctor = subprocess.run([sys.executable, "-m", "orchestrator", "doctor", "--json"], capture_output=True,
                            text=True, cwd=REPO, timeout=300)
    promotions = next(c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "promotions")
    assert promotions["status"] == "warn" and f"{v1b} -> {old} (not moved)" in promotions["summary"]

    # The same command again: told, and repaired (every tag on the new verified digest).
    again = build(flavoured, "b", v1, v1b, extra=("--json",))
    assert again.returncode == 0, again.stderr[-3000:]
    new = json.loads(again.stdout)["digest"]
    assert "stopped before its last tag moved" in again.stderr and "repaired the promotion cut short" in again.stderr
    assert digest_at(registry, "app", "v1") == digest_at(registry, "app", "v1b") == new
    after = subprocess.run([sys.executable, "-m", "orchestrator", "verify", v1b, "--platform", "linux/amd64"],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "stopped before" not in after.stderr  # the journal is gone


@pytest.mark.engine
def test_tags_found_on_different_digests_before_a_publish_are_said(registry, proxy, flavoured) -> None:
    """Without a journal (a CI runner's disk thrown away), the split is still seen before moving."""
    v1, v1b = proxy.ref("app", "v1"), proxy.ref("app", "v1b")
    published(flavoured, "a", v1)
    published(flavoured, "c", v1b)
    result = build(flavoured, "b", v1, v1b)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the tags point at different digests before this publish" in result.stderr
