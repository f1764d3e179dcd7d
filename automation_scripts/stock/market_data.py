"""Market data: one ``PriceProvider`` interface, three sources (yahoo, csv, demo) + a recording.

Every provider returns a ``PriceHistory`` whose frame has a sorted, unique ``DatetimeIndex``
named ``Date`` and float columns Open/High/Low/Close/Volume, so the analysis never needs to
know where prices came from. Anything the provider had to repair (dropped rows, re-sorting) is
reported in ``problems`` rather than silently swallowed, because the article states its source.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from automation_scripts.base import AutomationError

log = logging.getLogger(__name__)

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
DATA_SOURCES = ("yahoo", "csv", "demo")
DEMO_LABEL = "demo data"

class ProviderError(AutomationError):
    """Prices could not be obtained (offline, unknown symbol, unusable file)."""


@dataclass
class PriceHistory:
    """Daily OHLCV prices of one ticker, oldest first."""

    ticker: str
    frame: pd.DataFrame                # DatetimeIndex "Date"; Open/High/Low/Close/Volume floats
    source: str                        # "yahoo" | "csv" | "demo" | "yahoo (recorded)" ...
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"

    @property
    def as_of(self) -> str:
        return self.frame.index[-1].date().isoformat() if len(self.frame) else ""


class PriceProvider(Protocol):
    name: str

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        """Up to ``years`` of daily prices. Raises ProviderError with a readable message."""


# ---------------------------------------------------------------------------------------------
# Cleaning shared by csv and recorded data.


def find_columns(columns: Iterable[str]) -> dict[str, str]:
    """Map our canonical names to the file's columns, case-insensitively.

    ``Adj Close`` is used for Close when present (it accounts for splits and dividends).
    """
    lookup = {re.sub(r"[\s_]+", " ", str(c)).strip().lower(): c for c in columns}
    found: dict[str, str] = {}
    for name in ("date", "open", "high", "low", "close", "volume"):
        if name in lookup:
            found[name.capitalize()] = lookup[name]
    if "date" not in lookup:
        for alt in ("datetime", "timestamp", "time", "day"):
            if alt in lookup:
                found["Date"] = lookup[alt]
                break
    for adj in ("adj close", "adjusted close", "adjclose"):
        if adj in lookup:
            found["AdjClose"] = lookup[adj]
            break
    for tick in ("ticker", "symbol"):
        if tick in lookup:
            found["Ticker"] = lookup[tick]
            break
    return found


def read_price_table(data: bytes) -> tuple[pd.DataFrame, list[str]]:
    """Decode and parse a CSV (``,`` or ``;``, UTF-8 with/without BOM or Latin-1).

    Returns the raw table and notes on how it was read. Raises ProviderError when it is not a
    table at all.
    """
    notes: list[str] = []
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if encoding != "utf-8-sig":
        notes.append("file is not UTF-8; read as Latin-1")
    first = text.lstrip().split("\n", 1)[0]
    sep = ";" if first.count(";") > first.count(",") else ","
    if sep == ";":
        notes.append("semicolon-separated file")
    try:
        table = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ProviderError(f"the price file is not a readable CSV table ({exc})") from exc
    return table, notes


def clean_prices(table: pd.DataFrame, label: str = "the file") -> tuple[pd.DataFrame, list[str]]:
    """Turn a raw OHLCV table into the canonical frame; list every repair in ``problems``.

    Required: Date and Close (or Adj Close); Open/High/Low default to Close and Volume to 0,
    each said in ``problems``. Raises ProviderError naming missing required columns.
    """
    problems: list[str] = []
    cols = find_columns(table.columns)
    missing = [c for c in ("Date", "Close") if c not in cols
               and not (c == "Close" and "AdjClose" in cols)]
    if missing:
        raise ProviderError(f"{label} is missing required column(s): {', '.join(missing)} "
                            f"(found: {', '.join(map(str, table.columns)) or 'none'})")
    close_col = cols.get("AdjClose", cols.get("Close"))
    out = pd.DataFrame(index=table.index)
    out["Date"] = pd.to_datetime(table[cols["Date"]], errors="coerce", format="mixed",
                                 dayfirst=False)
    if getattr(out["Date"].dt, "tz", None) is not None:
        out["Date"] = out["Date"].dt.tz_localize(None)
    out["Date"] = out["Date"].dt.normalize()

    def num(col: str) -> pd.Series:
        return pd.to_numeric(table[col].astype(str).str.replace(",", "", regex=False)
                             .str.strip(), errors="coerce")

    close = num(close_col)
    if "AdjClose" in cols and "Close" in cols:
        # Scale O/H/L by the adjustment so candles stay consistent with the adjusted close.
        factor = close / num(cols["Close"])
        factor = factor.where(np.isfinite(factor) & (factor > 0), 1.0)
    else:
        factor = pd.Series(1.0, index=table.index)
    out["Close"] = close
    for name in ("Open", "High", "Low"):
        if name in cols:
            out[name] = num(cols[name]) * factor
        else:
            out[name] = close
    absent = [n for n in ("Open", "High", "Low") if n not in cols]
    if absent:
        problems.append(f"no {'/'.join(absent)} column: used the close price instead")
    if "Volume" in cols:
        out["Volume"] = num(cols["Volume"]).fillna(0.0)
    else:
        out["Volume"] = 0.0
        problems.append("no Volume column: volume shown as 0")

    bad = out["Date"].isna() | out["Close"].isna() | (out["Close"] <= 0)
    for name in ("Open", "High", "Low"):
        bad |= out[name].isna() | (out[name] <= 0)
    if bad.any():
        n = int(bad.sum())
        problems.append(f"dropped {n} unreadable row(s) (bad date or price)")
        out = out[~bad]
    if not out["Date"].is_monotonic_increasing:
        problems.append("dates were not in order: sorted them")
        out = out.sort_values("Date", kind="stable")
    dup = out["Date"].duplicated(keep="last")
    if dup.any():
        problems.append(f"dropped {int(dup.sum())} duplicate date(s) (kept the last)")
        out = out[~dup]
    frame = out.set_index("Date")[list(COLUMNS)].astype(float)
    # High/Low must bracket Open/Close for the ATR/Stochastic maths.
    frame["High"] = frame[["High", "Open", "Close"]].max(axis=1)
    frame["Low"] = frame[["Low", "Open", "Close"]].min(axis=1)
    return frame, problems


def _trim_years(frame: pd.DataFrame, years: int) -> pd.DataFrame:
    if frame.empty:
        return frame
    start = frame.index[-1] - pd.DateOffset(years=years)
    return frame[frame.index > start]


def _ticker_variants(ticker: str) -> list[str]:
    return list(dict.fromkeys([ticker, ticker.replace("-", "."), ticker.replace("-", "")]))


# ---------------------------------------------------------------------------------------------
# CSV.


class CsvProvider:
    """Prices from an uploaded file and/or a folder of ``<TICKER>.csv`` files.

    ``upload``: path of one per-run upload (may hold a Ticker/Symbol column for several
    tickers; without one, its rows belong to every ticker asked for). ``directory``: the
    server-side folder (``TICKZEN_CSV_DIR``), looked up when the upload lacks the ticker.
    """

    name = "csv"

    def __init__(self, directory: str | Path | None = None, upload: str | Path | None = None,
                 source: str = "csv") -> None:
        self.directory = Path(directory) if directory else None
        self.upload = Path(upload) if upload else None
        self.source = source

    def _from_upload(self, ticker: str) -> tuple[pd.DataFrame, list[str], list[str]] | None:
        assert self.upload is not None
        if not self.upload.is_file():
            raise ProviderError("the uploaded price file is gone; upload it again")
        table, notes = read_price_table(self.upload.read_bytes())
        cols = find_columns(table.columns)
        if "Ticker" in cols:
            wanted = set(_ticker_variants(ticker))
            syms = table[cols["Ticker"]].astype(str).str.strip().str.upper()
            table = table[syms.isin(wanted)]
            if table.empty:
                return None
        frame, problems = clean_prices(table, "the uploaded file")
        return frame, notes, problems

    def _from_directory(self, ticker: str) -> tuple[pd.DataFrame, list[str], list[str]] | None:
        if self.directory is None:
            return None
        for variant in _ticker_variants(ticker):
            path = self.directory / f"{variant}.csv"
            if path.is_file():
                table, notes = read_price_table(path.read_bytes())
                frame, problems = clean_prices(table, path.name)
                return frame, notes, problems
        return None

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        found = self._from_upload(ticker) if self.upload else None
        if found is None:
            found = self._from_directory(ticker)
        if found is None:
            where = []
            if self.upload:
                where.append("the uploaded file")
            if self.directory:
                where.append(f"the CSV folder ({ticker}.csv)")
            if not where:
                raise ProviderError("the csv data source needs an uploaded price file "
                                    "(or TICKZEN_CSV_DIR on the server)")
            raise ProviderError(f"no prices for {ticker} in {' or '.join(where)}")
        frame, notes, problems = found
        if frame.empty:
            raise ProviderError(f"the price file for {ticker} has no usable rows")
        return PriceHistory(ticker, _trim_years(frame, years), self.source, notes, problems)


class RecordedProvider(CsvProvider):
    """Yahoo Finance answers recorded as ``<TICKER>.csv`` files, served like Yahoo would.

    Used where Yahoo is unreachable (tests, benchmarks): same interface, same errors
    (an unknown symbol is a ProviderError), real numbers.
    """

    name = "yahoo"

    def __init__(self, directory: str | Path) -> None:
        super().__init__(directory=directory, source="yahoo (recorded)")

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        if self._from_directory(ticker) is None:
            raise ProviderError(f"Yahoo Finance has no price data for '{ticker}' "
                                f"(unknown or delisted symbol)")
        return super().history(ticker, years)


# ---------------------------------------------------------------------------------------------
# Demo.


def stable_seed(text: str) -> int:
    """A seed that is the same in every process (``hash()`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class DemoProvider:
    """Synthetic prices, deterministic per ticker: a GBM with ticker-specific drift/volatility.

    The source is "demo", which the charts and the article print as "demo data".
    """

    name = "demo"

    def __init__(self, end: pd.Timestamp | str | None = None) -> None:
        self.end = pd.Timestamp(end or "2026-02-13").normalize()

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        rng = np.random.default_rng(stable_seed(f"demo:{ticker}"))
        n = int(252 * years)
        dates = pd.bdate_range(end=self.end, periods=n, name="Date")
        mu = rng.uniform(-0.05, 0.25) / 252
        sigma = rng.uniform(0.15, 0.55) / np.sqrt(252)
        start = float(np.exp(rng.uniform(np.log(5), np.log(500))))
        shocks = rng.standard_normal(n) * sigma + (mu - 0.5 * sigma**2)
        close = start * np.exp(np.cumsum(shocks))
        gap = rng.standard_normal(n) * sigma * 0.3
        open_ = close * np.exp(-shocks + gap)
        open_[0] = start
        span = np.abs(rng.standard_normal(n)) * sigma * 0.6
        high = np.maximum(open_, close) * np.exp(span)
        low = np.minimum(open_, close) * np.exp(-np.abs(rng.standard_normal(n)) * sigma * 0.6)
        volume = np.round(rng.lognormal(np.log(rng.uniform(2e5, 5e7)), 0.35, n))
        frame = pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close,
                              "Volume": volume.astype(float)}, index=dates)
        return PriceHistory(ticker, frame, "demo",
                            notes=[f"synthetic prices ({DEMO_LABEL}), not market data"])


# ---------------------------------------------------------------------------------------------
# Yahoo.


def _yfinance_download(ticker: str, years: int, timeout: float) -> pd.DataFrame:
    import yfinance as yf

    return yf.Ticker(ticker).history(period=f"{years}y", interval="1d", auto_adjust=True,
                                     timeout=timeout, raise_errors=True)


class NoAnswer(Exception):
    """``call_within``'s call did not return in time (it goes on, unwaited, on its thread)."""


def call_within(seconds: float, name: str, call: Callable[[], Any]) -> Any:
    """``call()`` on a daemon thread named ``name``, waited for at most ``seconds``: yfinance
    has no overall deadline, and a hanging request must cost an item its time, not a run its
    thread. Returns what it returned, raises what it raised, or NoAnswer."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["answer"] = call()
        except BaseException as exc:  # noqa: BLE001 - carried to the caller below
            box["error"] = exc

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise NoAnswer(name)
    if "error" in box:
        raise box["error"]
    return box.get("answer")


def probe_error(probe: tuple[str, int] | None, timeout: float) -> OSError | None:
    """Why a TCP connection to ``probe`` (host, port) failed within ``timeout``; None when it
    connected or there is no probe. A fast, clear "offline" before a slow library call."""
    if probe is None:
        return None
    try:
        with socket.create_connection(probe, timeout=timeout):
            return None
    except OSError as exc:
        return exc


class YahooProvider:
    """Yahoo Finance through yfinance, never hanging.

    A TCP probe (``probe_timeout``) turns "offline" into a fast, clear error; the download
    then runs in a daemon thread bounded by ``timeout`` in total. ``download`` is injectable
    for the bench and for tests of the error mapping.
    """

    name = "yahoo"

    def __init__(self, *, timeout: float = 20.0, probe_timeout: float = 3.0,
                 probe: tuple[str, int] | None = ("query2.finance.yahoo.com", 443),
                 download: Callable[[str, int, float], pd.DataFrame] | None = None) -> None:
        self.timeout = timeout
        self.probe_timeout = probe_timeout
        self.probe = probe
        self.download = download or _yfinance_download

    def _check_online(self) -> None:
        exc = probe_error(self.probe, self.probe_timeout)
        if exc is not None:
            raise ProviderError(f"Yahoo Finance is unreachable from this server (offline?): "
                                f"{exc.__class__.__name__}: {exc}. Use the csv or demo data "
                                f"source instead.") from exc

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        self._check_online()
        try:
            frame = call_within(self.timeout, f"yahoo-{ticker}",
                                lambda: self.download(ticker, years, self.timeout))
        except NoAnswer:
            raise ProviderError(f"Yahoo Finance did not answer within {self.timeout:.0f} s "
                                f"for {ticker}") from None
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a ProviderError
            text = str(exc)
            if any(w in text.lower() for w in ("delisted", "not found", "no data", "404",
                                               "no timezone", "symbol may be")):
                raise ProviderError(f"Yahoo Finance has no price data for '{ticker}' "
                                    f"(unknown or delisted symbol)") from exc
            raise ProviderError(f"Yahoo Finance failed for {ticker}: "
                                f"{exc.__class__.__name__}: {text[:200]}") from exc
        if frame is None or len(frame) == 0:
            raise ProviderError(f"Yahoo Finance has no price data for '{ticker}' "
                                f"(unknown or delisted symbol)")
        table = frame.reset_index()
        clean, problems = clean_prices(table, f"Yahoo's answer for {ticker}")
        if clean.empty:
            raise ProviderError(f"Yahoo Finance returned no usable prices for {ticker}")
        return PriceHistory(ticker, _trim_years(clean, years), "yahoo", problems=problems)


# ---------------------------------------------------------------------------------------------
# Choosing one.


def provider_for(data_source: str, settings: Mapping[str, Any], *,
                 upload_path: str | Path | None = None) -> PriceProvider:
    """The provider a run's ``data_source`` option names (already validated)."""
    if data_source == "demo":
        return DemoProvider()
    if data_source == "csv":
        return CsvProvider(directory=settings.get("TICKZEN_CSV_DIR"), upload=upload_path)
    if data_source == "yahoo":
        return YahooProvider()
    raise ProviderError(f"unknown data source {data_source!r}; use one of "
                        f"{', '.join(DATA_SOURCES)}")
