"""Geometry of the dashboard's server-side SVG charts: numbers in, shapes out.

The templates draw these shapes with SVG presentation attributes (``x``, ``width``, ...) and
colour them with classes from static/css/dashboard.css, so the page needs no script and no
inline style (the Content-Security-Policy allows neither). Every chart has a table of the same
figures beside it; the shapes are for the eye only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

SERIES_CLASSES = 8          # series-0 .. series-7 in dashboard.css; the last is "other"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str                # the colour class
    tip: str                # the tooltip (an SVG <title>)


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass
class StackedBars:
    """One column per day, the series stacked bottom up in legend order."""

    width: int
    height: int
    left: float
    right: float
    bottom: float
    top: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    y: float
    label: str
    count: int
    width: float
    css: str


@dataclass
class HorizontalBars:
    width: int
    height: int
    label_width: int
    bar_height: int
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class Ring:
    """A share as an arc: ``dash`` of the ``circumference`` drawn from twelve o'clock."""

    size: int
    radius: float
    stroke: float
    circumference: float
    dash: float


def nice_top(value: int) -> int:
    """The axis' top: the smallest of 1, 2, 4, 5, 8, 10, 20 ... that is at least ``value``."""
    if value <= 1:
        return 1
    scale = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 5, 8, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def _r(value: float) -> float:
    return round(value, 1)


def stacked_bars(days: Sequence[str], labels: Sequence[str],
                 series: Sequence[tuple[str, str, dict[str, int]]], *, width: int = 420,
                 height: int = 170, label_every: int = 7) -> StackedBars:
    """``series``: (name, colour class, {day: count}); ``labels``: each day's short text.
    Every ``label_every``-th day counted back from the last one is labelled."""
    left, right, top_gap, bottom_gap = 34.0, 6.0, 8.0, 22.0
    plot_w, plot_h = width - left - right, height - top_gap - bottom_gap
    totals = [sum(counts.get(day, 0) for _, _, counts in series) for day in days]
    top = nice_top(max(totals, default=0))
    chart = StackedBars(width=width, height=height, left=left, right=width - right,
                        bottom=height - bottom_gap, top=top)
    slot = plot_w / max(1, len(days))
    for i, day in enumerate(days):
        base = chart.bottom
        for name, css, counts in series:
            n = counts.get(day, 0)
            if not n:
                continue
            h = plot_h * n / top
            chart.bars.append(Bar(_r(left + i * slot + slot * 0.15), _r(base - h),
                                  _r(slot * 0.7), _r(h), css,
                                  f"{labels[i]}: {name}, {n} post{'' if n == 1 else 's'}"))
            base -= h
        if (len(days) - 1 - i) % label_every == 0:
            chart.labels.append(Label(_r(left + (i + 0.5) * slot), labels[i]))
    values = [0, top // 2, top] if top % 2 == 0 and top > 1 else [0, top]
    chart.ticks = [Tick(_r(chart.bottom - plot_h * v / top), v) for v in values]
    return chart


def horizontal_bars(rows: Sequence[tuple[str, int, str]], *, width: int = 320,
                    label_width: int = 130, bar_height: int = 18, gap: int = 8
                    ) -> HorizontalBars:
    """``rows``: (label, count, colour class), drawn top down; the longest bar leaves room
    for its count."""
    most = max((n for _, n, _ in rows), default=0)
    room = width - label_width - 40
    chart = HorizontalBars(width=width, height=max(1, len(rows)) * (bar_height + gap),
                           label_width=label_width, bar_height=bar_height)
    for i, (label, n, css) in enumerate(rows):
        chart.rows.append(Row(i * (bar_height + gap), label, n,
                              _r(room * n / most) if most else 0.0, css))
    return chart


def ring(part: int, whole: int, *, size: int = 120, stroke: float = 14) -> Ring:
    """``part`` of ``whole`` as an arc (nothing drawn when ``whole`` is 0)."""
    radius = (size - stroke) / 2
    circumference = 2 * math.pi * radius
    share = part / whole if whole else 0.0
    return Ring(size=size, radius=_r(radius), stroke=stroke,
                circumference=round(circumference, 2), dash=round(circumference * share, 2))


def series_class(index: int) -> str:
    """Colour classes in order; every series past the palette shares the last one."""
    return f"series-{min(index, SERIES_CLASSES - 1)}"
