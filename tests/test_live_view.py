"""The live view on a terminal: which columns give way as it narrows, which step each platform is
running, each platform's own clock, and no info lines over the table (they go to a log file).
The engine test runs a real two-platform build in tmux at 120, 80 and 50 columns."""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cli.live import COLUMNS, MIN_STEP, LiveConsole, layout
from orchestrator.docker.steps import StepLog
from orchestrator.model.platform_parse import parse

from .conftest import Registry
from .waiting import wait_until

NATURAL = {"PLATFORM": 12, "NODE": 15, "STEP": 90, "ELAPSED": 7, "QEMU": 8, "STATE": 8}


# -- the column rule ---------------------------------------------------------------------------

def test_every_column_shows_on_a_wide_terminal_and_the_step_gets_the_rest() -> None:
    shown, step = layout(200, NATURAL)
    assert shown == COLUMNS and step == 90
    shown, step = layout(120, NATURAL)
    assert shown == COLUMNS and step == 120 - (12 + 15 + 7 + 8 + 8) - 2 * 5


@pytest.mark.parametrize(("width", "gone"), [
    (76, ()),  # the step still has MIN_STEP
    (75, ("QEMU",)),
    (66, ("QEMU",)),
    (65, ("QEMU", "NODE")),
    (49, ("QEMU", "NODE")),
    (48, ("QEMU", "NODE", "ELAPSED")),
    (40, ("QEMU", "NODE", "ELAPSED")),
    (39, ("QEMU", "NODE", "ELAPSED", "STATE")),
])
def test_columns_give_way_qemu_then_node_then_elapsed(width: int, gone: tuple[str, ...]) -> None:
    shown, step = layout(width, NATURAL)
    assert shown == tuple(c for c in COLUMNS if c not in gone)
    assert "PLATFORM" in shown and "STEP" in shown
    if len(gone) < 4:
        assert step >= MIN_STEP
        assert sum(NATURAL[c] for c in shown if c != "STEP") + step + 2 * (len(shown) - 1) <= width


def test_a_short_step_keeps_every_column_it_can() -> None:
    assert layout(70, {**NATURAL, "STEP": 10}) == (COLUMNS, 10)
    shown, step = layout(60, {**NATURAL, "STEP": 10})
    assert shown == COLUMNS[:4] + ("STATE",) and step == 10  # QEMU goes: the whole step fits then


def _view(width: int, lines: list[str], clock: list[float]) -> list[str]:
    view = LiveConsole((parse("linux/amd64"), parse("linux/arm/v7")), clock=lambda: clock[0])
    for line in lines:
        view.say(line)
    return [text for text, _ in view.lines(width)]


def test_the_platform_is_whole_and_the_step_cut_with_an_ellipsis_at_50_columns() -> None:
    run = "RUN ./configure --prefix=/usr && make -j2 && make install && strip /usr/bin/thing"
    screen = _view(50, [f"#5 [linux/arm/v7 2/3] {run}", f"#6 [linux/amd64 2/3] {run}"], [0.0])
    assert screen[0].split() == ["PLATFORM", "STEP", "ELAPSED", "STATE"]
    assert all(len(line) <= 50 for line in screen)
    assert screen[2].startswith("linux/arm/v7  RUN ./configure") and "\u2026" in screen[2]


# -- the step that runs, and each platform's clock ----------------------------------------------

def test_the_running_step_is_the_latest_started_and_not_done() -> None:
    log = StepLog()
    for line in ["#4 [linux/amd64 1/3] FROM busybox", "#4 CACHED", "#5 [linux/amd64 2/3] COPY . /src",
                 "#6 [linux/arm64 2/3] COPY . /src", "#5 DONE 0.1s", "#7 [linux/amd64 3/3] RUN make"]:
        log.feed(line)
    assert log.running("linux/amd64").instruction == "RUN make"  # type: ignore[union-attr]
    assert log.running("linux/arm64").instruction == "COPY . /src"  # type: ignore[union-attr]
    log.feed("#7 ERROR: process did not complete")
    assert log.running("linux/amd64") is None and log.next_step("linux/amd64") is None  # failed: nothing next


def test_a_step_whose_title_buildx_holds_back_is_named_by_its_number_not_the_step_before() -> None:
    log = StepLog()
    for line in ["#5 [linux/arm64 build 2/4] COPY . /src", "#5 DONE 0.1s"]:
        log.feed(line)
    assert log.running("linux/arm64") is None
    assert log.next_step("linux/arm64") == "build step 3/4"
    log.feed("#8 [linux/arm64 build 4/4] RUN make install")
    assert log.next_step("linux/arm64") is None
    log.feed("#8 DONE 3.0s")
    assert log.next_step("linux/arm64") is None  # 4/4: the stage is done


