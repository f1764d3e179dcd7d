"""Each ticker's price history, kept for the US trading day it was downloaded on.

A campaign working through 500 tickers a day would otherwise download ten years of prices for
every ticker on every run and every retry, and Yahoo throttles. ``PriceCache`` keeps one file
per ticker and trading day, ``<root>/<YYYY-MM-DD>/<TICKER>.npz``, where the day is the
market's own date in New York: every run, retry and instance (with the folder on a shared
mount) that asks for the same ticker that day reads the file and downloads nothing; the next
day downloads again. Files are written to a temporary name and renamed over the old one, so a
reader sees a whole file or none; one that cannot be read (truncated, corrupt, another
format) is ignored and replaced. Threads of one process asking for the same ticker wait for
one download (a lock per ticker and day). Days before yesterday are removed when a new day
begins.

The file is a NumPy ``.npz`` (no pickles): the dates, the five price columns as float64
(exact, unlike a text format's rounding), and the history's source, notes and problems as
JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from automation_scripts.stock.market_data import COLUMNS, PriceHistory, PriceProvider

log = logging.getLogger(__name__)

MARKET_ZONE = ZoneInfo("America/New_York")
FORMAT = 1
KEEP_DAYS = 2                        # today's folder and yesterday's
_UNSAFE = re.compile(r"[^A-Za-z0-9.^=-]")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def trading_day(moment: datetime) -> date:
    """The US market's date at ``moment`` (New York time; a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(MARKET_ZONE).date()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def file_name(ticker: str) -> str:
    """A file name for a ticker (``BRK-B``, ``^GSPC`` stay readable; anything else escaped)."""
    safe = _UNSAFE.sub(lambda m: f"_{ord(m.group(0)):02X}", ticker)
    return f"{safe or '_'}.npz"


@dataclass
class _KeyLock:
    lock: threading.Lock
    users: int = 0


class PriceCache:
    """Price histories under ``root``, one file per trading day and ticker (see the module
    docstring). ``now`` is injectable (tests move the day)."""

    def __init__(self, root: str | Path, *, now: Callable[[], datetime] = utc_now,
                 keep_days: int = KEEP_DAYS) -> None:
        self.root = Path(root)
        self.now = now
        self.keep_days = max(1, keep_days)
        self._guard = threading.Lock()
        self._keys: dict[tuple[date, str], _KeyLock] = {}

    def today(self) -> date:
        return trading_day(self.now())

    def path(self, ticker: str, day: date) -> Path:
        return self.root / day.isoformat() / file_name(ticker)

    # -- the one call the provider makes ----------------------------------------------------

    def fetch(self, ticker: str, years: int, load: Callable[[], PriceHistory]) -> PriceHistory:
        """Today's cached history of ``ticker``, else ``load()``'s, kept for the rest of the
        day. Threads asking for the same ticker meanwhile wait for this one's answer."""
        day = self.today()
        with self._locked((day, ticker)):
            cached = self.get(ticker, years, day)
            if cached is not None:
                return cached
            history = load()
            self.put(history, years, day)
            return history

    # -- reading and writing ------------------------------------------------------------------

    def get(self, ticker: str, years: int, day: date | None = None) -> PriceHistory | None:
        """The cached history, or None when there is none usable (absent, unreadable, for
        another ticker, or holding fewer years than asked)."""
        path = self.path(ticker, day or self.today())
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            return self._decode(data, ticker, years)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("ignoring the unreadable price cache file %s (%s: %s)", path,
                        type(exc).__name__, exc)
            return None

    def put(self, history: PriceHistory, years: int, day: date | None = None) -> None:
        """Write ``history`` atomically; a failure is logged, never raised (the item has its
        prices either way)."""
        day = day or self.today()
        path = self.path(history.ticker, day)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            new_day = not path.parent.is_dir()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(self._encode(history, years))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not write the price cache file %s: %s", path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        if new_day:
            self.prune(day)

    def prune(self, today: date) -> None:
        """Remove the folders of days older than the ``keep_days`` newest (up to today)."""
        oldest = today - timedelta(days=self.keep_days - 1)
        with contextlib.suppress(OSError):
            for folder in self.root.iterdir():
                if folder.is_dir() and _DAY.match(folder.name) \
                        and folder.name < oldest.isoformat():
                    shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _encode(history: PriceHistory, years: int) -> bytes:
        frame = history.frame
        meta = {"format": FORMAT, "ticker": history.ticker, "source": history.source,
                "years": years, "rows": len(frame), "notes": list(history.notes),
                "problems": list(history.problems), "saved_at": utc_now().isoformat()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, dates=frame.index.values,
                            values=frame[list(COLUMNS)].to_numpy(dtype=np.float64),
                            meta=np.array(json.dumps(meta)))
        return buffer.getvalue()

    @staticmethod
    def _decode(data: bytes, ticker: str, years: int) -> PriceHistory | None:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            dates, values = archive["dates"], archive["values"]
        if meta.get("format") != FORMAT or meta.get("ticker") != ticker:
            raise ValueError("written for another format or ticker")
        if int(meta.get("years", 0)) < years:
            return None                            # holds less than asked: download
        rows = int(meta["rows"])
        if not np.issubdtype(dates.dtype, np.datetime64) or dates.shape != (rows,) \
                or values.shape != (rows, len(COLUMNS)) or not rows:
            raise ValueError("the arrays do not match the file's own description")
        if not np.isfinite(values).all():
            raise ValueError("prices that are not numbers")
        index = pd.DatetimeIndex(dates, name="Date")
        if not (index.is_monotonic_increasing and index.is_unique):
            raise ValueError("dates out of order")
        frame = pd.DataFrame(values, index=index, columns=list(COLUMNS))
        if int(meta["years"]) > years:
            frame = frame[frame.index > frame.index[-1] - pd.DateOffset(years=years)]
        return PriceHistory(ticker, frame, str(meta["source"]),
                            notes=[str(n) for n in meta.get("notes", [])],
                            problems=[str(p) for p in meta.get("problems", [])])

    # -- one download per ticker and day in this process ------------------------------------------

    @contextlib.contextmanager
    def _locked(self, key: tuple[date, str]) -> Iterator[None]:
        with self._guard:
            entry = self._keys.setdefault(key, _KeyLock(threading.Lock()))
            entry.users += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.users -= 1
                if not entry.users:
                    del self._keys[key]


class CachedProvider:
    """A provider that asks ``cache`` first: a hit never reaches ``provider``."""

    def __init__(self, provider: PriceProvider, cache: PriceCache) -> None:
        self.provider = provider
        self.name = provider.name
        self.cache = cache

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        return self.cache.fetch(ticker, years,
                                lambda: self.provider.history(ticker, years))
