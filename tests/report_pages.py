"""Report documents with known step times, as orch writes them (steps read by docker.steps.StepLog
from buildx's plain progress lines, on a clock the test sets), and a headless Chromium that
measures what a report draws (the slow report tests and scripts/report-screenshots.py)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from orchestrator.docker.steps import StepLog, Timings
from orchestrator.model.platform_parse import parse

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LONG_RUN = ("RUN apt-get update && apt-get install -y --no-install-recommends " + " ".join(
    f"lib{n}-dev" for n in ("ssl", "curl4-openssl", "xml2", "yaml", "ffi", "sqlite3", "bz2", "lzma", "zstd",
                             "readline", "ncursesw5", "gdbm", "db5.3", "expat1", "uuid")) +
            " && ./configure --prefix=/opt/app --with-everything-a-very-long-option-name-without-spaces-"
            "that-would-run-past-any-card-if-it-did-not-wrap && make -j8 && make install")
DIGEST = "sha256:" + "3f" * 32


def steps_from_progress(events: Sequence[tuple[float, str]], platforms: Sequence[str],
                        node: str | None = None, emulated: Sequence[str] = ()) -> Timings:
    """Feed buildx's plain progress lines at the given seconds, as a build's StepLog reads them."""
    now = [0.0]
    log = StepLog(default_platform=platforms[0] if len(platforms) == 1 else None, node=node,
                  native=lambda p: str(p) not in emulated and f"{p.os}/{p.architecture}" not in emulated,
                  clock=lambda: now[0])
    log.started = 0.0
    for at, line in events:
        now[0] = at
        log.feed(line)
    return Timings(tuple(log.all()))


def _progress(platform: str, steps: Sequence[tuple[float, float, str]], first: int) -> list[tuple[float, str]]:
    """Title and DONE lines of steps (start, seconds, instruction) of one platform."""
    events = []
    for n, (start, seconds, what) in enumerate(steps, first):
        prefix = f"{platform} " if platform else ""
        events += [(start, f"#{n} [{prefix}{n - first + 1}/{len(steps)}] {what}"),
                   (start + seconds, f"#{n} DONE {seconds}s")]
    return sorted(events, key=lambda e: e[0])


def build_document() -> dict[str, Any]:
    """`orch build --json` of a two-platform build in one call: amd64 native, arm64 under QEMU.
    The COPY steps take 1.2 s on both platforms at different times; arm64's RUN takes 5.2 s."""
    events = _progress("linux/amd64", [(0.2, 0.4, "FROM docker.io/library/busybox:stable"),
                                       (0.8, 1.2, "COPY app /app"), (1.7, 2.6, "RUN /app/selftest")], 10) + \
        _progress("linux/arm64", [(0.3, 0.5, "FROM docker.io/library/busybox:stable"),
                                  (2.9, 1.2, "COPY app /app"), (4.2, 5.2, LONG_RUN)], 20)
    # a title printed late: buildx flushed the next step's title before the last DONE line
    timings = steps_from_progress(sorted(events, key=lambda e: e[0]), ["linux/amd64", "linux/arm64"],
                                  emulated=["linux/arm64"])
    platforms = [{"platform": p, "digest": DIGEST.replace("3f", d), "config": p, "state": None, "node": "default",
                  "seconds": None, **timings.platform_json(parse(p))} for p, d in (("linux/amd64", "a1"),
                                                                                   ("linux/arm64", "b2"))]
    tag = "localhost:5000/orch/app:" + "release-candidate-with-a-very-long-tag-name-" * 2 + "1"
    return {"ok": True, "profile": "default", "builder": "default", "strategy": "single", "merge": None,
            "fallback_reason": None, "digest": DIGEST, "pushed": True, "tags": [tag, "localhost:5000/orch/app:latest"],
            "local_image": None, "platforms": platforms, "step_seconds": timings.total_seconds,
            "emulated_seconds": timings.emulated_seconds, "emulated_share": timings.emulated_share,
            "staged": f"localhost:5000/orch/app@{DIGEST}",
            "promotion": [{"tag": tag, "before": None, "after": DIGEST, "state": "moved"},
                          {"tag": "localhost:5000/orch/app:latest", "before": DIGEST.replace("3f", "9e"),
                           "after": DIGEST, "state": "moved"}],
            "staging_kept": [], "verification": {"ok": True, "findings": [
                {"level": "ok", "check": "platforms", "platform": None, "message": "every platform expected"}]},
            "commands": ["docker buildx build --builder default --platform linux/amd64,linux/arm64 "
                         "--build-arg BASE_IMAGE=localhost:5000/orch/busybox:stable --output "
                         "type=oci,dest=STAGE_DIR/layout.tar,tar=false --metadata-file METADATA.json ."],
            "part": None, "signature": None, "signatures": [], "descriptor": None, "labels": {},
            "annotations": {}, "version": None}


