"""The HTML report (`--report`): one time axis for every lane, steps where they ran, the wall
time and commands, who built each lane, totals a release adds up from its parts, nothing outside
escaped or running past its card. The slow tests measure what a real Chromium draws."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.report.html import html_report, release_report, totals
from orchestrator.report.timeline import axis_end, placed, ticks

from . import orch_processes
from .conftest import REPO, Registry
from .report_pages import CHROMEDRIVER, CHROMIUM, build_document, chromium, measure, release_document


def test_a_late_title_never_draws_a_step_over_the_one_before_it_in_its_stage() -> None:
    amd64 = build_document()["platforms"][0]["steps"]
    raw = [(s["started"], s["started"] + s["seconds"]) for s in amd64]
    assert raw[2][0] < raw[1][1]  # the data overlaps: RUN's title came before COPY's DONE
    drawn = placed(amd64)
    assert all(a.end <= b.start for a, b in zip(drawn, drawn[1:], strict=False))
    assert [round(p.end - p.start, 3) for p in drawn] == [s["seconds"] for s in amd64]  # durations kept
    side_by_side = placed([{"stage": "a", "started": 0, "seconds": 4}, {"stage": "b", "started": 1, "seconds": 1}])
    assert side_by_side[1].start == 1  # another stage runs beside it


def test_the_axis_ends_on_a_round_tick_after_the_last_step() -> None:
    assert axis_end([[{"started": 4.2, "seconds": 5.2}], []]) == 10
    assert ticks(10) == [0, 2, 4, 6, 8, 10] and ticks(1.0)[-1] == 1.0 and axis_end([]) == 1.0
    assert len(ticks(axis_end([[{"started": 0, "seconds": 733}]]))) <= 9


def test_a_build_report_names_its_wall_time_commands_and_nodes() -> None:
    page = html_report(build_document(), seconds=14.8)
    assert "<dt>wall time</dt><dd>14.8 s</dd>" in page
    assert "docker buildx build --builder default --platform linux/amd64,linux/arm64" in page
    assert page.count("built by node <b>default</b>") == 2 and page.count('class="row axis"') == 2
    assert "11.1 s of steps, 5.2 s (47%) under QEMU" in page


def test_a_release_report_adds_up_its_parts_and_names_each_runner() -> None:
    document = release_document()
    assert "step_seconds" not in document  # what made the old header say 0.0 s
    assert totals(document) == (10.2, 0.0)
    page = html_report({**document, "commands": ["# linux/amd64: ..."]}, seconds=4.2, what="orch release")
    assert "10.2 s of steps" in page and "<h1>orch release <code>" in page and "orch build" not in page
    assert "runner <b>&lt;b&gt;ubuntu-24.04&lt;/b&gt; #1</b>" in page  # a runner's name is text, escaped
    assert "runner <b>ubuntu-24.04-arm #1</b>" in page and "7.4 s on its runner" in page
    assert "<b>ubuntu-24.04</b>" not in page


def test_text_from_outside_is_escaped_everywhere() -> None:
    document = build_document()
    evil = '<img src=x onerror="alert(1)">'
    document["platforms"][0]["steps"][0]["instruction"] = f"RUN echo {evil}"
    document["platforms"][0]["steps"][0]["stage"] = f'x" onmouseover="{evil}'
    document["platforms"][0]["node"] = evil
    document["tags"] = [f"r/a:{evil}"]
    document["commands"] = [evil]
    document["promotion"][0]["tag"] = evil
    page = html_report(document)
    assert "<img" not in page and "onerror=\"" not in page and 'onmouseover="' not in page
    failed = html_report({"ok": False, "error": evil, "asked_tags": [evil], "failed": [{"platform": evil, "step": evil}]})
    assert "<img" not in failed
    assert "<img" not in release_report({"t": document})


def test_tags_left_where_they_were_only_with_tags() -> None:
    without = html_report({"ok": False, "error": "boom", "asked_tags": [], "failed": []}, what="orch release")
    assert "Tags left where they were" not in without and "<h1>orch release failed" in without
    with_tags = html_report({"ok": False, "error": "boom", "asked_tags": ["r/a:1", "r/a:2"], "failed": []})
    assert "Tags left where they were: <code>r/a:1</code>, <code>r/a:2</code>" in with_tags


def _browser_ready() -> None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("no Chromium: run scripts/test-tools.sh (apt-get install chromium chromium-driver)")


def _check_drawn(drawn: dict[str, Any]) -> None:
    """What any report must draw: one axis (every lane's track and ticks where every other's are),
    bars as long as their seconds on it, each stage's steps in turn, nothing past its card."""
    assert not drawn["overflowing"] and not drawn["pageScrolls"], drawn["overflowing"]
    lanes = drawn["lanes"]
    first = lanes[0]["track"]
    for lane in lanes:
        assert abs(lane["track"]["left"] - first["left"]) <= 1 and abs(lane["track"]["width"] - first["width"]) <= 1
        assert [t["seconds"] for t in lane["ticks"]] == [t["seconds"] for t in lanes[0]["ticks"]]
        assert all(t["text"] == f"{t['seconds']:g} s" for t in lane["ticks"])
        px = first["width"] / lane["ticks"][-1]["seconds"]
        for step in lane["steps"]:
            assert abs(step["bar"]["left"] - (first["left"] + step["start"] * px)) <= 1
            assert abs(step["bar"]["width"] - (step["end"] - step["start"]) * px) <= 1 or step["end"] == step["start"]
        for stage in {s["stage"] for s in lane["steps"]}:
            # a step of no time (cached) is a 2 px mark at its instant, not a bar
            bars = [s["bar"] for s in lane["steps"] if s["stage"] == stage and s["end"] > s["start"]]
            assert all(a["right"] <= b["left"] + 0.5 for a, b in zip(bars, bars[1:], strict=False)), \
                (lane["platform"], bars)


