"""Where the stock depth comes from, one provider per data source, behind one interface.

- yahoo: yfinance's ``Ticker.get_info()`` (the ``Ticker.info`` dict) and
  ``Ticker.get_dividends()``, never hanging (a TCP probe, then a thread bounded by ``timeout``),
  each request through the automation's Yahoo request window; ``fetch`` is injectable.
- recorded: ``<TICKER>.info.json`` (a ``Ticker.info`` dict) and ``<TICKER>.dividends.csv``
  (the dividend series as yfinance writes it) from a folder, served like Yahoo would: the tests'
  stand-in for the network.
- demo: synthesised from the ticker (and labelled demo wherever it shows).
- csv: price files carry no company data, so none.

The benchmark's prices come from the run's own price provider (the same cache and window for
yahoo; the CSV folder, or an upload naming the symbol, for csv), except for demo data, where a
benchmark is synthesised that moves partly with the stock, labelled demo too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from automation_scripts.stock.fundamentals import (
    CompanyData,
    Comparison,
    company_from_info,
    compare,
    depth_facts,
)
from automation_scripts.stock.market_data import (
    CsvProvider,
    NoAnswer,
    PriceHistory,
    PriceProvider,
    ProviderError,
    RecordedProvider,
    call_within,
    clean_prices,
    find_columns,
    probe_error,
    read_price_table,
    stable_seed,
)
from automation_scripts.stock.rate_limit import OnWait, RequestWindow

InfoAnswer = tuple[dict[str, Any], "pd.Series | None"]
Fetch = Callable[[str, float], InfoAnswer]


class CompanyDataProvider(Protocol):
    name: str

    def company(self, ticker: str, last_close: float | None, as_of: str) -> CompanyData:
        """What is known of the company (parts None when unknown). Raises ProviderError when
        the provider could not be asked at all."""


def _yfinance_fetch(ticker: str, timeout: float) -> InfoAnswer:
    import yfinance as yf

    handle = yf.Ticker(ticker)
    return handle.get_info(), handle.get_dividends(period="10y")


class YahooCompanyData:
    """``Ticker.info`` and the dividend series through yfinance (see the module docstring)."""

    name = "yahoo"

    def __init__(self, *, fetch: Fetch | None = None, timeout: float = 20.0,
                 probe: tuple[str, int] | None = ("query2.finance.yahoo.com", 443),
                 probe_timeout: float = 3.0, window: RequestWindow | None = None,
                 on_wait: OnWait | None = None) -> None:
        self.fetch = fetch or _yfinance_fetch
        self.timeout = timeout
        self.probe = probe
        self.probe_timeout = probe_timeout
        self.window = window
        self.on_wait = on_wait

    def company(self, ticker: str, last_close: float | None, as_of: str) -> CompanyData:
        unreachable = probe_error(self.probe, self.probe_timeout)
        if unreachable is not None:
            raise ProviderError(f"Yahoo Finance is unreachable ({type(unreachable).__name__})"
                                ) from unreachable
        if self.window is not None:          # two requests: the info and the dividends
            self.window.acquire(self.on_wait)
            self.window.acquire(self.on_wait)
        try:
            info, dividends = call_within(self.timeout, f"yahoo-info-{ticker}",
                                          lambda: self.fetch(ticker, self.timeout))
        except NoAnswer:
            raise ProviderError(f"Yahoo Finance did not answer within {self.timeout:.0f} s "
                                f"for {ticker}'s company data") from None
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a ProviderError
            raise ProviderError(f"Yahoo Finance's company data for {ticker} failed: "
                                f"{type(exc).__name__}: {str(exc)[:160]}") from exc
        return company_from_info(info if isinstance(info, dict) else {}, dividends,
                                 source="yahoo", last_close=last_close, as_of=as_of)


def read_dividends(path: Path) -> pd.Series | None:
    """A dividend series saved as ``Date,Dividends`` (yfinance's ``Series.to_csv``)."""
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    if "Date" not in table or "Dividends" not in table:
        raise ProviderError(f"{path.name} needs Date and Dividends columns")
    return pd.Series(table["Dividends"].to_numpy(),
                     index=pd.to_datetime(table["Date"], utc=True), name="Dividends")


class RecordedCompanyData:
    """Yahoo's answers kept as files (``<TICKER>.info.json``, ``<TICKER>.dividends.csv``)."""

    name = "yahoo"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def company(self, ticker: str, last_close: float | None, as_of: str) -> CompanyData:
        path = self.directory / f"{ticker}.info.json"
        info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        return company_from_info(info, read_dividends(self.directory /
                                                      f"{ticker}.dividends.csv"),
                                 source="yahoo (recorded)", last_close=last_close, as_of=as_of)


SECTORS = (("Technology", "Software - Infrastructure"), ("Healthcare", "Medical Devices"),
           ("Industrials", "Specialty Industrial Machinery"),
           ("Consumer Defensive", "Household & Personal Products"),
           ("Financial Services", "Asset Management"), ("Energy", "Oil & Gas Integrated"),
           ("Utilities", "Utilities - Regulated Electric"),
           ("Communication Services", "Internet Content & Information"))
RECOMMENDATION_KEYS = ("strong_buy", "buy", "buy", "hold", "hold", "underperform")


class DemoCompanyData:
    """Synthetic company data, deterministic per ticker, shaped like a ``Ticker.info``
    answer so it is read by the same code (source "demo": labelled wherever it shows)."""

    name = "demo"

    def company(self, ticker: str, last_close: float | None, as_of: str) -> CompanyData:
        rng = np.random.default_rng(stable_seed(f"demo-company:{ticker}"))
        price = float(last_close or 50.0)
        sector, industry = SECTORS[int(rng.integers(len(SECTORS)))]
        pe = float(rng.uniform(9, 45))
        info: dict[str, Any] = {
            "longName": f"{ticker} Demo Holdings", "sector": sector,
            "industry": industry, "country": "Demoland",
            "fullTimeEmployees": int(rng.integers(800, 120_000)),
            "marketCap": round(price * float(rng.uniform(5e7, 5e9)), -6),
            "trailingPE": round(pe, 2), "forwardPE": round(pe * float(rng.uniform(0.7, 1.1)), 2),
            "priceToSalesTrailing12Months": round(float(rng.uniform(0.6, 12)), 2),
            "currentPrice": price}
        dividends = None
        if rng.random() < 0.6:
            quarterly = round(price * float(rng.uniform(0.004, 0.012)), 2) or 0.01
            year = int(as_of[:4]) if as_of else 2026
            dates = pd.date_range(f"{year - 6}-02-15", periods=24 + 1, freq="QS-FEB",
                                  tz="UTC") + pd.Timedelta(days=14)
            growth = float(rng.uniform(0.0, 0.08))
            amounts = [round(quarterly / (1 + growth) ** ((len(dates) - 1 - i) / 4), 4)
                       for i in range(len(dates))]
            dividends = pd.Series(amounts, index=dates, name="Dividends")
            info.update(dividendRate=round(quarterly * 4, 2),
                        dividendYield=round(quarterly * 4 / price * 100, 2),
                        payoutRatio=round(float(rng.uniform(0.2, 0.75)), 4))
        count = int(rng.integers(0, 35))
        if count:
            mean = price * float(rng.uniform(0.85, 1.3))
            info.update(targetMeanPrice=round(mean, 2),
                        targetHighPrice=round(mean * float(rng.uniform(1.1, 1.5)), 2),
                        targetLowPrice=round(mean * float(rng.uniform(0.55, 0.9)), 2),
                        numberOfAnalystOpinions=count,
                        recommendationKey=RECOMMENDATION_KEYS[
                            int(rng.integers(len(RECOMMENDATION_KEYS)))])
        return company_from_info(info, dividends, source="demo", last_close=price, as_of=as_of)


# ---------------------------------------------------------------------------------------------
# Benchmark prices.


def demo_benchmark(stock: PriceHistory, symbol: str) -> PriceHistory:
    """A synthetic benchmark on the stock's dates: part of each day's move is the stock's own
    (correlation 0.3..0.85, annual volatility about 16 %), the rest its own noise."""
    rng = np.random.default_rng(stable_seed(f"demo-benchmark:{stock.ticker}:{symbol}"))
    close = stock.frame["Close"].to_numpy()
    moves = np.diff(np.log(close), prepend=np.log(close[0]))
    own = float(moves[1:].std()) or 0.01
    rho, sigma = float(rng.uniform(0.3, 0.85)), 0.16 / np.sqrt(252)
    noise = rng.standard_normal(len(moves))
    bench_moves = sigma * (rho * moves / own + np.sqrt(1 - rho ** 2) * noise)
    bench_moves[0] = 0.0
    level = float(rng.uniform(150, 600)) * np.exp(np.cumsum(bench_moves))
    frame = pd.DataFrame({"Open": level, "High": level, "Low": level, "Close": level,
                          "Volume": 0.0}, index=stock.frame.index)
    return PriceHistory(symbol, frame, "demo", notes=["synthetic benchmark (demo data)"])


def _csv_benchmark(provider: CsvProvider, symbol: str, years: int) -> PriceHistory | None:
    """The benchmark from the CSV folder, or from an upload whose Ticker column names it (an
    upload without one holds a single ticker's prices: never a benchmark's)."""
    if provider.upload is not None and provider.upload.is_file():
        table, _notes = read_price_table(provider.upload.read_bytes())
        cols = find_columns(table.columns)
        if "Ticker" in cols:
            rows = table[table[cols["Ticker"]].astype(str).str.strip().str.upper() == symbol]
            if not rows.empty:
                frame, problems = clean_prices(rows, "the uploaded file")
                return PriceHistory(symbol, frame, provider.source, problems=problems)
    if provider.directory is None:
        return None
    try:
        return CsvProvider(directory=provider.directory, source=provider.source).history(
            symbol, years)
    except ProviderError:
        return None


def benchmark_history(prices: PriceProvider, stock: PriceHistory, symbol: str,
                      years: int) -> PriceHistory | None:
    """The benchmark's prices from the run's price provider (see the module docstring); None
    when it has none. Raises ProviderError when asking failed (offline, throttled...)."""
    if stock.is_demo:
        return demo_benchmark(stock, symbol)
    if isinstance(prices, CsvProvider) and not isinstance(prices, RecordedProvider):
        return _csv_benchmark(prices, symbol, years)
    try:
        return prices.history(symbol, years)
    except ProviderError as exc:
        if "no price data" in str(exc):             # an unknown symbol: no comparison
            return None
        raise


@dataclass(frozen=True)
class Depth:
    """An item's depth: the company's data and the benchmark comparison (None when the data
    source has none), and why a part is missing when asking for it failed."""

    company: CompanyData | None = None
    comparison: Comparison | None = None
    notes: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        return {**depth_facts(self.company, self.comparison), "depth_notes": list(self.notes)}


def gather_depth(stock: PriceHistory, prices: PriceProvider,
                 company: CompanyDataProvider | None, benchmark: str, years: int) -> Depth:
    """Ask for the company's data and the benchmark's prices; a failure costs that part of
    the article (with a note), never the item."""
    notes: list[str] = []
    known = None
    close = float(stock.frame["Close"].iloc[-1]) if len(stock.frame) else None
    if company is not None:
        try:
            known = company.company(stock.ticker, close, stock.as_of)
        except ProviderError as exc:
            notes.append(f"company data left out: {exc}")
    comparison = None
    if benchmark and benchmark != stock.ticker:
        try:
            bench = benchmark_history(prices, stock, benchmark, years)
        except ProviderError as exc:
            bench = None
            notes.append(f"benchmark comparison left out: {exc}")
        if bench is not None:
            comparison = compare(stock.frame["Close"], bench.frame["Close"], benchmark,
                                 source=bench.source)
            if comparison is None:
                notes.append(f"benchmark comparison left out: too few trading days shared "
                             f"with {benchmark}")
        elif not notes or not notes[-1].startswith("benchmark"):
            notes.append(f"benchmark comparison left out: no {benchmark} prices in the "
                         f"{stock.source} data")
    return Depth(known if known is not None and not known.empty else None, comparison, notes)