def test_each_platform_has_its_own_clock_and_row() -> None:
    clock = [100.0]
    view = LiveConsole((parse("linux/amd64"), parse("linux/arm64")), clock=lambda: clock[0])
    view.say("#5 [linux/amd64 2/3] COPY a /a")
    clock[0] = 104.0
    view.say("#5 DONE 0.1s")
    view.say("#6 [linux/arm64 2/3] COPY a /a")
    view.say("#7 [linux/amd64 3/3] RUN sleep 9")
    clock[0] = 110.0
    rows = {line.split()[0]: line for line, _ in view.lines(120)[1:]}
    assert "RUN sleep 9" in rows["linux/amd64"] and " 10s " in rows["linux/amd64"]
    assert "COPY a /a" in rows["linux/arm64"] and " 6s " in rows["linux/arm64"]
    view.say("#7 DONE 6.0s")
    clock[0] = 111.0
    view.say("#9 exporting to image")
    clock[0] = 130.0
    rows = {line.split()[0]: line for line, _ in view.lines(120)[1:]}
    assert rows["linux/amd64"].split()[-2:] == ["10s", "built"]  # stopped at its last step
    assert rows["linux/arm64"].split()[-1] == "building" and " 26s " in rows["linux/arm64"]


def test_a_secret_a_step_names_is_masked_in_its_row_whatever_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row shows the start of a step's text: a build arg's value that BuildKit filled into the
    step never shows there, not even cut short."""
    from orchestrator import redact

    monkeypatch.setattr(redact, "_known", ())  # this test's secret is forgotten after it
    redact.keep_secret("s3cr3t-t0ken-value")
    view = LiveConsole((parse("linux/amd64"),), clock=lambda: 1.0)
    view.say("#7 [linux/amd64 3/3] RUN echo s3cr3t-t0ken-value > /etc/token")
    for width in (50, 80, 120):
        drawn = "\n".join(line for line, _ in view.lines(width))
        assert "s3cr3t" not in drawn and "RUN echo" in drawn, drawn


# -- a real build in tmux ---------------------------------------------------------------------

ORCH = str(Path(sys.executable).parent / "orch")
BASE = "localhost:5000/orch/busybox:stable"


@pytest.fixture
def go_server() -> Iterator[tuple[str, Path]]:
    """An HTTP server on the docker bridge's gateway, which build steps reach: a RUN waits until
    the file `go` the test creates is there."""
    bridge = json.loads(subprocess.run(["docker", "network", "inspect", "bridge"], capture_output=True,
                                       text=True, check=True).stdout)
    gateway = bridge[0]["IPAM"]["Config"][0]["Gateway"]
    served = Path(os.environ.get("TMPDIR", "/tmp")) / f"orch-live-go-{os.getpid()}"
    served.mkdir(exist_ok=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((gateway, 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{gateway}:{server.server_address[1]}/go", served
    server.shutdown()
    (served / "go").unlink(missing_ok=True)
    served.rmdir()


def _last_table(screen: str) -> list[list[str]]:
    """The newest frame of the table on the screen: its header and the rows under it."""
    lines = screen.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLATFORM ") and line.rstrip().endswith("STATE")]
    if not starts:
        return []
    table = [lines[starts[-1]]] + [line for line in lines[starts[-1] + 1:starts[-1] + 3]]
    return [re.split(r" {2,}", line.rstrip()) for line in table]


@pytest.mark.engine
def test_the_live_view_at_120_80_and_50_columns(registry: Registry, tmp_path: Path, daemons_own_builder: None,
                                               go_server: tuple[str, Path]) -> None:
    url, served = go_server
    (tmp_path / "marker.txt").write_text("copied\n")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE}\nCOPY marker.txt /marker.txt\n"
        f"RUN until wget -q -O /dev/null {url}; do echo waiting-for-go; sleep 1; done\n")
    session = f"orch-live-widths-{os.getpid()}"
    stream = tmp_path / "terminal.log"
    tmux = ["tmux", "-L", session]
    command = (f"tmux wait-for {session}-go; {ORCH} build {tmp_path} --platform linux/amd64,linux/arm64 "
               f"-t {registry.ref('qemu/widths', '1')} --push --no-cache --progress tty; echo EXIT=$?; "
               f"tmux wait-for {session}-read")
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True,
                   env={k: v for k, v in os.environ.items() if k != "CI"})

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    try:
        subprocess.run([*tmux, "pipe-pane", "-t", session, "-o", f"cat >> {stream}"], check=True)
        subprocess.run([*tmux, "wait-for", "-S", f"{session}-go"], check=True)
        # Both platforms reach the RUN that waits (buildx may hold one title back for seconds).
        wait_until(lambda: len([r for r in _last_table(screen())[1:] if "RUN until" in " ".join(r)]) == 2,
                   "both rows to name the waiting RUN step", timeout=300, step=0.5)
        expected = {120: list(COLUMNS), 80: list(COLUMNS), 50: ["PLATFORM", "STEP", "ELAPSED", "STATE"]}
        for width, header in expected.items():
            subprocess.run([*tmux, "resize-window", "-t", session, "-x", str(width)], check=True)
            # A frame drawn at this width: every line of the newest table fits in it.
            wait_until(lambda w=width: (t := _last_table(screen())) and len(t) == 3  # type: ignore[misc]
                       and all(len("  ".join(cells)) <= w for cells in t), f"a frame at {width} columns",
                       timeout=60, step=0.25)
            table = _last_table(screen())
            assert table[0] == header, (width, screen())
            rows = {cells[0]: dict(zip(header, cells, strict=False)) for cells in table[1:]}  # an empty QEMU cell: short
            assert set(rows) == {"linux/amd64", "linux/arm64"}, (width, screen())  # names whole
            for row in rows.values():
                assert row["STEP"].startswith("RUN until"), (width, screen())  # not the COPY before it
                assert re.fullmatch(r"\d+s|\d+m\d\ds", row["ELAPSED"]), (width, screen())
            if width > 50:
                assert rows["linux/amd64"]["NODE"] == rows["linux/arm64"]["NODE"] == "default"
        subprocess.run([*tmux, "resize-window", "-t", session, "-x", "250"], check=True)  # the last lines whole
        (served / "go").write_text("go\n")
        wait_until(lambda: "EXIT=" in screen(), "orch to finish", timeout=300, step=0.5)
        final = screen()
        assert "EXIT=0" in final, final
        drawn = stream.read_text(errors="replace")
        assert "[info" not in drawn and "[debug" not in drawn, drawn[-3000:]
        named = re.search(r"orch: the full log is in (\S+)", final)
        assert named, final
        assert Path(named.group(1)).parent == Path(os.environ["ORCH_STATE_HOME"]) / "logs"
        assert "build.start" in Path(named.group(1)).read_text()
    finally:
        subprocess.run([*tmux, "wait-for", "-S", f"{session}-read"], capture_output=True)
        subprocess.run([*tmux, "kill-server"], capture_output=True)


# -- where the full log goes ------------------------------------------------------------------

@pytest.fixture
def own_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The logging module's settings for one test, structlog set up again as before after it."""
    from orchestrator import logging as orch_logging

    for name, value in (("_terminal_quiet", False), ("_file", None),
                        ("_pending", {"level": orch_logging.INFO, "log_format": orch_logging.LogFormat.console})):
        monkeypatch.setattr(orch_logging, name, value)
    yield
    if orch_logging._file is not None:
        orch_logging._file.close()
    monkeypatch.undo()
    orch_logging._apply(orch_logging._applied_level, orch_logging._applied_format)


def test_info_goes_to_the_log_file_and_warnings_to_the_terminal(own_logging: None, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.live import log_to_file
    from orchestrator.logging import get_logger

    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "state"))
    path = log_to_file()
    assert path is not None and Path(path).parent == tmp_path / "state" / "logs"
    get_logger().info("build.start", output="localhost:5000/x")
    get_logger().warning("build.check_this", advice="look")
    err = capsys.readouterr().err
    assert "build.start" not in err and err.count("build.check_this") == 1 and len(err.splitlines()) == 1
    kept = Path(path).read_text()
    assert re.search(r"build.start +output=localhost:5000/x", kept) and "build.check_this" in kept


def test_a_log_that_cannot_be_written_is_one_warning_and_the_build_goes_on(
        own_logging: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.live import log_to_file
    from orchestrator.logging import get_logger

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("ORCH_STATE_HOME", str(tmp_path / "a-file"))  # not a directory
    assert log_to_file() is None
    get_logger().info("build.start")
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "build.log_unwritten" in err and "the build goes on" in err
    assert "build.start" not in err
