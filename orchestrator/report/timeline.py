"""The report's timeline: one time axis for every lane (each platform's steps), steps placed when
they ran, as HTML a browser lays out (report.html puts it in the page).

Every lane's track is the same width and a step's left edge and width are percentages of the
shared axis, so equal seconds are equal widths in every lane. A step starts when buildx printed
its title (`started`, seconds after the build's first progress line) and lasts what BuildKit says
it took (`seconds`). The steps of one stage run one after another, but a title printed late would
draw a step over the one before it: a step of a stage starts no earlier than the one before it in
that stage ended. Stages may run side by side."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

COLOURS = {"emulated": "#e8833a", "native": "#3a7be8", "cached": "#9aa1ad", "failed": "#d9363e"}
TICKS = 8  # at most this many intervals on the axis
LABEL_CHARS = 400  # a longer step text is cut (the whole of it in the bar's tooltip)


@dataclass(frozen=True)
class Placed:
    """A step where the timeline draws it."""

    step: Mapping[str, Any]
    start: float
    end: float

    @property
    def kind(self) -> str:
        if self.step.get("failed"):
            return "failed"
        if self.step.get("cached"):
            return "cached"
        return "emulated" if self.step.get("emulated") else "native"


def placed(steps: Iterable[Mapping[str, Any]]) -> list[Placed]:
    """Steps in the order they came, each stage's one after another."""
    ends: dict[str | None, float] = {}
    rows = []
    for step in steps:
        seconds = max(float(step.get("seconds") or 0.0), 0.0)
        start = max(float(step.get("started") or 0.0), ends.get(step.get("stage"), 0.0), 0.0)
        ends[step.get("stage")] = start + seconds
        rows.append(Placed(step, start, start + seconds))
    return rows


def axis_end(lanes: Iterable[Sequence[Mapping[str, Any]]]) -> float:
    """Where the shared axis ends: a round tick at or after the last step's end."""
    end = max((p.end for steps in lanes for p in placed(steps)), default=0.0)
    return tick_step(end) * max(1, -(-end // tick_step(end))) if end > 0 else 1.0


def tick_step(end: float) -> float:
    """1, 2 or 5 times a power of ten: at most TICKS intervals up to `end`."""
    if end <= 0:
        return 1.0
    step = 0.1
    while True:
        for factor in (1, 2, 5):
            if end / (step * factor) <= TICKS:
                return step * factor
        step *= 10


def ticks(end: float) -> list[float]:
    step = tick_step(end)
    return [round(i * step, 6) for i in range(int(round(end / step)) + 1)]


def seconds_text(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def _pct(value: float, end: float) -> str:
    return f"{100 * value / end:.4f}%"


def axis(end: float) -> str:
    """The axis row: a tick and its seconds at each interval."""
    marks = "".join(f'<span class="tick" style="left:{_pct(t, end)}" data-seconds="{t:g}">{t:g} s</span>'
                    for t in ticks(end))
    return f'<div class="row axis" aria-hidden="true"><div class="label muted">seconds</div>' \
           f'<div class="track">{marks}</div></div>'


def _grid(end: float) -> str:
    return "".join(f'<span class="grid" style="left:{_pct(t, end)}"></span>' for t in ticks(end)[1:-1])


def step_label(step: Mapping[str, Any]) -> str:
    stage = step.get("stage")
    return f"[{stage}] {step.get('instruction') or ''}" if stage else str(step.get("instruction") or "")


def _row(row: Placed, end: float) -> str:
    label = step_label(row.step)
    shown = label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS] + "…"
    width = row.end - row.start
    where = f"{row.start:.1f} s to {row.end:.1f} s"
    return (f'<div class="row step {row.kind}" data-start="{row.start:.3f}" data-end="{row.end:.3f}" '
            f'data-stage="{escape(str(row.step.get("stage") or ""))}">'
            f'<div class="label">{escape(shown)} <span class="muted">· {seconds_text(width)}'
            f'{" (cached)" if row.kind == "cached" else ""}{" under QEMU" if row.kind == "emulated" else ""}'
            f'</span></div><div class="track">{_grid(end)}'
            f'<span class="bar" style="left:{_pct(row.start, end)};width:{_pct(width, end)};'
            f'background:{COLOURS[row.kind]}" title="{escape(label)}: {where} ({row.kind})"></span>'
            f"</div></div>")


def lane_rows(steps: Sequence[Mapping[str, Any]], end: float) -> str:
    """The axis, then a row per step, on the axis that ends at `end` (every lane's)."""
    return axis(end) + "".join(_row(row, end) for row in placed(steps))


def legend() -> str:
    return "".join(f'<span class="key"><span class="swatch" style="background:{c}"></span>{k}</span>'
                   for k, c in COLOURS.items())
