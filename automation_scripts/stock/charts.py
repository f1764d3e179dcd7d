"""Charts as PNG bytes: price (+averages, Bollinger band, forecast fan), RSI/MACD, volume.

``matplotlib.figure.Figure`` on an Agg canvas, never ``pyplot``: pyplot keeps global figure
state and is not safe from the runner's worker threads. Building a figure (axes, ticks,
legend) costs more than drawing it, so ``StockCharts`` builds each chart's figure once per
thread and per layout (which series a ticker has) and then only swaps data, limits, tick
labels and texts; the canvas caches text rasters and writes plain PNGs (``chart_canvas``).
Nothing but the figure is shared between calls, and no figure between threads. Demo prices
are stamped "demo data" on every chart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.cbook import contiguous_regions  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.dates import date2num  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator  # noqa: E402

from automation_scripts.stock.chart_canvas import (  # noqa: E402
    FrozenArtist,
    TemplateCanvas,
    encode_png,
    minmax_downsample,
)
from automation_scripts.stock.forecast import Forecast  # noqa: E402
from automation_scripts.stock.indicators import Analysis  # noqa: E402
from automation_scripts.stock.market_data import DEMO_LABEL  # noqa: E402

DPI = 80
SIZE = (9.0, 4.8)
VOLUME_SIZE = (9.0, 3.2)
WINDOW = 504          # trading days shown (two years): the decade is summarised in the text
COLORS = {"price": "#1f3b73", "sma20": "#e69f00", "sma50": "#009e73", "sma200": "#cc79a7",
          "band": "#9ecae1", "fc": "#d55e00", "up": "#2ca02c", "down": "#d62728"}
DATE_TICKS = 6        # fixed date ticks: automatic date locators lay out labels they discard
MARGIN = 0.05         # matplotlib's default axes.ymargin, applied as autoscaling would


def _days(index: pd.DatetimeIndex) -> np.ndarray:
    """Dates as matplotlib's float day numbers: plain floats draw without unit conversion."""
    return np.asarray(date2num(index.to_numpy()), dtype=np.float64)


