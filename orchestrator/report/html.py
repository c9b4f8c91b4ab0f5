"""`orch build --report FILE.html` and `orch release --report`: one self-contained page (inline
CSS, nothing fetched) with the build's wall time and commands, a lane per platform naming the node
or runner that built it, every lane on one time axis (report.timeline), the verification findings
and the tags before -> after. The same facts, shorter, go to the GitHub step summary
(report.ci_outputs). Everything a page shows that came from outside orch (step text, runner and
node names, tags, digests, messages) is HTML-escaped, and long text wraps inside its card."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from orchestrator.report.timeline import axis_end, lane_rows, legend, seconds_text

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;background:#fff;max-width:1400px}
h1{font-size:20px;overflow-wrap:anywhere}h2{font-size:16px;margin-top:28px}
code,pre{font:12px/1.4 ui-monospace,monospace;overflow-wrap:anywhere;word-break:break-word}
pre{white-space:pre-wrap;background:#f5f6f8;padding:8px;border-radius:4px;margin:4px 0}
table{border-collapse:collapse;margin:8px 0;width:100%;table-layout:fixed}
td,th{border:1px solid #d5d9e0;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
.card{margin:14px 0;padding:10px;border:1px solid #d5d9e0;border-radius:6px;min-width:0;overflow-wrap:anywhere}
.card h3{margin:0 0 4px;font-size:14px}.muted{color:#6b7280}
.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 14px;margin:0}
.facts dt{font-weight:600}.facts dd{margin:0;min-width:0;overflow-wrap:anywhere}
.legend .key{margin-right:14px}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;
vertical-align:middle;border-radius:2px}
.row{display:grid;grid-template-columns:minmax(0,340px) minmax(0,1fr);gap:10px;align-items:center;min-height:20px}
.row .label{font-size:12px;min-width:0;overflow-wrap:anywhere;word-break:break-word}
.track{position:relative;height:16px;min-width:0}
.step .track{background:#f3f4f6;border-radius:3px}
.bar{position:absolute;top:2px;height:12px;border-radius:2px}.cached .bar{min-width:2px}
.grid{position:absolute;top:0;bottom:0;width:0;border-left:1px dashed #d5d9e0}
.axis .track{border-bottom:1px solid #6b7280}
.tick{position:absolute;bottom:0;font-size:11px;color:#4b5563;transform:translateX(-50%);white-space:nowrap;
border-left:1px solid #6b7280;padding-left:2px;height:16px;line-height:14px}
.tick:first-child{transform:none}.tick:last-child{transform:translateX(-100%);border-left:0;
border-right:1px solid #6b7280;padding:0 2px 0 0}
.fail{color:#d9363e;font-weight:600}.warn{color:#b45309}.ok{color:#15803d}
"""


def _built_by(platform: Mapping[str, Any]) -> str:
    """Who built a lane: the runner (a release's part), its builder and node, or the node."""
    words = []
    if platform.get("runner"):
        words.append(f"runner <b>{escape(str(platform['runner']))}</b>")
    if platform.get("builder"):
        words.append(f"builder {escape(str(platform['builder']))}")
    if platform.get("node"):
        words.append(f"node <b>{escape(str(platform['node']))}</b>")
    return "built by " + ", ".join(words) if words else "built by the builder's only node"


def _lane(platform: Mapping[str, Any], end: float) -> str:
    steps = platform.get("steps") or []
    emulated = float(platform.get("emulated_seconds") or 0.0)
    summary = (f'{len(steps)} steps, {seconds_text(sum(float(s.get("seconds") or 0) for s in steps))} of steps, '
               f'{seconds_text(emulated)} under QEMU' if steps else "no step times (nothing ran, or it was reused)")
    if platform.get("seconds"):
        summary += f", {seconds_text(float(platform['seconds']))} on its {'runner' if platform.get('runner') else 'node'}"
    name = escape(str(platform.get("platform") or "?"))
    return (f'<section class="lane card" data-platform="{name}"><h3>{name} '
            f'<span class="muted who">{_built_by(platform)}</span></h3>'
            f'<p class="muted meta"><code>{escape(str(platform.get("digest") or "not pushed"))}</code>'
            f" · {escape(str(platform.get('state') or ''))}{' · ' if platform.get('state') else ''}{summary}</p>"
            f'<div class="timeline">{lane_rows(steps, end)}</div></section>')


def totals(document: Mapping[str, Any]) -> tuple[float, float]:
    """Seconds of steps and of steps under QEMU, summed over the lanes the page draws (a release's
    are its parts' steps)."""
    steps = [s for p in document.get("platforms") or [] for s in p.get("steps") or []]
    return (round(sum(float(s.get("seconds") or 0) for s in steps), 1),
            round(sum(float(s.get("seconds") or 0) for s in steps if s.get("emulated")), 1))


def _facts(document: Mapping[str, Any], seconds: float | None) -> str:
    step_seconds, emulated = totals(document)
    share = f" ({emulated / step_seconds:.0%})" if step_seconds else ""
    rows = [("wall time", seconds_text(seconds) if seconds is not None else "not measured"),
            ("steps", f"{seconds_text(step_seconds)} of steps, {seconds_text(emulated)}{share} under QEMU")]
    if document.get("builder"):
        rows.append(("builder", escape(str(document["builder"]))))
    rows.append(("tags", escape(", ".join(document.get("tags") or [])) or "none"))
    commands = document.get("commands") or []
    cells = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    if commands:
        cells += "<dt>commands</dt><dd>" + "".join(f"<pre>{escape(str(c))}</pre>" for c in commands) + "</dd>"
    return f'<dl class="facts card">{cells}</dl>'


