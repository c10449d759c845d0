"""Small inline SVG charts for the dashboard: no script, no network, a few kilobytes each.

A line chart draws one point per value on a date axis that the caller gives, so that every
chart of a page covers the same range; a bar chart draws one bar per name, green above zero
and red below. Both scale to the width of their container (viewBox), so they stay readable
on a phone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime

from market_calendar import NEW_YORK

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 72, 12, 12, 30
POSITIVE, NEGATIVE, LINE = "#2e7d32", "#c62828", "#1565c0"


def line_chart(chart_id: str, points: Sequence[tuple[datetime, float]],
               axis: tuple[datetime, datetime] | None, label: str, *,
               dollars: bool = False) -> str:
    """A stepless line through `points` over `axis` (defaults to the points' own range)."""
    if not points:
        return "<p class='empty'>Nothing to plot yet.</p>"
    start, end = axis or (points[0][0], points[-1][0])
    span = (end - start).total_seconds() or 1.0
    values = [v for _, v in points]
    low, high, ticks = _nice_range(min(values), max(values))

    def x(when: datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (when - start).total_seconds() / span

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / ((high - low) or 1.0)

    path = " ".join(f"{'M' if i == 0 else 'L'}{x(t):.1f},{y(v):.1f}"
                    for i, (t, v) in enumerate(points))
    dots = "".join(f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='2.5'><title>"
                   f"{_e(_day(t))}: {_e(_format(v, dollars))}</title></circle>"
                   for t, v in points)
    grid = "".join(f"<line x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
                   f"stroke='#eee'/><text x='{LEFT - 6}' y='{y(v) + 4:.1f}' "
                   f"text-anchor='end'>{_e(_format(v, dollars))}</text>" for v in ticks)
    dates = "".join(f"<text x='{x(t):.1f}' y='{HEIGHT - 12}' text-anchor='{anchor}'>"
                    f"{_e(_day(t))}</text>"
                    for t, anchor in ((start, "start"), (end, "end")))
    return (f"<svg id='{_e(chart_id)}' class='chart' viewBox='0 0 {WIDTH} {HEIGHT}' "
            f"role='img' aria-label='{_e(label)}, {len(points)} points, {_e(_day(start))} "
            f"to {_e(_day(end))}'>{grid}{dates}"
            f"<path d='{path}' fill='none' stroke='{LINE}' stroke-width='2'/>"
            f"<g fill='{LINE}'>{dots}</g></svg>")


def bar_chart(chart_id: str, bars: Sequence[tuple[str, float]]) -> str:
    """One bar per (name, dollars), from a zero line."""
    if not bars:
        return "<p class='empty'>No closed trades yet.</p>"
    values = [v for _, v in bars]
    low, high, ticks = _nice_range(min(0.0, *values), max(0.0, *values))
    height = HEIGHT + 40  # room for slanted names

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - value) / ((high - low) or 1.0)

    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    rects, names = [], []
    for i, (name, value) in enumerate(bars):
        left = LEFT + i * slot + slot * 0.15
        top, bottom = sorted((y(value), y(0.0)))
        colour = POSITIVE if value >= 0 else NEGATIVE
        rects.append(f"<rect x='{left:.1f}' y='{top:.1f}' width='{slot * 0.7:.1f}' "
                     f"height='{max(bottom - top, 0.5):.1f}' fill='{colour}'><title>"
                     f"{_e(name)}: {_e(_format(value, True))}</title></rect>")
        cx = left + slot * 0.35
        names.append(f"<text x='{cx:.1f}' y='{HEIGHT - BOTTOM + 16}' text-anchor='end' "
                     f"transform='rotate(-45 {cx:.1f} {HEIGHT - BOTTOM + 16})'>{_e(name)}</text>")
    grid = "".join(f"<line x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
                   f"stroke='{'#999' if v == 0 else '#eee'}'/><text x='{LEFT - 6}' "
                   f"y='{y(v) + 4:.1f}' text-anchor='end'>{_e(_format(v, True))}</text>"
                   for v in ticks)
    return (f"<svg id='{_e(chart_id)}' class='chart' viewBox='0 0 {WIDTH} {height}' "
            f"role='img' aria-label='total realised P&amp;L, {len(bars)} bars'>"
            f"{grid}{''.join(rects)}{''.join(names)}</svg>")


def _nice_range(low: float, high: float, count: int = 4) -> tuple[float, float, list[float]]:
    """An axis from `low` to `high` widened to round steps, and its tick values."""
    if math.isclose(low, high):
        pad = abs(low) * 0.01 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step) * step, math.ceil(high / step) * step
    ticks = [first + i * step for i in range(round((last - first) / step) + 1)]
    return first, last, ticks


def _format(value: float, dollars: bool) -> str:
    if not dollars:
        return f"{value:,.2f}"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}" if abs(value) < 1000 else f"{sign}${abs(value):,.0f}"


def _day(when: datetime) -> str:
    return f"{when.astimezone(NEW_YORK):%Y-%m-%d}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