@dataclass
class _DateAxis:
    """Six dated ticks along x and four value ticks along y; the locators and formatter
    are made once and their values replaced per chart."""

    ax: Axes
    labels: bool = True
    ticks: FixedLocator = field(default_factory=lambda: FixedLocator([]))
    names: FixedFormatter = field(default_factory=lambda: FixedFormatter([]))

    def __post_init__(self) -> None:
        self.ax.xaxis.set_major_locator(self.ticks)
        self.ax.xaxis.set_major_formatter(self.names)
        self.ax.yaxis.set_major_locator(MaxNLocator(4))
        self.ax.grid(True, alpha=0.25, linewidth=0.6)

    def show(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        dates = pd.date_range(start, end, periods=DATE_TICKS).normalize()
        self.ticks.locs = _days(dates)
        self.names.seq = [d.strftime("%b %y") for d in dates] if self.labels else []
        self.ax.set_xlim(float(date2num(start)), float(date2num(end)))


def _autoscale_y(ax: Axes, *arrays: np.ndarray) -> None:
    """The y limits autoscaling would give these arrays (finite values, 5 % margins)."""
    lows = [np.nanmin(a) for a in arrays if np.isfinite(a).any()]
    highs = [np.nanmax(a) for a in arrays if np.isfinite(a).any()]
    locator = ax.yaxis.get_major_locator()
    lo, hi = locator.nonsingular(float(min(lows)), float(max(highs))) if lows else (0.0, 1.0)
    delta = (hi - lo) * MARGIN
    ax.set_ylim(*locator.view_limits(lo - delta, hi + delta))


def _line(line: Line2D, x: np.ndarray, y: np.ndarray) -> None:
    """Set a line's data, reduced to the pixel columns its axes has (a no-op for series
    with fewer than four points per column, such as two years across a chart)."""
    ax = line.axes
    x0, x1 = ax.get_xlim()
    line.set_data(*minmax_downsample(x, np.asarray(y, dtype=np.float64), x0, x1,
                                     max(1, int(ax.bbox.width))))


@dataclass
class _Chart:
    """One reusable figure and the artists that change from ticker to ticker."""

    figure: Figure
    canvas: TemplateCanvas
    parts: dict[str, Any]

    def stamp(self, source: str, ticker: str, as_of: str) -> None:
        self.parts["stamp"].set_text(f"{ticker} · {source} · as of {as_of}")
        self.parts["demo"].set_visible(source == "demo")

    def png(self) -> bytes:
        self.canvas.draw()
        return encode_png(np.asarray(self.canvas.buffer_rgba()))


def _figure(size: tuple[float, float]) -> tuple[Figure, TemplateCanvas]:
    fig = Figure(figsize=size, dpi=DPI)
    return fig, TemplateCanvas(fig)


def _finish(fig: Figure, canvas: TemplateCanvas, parts: dict[str, Any]) -> _Chart:
    """Freeze the legends (fixed entries at a fixed place: a bitmap is enough), add the
    source stamp and the (hidden until needed) demo watermark."""
    for ax in fig.axes:
        if ax.get_legend() is not None:
            FrozenArtist.freeze(ax.get_legend())
    parts["stamp"] = fig.text(0.995, 0.005, "", ha="right", va="bottom", fontsize=7,
                              color="#555")
    parts["demo"] = fig.text(0.5, 0.5, DEMO_LABEL.upper(), ha="center", va="center",
                             fontsize=44, color="#d62728", alpha=0.18, rotation=20,
                             weight="bold")
    return _Chart(fig, canvas, parts)


def _title(ax: Axes, text: str) -> None:
    # An explicit y skips matplotlib's per-draw search for overlapping tick labels; these
    # axes have none above them, so the title sits where the search would put it.
    ax.set_title(text, fontsize=11, y=1.0)


# -- price --------------------------------------------------------------------------------


def _price_layout(s: dict[str, np.ndarray], fc: Forecast | None) -> tuple[Any, ...]:
    return ("bb_upper" in s, tuple(p for p in (20, 50, 200) if f"sma{p}" in s),
            None if fc is None else tuple(lvl for lvl in (95, 80) if lvl in fc.lower))


def _build_price(layout: tuple[Any, ...]) -> _Chart:
    has_band, smas, levels = layout
    fig, canvas = _figure(SIZE)
    ax = fig.add_subplot(1, 1, 1)
    parts: dict[str, Any] = {"ax": ax}
    if has_band:
        parts["band"] = ax.fill_between([0.0, 1.0], [0.0, 0.0], [1.0, 1.0],
                                        color=COLORS["band"], alpha=0.35, linewidth=0,
                                        label="Bollinger (20, 2)")
    parts["close"], = ax.plot([], [], color=COLORS["price"], linewidth=1.2, label="Close")
    for p in smas:
        parts[f"sma{p}"], = ax.plot([], [], color=COLORS[f"sma{p}"], linewidth=0.9,
                                    label=f"SMA {p}")
    if levels is not None:
        for lvl in levels:
            parts[f"fc{lvl}"] = ax.fill_between([0.0, 1.0], [0.0, 0.0], [1.0, 1.0],
                                                color=COLORS["fc"],
                                                alpha=0.15 if lvl == 95 else 0.3,
                                                linewidth=0, label=f"{lvl}% interval")
        parts["fc"], = ax.plot([], [], color=COLORS["fc"], linewidth=1.2, linestyle="--",
                               label="Forecast")
    ax.set_ylabel("Price")
    parts["axis"] = _DateAxis(ax)
    ax.legend(loc="upper left", fontsize=7, ncol=3, frameon=False)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1)
    return _finish(fig, canvas, parts)


def _draw_price(chart: _Chart, frame: pd.DataFrame, analysis: Analysis,
                fc: Forecast | None) -> None:
    p, ax, s = chart.parts, chart.parts["ax"], analysis.series
    view = frame.iloc[-WINDOW:]
    x, k = _days(view.index), len(view)
    p["axis"].show(view.index[0], fc.dates[-1] if fc is not None else view.index[-1])
    shown = [view["Close"].to_numpy(np.float64)]
    if "band" in p:
        lower, upper = s["bb_lower"][-k:], s["bb_upper"][-k:]
        p["band"].set_data(x, lower, upper)
        shown += [lower, upper]
    _line(p["close"], x, shown[0])
    for key in ("sma20", "sma50", "sma200"):
        if key in p:
            _line(p[key], x, s[key][-k:])
            shown.append(s[key][-k:])
    if fc is not None and "fc" in p:
        fx = _days(fc.dates)
        for lvl in (95, 80):
            if f"fc{lvl}" in p:
                p[f"fc{lvl}"].set_data(fx, fc.lower[lvl], fc.upper[lvl])
                shown += [fc.lower[lvl], fc.upper[lvl]]
        _line(p["fc"], fx, fc.mean)
        shown.append(fc.mean)
    _autoscale_y(ax, *shown)
    _title(ax, f"{analysis.ticker}: price, moving averages and 90-day forecast")


