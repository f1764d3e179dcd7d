"""Stock depth records: a Ticker.info answer read into profile, valuation, dividends and
analyst targets (fixtures/yahoo_company: HAND-MADE in yfinance's shape, see its README), the
benchmark comparison's maths, and the providers' interface and errors."""

from __future__ import annotations

import inspect
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automation_scripts.stock.company_data import (
    DemoCompanyData,
    RecordedCompanyData,
    YahooCompanyData,
    benchmark_history,
    demo_benchmark,
    read_dividends,
)
from automation_scripts.stock.fundamentals import (
    MIN_OVERLAP,
    company_from_info,
    compare,
    depth_facts,
    dividend_yield,
)
from automation_scripts.stock.market_data import CsvProvider, DemoProvider, ProviderError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "yahoo_company"


def info(ticker: str) -> dict:
    return json.loads((FIXTURES / f"{ticker}.info.json").read_text())


def test_a_ticker_info_answer_is_read_into_the_records():
    company = RecordedCompanyData(FIXTURES).company("GOOG", 302.24, "2026-02-17")
    assert company.source == "yahoo (recorded)" and not company.is_demo
    assert company.profile.name == "Alphabet Inc."
    assert (company.profile.sector, company.profile.industry) == (
        "Communication Services", "Internet Content & Information")
    assert company.profile.employees == 187103
    v = company.valuation
    assert (v.market_cap, v.trailing_pe, v.forward_pe, v.price_to_sales) == (
        3.66e12, 28.4, 24.1, 9.3)
    d = company.dividends
    assert d.yield_ratio == pytest.approx(0.0028) and d.payout_ratio == 0.0771
    assert d.years == [{"year": 2025, "total": 0.83}]        # 2024 paid three times: partial
    assert (d.last_date, d.last_amount) == ("2025-12-08", 0.21)
    a = company.analysts
    assert (a.mean, a.high, a.low, a.analysts, a.recommendation) == (
        335.5, 400.0, 255.0, 19, "buy")
    assert a.upside == pytest.approx(335.5 / 302.24 - 1)


def test_a_high_payout_and_a_young_dividend_history():
    d = RecordedCompanyData(FIXTURES).company("KVUE", 18.68, "2026-02-19").dividends
    assert d.yield_ratio == pytest.approx(0.0444) and d.payout_ratio > 1
    assert d.years == [{"year": 2024, "total": 0.815}, {"year": 2025, "total": 0.8275}]


def test_an_unknown_symbols_answer_has_no_parts():
    company = RecordedCompanyData(FIXTURES).company("ZZZZ", 10.0, "2026-02-17")
    assert company.empty and company.profile is None and company.analysts is None
    assert depth_facts(company, None)["profile"] is None
    assert RecordedCompanyData(FIXTURES).company("NOFILE", 10.0, "2026-02-17").empty


@pytest.mark.parametrize("answer, price, expected", [
    ({"dividendYield": 0.44, "dividendRate": 1.04}, 236.0, 0.0044),        # percent (now)
    ({"dividendYield": 0.0044, "dividendRate": 1.04}, 236.0, 0.0044),      # fraction (before)
    ({"dividendYield": 4.44, "trailingAnnualDividendYield": 0.0437}, None, 0.0444),
    ({"dividendYield": 2.5}, 100.0, 0.025),                    # no cross-check: percent
    ({"dividendRate": 2.0}, 100.0, 0.02),                      # only the rate
    ({}, 100.0, None),
])
def test_dividend_yield_in_either_unit(answer, price, expected):
    found = dividend_yield(answer, price)
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_garbage_values_are_not_figures():
    company = company_from_info({"longName": "X Corp", "marketCap": "big", "trailingPE": -3,
                                 "forwardPE": float("nan"), "targetMeanPrice": True,
                                 "numberOfAnalystOpinions": 4, "dividendYield": None},
                                None, source="yahoo", last_close=10.0)
    assert company.profile.name == "X Corp" and company.valuation is None
    assert company.dividends is None and company.analysts is None


def _series(values: np.ndarray, start: str = "2023-01-02") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)))


def test_the_comparison_measures_beta_correlation_and_relative_return():
    rng = np.random.default_rng(7)
    bench_moves = rng.normal(0.0004, 0.01, 700)
    stock_moves = 1.5 * bench_moves + rng.normal(0, 0.004, 700)
    bench = _series(100 * np.cumprod(1 + bench_moves))
    stock = _series(50 * np.cumprod(1 + stock_moves))
    c = compare(stock, bench, "SPY", source="csv")
    assert c.days == 504 and c.symbol == "SPY" and c.source == "csv"
    assert c.beta == pytest.approx(1.5, abs=0.08) and 0.9 < c.correlation < 1
    window = stock.iloc[-504:]
    assert c.stock_return == pytest.approx(window.iloc[-1] / window.iloc[0] - 1)
    assert c.relative == pytest.approx(c.stock_return - c.benchmark_return)
    assert c.start == window.index[0].date().isoformat()
    facts = depth_facts(None, c)["benchmark"]
    assert facts["relative_points"] == round(c.relative * 100, 1)


