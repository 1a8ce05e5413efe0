"""Charts as inline SVG drawn on the server: no script, readable by screen readers.

Each chart is `role="img"` with a title and a description, and pages put the same numbers in a
table beside it. Every piece of text goes through `escape`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from itertools import count

from markupsafe import Markup, escape

_ids = count(1)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"


def bar_chart(
    rows: Sequence[tuple[str, float | None, str]],
    *,
    title: str,
    description: str,
    scale_max: float | None = 100.0,
) -> Markup:
    """Horizontal bars: (label, value, text shown beside the bar). A None value (LINE's "<20",
    not measured yet) gets no bar, only its text — never a bar of 0."""
    uid = f"chart{next(_ids)}"
    label_w, bar_w, row_h, top = 200, 380, 30, 8
    width = label_w + bar_w + 90
    height = top + row_h * max(len(rows), 1) + 8
    top_value = scale_max or _nice_max(max((v or 0) for _, v, _ in rows) if rows else 1)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{uid}-t {uid}-d" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f'<title id="{uid}-t">{escape(title)}</title>',
        f'<desc id="{uid}-d">{escape(description)}</desc>',
        f'<line class="axis" x1="{label_w}" y1="{top - 4}" x2="{label_w}" y2="{height - 4}"/>',
    ]
    for i, (name, value, text) in enumerate(rows):
        y = top + i * row_h
        shown = name if len(name) <= 16 else name[:15] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 19}" text-anchor="end">{escape(shown)}</text>'
        )
        if value is None:
            parts.append(f'<text x="{label_w + 6}" y="{y + 19}">{escape(text or "—")}</text>')
            continue
        w = 0 if top_value <= 0 else round(bar_w * min(value, top_value) / top_value, 1)
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 5}" width="{w}" height="20"/>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + 19}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(
    series: Mapping[str, Sequence[tuple[dt.date, float]]],
    *,
    title: str,
    description: str,
    labels: Mapping[str, str],
) -> Markup:
    """One line per series over shared dates (e.g. followers per channel per day)."""
    uid = f"chart{next(_ids)}"
    width, height, left, right, top, bottom = 680, 280, 64, 130, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    days = sorted({day for points in series.values() for day, _ in points})
    peak = _nice_max(max((v for points in series.values() for _, v in points), default=1))
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{uid}-t {uid}-d" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f'<title id="{uid}-t">{escape(title)}</title>',
        f'<desc id="{uid}-d">{escape(description)}</desc>',
    ]
    for step in range(5):
        value = peak * step / 4
        y = top + plot_h - plot_h * step / 4
        parts.append(f'<line class="grid" x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{escape(_fmt(value))}</text>'
        )

    def x_of(day: dt.date) -> float:
        if len(days) <= 1:
            return left + plot_w / 2
        return round(left + plot_w * days.index(day) / (len(days) - 1), 1)

    for day in days[:: max(1, math.ceil(len(days) / 7))]:
        parts.append(
            f'<text x="{x_of(day)}" y="{height - bottom + 18}" text-anchor="middle">'
            f"{day.month}/{day.day}</text>"
        )
    for i, (name, points) in enumerate(series.items()):
        coords = " ".join(
            f"{x_of(day)},{round(top + plot_h - plot_h * v / peak, 1)}" for day, v in points
        )
        css = escape(name)
        parts.append(f'<polyline class="series series-{css}" points="{coords}"/>')
        ly = top + 10 + i * 22
        parts.append(
            f'<rect class="legend-{css}" x="{left + plot_w + 14}" y="{ly - 9}" width="14" '
            f'height="10"/><text x="{left + plot_w + 34}" y="{ly}">'
            f"{escape(labels.get(name, name))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