# -- momentum -----------------------------------------------------------------------------


def _build_momentum(layout: tuple[bool, bool]) -> _Chart:
    has_rsi, has_macd = layout
    fig, canvas = _figure(SIZE)
    ax1, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": (1, 1)})
    parts: dict[str, Any] = {"ax1": ax1, "ax2": ax2}
    if has_rsi:
        parts["rsi"], = ax1.plot([], [], color=COLORS["price"], linewidth=0.9)
        ax1.axhline(70, color=COLORS["down"], linewidth=0.7, linestyle="--")
        ax1.axhline(30, color=COLORS["up"], linewidth=0.7, linestyle="--")
        ax1.set_ylim(0, 100)
    else:
        ax1.text(0.5, 0.5, "RSI 14: not enough history", ha="center", transform=ax1.transAxes)
    ax1.set_ylabel("RSI 14")
    if has_macd:
        for key, color in (("up", COLORS["up"]), ("down", COLORS["down"])):
            parts[key] = ax2.fill_between([0.0, 1.0], 0, [0.0, 0.0], color=color, alpha=0.5,
                                          linewidth=0, step="mid")
        parts["macd"], = ax2.plot([], [], color=COLORS["price"], linewidth=0.9, label="MACD")
        parts["signal"], = ax2.plot([], [], color=COLORS["fc"], linewidth=0.9,
                                    label="Signal")
        ax2.legend(loc="upper left", fontsize=7, frameon=False)
    else:
        ax2.text(0.5, 0.5, "MACD: not enough history", ha="center", transform=ax2.transAxes)
    ax2.set_ylabel("MACD")
    parts["axis1"] = _DateAxis(ax1, labels=False)
    ax1.set_yticks([30, 50, 70])
    parts["axis2"] = _DateAxis(ax2)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1, hspace=0.12)
    return _finish(fig, canvas, parts)


def _midstep_bars(x: np.ndarray, y: np.ndarray, where: np.ndarray) -> list[np.ndarray]:
    """The polygons of ``fill_between(x, 0, y, where=where, step="mid")``, vertex for vertex,
    built from plain arrays: matplotlib's own path goes through masked arrays for each of the
    fifty-odd runs of one sign and costs several times more."""
    polygons = []
    for i0, i1 in contiguous_regions(where):
        t, f = x[i0:i1], y[i0:i1]
        m = 2 * len(t)
        steps = np.empty(m)
        steps[0], steps[-1] = t[0], t[-1]
        steps[1:-1:2] = steps[2::2] = (t[:-1] + t[1:]) / 2
        heights = np.repeat(f, 2)
        pts = np.empty((2 * m + 2, 2))
        pts[0] = steps[0], heights[0]
        pts[1:m + 1, 0], pts[1:m + 1, 1] = steps, 0.0
        pts[m + 1] = steps[-1], heights[-1]
        pts[m + 2:, 0], pts[m + 2:, 1] = steps[::-1], heights[::-1]
        polygons.append(pts)
    return polygons


def _draw_momentum(chart: _Chart, frame: pd.DataFrame, analysis: Analysis) -> None:
    p, s = chart.parts, analysis.series
    index = frame.index[-WINDOW:]
    x, k = _days(index), len(index)
    p["axis1"].show(index[0], index[-1])
    p["axis2"].show(index[0], index[-1])
    if "rsi" in p:
        _line(p["rsi"], x, s["rsi"][-k:])
    if "macd" in p:
        hist = np.nan_to_num(s["macd_hist"][-k:])
        p["up"].set_verts(_midstep_bars(x, hist, hist >= 0))
        p["down"].set_verts(_midstep_bars(x, hist, hist < 0))
        macd, signal = s["macd"][-k:], s["macd_signal"][-k:]
        _line(p["macd"], x, macd)
        _line(p["signal"], x, signal)
        _autoscale_y(p["ax2"], np.zeros(1), hist, macd, signal)  # the bars rise from 0
    _title(p["ax1"], f"{analysis.ticker}: momentum (RSI and MACD)")


