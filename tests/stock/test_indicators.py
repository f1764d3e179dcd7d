"""TA-Lib results against independent pandas/numpy formulas on the real GOOG series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automation_scripts.base import AutomationError
from automation_scripts.stock.indicators import MIN_ROWS, analyse, compute_indicators
from automation_scripts.stock.market_data import PriceHistory

CHECK_AT = (-1, -5, -250, -1000, 300)        # several dates, old and recent


def wilder(x: pd.Series, n: int) -> pd.Series:
    """Wilder smoothing seeded with the simple mean of the first n values."""
    out = np.full(len(x), np.nan)
    vals = x.to_numpy()
    first = np.where(~np.isnan(vals))[0][0]
    out[first + n - 1] = np.mean(vals[first:first + n])
    for i in range(first + n, len(vals)):
        out[i] = (out[i - 1] * (n - 1) + vals[i]) / n
    return pd.Series(out, index=x.index)


def ema(x: pd.Series, n: int) -> pd.Series:
    """EMA seeded with the SMA of the first n values (the classic definition)."""
    alpha = 2 / (n + 1)
    out = np.full(len(x), np.nan)
    vals = x.to_numpy()
    out[n - 1] = vals[:n].mean()
    for i in range(n, len(vals)):
        out[i] = alpha * vals[i] + (1 - alpha) * out[i - 1]
    return pd.Series(out, index=x.index)


@pytest.fixture(scope="module")
def goog(recorded):
    history = recorded.history("GOOG", years=10)
    series, omitted = compute_indicators(history.frame)
    return history.frame, series, omitted


def close_at(a, b, rel=1e-6):
    for i in CHECK_AT:
        assert a[i] == pytest.approx(b[i], rel=rel), f"at row {i}"


def test_sma_matches_rolling_mean(goog):
    frame, s, _ = goog
    for p in (20, 50, 200):
        close_at(s[f"sma{p}"], frame["Close"].rolling(p).mean().to_numpy())


def test_ema_matches_recursive_definition(goog):
    frame, s, _ = goog
    for p in (12, 26):
        close_at(s[f"ema{p}"], ema(frame["Close"], p).to_numpy())


def test_rsi_matches_wilder(goog):
    frame, s, _ = goog
    diff = frame["Close"].diff()
    gain = wilder(diff.clip(lower=0).iloc[1:], 14)
    loss = wilder((-diff).clip(lower=0).iloc[1:], 14)
    rsi = (100 - 100 / (1 + gain / loss)).reindex(frame.index).to_numpy()
    close_at(s["rsi"], rsi)
    assert 0 < s["rsi"][-1] < 100


def test_bollinger_uses_population_std(goog):
    frame, s, _ = goog
    mid = frame["Close"].rolling(20).mean()
    sd = frame["Close"].rolling(20).std(ddof=0)
    close_at(s["bb_upper"], (mid + 2 * sd).to_numpy())
    close_at(s["bb_lower"], (mid - 2 * sd).to_numpy())


def test_atr_matches_wilder_true_range(goog):
    frame, s, _ = goog
    prev = frame["Close"].shift(1)
    tr = pd.concat([frame["High"] - frame["Low"], (frame["High"] - prev).abs(),
                    (frame["Low"] - prev).abs()], axis=1).max(axis=1).iloc[1:]
    close_at(s["atr"], wilder(tr, 14).reindex(frame.index).to_numpy())


def test_macd_is_ema12_minus_ema26(goog):
    frame, s, _ = goog
    macd = ema(frame["Close"], 12) - ema(frame["Close"], 26)
    # TA-Lib starts both EMAs at the same row (26), so compare where it has converged.
    for i in (-1, -5, -250, -1000):
        assert s["macd"][i] == pytest.approx(macd.iloc[i], rel=1e-4, abs=1e-6)


def test_full_analysis_of_goog(recorded):
    a = analyse(recorded.history("GOOG"))
    assert a.rows > 2400 and not a.omitted
    assert set(a.returns) == {"1M", "3M", "6M", "1Y", "5Y"}
    close = recorded.history("GOOG").frame["Close"]
    assert a.returns["1Y"] == pytest.approx(close.iloc[-1] / close.iloc[-253] - 1)
    assert -1 < a.risk["max_drawdown"] < 0 and a.risk["volatility"] > 0.1
    assert a.risk["risk_free"] == 0.04
    assert a.range_52w["low"] <= a.last_close <= a.range_52w["high"]
    assert all(x < a.last_close for x in a.support)
    assert all(x > a.last_close for x in a.resistance)
    assert a.stance in ("bullish", "bearish", "neutral") and a.signals


def test_short_history_gives_shorter_analysis(recorded):
    kvue = analyse(recorded.history("KVUE"))                 # ~700 rows: no 5Y return
    assert "5Y" not in kvue.returns and "1Y" in kvue.returns
    assert any("5Y" in o for o in kvue.omitted)
    sixty = recorded.history("GOOG")
    short = PriceHistory("GOOG", sixty.frame.iloc[-60:], sixty.source)
    a = analyse(short)
    assert "sma200" not in a.series and "sma50" in a.series and "rsi" in a.series
    assert any("SMA 200 needs 200" in o for o in a.omitted)
    assert "6M" not in a.returns


def test_too_short_history_is_a_clear_error(recorded):
    goog = recorded.history("GOOG")
    tiny = PriceHistory("GOOG", goog.frame.iloc[-(MIN_ROWS - 1):], goog.source)
    with pytest.raises(AutomationError, match=f"only {MIN_ROWS - 1} trading days"):
        analyse(tiny)


def test_stochastic_is_smoothed_fast_k(goog):
    frame, s, _ = goog
    lowest = frame["Low"].rolling(14).min()
    highest = frame["High"].rolling(14).max()
    fast_k = 100 * (frame["Close"] - lowest) / (highest - lowest)
    slow_k = fast_k.rolling(3).mean()
    close_at(s["stoch_k"], slow_k.to_numpy())
    close_at(s["stoch_d"], slow_k.rolling(3).mean().to_numpy())


def test_obv_accumulates_signed_volume(goog):
    frame, s, _ = goog
    sign = np.sign(frame["Close"].diff().fillna(0))
    obv = (sign * frame["Volume"]).cumsum() + frame["Volume"].iloc[0]   # seeded with day 1
    close_at(s["obv"], obv.to_numpy())


def test_adx_matches_wilder_directional_movement(goog):
    frame, s, _ = goog
    up = frame["High"].diff()
    down = -frame["Low"].diff()
    plus_dm = up.where((up > down) & (up > 0), 0.0).iloc[1:]
    minus_dm = down.where((down > up) & (down > 0), 0.0).iloc[1:]
    prev = frame["Close"].shift(1)
    tr = pd.concat([frame["High"] - frame["Low"], (frame["High"] - prev).abs(),
                    (frame["Low"] - prev).abs()], axis=1).max(axis=1).iloc[1:]
    # Wilder's running sums (the mean form scaled by n cancels in the ratios)
    plus_di = 100 * wilder(plus_dm, 14) / wilder(tr, 14)
    minus_di = 100 * wilder(minus_dm, 14) / wilder(tr, 14)
    dx = 100 * (plus_di - minus_di).abs() / (plus_di + minus_di)
    adx = wilder(dx.dropna(), 14).reindex(frame.index)
    # TA-Lib seeds its sums slightly differently; compare once the smoothing has converged.
    for i in (-1, -5, -250, -1000):
        assert s["adx"][i] == pytest.approx(adx.iloc[i], rel=1e-3)
        assert s["plus_di"][i] == pytest.approx(plus_di.reindex(frame.index).iloc[i], rel=1e-3)


def test_risk_figures_match_their_definitions(recorded):
    a = analyse(recorded.history("GOOG"))
    close = recorded.history("GOOG").frame["Close"]
    year = close.iloc[-253:].pct_change().dropna()
    assert len(year) == 252
    excess = year - 0.04 / 252
    assert a.risk["volatility"] == pytest.approx(year.std() * np.sqrt(252))
    assert a.risk["sharpe"] == pytest.approx(excess.mean() / year.std() * np.sqrt(252))
    downside = np.sqrt((excess.clip(upper=0) ** 2).mean())
    assert a.risk["sortino"] == pytest.approx(excess.mean() / downside * np.sqrt(252))
    assert a.risk["max_drawdown"] == pytest.approx((close / close.cummax() - 1).min())
    last_year = recorded.history("GOOG").frame.iloc[-252:]
    assert a.range_52w["high"] == pytest.approx(last_year["High"].max())
    assert a.range_52w["low"] == pytest.approx(last_year["Low"].min())