@pytest.mark.slow
def test_a_build_report_draws_equal_seconds_equal_in_every_lane(tmp_path: Path) -> None:
    _browser_ready()
    page = tmp_path / "report.html"
    page.write_text(html_report(build_document(), seconds=14.8))
    with chromium() as driver:
        drawn = measure(driver, page)
    _check_drawn(drawn)
    amd64, arm64 = ({s["label"].split(" · ")[0]: s for s in lane["steps"]} for lane in drawn["lanes"])
    copy_amd64, copy_arm64 = amd64["COPY app /app"], arm64["COPY app /app"]
    assert copy_arm64["bar"]["left"] - copy_amd64["bar"]["left"] > 100  # at different times...
    assert abs(copy_amd64["bar"]["width"] - copy_arm64["bar"]["width"]) <= 1  # ...1.2 s as wide
    long_run = next(s for s in arm64.values() if s["label"].startswith("RUN apt-get"))
    assert abs(copy_arm64["bar"]["width"] / long_run["bar"]["width"] - 1.2 / 5.2) < 0.01
    assert "wall time\n14.8 s" in drawn["text"] or "wall time\t14.8 s" in drawn["text"]


@pytest.mark.slow
def test_a_release_report_draws_each_runners_part_on_one_axis(tmp_path: Path) -> None:
    _browser_ready()
    page = tmp_path / "report.html"
    page.write_text(html_report(release_document(), seconds=4.2, what="orch release"))
    with chromium(width=900) as driver:  # narrow: everything still wraps inside its card
        drawn = measure(driver, page)
    _check_drawn(drawn)
    assert [lane["who"].split(",")[0] for lane in drawn["lanes"]] == [
        "built by runner <b>ubuntu-24.04</b> #1", "built by runner ubuntu-24.04-arm #1"]


def orch(*args: str) -> subprocess.CompletedProcess[str]:
    return orch_processes.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, env={**os.environ},
                              timeout=900)


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.usefixtures("daemons_own_builder")
def test_a_real_two_platform_build_report_measures_right(registry: Registry, tmp_path: Path) -> None:
    _browser_ready()
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN sleep 1 && echo one > /one\n"
                                    "RUN sleep 2 && echo two > /two\n")
    report = tmp_path / "report.html"
    result = orch("build", str(ctx), "--platform", "linux/amd64,linux/arm64", "--build-arg",
                  "BASE_IMAGE=localhost:5000/orch/busybox:stable", "-t", registry.ref("report/app", "1"), "--push",
                  "--no-cache", "--json", "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.loads(result.stdout)
    assert all(len(p["steps"]) >= 3 for p in document["platforms"]), document["platforms"]
    page = report.read_text()
    assert "<dt>wall time</dt><dd>" in page and "not measured" not in page and "docker buildx build" in page
    with chromium() as driver:
        drawn = measure(driver, report)
    _check_drawn(drawn)
    assert len(drawn["lanes"]) == 2
    for lane in drawn["lanes"]:
        sleeps = {s["label"].split(" && ")[0]: s for s in lane["steps"] if "sleep" in s["label"]}
        one, two = sleeps["RUN sleep 1"], sleeps["RUN sleep 2"]
        ratio = one["bar"]["width"] / two["bar"]["width"]
        assert abs(ratio - (one["end"] - one["start"]) / (two["end"] - two["start"])) < 0.02
        assert one["bar"]["right"] <= two["bar"]["left"] + 0.5