# -- volume -------------------------------------------------------------------------------


def _build_volume(layout: tuple[bool]) -> _Chart:
    has_average, = layout
    fig, canvas = _figure(VOLUME_SIZE)
    ax = fig.add_subplot(1, 1, 1)
    parts: dict[str, Any] = {"ax": ax}
    # One LineCollection per colour instead of a Rectangle patch per day (``bar``).
    for key in ("up", "down"):
        parts[key] = LineCollection([], colors=COLORS[key], alpha=0.6, linewidth=1.0)
        ax.add_collection(parts[key], autolim=False)
    if has_average:
        parts["average"], = ax.plot([], [], color=COLORS["price"], linewidth=1.0,
                                    label="50-day average")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_ylabel("Shares")
    parts["axis"] = _DateAxis(ax)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.14)
    return _finish(fig, canvas, parts)


def _bars(x: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Vertical segments from 0 to ``height`` at ``x``, shape (n, 2, 2)."""
    segments = np.zeros((len(x), 2, 2))
    segments[:, :, 0] = x[:, None]
    segments[:, 1, 1] = height
    return segments


def _draw_volume(chart: _Chart, frame: pd.DataFrame, analysis: Analysis) -> None:
    p, ax = chart.parts, chart.parts["ax"]
    view = frame.iloc[-WINDOW:]
    x = _days(view.index)
    close = view["Close"].to_numpy()
    up = np.r_[True, close[1:] >= close[:-1]]
    vol = view["Volume"].to_numpy(np.float64)
    p["axis"].show(view.index[0], view.index[-1])
    p["up"].set_segments(_bars(x[up], vol[up]))
    p["down"].set_segments(_bars(x[~up], vol[~up]))
    ax.set_ylim(0, float(vol.max()) * 1.05 if len(vol) and vol.max() > 0 else 1.0)
    if "average" in p:
        _line(p["average"], x, pd.Series(vol).rolling(50).mean().to_numpy())
    _title(ax, f"{analysis.ticker}: trading volume")


# -- the charts of one ticker ---------------------------------------------------------------


class StockCharts:
    """The three charts of a ticker as PNG bytes, drawn on figures kept per thread.

    One instance serves every worker thread: each thread gets its own figures (built on its
    first chart of a given layout), so no figure is ever drawn by two threads at once.
    Pickling carries no figures; a copy in another process builds its own.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._local = threading.local()

    def _chart(self, kind: str, layout: tuple[Any, ...],
               build: Callable[[Any], _Chart]) -> _Chart:
        charts: dict[tuple[str, tuple[Any, ...]], _Chart] = \
            self._local.__dict__.setdefault("charts", {})
        key = (kind, layout)
        if key not in charts:
            charts[key] = build(layout)
        return charts[key]

    def price(self, frame: pd.DataFrame, analysis: Analysis, fc: Forecast | None,
              source: str) -> bytes:
        """Close, SMA 20/50/200, Bollinger band, and the 80/95 % forecast fan."""
        chart = self._chart("price", _price_layout(analysis.series, fc), _build_price)
        _draw_price(chart, frame, analysis, fc)
        chart.stamp(source, analysis.ticker, analysis.as_of)
        return chart.png()

    def momentum(self, frame: pd.DataFrame, analysis: Analysis, source: str) -> bytes:
        """RSI 14 with 30/70 guides above MACD, signal line and histogram."""
        s = analysis.series
        chart = self._chart("momentum", ("rsi" in s, "macd" in s), _build_momentum)
        _draw_momentum(chart, frame, analysis)
        chart.stamp(source, analysis.ticker, analysis.as_of)
        return chart.png()

    def volume(self, frame: pd.DataFrame, analysis: Analysis, source: str) -> bytes:
        """Daily volume coloured by up/down day, with its 50-day average."""
        chart = self._chart("volume", (len(frame.iloc[-WINDOW:]) >= 50,), _build_volume)
        _draw_volume(chart, frame, analysis)
        chart.stamp(source, analysis.ticker, analysis.as_of)
        return chart.png()
