"""The stock charts as drawn before the templated fast path: the reference they must match.

A verbatim copy of ``automation_scripts/stock/charts.py`` at commit 676ef0a: a fresh
``Figure`` per chart, drawn and PNG-encoded with matplotlib's defaults. ``bench/stock_report.py``
times it beside the current code in the same run, and ``tests/stock/test_charts.py`` compares
renderings against it. Kept in one place, and only here: nothing in the app imports it.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg", force=False)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from automation_scripts.stock.forecast import Forecast  # noqa: E402
from automation_scripts.stock.indicators import Analysis  # noqa: E402
from automation_scripts.stock.market_data import DEMO_LABEL  # noqa: E402

DPI = 80
SIZE = (9.0, 4.8)
WINDOW = 504          # trading days shown (two years): the decade is summarised in the text
COLORS = {"price": "#1f3b73", "sma20": "#e69f00", "sma50": "#009e73", "sma200": "#cc79a7",
          "band": "#9ecae1", "fc": "#d55e00", "up": "#2ca02c", "down": "#d62728"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def _stamp(fig: Figure, source: str, ticker: str, as_of: str) -> None:
    label = f"{ticker} · {source} · as of {as_of}"
    fig.text(0.995, 0.005, label, ha="right", va="bottom", fontsize=7, color="#555")
    if source == "demo":
        fig.text(0.5, 0.5, DEMO_LABEL.upper(), ha="center", va="center", fontsize=44,
                 color="#d62728", alpha=0.18, rotation=20, weight="bold")


def _date_axis(ax, start: pd.Timestamp, end: pd.Timestamp, labels: bool = True) -> None:
    """At most six fixed date ticks and four value ticks: text layout dominates chart time,
    and matplotlib's automatic date locator lays out many labels it then discards."""
    ticks = pd.date_range(start, end, periods=6).normalize()
    ax.set_xticks(list(ticks), [t.strftime("%b %y") for t in ticks] if labels else [])
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.set_xlim(start, end)
    ax.grid(True, alpha=0.25, linewidth=0.6)


def price_chart(frame: pd.DataFrame, analysis: Analysis, fc: Forecast | None,
                source: str) -> bytes:
    """Close, SMA 20/50/200, Bollinger band, and the 80/95 % forecast fan."""
    view = frame.iloc[-WINDOW:]
    idx = view.index
    n = len(frame)
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    s = analysis.series
    if "bb_upper" in s:
        ax.fill_between(idx, s["bb_lower"][-len(idx):], s["bb_upper"][-len(idx):],
                        color=COLORS["band"], alpha=0.35, linewidth=0, label="Bollinger (20, 2)")
    ax.plot(idx, view["Close"].to_numpy(), color=COLORS["price"], linewidth=1.2, label="Close")
    for p in (20, 50, 200):
        key = f"sma{p}"
        if key in s:
            ax.plot(idx, s[key][n - len(idx):], color=COLORS[key], linewidth=0.9,
                    label=f"SMA {p}")
    if fc is not None:
        fidx = fc.dates
        for lvl, alpha in ((95, 0.15), (80, 0.3)):
            if lvl in fc.lower:
                ax.fill_between(fidx, fc.lower[lvl], fc.upper[lvl], color=COLORS["fc"],
                                alpha=alpha, linewidth=0, label=f"{lvl}% interval")
        ax.plot(fidx, fc.mean, color=COLORS["fc"], linewidth=1.2, linestyle="--",
                label="Forecast")
    ax.set_title(f"{analysis.ticker}: price, moving averages and 90-day forecast", fontsize=11)
    ax.set_ylabel("Price")
    _date_axis(ax, idx[0], fc.dates[-1] if fc is not None else idx[-1])
    ax.legend(loc="upper left", fontsize=7, ncol=3, frameon=False)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1)
    _stamp(fig, source, analysis.ticker, analysis.as_of)
    return _png(fig)


def momentum_chart(frame: pd.DataFrame, analysis: Analysis, source: str) -> bytes:
    """RSI 14 with 30/70 guides above MACD, signal line and histogram."""
    idx = frame.index[-WINDOW:]
    k = len(idx)
    s = analysis.series
    fig = Figure(figsize=SIZE, dpi=DPI)
    ax1, ax2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": (1, 1)})
    if "rsi" in s:
        ax1.plot(idx, s["rsi"][-k:], color=COLORS["price"], linewidth=0.9)
        ax1.axhline(70, color=COLORS["down"], linewidth=0.7, linestyle="--")
        ax1.axhline(30, color=COLORS["up"], linewidth=0.7, linestyle="--")
        ax1.set_ylim(0, 100)
    else:
        ax1.text(0.5, 0.5, "RSI 14: not enough history", ha="center", transform=ax1.transAxes)
    ax1.set_ylabel("RSI 14")
    if "macd" in s:
        hist = np.nan_to_num(s["macd_hist"][-k:])
        # fill_between draws one polygon; ``bar`` would draw one patch per day (10x slower).
        ax2.fill_between(idx, 0, hist, where=hist >= 0, color=COLORS["up"], alpha=0.5,
                         linewidth=0, step="mid")
        ax2.fill_between(idx, 0, hist, where=hist < 0, color=COLORS["down"], alpha=0.5,
                         linewidth=0, step="mid")
        ax2.plot(idx, s["macd"][-k:], color=COLORS["price"], linewidth=0.9, label="MACD")
        ax2.plot(idx, s["macd_signal"][-k:], color=COLORS["fc"], linewidth=0.9,
                 label="Signal")
        ax2.legend(loc="upper left", fontsize=7, frameon=False)
    else:
        ax2.text(0.5, 0.5, "MACD: not enough history", ha="center", transform=ax2.transAxes)
    ax2.set_ylabel("MACD")
    _date_axis(ax1, idx[0], idx[-1], labels=False)
    ax1.set_yticks([30, 50, 70])
    _date_axis(ax2, idx[0], idx[-1])
    ax1.set_title(f"{analysis.ticker}: momentum (RSI and MACD)", fontsize=11)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.1, hspace=0.12)
    _stamp(fig, source, analysis.ticker, analysis.as_of)
    return _png(fig)


def volume_chart(frame: pd.DataFrame, analysis: Analysis, source: str) -> bytes:
    """Daily volume coloured by up/down day, with its 50-day average."""
    view = frame.iloc[-WINDOW:]
    close = view["Close"].to_numpy()
    up = np.r_[True, close[1:] >= close[:-1]]
    vol = view["Volume"].to_numpy()
    fig = Figure(figsize=(SIZE[0], 3.2), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    # One LineCollection per colour instead of a Rectangle patch per day (``bar``): 10x faster.
    ax.vlines(view.index[up], 0, vol[up], colors=COLORS["up"], alpha=0.6, linewidth=1.0)
    ax.vlines(view.index[~up], 0, vol[~up], colors=COLORS["down"], alpha=0.6, linewidth=1.0)
    ax.set_ylim(0, float(vol.max()) * 1.05 if len(vol) and vol.max() > 0 else 1.0)
    if len(vol) >= 50:
        avg = pd.Series(vol).rolling(50).mean().to_numpy()
        ax.plot(view.index, avg, color=COLORS["price"], linewidth=1.0, label="50-day average")
        ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title(f"{analysis.ticker}: trading volume", fontsize=11)
    ax.set_ylabel("Shares")
    _date_axis(ax, view.index[0], view.index[-1])
    fig.subplots_adjust(left=0.08, right=0.98, top=0.88, bottom=0.14)
    _stamp(fig, source, analysis.ticker, analysis.as_of)
    return _png(fig)
