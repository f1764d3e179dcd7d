"""Technical analysis of a price history: TA-Lib indicators, returns, risk, levels, signals.

TA-Lib does the indicator maths (C, fast, the reference implementation traders compare
against); numpy/pandas do returns and risk. A short history yields a shorter analysis: every
indicator that needs more rows than there are is left out and listed in ``omitted``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import talib

from automation_scripts.base import AutomationError
from automation_scripts.stock.market_data import PriceHistory

MIN_ROWS = 30
TRADING_DAYS = 252
RISK_FREE_RATE = 0.04
"""Annual risk-free rate assumed for Sharpe and Sortino: 4 %, roughly the 3-month US T-bill
yield of 2024-2026. A constant keeps the report offline and reproducible."""

RETURN_WINDOWS = {"1M": 21, "3M": 63, "6M": 126, "1Y": 252, "5Y": 1260}

# Rows each indicator needs before its first value exists (TA-Lib lookback + 1).
NEEDS = {"SMA 20": 20, "SMA 50": 50, "SMA 200": 200, "EMA 12": 12, "EMA 26": 26,
         "RSI 14": 15, "MACD (12, 26, 9)": 34, "Bollinger (20, 2)": 20, "ATR 14": 15,
         "Stochastic (14, 3, 3)": 18, "ADX 14": 28, "OBV": 1}


@dataclass
class Signal:
    name: str
    view: str          # "bullish" | "bearish" | "neutral"
    text: str


@dataclass
class Analysis:
    """Everything the forecast, charts and article need about one ticker."""

    ticker: str
    as_of: str
    rows: int
    last_close: float
    change_1d: float | None
    series: dict[str, np.ndarray]            # full-length arrays aligned with the frame
    latest: dict[str, float]                 # latest value of each computed indicator
    returns: dict[str, float]                # period -> simple return (fraction)
    risk: dict[str, float]                   # volatility, max_drawdown, sharpe, sortino ...
    range_52w: dict[str, float]
    support: list[float]
    resistance: list[float]
    signals: list[Signal]
    stance: str                              # "bullish" | "bearish" | "neutral"
    score: int
    omitted: list[str] = field(default_factory=list)


def _last(values: np.ndarray) -> float | None:
    v = float(values[-1])
    return None if math.isnan(v) else v


def compute_indicators(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str]]:
    """TA-Lib indicators over the whole frame; returns (series, omitted-with-reason)."""
    o = frame["Open"].to_numpy(np.float64)
    h = frame["High"].to_numpy(np.float64)
    low = frame["Low"].to_numpy(np.float64)
    c = frame["Close"].to_numpy(np.float64)
    v = frame["Volume"].to_numpy(np.float64)
    del o
    n = len(c)
    series: dict[str, np.ndarray] = {}
    omitted: list[str] = []

    def ok(name: str) -> bool:
        if n >= NEEDS[name]:
            return True
        omitted.append(f"{name} needs {NEEDS[name]} trading days of history; "
                       f"only {n} available")
        return False

    for p in (20, 50, 200):
        if ok(f"SMA {p}"):
            series[f"sma{p}"] = talib.SMA(c, timeperiod=p)
    for p in (12, 26):
        if ok(f"EMA {p}"):
            series[f"ema{p}"] = talib.EMA(c, timeperiod=p)
    if ok("RSI 14"):
        series["rsi"] = talib.RSI(c, timeperiod=14)
    if ok("MACD (12, 26, 9)"):
        macd, sig, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
        series.update(macd=macd, macd_signal=sig, macd_hist=hist)
    if ok("Bollinger (20, 2)"):
        up, mid, lo = talib.BBANDS(c, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
        series.update(bb_upper=up, bb_middle=mid, bb_lower=lo)
    if ok("ATR 14"):
        series["atr"] = talib.ATR(h, low, c, timeperiod=14)
    if ok("Stochastic (14, 3, 3)"):
        k, d = talib.STOCH(h, low, c, fastk_period=14, slowk_period=3, slowk_matype=0,
                           slowd_period=3, slowd_matype=0)
        series.update(stoch_k=k, stoch_d=d)
    if ok("ADX 14"):
        series["adx"] = talib.ADX(h, low, c, timeperiod=14)
        series["plus_di"] = talib.PLUS_DI(h, low, c, timeperiod=14)
        series["minus_di"] = talib.MINUS_DI(h, low, c, timeperiod=14)
    if ok("OBV"):
        series["obv"] = talib.OBV(c, v)
    return series, omitted


def period_returns(close: np.ndarray) -> tuple[dict[str, float], list[str]]:
    out: dict[str, float] = {}
    omitted: list[str] = []
    for label, days in RETURN_WINDOWS.items():
        if len(close) > days:
            out[label] = float(close[-1] / close[-1 - days] - 1.0)
        else:
            omitted.append(f"{label} return needs more than {days} trading days of history")
    return out, omitted


def risk_measures(close: np.ndarray, rf: float = RISK_FREE_RATE) -> dict[str, float]:
    """Annualised volatility, Sharpe and Sortino over the last year (or all rows if fewer);
    maximum drawdown over the whole history given."""
    window = close[-(TRADING_DAYS + 1):]
    rets = np.diff(window) / window[:-1]
    daily_rf = rf / TRADING_DAYS
    excess = rets - daily_rf
    vol = float(np.std(rets, ddof=1) * math.sqrt(TRADING_DAYS))
    sharpe = float(np.mean(excess) / np.std(rets, ddof=1) * math.sqrt(TRADING_DAYS)) \
        if np.std(rets) > 0 else 0.0
    downside = np.minimum(excess, 0.0)
    dd_dev = float(np.sqrt(np.mean(downside ** 2)))
    sortino = float(np.mean(excess) / dd_dev * math.sqrt(TRADING_DAYS)) if dd_dev > 0 else 0.0
    peak = np.maximum.accumulate(close)
    drawdown = close / peak - 1.0
    trough = int(np.argmin(drawdown))
    return {"volatility": vol, "sharpe": sharpe, "sortino": sortino,
            "max_drawdown": float(drawdown[trough]), "risk_free": rf,
            "risk_window_days": float(len(rets))}


def swing_levels(frame: pd.DataFrame, lookback: int = 126, width: int = 5,
                 tolerance: float = 0.015) -> tuple[list[float], list[float]]:
    """Support (below the last close) and resistance (above) from recent swing points.

    A swing high/low is the extreme of ``2*width+1`` bars; nearby swings (within
    ``tolerance``) are merged. The nearest two on each side are kept, nearest first.
    """
    recent = frame.iloc[-lookback:]
    hi = recent["High"].to_numpy()
    lo = recent["Low"].to_numpy()
    last = float(frame["Close"].iloc[-1])
    n = len(recent)
    highs, lows = [], []
    for i in range(width, n - width):
        seg_h = hi[i - width:i + width + 1]
        seg_l = lo[i - width:i + width + 1]
        if hi[i] == seg_h.max():
            highs.append(float(hi[i]))
        if lo[i] == seg_l.min():
            lows.append(float(lo[i]))

    def merge(levels: list[float]) -> list[float]:
        merged: list[float] = []
        for x in sorted(levels):
            if merged and abs(x / merged[-1] - 1.0) <= tolerance:
                merged[-1] = (merged[-1] + x) / 2
            else:
                merged.append(x)
        return merged

    points = merge(highs + lows)
    support = sorted((p for p in points if p < last * (1 - 0.002)), reverse=True)[:2]
    resistance = sorted(p for p in points if p > last * (1 + 0.002))[:2]
    if not support:
        support = [float(lo.min())] if lo.min() < last else []
    if not resistance:
        resistance = [float(hi.max())] if hi.max() > last else []
    return support, resistance


def _signals(c: float, s: dict[str, float]) -> list[Signal]:
    out: list[Signal] = []
    if "sma50" in s and "sma200" in s:
        if s["sma50"] > s["sma200"] and c > s["sma50"]:
            out.append(Signal("trend", "bullish", "price above a rising 50/200-day structure"))
        elif s["sma50"] < s["sma200"] and c < s["sma50"]:
            out.append(Signal("trend", "bearish", "price below the 50- and 200-day averages"))
        else:
            out.append(Signal("trend", "neutral", "mixed position against the 50/200-day "
                              "averages"))
    elif "sma20" in s:
        view = "bullish" if c > s["sma20"] else "bearish"
        out.append(Signal("trend", view, f"price {'above' if view == 'bullish' else 'below'} "
                          "the 20-day average"))
    if "rsi" in s:
        r = s["rsi"]
        if r >= 70:
            out.append(Signal("momentum", "bearish", f"RSI {r:.0f}: overbought"))
        elif r <= 30:
            out.append(Signal("momentum", "bullish", f"RSI {r:.0f}: oversold"))
        elif r >= 55:
            out.append(Signal("momentum", "bullish", f"RSI {r:.0f}: firm momentum"))
        elif r <= 45:
            out.append(Signal("momentum", "bearish", f"RSI {r:.0f}: soft momentum"))
        else:
            out.append(Signal("momentum", "neutral", f"RSI {r:.0f}: neutral"))
    if "macd" in s and "macd_signal" in s:
        above = s["macd"] > s["macd_signal"]
        out.append(Signal("macd", "bullish" if above else "bearish",
                          f"MACD {'above' if above else 'below'} its signal line"))
    if "bb_upper" in s:
        if c > s["bb_upper"]:
            out.append(Signal("bollinger", "bearish", "price above the upper Bollinger band"))
        elif c < s["bb_lower"]:
            out.append(Signal("bollinger", "bullish", "price below the lower Bollinger band"))
    if "adx" in s:
        strong = s["adx"] >= 25
        direction = "bullish" if s.get("plus_di", 0) > s.get("minus_di", 0) else "bearish"
        out.append(Signal("adx", direction if strong else "neutral",
                          f"ADX {s['adx']:.0f}: {'a strong' if strong else 'a weak'} trend"))
    if "stoch_k" in s:
        k = s["stoch_k"]
        if k >= 80:
            out.append(Signal("stochastic", "bearish", f"stochastic %K {k:.0f}: overbought"))
        elif k <= 20:
            out.append(Signal("stochastic", "bullish", f"stochastic %K {k:.0f}: oversold"))
    return out


def analyse(history: PriceHistory, rf: float = RISK_FREE_RATE) -> Analysis:
    """The full analysis; AutomationError when there are fewer than MIN_ROWS rows."""
    frame = history.frame
    n = len(frame)
    if n < MIN_ROWS:
        raise AutomationError(f"{history.ticker}: only {n} trading days of prices; at least "
                              f"{MIN_ROWS} are needed for an analysis")
    close = frame["Close"].to_numpy(np.float64)
    series, omitted = compute_indicators(frame)
    latest = {k: v for k, v in ((k, _last(a)) for k, a in series.items()) if v is not None}
    returns, r_omitted = period_returns(close)
    omitted += r_omitted
    year = frame.iloc[-TRADING_DAYS:]
    lo52, hi52 = float(year["Low"].min()), float(year["High"].max())
    last = float(close[-1])
    rng = {"low": lo52, "high": hi52,
           "position": (last - lo52) / (hi52 - lo52) if hi52 > lo52 else 0.5,
           "days": float(len(year))}
    if n < TRADING_DAYS:
        omitted.append(f"52-week range covers only the {n} trading days available")
    support, resistance = swing_levels(frame)
    signals = _signals(last, latest)
    score = sum(1 if s.view == "bullish" else -1 if s.view == "bearish" else 0
                for s in signals)
    stance = "bullish" if score >= 2 else "bearish" if score <= -2 else "neutral"
    return Analysis(
        ticker=history.ticker, as_of=history.as_of, rows=n, last_close=last,
        change_1d=float(close[-1] / close[-2] - 1.0) if n > 1 else None,
        series=series, latest=latest, returns=returns, risk=risk_measures(close, rf),
        range_52w=rng, support=support, resistance=resistance, signals=signals,
        stance=stance, score=score, omitted=omitted)
