"""Where the time goes under QEMU: step timings read from buildx's progress, `orch advise`, the
hint after a build, the HTML report (opened in headless Chromium) and the live terminal view
(run under tmux)."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from orchestrator.authoring.advise import advise
from orchestrator.builds.timings import hint
from orchestrator.docker.steps import Timings, read_steps
from orchestrator.errors import BadInput
from orchestrator.model.platform_parse import parse

from .conftest import REPO, Registry

BASE = "localhost:5000/orch/busybox:stable"
ORCH = str(Path(sys.executable).parent / "orch")
# Recorded from a real two-platform build of Dockerfile.example (buildx 0.13, amd64 host).
PROGRESS = [
    "#5 [linux/arm64 stage-1 1/3] FROM localhost:5000/orch/busybox:stable@sha256:3fb1",
    "#5 CACHED",
    "#7 [linux/amd64 buildinfo 2/2] RUN mkdir -p /out",
    "#7 DONE 0.2s",
    "#8 [linux/amd64->arm64 buildinfo 2/2] RUN mkdir -p /out",
    "#8 DONE 0.3s",
    "#11 [linux/arm64 stage-1 3/3] RUN echo \"machine=$(uname -m)\"",
    "#11 0.117 machine=aarch64",
    "#11 DONE 2.5s",
    "#12 [linux/amd64 stage-1 3/3] RUN echo \"machine=$(uname -m)\"",
    "#12 DONE 0.2s",
    "#13 [internal] load build context",
    "#14 [linux/arm/v7 stage-1 3/3] RUN make",
    "#14 ERROR: process did not complete successfully",
]


def _native_on_amd64(platform) -> bool:
    return platform.architecture in ("amd64", "386")


def test_steps_are_read_with_platform_stage_time_cache_and_emulation() -> None:
    steps = {(s.platform, s.runs_on, s.instruction.split()[0], s.stage): s
             for s in read_steps(PROGRESS, native=_native_on_amd64)}
    assert steps[("linux/arm64", "linux/arm64", "FROM", "stage-1")].cached
    cross = steps[("linux/arm64", "linux/amd64", "RUN", "buildinfo")]  # the build platform's stage: native
    assert (cross.seconds, cross.emulated) == (0.3, False)
    emulated = steps[("linux/arm64", "linux/arm64", "RUN", "stage-1")]
    assert (emulated.seconds, emulated.emulated) == (2.5, True)
    assert steps[("linux/arm/v7", "linux/arm/v7", "RUN", "stage-1")].failed
    assert not any(s.instruction.startswith("load") for s in steps.values())  # internal steps are not build steps
    timings = Timings(tuple(steps.values()))
    assert (timings.total_seconds, timings.emulated_seconds, timings.costliest_emulated()) == (3.2, 2.5, emulated)
    # A single-platform build names no platform in its steps.
    (only,) = read_steps(["#3 [build 2/2] RUN go build", "#3 DONE 4.0s"], default_platform="linux/arm64",
                         native=_native_on_amd64)
    assert (only.platform, only.stage, only.emulated) == ("linux/arm64", "build", True)


def test_the_hint_names_the_costliest_emulated_step_and_orch_advise() -> None:
    steps = read_steps(PROGRESS, native=_native_on_amd64)
    line = hint(Timings(tuple(steps)), "app/Dockerfile", (parse("linux/amd64"), parse("linux/arm64")))
    assert line is None  # 2.5 s of QEMU is below the threshold worth a line
    heavy = read_steps(["#11 [linux/arm64 app 3/3] RUN make -j2", "#11 DONE 42.0s",
                        "#12 [linux/amd64 app 3/3] RUN make -j2", "#12 DONE 4.0s"], native=_native_on_amd64)
    line = hint(Timings(tuple(heavy)), "app/Dockerfile", (parse("linux/amd64"), parse("linux/arm64")))
    assert line.startswith("QEMU ran 91% of the step time (42 s); the costliest emulated step: [linux/arm64 app] "
                           "RUN make -j2 (42 s)")
    assert line.endswith("orch advise -f app/Dockerfile --platform linux/amd64,linux/arm64")


DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG GO=golang:1.22
FROM ${GO} AS build
WORKDIR /src
RUN <<EOT
  set -e
  go build -o /out/app ./cmd/app
EOT
FROM --platform=$BUILDPLATFORM node:20 AS web
RUN npm ci && npm run build
FROM rust:1 AS tool
RUN cargo build --release
FROM debian:12
RUN apt-get update && \\
    apt-get install -y ca-certificates
COPY --from=build /out/app /app
COPY --from=web /dist /www
COPY --from=tool /target/release/tool /tool
RUN make -C /src
"""