def _parts(document: Mapping[str, Any]) -> list[str]:
    parts = document.get("parts") or []
    if not parts:
        return []
    rows = "".join(f"<tr><td>{escape(', '.join(p.get('platforms') or []))}</td>"
                   f"<td>{escape(str(p.get('runner') or '?'))}</td><td>{escape(str(p.get('builder') or ''))}</td>"
                   f"<td>{seconds_text(float(p['seconds'])) if p.get('seconds') else ''}</td>"
                   f"<td><code>{escape(str(p.get('digest') or ''))}</code></td></tr>" for p in parts)
    return ["<h2>Parts</h2><table><colgroup><col style='width:16%'><col style='width:22%'><col style='width:16%'>"
            "<col style='width:10%'><col></colgroup>"
            f"<tr><th>platforms</th><th>runner</th><th>builder</th><th>on its runner</th><th>digest</th></tr>{rows}"
            "</table>"]


def _section(document: Mapping[str, Any], title: str, end: float, seconds: float | None) -> list[str]:
    platforms = document.get("platforms") or []
    findings = (document.get("verification") or {}).get("findings") or []
    moves = document.get("promotion") or []
    return [
        f"<h1>{escape(title)} <code>{escape(str(document.get('digest') or 'not published'))}</code></h1>",
        _facts(document, seconds), *_parts(document),
        f'<h2>Timeline per platform</h2><p class="legend">{legend()} <span class="muted">every lane on one axis: '
        f"seconds after {'each runner’s' if document.get('parts') else 'the'} build started</span></p>",
        *(_lane(p, end) for p in platforms),
        "<h2>Verification</h2><table><colgroup><col style='width:8%'><col style='width:18%'>"
        "<col style='width:16%'><col></colgroup><tr><th></th><th>check</th><th>platform</th><th>finding</th></tr>",
        *(f'<tr><td class="{escape(str(f.get("level")))}">{escape(str(f.get("level")))}</td>'
          f'<td>{escape(str(f.get("check")))}</td><td>{escape(str(f.get("platform") or ""))}</td>'
          f'<td>{escape(str(f.get("message")))}</td></tr>' for f in findings),
        *([] if findings else ["<tr><td></td><td colspan=3>no findings</td></tr>"]),
        "</table><h2>Tags</h2><table><tr><th>tag</th><th>before</th><th>after</th><th style='width:12%'></th></tr>",
        *(f'<tr><td>{escape(str(m["tag"]))}</td><td><code>{escape(m.get("before") or "(none)")}</code></td>'
          f'<td><code>{escape(m.get("after") or "(none)")}</code></td><td>{escape(str(m.get("state")))}</td></tr>'
          for m in moves),
        "</table>",
    ]


def _page(title: str, body: list[str]) -> str:
    return "".join([f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
                    '<meta name="viewport" content="width=device-width,initial-scale=1">'
                    f"<style>{CSS}</style></head><body>", *body, "</body></html>\n"])


def _failed(document: Mapping[str, Any], what: str) -> str:
    rows = [f"<tr><td>{escape(f.get('platform') or '(all)')}</td><td><code>{escape(f.get('step') or '?')}"
            "</code></td></tr>" for f in document.get("failed") or []]
    tags = [str(t) for t in document.get("asked_tags") or []]
    return _page(f"{what} failed", [
        f"<h1>{escape(what)} failed: no tag was changed</h1>",
        *(["<table><tr><th>platform</th><th>failed at</th></tr>", *rows, "</table>"] if rows else []),
        f"<pre>{escape(str(document.get('error') or ''))}</pre>",
        *([f"<p>Tags left where they were: {', '.join(f'<code>{escape(t)}</code>' for t in tags)}</p>"]
          if tags else [])])


def html_report(document: Mapping[str, Any], *, seconds: float | None = None, what: str = "orch build") -> str:
    """The page for one build's result JSON (orch build --json), a release of parts (orch release
    DIR...), or a failed one; `seconds` is the command's wall time."""
    if not document.get("ok", True):
        return _failed(document, what)
    strategy = document.get("strategy")
    title = f"{what} ({strategy})" if strategy and strategy != "release" else what
    end = axis_end(p.get("steps") or [] for p in document.get("platforms") or [])
    return _page(f"{what} {document.get('digest') or ''}", _section(document, title, end, seconds))


def release_report(targets: Mapping[str, Mapping[str, Any]], *, seconds: float | None = None) -> str:
    """The page for a bake release: a section per target, every one verified before any tag moved,
    every lane on one axis (one bake built them all)."""
    lanes: Sequence[Any] = [p.get("steps") or [] for d in targets.values() for p in d.get("platforms") or []]
    end = axis_end(lanes)
    body = [f"<p>A release of {len(targets)} images: every tag below moved together"
            f"{f', in {seconds_text(seconds)}' if seconds is not None else ''}.</p>"]
    for name, document in targets.items():
        body += ['<article class="target">', *_section(document, f"target {name}", end, None), "</article>"]
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
