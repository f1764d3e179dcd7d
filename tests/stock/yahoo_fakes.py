"""A fake clock and a fake Yahoo download for the cache and rate-limit tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone

import pandas as pd

from automation_scripts.stock.market_data import DemoProvider, YahooProvider
from automation_scripts.stock.price_cache import PriceCache
from automation_scripts.stock.rate_limit import RequestWindow
from automation_scripts.stock.yahoo_prices import YahooPrices

# 10:00 in New York on Wednesday 25 November 2026.
START = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)


class FakeTime:
    """Wall time that moves only when something sleeps (or a test moves it)."""

    def __init__(self, start: datetime = START) -> None:
        self.now_ts = start.timestamp()
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now_ts

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now_ts += seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ts, timezone.utc)

    def move_to(self, moment: datetime) -> None:
        self.now_ts = moment.timestamp()

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


class YFRateLimitError(Exception):
    """Same class name as yfinance's."""

    def __init__(self) -> None:
        super().__init__("Too Many Requests. Rate limited. Try after a while.")


class FakeDownload:
    """Yahoo-shaped answers (a New York DatetimeIndex, Dividends and Stock Splits columns)
    from the demo prices; counts downloads per ticker; ``refuse`` answers that many calls with
    YFRateLimitError first; ``gate`` (an Event) holds each download until it is set."""

    def __init__(self, refuse: int = 0, gate: threading.Event | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.refuse = refuse
        self.gate = gate
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, ticker: str, years: int, timeout: float) -> pd.DataFrame:
        with self._lock:
            self.calls[ticker] += 1
            refuse = self.refuse > 0
            self.refuse -= 1 if refuse else 0
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(30)
        if refuse:
            raise YFRateLimitError()
        frame = DemoProvider().history(ticker, years).frame.iloc[-300:]
        frame = frame.assign(Dividends=0.0, **{"Stock Splits": 0.0}).rename_axis("Date")
        frame.index = frame.index.tz_localize("America/New_York")
        return frame

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def yahoo_prices(clock: FakeTime, download: Callable[..., pd.DataFrame], cache_dir=None, *,
                 per_minute: int = 30, ledger=None) -> YahooPrices:
    """YahooPrices on the fake clock whose downloads go to ``download`` (no network probe)."""
    window = RequestWindow(per_minute, clock=clock.time, sleep=clock.sleep, ledger=ledger)
    cache = PriceCache(cache_dir, now=clock.now) if cache_dir is not None else None
    return YahooPrices(window, cache,
                       make_yahoo=lambda: YahooProvider(probe=None, download=download))