def test_advise_names_every_emulated_run_with_a_rewrite_for_its_toolchain(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    report = advise(path, ["linux/arm64", "linux/arm/v7"])
    found = {(a.stage, a.kind): a for a in report.advice}
    # The web stage runs on the build platform: nothing of it is emulated.
    assert set(found) == {("build", "go"), ("tool", "rust"), ("stage 3", "packages"), ("stage 3", "c")}
    go = found[("build", "go")]
    assert (go.line, go.end_line) == (5, 8)  # a heredoc spans lines, as BuildKit reads it
    assert "+FROM --platform=$BUILDPLATFORM ${GO} AS build" in go.diff and "+ARG TARGETOS TARGETARCH" in go.diff
    assert "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app" in go.diff
    assert "xx-cargo build --release" in found[("tool", "rust")].diff
    assert found[("stage 3", "packages")].stays_emulated and found[("stage 3", "packages")].diff is None
    assert found[("stage 3", "c")].diff is None and "move it to a stage of its own" in found[("stage 3", "c")].rewrite
    assert [a.kind for a in report.advice][:2] == ["go", "rust"]  # nothing measured: compilers first
    assert "FROM --platform=$BUILDPLATFORM rust:1 AS tool" in report.rewritten


def test_measured_times_rank_the_advice_and_give_the_saving(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    measured = {("tool", "RUN cargo build --release"): {"linux/arm64": 300.0, "linux/arm/v7": 280.0,
                                                        "linux/amd64": 30.0}}
    report = advise(path, ["linux/arm64", "linux/arm/v7"], measured)
    first = report.advice[0]
    assert (first.stage, first.measured_seconds, first.expected_saving) == ("tool", 580.0, 550.0)


@pytest.mark.parametrize(
    ("text", "says"),
    [("FROM x\nRUN <<EOF\nunterminated\n", ":2: BuildKit cannot parse it: unterminated heredoc"),
     ("FROM x\nRUNN true\n", ':2: unknown instruction "RUNN"')],
)
def test_a_dockerfile_it_cannot_read_is_bad_input_with_file_and_line(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(BadInput) as caught:
        advise(path, ["linux/arm64"])
    assert f"{path}{says}" in caught.value.message


def orch(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([ORCH, *args], capture_output=True, text=True, cwd=cwd, timeout=900,
                          env={**os.environ, **(env or {})})


HEAVY = f"""FROM {BASE} AS data
RUN i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; mkdir -p /out; echo $i > /out/count
FROM {BASE}
COPY --from=data /out/count /count
CMD ["cat", "/count"]
"""


@pytest.fixture
def heavy(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text(HEAVY)
    return tmp_path


@pytest.mark.engine
@pytest.mark.usefixtures("daemons_own_builder")  # what runs emulated is this machine's QEMU
def test_a_build_measures_emulated_steps_hints_and_advise_ranks_by_them(registry: Registry, heavy: Path) -> None:
    result = orch("build", str(heavy), "--platform", "linux/amd64,linux/arm64", "-t", registry.ref("qemu/app", "1"),
                  "--push", "--json", "--no-cache", "--report", str(heavy / "report.html"))
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    arm64 = next(p for p in document["platforms"] if p["platform"] == "linux/arm64")
    loop = next(s for s in arm64["steps"] if s["instruction"].startswith("RUN i=0"))
    assert loop["emulated"] and loop["seconds"] > 0 and arm64["emulated_seconds"] >= loop["seconds"]
    amd64 = next(p for p in document["platforms"] if p["platform"] == "linux/amd64")
    assert not any(s["emulated"] for s in amd64["steps"])
    assert document["emulated_share"] > 0.5
    assert "build.emulation" in result.stderr and "orch advise" in result.stderr

    advised = orch("advise", "--platform", "linux/amd64,linux/arm64", "--json", cwd=heavy)
    assert advised.returncode == 0, advised.stderr
    (item,) = json.loads(advised.stdout)["advice"]
    assert item["stage"] == "data" and item["measured_seconds"] == pytest.approx(loop["seconds"], abs=0.1)
    assert "$BUILDPLATFORM" in item["rewrite"] and "+FROM --platform=$BUILDPLATFORM" in item["diff"]


def _png_colours(path: Path) -> int:
    """How many distinct pixels a PNG screenshot holds (8-bit RGB or RGBA, as Chromium writes)."""
    data = path.read_bytes()
    chunks, offset = {}, 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks.setdefault(kind, []).append(data[offset + 8:offset + 8 + length])
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][0][:10])
    assert depth == 8 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride, previous, seen = width * channels, bytearray(width * channels), set()
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                estimate = left + up - corner
                nearest = min((abs(estimate - left), left), (abs(estimate - up), up), (abs(estimate - corner), corner),
                              key=lambda pair: pair[0])[1]
                line[i] = (line[i] + nearest) & 255
        seen.update(bytes(line[i:i + 3]) for i in range(0, stride, channels * 7))
        previous = line
    return len(seen)


@pytest.mark.engine
def test_the_report_opens_in_a_browser_with_one_lane_per_platform(registry: Registry, heavy: Path) -> None:
    report = heavy / "report.html"
    result = orch("build", str(heavy), "--platform", "linux/amd64,linux/arm64,linux/arm/v7", "-t",
                  registry.ref("qemu/report", "1"), "--push", "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"]
    dom = subprocess.run([*chromium, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert len(re.findall(r'<section class="lane[ "]', dom.stdout)) == 3, dom.stderr[-2000:]
    for platform in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert f'data-platform="{platform}"' in dom.stdout
    shot = heavy / "report.png"
    subprocess.run([*chromium, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120)
    assert _png_colours(shot) > 8  # text, bars and legend: not a blank page
    assert "http://" not in report.read_text().replace("http://www.w3.org", "")  # nothing fetched


@pytest.mark.engine
def test_the_live_view_on_a_terminal_shows_each_platform(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE}\nRUN sleep 4; uname -m > /arch\n")
    session = f"orch-live-{os.getpid()}"
    stream = tmp_path / "terminal.log"
    # The pane waits for `go` (sent once everything it prints is recorded), says `built` when orch
    # has exited, and stays until `read` (sent once the screen is captured): events, not sleeps.
    command = (f"tmux wait-for {session}-go; {ORCH} build {tmp_path} --platform linux/amd64,linux/arm64 "
               f"-t {registry.ref('qemu/live', '1')} --push --no-cache --progress tty; echo EXIT=$?; "
               f"tmux wait-for -S {session}-built; tmux wait-for {session}-read")
    tmux = ["tmux", "-L", session]  # a server of its own: nothing else's sessions or options
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "150", "-y", "40", command], check=True,
                   env={k: v for k, v in os.environ.items() if k != "CI"})
    try:
        subprocess.run([*tmux, "pipe-pane", "-t", session, "-o", f"cat >> {stream}"], check=True)
        subprocess.run([*tmux, "wait-for", "-S", f"{session}-go"], check=True)
        subprocess.run([*tmux, "wait-for", f"{session}-built"], check=True, timeout=300)
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True,
                                text=True).stdout
        subprocess.run([*tmux, "wait-for", "-S", f"{session}-read"], check=True)
        # Every frame the live view drew, without the terminal's control sequences.
        frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "\n", stream.read_text(errors="replace"))
        drawn = [line.split() for line in frames.splitlines()]
        assert any(row[:1] == ["PLATFORM"] for row in drawn), frames[-3000:]
        building = {row[0] for row in drawn if row[:1] in (["linux/amd64"], ["linux/arm64"]) and "building" in row}
        assert building == {"linux/amd64", "linux/arm64"}, frames[-3000:]
        # Each row names the node building it (the builder's only node, or the node given the platform).
        nodes = {row[1] for row in drawn if row[:1] in (["linux/amd64"], ["linux/arm64"]) and "building" in row}
        assert nodes and "-" not in nodes, frames[-3000:]
        assert any(row[:1] == ["linux/arm64"] and "emulated" in row for row in drawn), frames[-3000:]
        assert "EXIT=0" in screen, screen
        rows = [line.split() for line in screen.splitlines() if line.startswith(("linux/amd64 ", "linux/arm64 "))]
        assert {row[0] for row in rows} >= {"linux/amd64", "linux/arm64"}
        assert "orch: verifying 2 platforms of" in screen and "... ok" in screen
        assert "#1 [internal]" not in frames  # buildx's scroll is not shown
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
