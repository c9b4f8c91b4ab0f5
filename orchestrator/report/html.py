"""`orch build --report FILE.html`: one self-contained page (inline CSS and SVG, nothing fetched)
with a timeline per platform (each step a bar, emulated steps marked, cache hits shown), the
verification findings and the tags before -> after. The same facts, shorter, go to the GitHub
step summary (report.ci_outputs)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

WIDTH = 900  # px of timeline
LANE = 22  # px per step row
COLOURS = {"emulated": "#e8833a", "native": "#3a7be8", "cached": "#b8bec8", "failed": "#d9363e"}

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d5d9e0;padding:3px 8px;text-align:left}
.lane{margin:14px 0;padding:8px;border:1px solid #d5d9e0;border-radius:6px}
.lane h3{margin:0 0 6px;font-size:14px}.muted{color:#6b7280}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.fail{color:#d9363e;font-weight:600}.warn{color:#b45309}.ok{color:#15803d}
"""


def _kind(step: Mapping[str, Any]) -> str:
    if step.get("failed"):
        return "failed"
    if step.get("cached"):
        return "cached"
    return "emulated" if step.get("emulated") else "native"


def _lane(platform: Mapping[str, Any]) -> str:
    steps = platform.get("steps") or []
    end = max([s["started"] + s["seconds"] for s in steps] + [0.001])
    scale = WIDTH / end
    rows = []
    for i, step in enumerate(steps):
        kind = _kind(step)
        x, width = step["started"] * scale, max(step["seconds"] * scale, 2)
        label = f"{step.get('stage') + ' ' if step.get('stage') else ''}{step['instruction']}"
        rows.append(
            f'<g class="step {kind}"><title>{escape(label)}: {step["seconds"]:.1f} s ({kind})</title>'
            f'<rect x="{x:.1f}" y="{i * LANE + 2}" width="{width:.1f}" height="{LANE - 6}" rx="3" '
            f'fill="{COLOURS[kind]}"/>'
            f'<text x="{min(x + width + 4, WIDTH + 4):.1f}" y="{i * LANE + 14}" font-size="11">'
            f"{escape(label[:70])} · {step['seconds']:.1f} s</text></g>")
    height = max(len(steps), 1) * LANE + 4
    emulated = platform.get("emulated_seconds") or 0.0
    summary = (f'{len(steps)} steps, {sum(s["seconds"] for s in steps):.1f} s, '
               f'{emulated:.1f} s under QEMU' if steps else "no step times (nothing ran, or it was reused)")
    return (f'<section class="lane" data-platform="{escape(platform["platform"])}">'
            f'<h3>{escape(platform["platform"])} <span class="muted">{escape(platform.get("digest") or "not pushed")} · {summary}'
            f"</span></h3>"
            f'<svg width="{WIDTH + 480}" height="{height}" role="img" aria-label="steps of {escape(platform["platform"])}">'
            + "".join(rows) + "</svg></section>")


def _section(document: Mapping[str, Any], title: str) -> list[str]:
    platforms = document.get("platforms") or []
    findings = (document.get("verification") or {}).get("findings") or []
    moves = document.get("promotion") or []
    legend = "".join(f'<span style="background:{c}"></span>{k}' for k, c in COLOURS.items())
    share = document.get("emulated_share") or 0.0
    return [
        f"<h1>{escape(title)} <code>{escape(str(document.get('digest') or 'not published'))}</code></h1>",
        f"<p>{document.get('step_seconds', 0):.1f} s of steps, "
        f"{document.get('emulated_seconds', 0):.1f} s ({share:.0%}) under QEMU</p>",
        f'<h2>Timeline per platform</h2><p class="legend">{legend}</p>',
        *(_lane(p) for p in platforms),
        "<h2>Verification</h2><table><tr><th></th><th>check</th><th>platform</th><th>finding</th></tr>",
        *(f'<tr><td class="{escape(f["level"])}">{escape(f["level"])}</td><td>{escape(f["check"])}</td>'
          f'<td>{escape(f.get("platform") or "")}</td><td>{escape(f["message"])}</td></tr>' for f in findings),
        "</table><h2>Tags</h2><table><tr><th>tag</th><th>before</th><th>after</th><th></th></tr>",
        *(f'<tr><td>{escape(m["tag"])}</td><td>{escape(m["before"] or "(none)")}</td>'
          f'<td>{escape(m["after"] or "(none)")}</td><td>{escape(m["state"])}</td></tr>' for m in moves),
        "</table>",
    ]


def _page(title: str, body: list[str]) -> str:
    return "".join([f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
                    f"<style>{CSS}</style></head><body>", *body, "</body></html>\n"])


def html_report(document: Mapping[str, Any]) -> str:
    """The page for one build's result JSON (orch build --json), or for a failed build."""
    if not document.get("ok", True):
        rows = [f"<tr><td>{escape(f.get('platform') or '(all)')}</td><td><code>{escape(f.get('step') or '?')}"
                "</code></td></tr>" for f in document.get("failed") or []]
        return _page("orch build failed", [
            "<h1>orch build failed: no tag was changed</h1>",
            *(["<table><tr><th>platform</th><th>failed at</th></tr>", *rows, "</table>"] if rows else []),
            f"<pre>{escape(str(document.get('error') or ''))}</pre>",
            f"<p>Tags left where they were: {escape(', '.join(document.get('asked_tags') or []))}</p>"])
    title = f"orch build ({document.get('strategy')})"
    return _page(f"orch build {document.get('digest') or ''}", _section(document, title))


def release_report(targets: Mapping[str, Mapping[str, Any]]) -> str:
    """The page for a bake release: a section per target, every one verified before any tag moved."""
    body = [f"<p>A release of {len(targets)} images: every tag below moved together.</p>"]
    for name, document in targets.items():
        body += ['<article class="target">', *_section(document, f"target {name}"), "</article>"]
    return _page("orch release", body)


def timeline_markdown(document: Mapping[str, Any], most: int = 3) -> str:
    """The costliest steps per platform, for the step summary."""
    lines = ["| platform | under QEMU | costliest steps |", "|---|---|---|"]
    for platform in document.get("platforms") or []:
        steps = sorted(platform.get("steps") or [], key=lambda s: -s["seconds"])[:most]
        costly = "; ".join(f"{s['instruction'][:50]} {s['seconds']:.1f} s{' (QEMU)' if s['emulated'] else ''}"
                           for s in steps) or "-"
        lines.append(f"| {platform['platform']} | {platform.get('emulated_seconds', 0):.1f} s | {costly} |")
    return "\n".join(lines)