def test_too_few_common_days_or_a_flat_benchmark_means_no_comparison():
    stock = _series(np.linspace(10, 20, 300))
    assert compare(stock, _series(np.linspace(5, 6, MIN_OVERLAP - 1), "2024-01-01"), "SPY",
                   source="csv") is None
    assert compare(stock, _series(np.full(300, 7.0)), "SPY", source="csv") is None


def test_demo_company_data_and_benchmark_are_synthetic_and_labelled():
    stock = DemoProvider().history("AAPL")
    company = DemoCompanyData().company("AAPL", float(stock.frame["Close"].iloc[-1]),
                                        stock.as_of)
    again = DemoCompanyData().company("AAPL", float(stock.frame["Close"].iloc[-1]),
                                      stock.as_of)
    assert company == again and company.is_demo and company.profile.name.startswith("AAPL")
    bench = benchmark_history(DemoProvider(), stock, "SPY", 10)
    assert bench.source == "demo" and bench.frame.index.equals(stock.frame.index)
    c = compare(stock.frame["Close"], bench.frame["Close"], "SPY", source=bench.source)
    assert c.is_demo and 0.2 < c.correlation < 0.95
    assert demo_benchmark(stock, "SPY").frame.equals(bench.frame)


# -- the yahoo provider: yfinance's interface, an injected fetch, errors ------------------------

def test_the_default_fetch_uses_yfinances_real_interface():
    import yfinance as yf

    assert callable(yf.Ticker.get_info)
    assert "period" in inspect.signature(yf.Ticker.get_dividends).parameters


def _fixture_fetch(ticker: str, timeout: float):
    return info(ticker), read_dividends(FIXTURES / f"{ticker}.dividends.csv")


def test_yahoo_reads_the_answer_of_its_fetch():
    company = YahooCompanyData(fetch=_fixture_fetch, probe=None).company("KVUE", 18.68,
                                                                         "2026-02-19")
    assert company.source == "yahoo" and company.profile.name == "Kenvue Inc."
    assert company.analysts.recommendation == "hold"


def test_yahoo_errors_are_provider_errors():
    def broken(ticker, timeout):
        raise RuntimeError("HTTP Error 404: Quote not found")

    with pytest.raises(ProviderError, match="company data for X failed.*404"):
        YahooCompanyData(fetch=broken, probe=None).company("X", 1.0, "")
    release = threading.Event()

    def hangs(ticker, timeout):
        release.wait(10)
        return {}, None

    try:
        with pytest.raises(ProviderError, match="did not answer"):
            YahooCompanyData(fetch=hangs, probe=None, timeout=0.2).company("X", 1.0, "")
    finally:
        release.set()


def test_yahoo_offline_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                 # closed once the block ends
    provider = YahooCompanyData(fetch=_fixture_fetch, probe=("127.0.0.1", port))
    with pytest.raises(ProviderError, match="unreachable"):
        provider.company("GOOG", 1.0, "")


# -- the csv benchmark -------------------------------------------------------------------------

def _csv(path: Path, closes: np.ndarray, start: str = "2023-01-02", ticker: str = "") -> str:
    dates = pd.bdate_range(start, periods=len(closes))
    head = "Date,Close" + (",Ticker" if ticker else "")
    rows = [f"{d.date()},{c:.4f}" + (f",{ticker}" if ticker else "")
            for d, c in zip(dates, closes, strict=True)]
    path.write_text("\n".join([head, *rows]))
    return "\n".join(rows)


def test_csv_benchmark_from_the_folder_or_an_upload_naming_it(tmp_path):
    rng = np.random.default_rng(3)
    _csv(tmp_path / "ABC.csv", 20 * np.cumprod(1 + rng.normal(0, 0.01, 400)))
    stock = CsvProvider(directory=tmp_path).history("ABC")
    assert benchmark_history(CsvProvider(directory=tmp_path), stock, "SPY", 10) is None
    _csv(tmp_path / "SPY.csv", 400 * np.cumprod(1 + rng.normal(0, 0.008, 400)))
    bench = benchmark_history(CsvProvider(directory=tmp_path), stock, "SPY", 10)
    assert bench.source == "csv" and len(bench.frame) == 400

    upload = tmp_path / "upload.csv"
    _csv(upload, np.linspace(10, 12, 400))                 # one ticker's prices, unnamed
    assert benchmark_history(CsvProvider(upload=upload), stock, "SPY", 10) is None
    _csv(upload, np.linspace(10, 12, 400), ticker="ABC")
    with upload.open("a") as handle:
        handle.write("\n" + _csv(tmp_path / "x.csv", np.linspace(300, 330, 400), ticker="SPY"))
    bench = benchmark_history(CsvProvider(upload=upload), stock, "SPY", 10)
    assert bench.frame["Close"].iloc[0] == 300
