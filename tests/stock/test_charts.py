"""The three stock charts from reused figures: valid PNGs of the old sizes that look like the
old charts (``tests/support/baseline_charts.py``), whatever ticker, thread or order drew them.

"Look like" is measured on both renderings shrunk 8x (box filter, RGB, so 90 x 48 pixels for
a 720 x 384 chart): every 8 x 8 block's mean colour per channel. Measured on GOOG, KVUE, two
demo tickers and GOOG cut to 30..260 rows (every chart layout), the new charts differ from the
old by at most 0.17 on average and 15 in the worst block (0..255): text is placed on whole
pixels now, which moves some labels by up to half a pixel. The smallest real change tried
moves the worst block by 33 or more: one legend entry and its line missing (69), SMA 50
drawn in SMA 200's colour (33), a different ticker in the title (46), the demo stamp (38), a
window 24 days shorter (86), volumes 10 % lower (89). Hence: mean under 0.5, worst block under
24.
"""

from __future__ import annotations

import io
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from automation_scripts.stock.charts import StockCharts
from automation_scripts.stock.forecast import forecast
from automation_scripts.stock.indicators import analyse
from automation_scripts.stock.market_data import DemoProvider, PriceHistory
from tests.support import baseline_charts

SIZES = {"price": (720, 384), "momentum": (720, 384), "volume": (720, 256)}
MEAN_LIMIT, BLOCK_LIMIT = 0.5, 24


def _draw(charts: StockCharts, history: PriceHistory) -> dict[str, bytes]:
    a, fc, frame, src = (analyse(history), forecast(history.frame["Close"]), history.frame,
                         history.source)
    return {"price": charts.price(frame, a, fc, src), "momentum": charts.momentum(frame, a, src),
            "volume": charts.volume(frame, a, src)}


def _baseline(history: PriceHistory) -> dict[str, bytes]:
    a, fc, frame, src = (analyse(history), forecast(history.frame["Close"]), history.frame,
                         history.source)
    return {"price": baseline_charts.price_chart(frame, a, fc, src),
            "momentum": baseline_charts.momentum_chart(frame, a, src),
            "volume": baseline_charts.volume_chart(frame, a, src)}


def _small(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return np.asarray(image.resize((image.width // 8, image.height // 8),
                                   Image.Resampling.BOX), dtype=float)


def _assert_looks_the_same(new: bytes, old: bytes, what: str) -> None:
    diff = np.abs(_small(new) - _small(old))
    assert diff.mean() < MEAN_LIMIT, f"{what}: mean difference {diff.mean():.2f}"
    assert diff.max() < BLOCK_LIMIT, f"{what}: worst block differs by {diff.max():.0f}"


@pytest.fixture(scope="module")
def goog(recorded) -> PriceHistory:
    history = recorded.history("GOOG", years=10)
    assert len(history.frame) > 2_400                 # a real ten-year series
    return history


def test_each_chart_is_a_png_of_the_old_size(goog):
    for name, png in _draw(StockCharts(), goog).items():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        image = Image.open(io.BytesIO(png))
        image.verify()                                # chunk CRCs, structure
        image = Image.open(io.BytesIO(png))
        image.load()                                  # the pixel data decompresses
        assert image.size == SIZES[name], name
        assert image.mode == "RGB"


@pytest.mark.parametrize("ticker", ["GOOG", "KVUE"])
def test_real_charts_look_like_the_baseline(recorded, ticker):
    history = recorded.history(ticker, years=10)
    new, old = _draw(StockCharts(), history), _baseline(history)
    for name in SIZES:
        assert Image.open(io.BytesIO(new[name])).size == Image.open(io.BytesIO(old[name])).size
        _assert_looks_the_same(new[name], old[name], f"{ticker} {name}")


@pytest.mark.parametrize("rows", [30, 34, 49, 120, 260])
def test_every_layout_looks_like_the_baseline(goog, rows):
    """Short histories lack MACD (< 34 rows), SMA 50/200, the volume average (< 50): each
    such layout is a figure of its own."""
    history = PriceHistory(goog.ticker, goog.frame.iloc[-rows:], goog.source)
    new, old = _draw(StockCharts(), history), _baseline(history)
    for name in SIZES:
        _assert_looks_the_same(new[name], old[name], f"{rows} rows {name}")


def test_demo_charts_carry_the_stamp_like_the_baseline():
    history = DemoProvider().history("AAPL", years=10)
    new, old = _draw(StockCharts(), history), _baseline(history)
    for name in SIZES:
        _assert_looks_the_same(new[name], old[name], f"demo {name}")


def test_a_reused_figure_draws_each_ticker_as_a_fresh_one(recorded, goog):
    """No state leaks from one ticker into the next: layouts, limits, texts, the stamp."""
    kvue, demo = recorded.history("KVUE", years=10), DemoProvider().history("AAPL", years=10)
    charts = StockCharts()
    first = _draw(charts, goog)
    _draw(charts, demo)
    _draw(charts, PriceHistory(goog.ticker, goog.frame.iloc[-40:], goog.source))
    _draw(charts, kvue)
    assert _draw(charts, goog) == first
    assert _draw(StockCharts(), goog) == first
    assert _draw(charts, kvue) == _draw(StockCharts(), kvue)


def test_threads_draw_on_their_own_figures(recorded, goog):
    kvue = recorded.history("KVUE", years=10)
    expected = {"GOOG": _draw(StockCharts(), goog), "KVUE": _draw(StockCharts(), kvue)}
    charts = StockCharts()                            # one instance shared by all threads
    results: list[tuple[str, dict[str, bytes]]] = []
    errors: list[BaseException] = []

    def work(histories: list[PriceHistory]) -> None:
        try:
            for history in histories:
                results.append((history.ticker, _draw(charts, history)))
        except Exception as exc:                      # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=([goog, kvue] * 3 if i % 2 else
                                                   [kvue, goog] * 3,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 24
    for ticker, drawn in results:
        assert drawn == expected[ticker], ticker


def test_charts_survive_pickling(goog):
    """A process pool pickles the automation: the copy carries no figures and draws its own."""
    charts = StockCharts()
    before = _draw(charts, goog)
    copy = pickle.loads(pickle.dumps(charts))
    assert _draw(copy, goog) == before
