"""Server-side SVG charts for the console: no JavaScript, readable by screen readers.

Each chart is an <svg role="img"> with a <title> and a <desc> summing up the data, a <title> on every bar
(the browser's tooltip) and a legend. Every text that goes in is escaped here, which is what makes the
result safe to hand to a template as Markup.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 40
# Fills are classes of onca.css (.fill-<name>), so the chart follows the console's palette.
SEVERITY_FILLS = {"CRITICAL": "fill-critical", "HIGH": "fill-high", "MEDIUM": "fill-medium", "LOW": "fill-low",
                  "INFO": "fill-info"}
VOLUME_FILL = "fill-accent"
_ids = itertools.count(1)


def _nice_max(value: int) -> int:
    """The axis top: the smallest 1, 2 or 5 times a power of ten at or above `value`; at least 2, so the
    midline's label is a whole number."""
    if value <= 2:
        return 2
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _short(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size:
            return f"{n / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(n)


def _frame(title: str, desc: str, body: list[str], legend: Sequence[tuple[str, str]] = ()) -> Markup:
    uid = f"chart{next(_ids)}"
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby="{uid}-t {uid}-d" '
             'xmlns="http://www.w3.org/2000/svg">',
             f'<title id="{uid}-t">{escape(title)}</title>', f'<desc id="{uid}-d">{escape(desc)}</desc>', *body]
    x = _LEFT
    for name, fill in legend:
        parts.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" class="{fill}"/>'
                     f'<text x="{x + 14}" y="{HEIGHT - 5}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return Markup("".join(parts))


def _axes(top: int, labels: Sequence[str]) -> tuple[list[str], float]:
    """Gridlines with values and the x labels; returns them and the width of one bar slot."""
    plot_h = HEIGHT - _TOP - _BOTTOM
    slot = (WIDTH - _LEFT - _RIGHT) / max(1, len(labels))
    body = ['<g class="grid">']
    for fraction in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - fraction)
        body.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                    f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_short(round(top * fraction))}</text>')
    body.append("</g>")
    for i, label in enumerate(labels):
        x = _LEFT + slot * (i + 0.5)
        body.append(f'<text x="{x:.1f}" y="{HEIGHT - _BOTTOM + 14}" text-anchor="middle">{escape(label)}</text>')
    return body, slot


def stacked_bars(title: str, rows: Sequence[tuple[str, Mapping[str, int]]], fills: Mapping[str, str],
                 unit: str = "alerts") -> Markup:
    """One bar per row (x label, {series: value}), its series stacked in the order of `fills` (series: CSS class),
    the first on top."""
    totals = [sum(values.get(name, 0) for name in fills) for _, values in rows]
    top = _nice_max(max(totals, default=0))
    body, slot = _axes(top, [label[5:] if len(label) == 10 else label for label, _ in rows])
    plot_h = HEIGHT - _TOP - _BOTTOM
    for i, (label, values) in enumerate(rows):
        x = _LEFT + slot * i + slot * 0.15
        base = HEIGHT - _BOTTOM
        for name, fill in reversed(list(fills.items())):
            value = values.get(name, 0)
            if not value:
                continue
            height = plot_h * value / top
            what = unit if name == unit else f"{name} {unit}"
            base -= height
            body.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}" '
                        f'class="{fill}"><title>{escape(label)}: {value} {escape(what)}</title></rect>')
    total = sum(totals)
    summary = "; ".join(f"{label}: {t}" for (label, _), t in zip(rows, totals, strict=True))
    desc = f"{total} {unit} in all. Per bar: {summary}." if rows else f"No {unit}."
    return _frame(title, desc, body, list(fills.items()))


def bars(title: str, rows: Sequence[tuple[str, int]], fill: str = VOLUME_FILL, unit: str = "events") -> Markup:
    """One bar per (x label, value)."""
    return stacked_bars(title, [(label, {unit: value}) for label, value in rows], {unit: fill}, unit)