def release_document() -> dict[str, Any]:
    """`orch release parts/` of two parts, each built on its own runner (a node named after it)."""
    runners = {"linux/amd64": ("<b>ubuntu-24.04</b> #1", "3.1"), "linux/arm64": ("ubuntu-24.04-arm #1", "7.4")}
    rows, parts = [], []
    for n, (platform, (runner, seconds)) in enumerate(runners.items()):
        steps = [(0.1, 0.6, "FROM docker.io/library/busybox:stable"), (0.9 + n, 1.2, "COPY app /app"),
                 (2.3 + n, 1.4 + 3.8 * n, "RUN /app/selftest")]
        timings = steps_from_progress(_progress("", steps, 5), [platform], node=f"{runner} node")
        digest = DIGEST.replace("3f", "c" + str(n))
        rows.append({"platform": platform, "digest": digest, "config": platform, "runner": runner,
                     "builder": "orch-native", "node": f"{runner} node", "seconds": float(seconds),
                     **timings.platform_json(parse(platform))})
        parts.append({"platforms": [platform], "digest": digest, "file": f"parts/{n}.json", "runner": runner,
                      "builder": "orch-native", "seconds": float(seconds)})
    return {"ok": True, "labels": {}, "annotations": {}, "version": "1.2.3", "strategy": "release",
            "repository": "localhost:5000/orch/app", "digest": DIGEST, "staged": f"localhost:5000/orch/app@{DIGEST}",
            "tags": ["localhost:5000/orch/app:1.2.3"], "revision": "0123456789abcdef", "platforms": rows,
            "parts": parts, "replaced": [], "verification": {"ok": True, "findings": []},
            "promotion": [{"tag": "localhost:5000/orch/app:1.2.3", "before": None, "after": DIGEST,
                           "state": "moved"}], "signature": None, "signatures": []}


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A headless Chromium driven through the Debian chromedriver: nothing downloaded, no network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="orch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


MEASURE = """
const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top,
                   bottom: r.bottom, width: r.width}; };
const lanes = [...document.querySelectorAll('section.lane')].map(lane => ({
  platform: lane.dataset.platform, who: lane.querySelector('.who').textContent,
  track: box(lane.querySelector('.step .track, .axis .track')),
  ticks: [...lane.querySelectorAll('.axis .tick')].map(t => ({seconds: +t.dataset.seconds, left: box(t).left,
          text: t.textContent})),
  steps: [...lane.querySelectorAll('.row.step')].map(r => ({start: +r.dataset.start, end: +r.dataset.end,
          stage: r.dataset.stage, label: r.querySelector('.label').textContent,
          bar: box(r.querySelector('.bar'))}))}));
const overflowing = [];
for (const card of document.querySelectorAll('.card, table, h1, p')) {
  const outer = box(card);
  for (const e of [card, ...card.querySelectorAll('*')]) {
    const b = box(e);
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
      overflowing.push(e.outerHTML.slice(0, 120));
    if (b.width > 0 && (b.right > outer.right + 1 || b.left < outer.left - 1))
      overflowing.push(e.outerHTML.slice(0, 120));
  }
}
const page = document.documentElement;
return {lanes, overflowing, pageScrolls: page.scrollWidth > page.clientWidth,
        text: document.body.innerText};
"""


def measure(driver: Any, page: Path) -> dict[str, Any]:
    """What the browser drew: each lane's track, ticks and step bars (pixels), and every element
    that runs past its card."""
    driver.get(page.resolve().as_uri())
    result: dict[str, Any] = driver.execute_script(MEASURE)
    return result


def screenshot(driver: Any, page: Path, target: Path) -> None:
    """The whole page as a PNG (Chromium's DevTools capture beyond the window)."""
    import base64

    driver.get(page.resolve().as_uri())
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
        "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    target.write_bytes(base64.b64decode(shot["data"]))
