#!/usr/bin/env python3
"""docs/report-build.png and docs/report-release.png: the HTML report of a two-platform build and
of a release of two runners' parts (the documents the slow report tests measure), taken with
Debian's headless Chromium (scripts/test-tools.sh installs it). Run from the repository:
`.venv/bin/python scripts/report-screenshots.py`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.report.html import html_report  # noqa: E402
from tests.report_pages import build_document, chromium, release_document, screenshot  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as work, chromium() as driver:
        for name, page in (("report-build", html_report(build_document(), seconds=14.8)),
                           ("report-release", html_report(release_document(), seconds=4.2, what="orch release"))):
            source = Path(work) / f"{name}.html"
            source.write_text(page)
            screenshot(driver, source, REPO / "docs" / f"{name}.png")
            print(f"docs/{name}.png")


if __name__ == "__main__":
    main()
