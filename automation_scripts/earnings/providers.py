"""Earnings calendar and per-ticker fundamentals, from one of four provider families.

``finnhub`` (API key, HTTP), ``yahoo`` (yfinance when installed), ``file`` (a JSON calendar
shaped ``{calendar: {date: [{ticker, name, date}]}}`` plus an optional fundamentals JSON) and
``demo`` (deterministic synthetic numbers, always labelled as demo data). Every provider raises
``EarningsDataError`` (an ``AutomationError``) with a message a user can act on; nothing here
knows Flask.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import requests

from automation_scripts.base import AutomationError
from automation_scripts.tickers import EARNINGS

PROVIDERS = ("demo", "file", "finnhub", "yahoo")
FINNHUB_URL = "https://finnhub.io/api/v1"


class EarningsDataError(AutomationError):
    """The provider could not answer (offline, bad key, malformed file...)."""


class UnknownTicker(EarningsDataError):
    """The provider has no data for this ticker."""


@dataclass
class CalendarEntry:
    ticker: str
    date: str                          # YYYY-MM-DD
    name: str | None = None
    hour: str | None = None            # "bmo" | "amc" | None


@dataclass
class Quarter:
    """One reported (or upcoming) quarter. Money in the company's currency, EPS per share."""

    period: str                        # e.g. "2025-Q3"
    report_date: str | None
    eps_actual: float | None
    eps_estimate: float | None
    revenue: float | None = None
    revenue_estimate: float | None = None

    @property
    def surprise_pct(self) -> float | None:
        """EPS surprise against the estimate, in percent of |estimate|."""
        if self.eps_actual is None or not self.eps_estimate:
            return None
        return round((self.eps_actual - self.eps_estimate) / abs(self.eps_estimate) * 100, 2)


@dataclass
class Fundamentals:
    ticker: str
    name: str
    quarters: list[Quarter]            # oldest first, reported quarters only
    next_report_date: str | None = None
    next_eps_estimate: float | None = None
    next_revenue_estimate: float | None = None
    gross_margin: float | None = None  # percent, trailing twelve months
    operating_margin: float | None = None
    net_margin: float | None = None
    source: str = ""
    demo: bool = False
    currency: str = "USD"

    def revenue_growth_yoy(self) -> float | None:
        """Latest quarter's revenue against the same quarter a year earlier, in percent."""
        revs = [q.revenue for q in self.quarters]
        if len(revs) < 5 or revs[-1] is None or not revs[-5]:
            return None
        return round((revs[-1] - revs[-5]) / abs(revs[-5]) * 100, 2)

    def revenue_growth_qoq(self) -> float | None:
        revs = [q.revenue for q in self.quarters]
        if len(revs) < 2 or revs[-1] is None or not revs[-2]:
            return None
        return round((revs[-1] - revs[-2]) / abs(revs[-2]) * 100, 2)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for q, raw in zip(self.quarters, data["quarters"], strict=True):
            raw["surprise_pct"] = q.surprise_pct
        data["revenue_growth_yoy"] = self.revenue_growth_yoy()
        data["revenue_growth_qoq"] = self.revenue_growth_qoq()
        return data


class EarningsProvider(Protocol):
    name: str
    demo: bool

    def calendar(self, start: date, end: date) -> list[CalendarEntry]:
        """Report dates in [start, end], sorted by date then ticker."""

    def fundamentals(self, ticker: str, today: date) -> Fundamentals:
        """What was known on ``today``: quarters reported before it (the last 4-8), revenue,
        margins, the next report date (on or after ``today``) and its consensus."""

    def report_date(self, ticker: str, today: date) -> str:
        """The report date an article for ``ticker`` is about: the next one on or after
        ``today``, else the most recent past one. UnknownTicker when there is none."""


def week_by_day(provider: EarningsProvider, start: date, days: int = 7) -> list[dict[str, Any]]:
    """The calendar grouped by day for the run page: every day present, empty or not."""
    end = start + timedelta(days=days - 1)
    entries = provider.calendar(start, end)
    by_day: dict[str, list[dict[str, Any]]] = {
        (start + timedelta(days=i)).isoformat(): [] for i in range(days)}
    for entry in entries:
        if entry.date in by_day:
            by_day[entry.date].append(asdict(entry))
    return [{"date": d, "weekday": date.fromisoformat(d).strftime("%A"), "entries": rows}
            for d, rows in by_day.items()]


# ---------------------------------------------------------------------------------------------
# demo


class DemoProvider:
    """Deterministic synthetic data: the same ticker and day always give the same numbers."""

    name = "demo"
    demo = True
    _UNIVERSE = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "JPM", "V", "WMT",
                 "NFLX", "AMD", "INTC", "ORCL", "CRM", "ADBE", "KO", "PEP", "DIS", "NKE",
                 "COST", "HD", "MCD", "BA", "XOM", "CVX", "PFE", "MRK", "T", "VZ", "CSCO",
                 "QCOM", "TXN", "IBM", "GS", "MS", "BAC", "C", "WFC", "UNH", "JNJ", "ABBV",
                 "LLY", "TMO", "CAT", "DE", "GE", "HON", "UPS", "FDX", "SBUX", "TGT", "LOW",
                 "PYPL", "SHOP", "UBER", "ABNB", "SNOW", "PLTR", "MU")
    _EPOCH = date(2020, 1, 6)          # a Monday; report dates repeat every 13 weeks

    @staticmethod
    def _rng(*parts: Any) -> random.Random:
        seed = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()
        return random.Random(int(seed[:16], 16))

    def _report_dates(self, ticker: str, around: date) -> list[date]:
        """Weekday report dates every 13 weeks, phase fixed per ticker, around ``around``."""
        phase = self._rng("phase", ticker).randrange(65)       # 13 weeks x 5 weekdays
        first = self._EPOCH + timedelta(weeks=phase // 5, days=phase % 5)
        k0 = max(0, (around - first).days // 91 - 10)
        return [first + timedelta(weeks=13 * k) for k in range(k0, k0 + 13)]

    @staticmethod
    def _period(report: date) -> str:
        """The calendar quarter that ended before the report (reports come 2-13 weeks later)."""
        d = report - timedelta(days=14)
        year, quarter = d.year, (d.month - 1) // 3          # quarter index that ended before
        if quarter == 0:
            year, quarter = year - 1, 4
        return f"{year}-Q{quarter}"

    def calendar(self, start: date, end: date) -> list[CalendarEntry]:
        rows = []
        for ticker in self._UNIVERSE:
            for d in self._report_dates(ticker, start):
                if start <= d <= end:
                    hour = "bmo" if self._rng("hour", ticker).random() < 0.5 else "amc"
                    rows.append(CalendarEntry(ticker=ticker, date=d.isoformat(),
                                              name=f"{ticker} (demo)", hour=hour))
        return sorted(rows, key=lambda e: (e.date, e.ticker))

    def report_date(self, ticker: str, today: date) -> str:
        upcoming = [d for d in self._report_dates(ticker, today) if d >= today]
        return min(upcoming).isoformat()

    def fundamentals(self, ticker: str, today: date) -> Fundamentals:
        dates = self._report_dates(ticker, today)
        past = [d for d in dates if d < today][-8:]
        upcoming = [d for d in dates if d >= today]
        rng = self._rng("fundamentals", ticker)
        eps = rng.uniform(0.3, 4.0)
        revenue = rng.uniform(0.5e9, 60e9)
        quarters = []
        for d in past:
            q = self._rng("q", ticker, d.isoformat())
            eps *= 1 + q.uniform(-0.06, 0.10)
            revenue *= 1 + q.uniform(-0.03, 0.07)
            estimate = eps * (1 + q.uniform(-0.08, 0.06))
            quarters.append(Quarter(
                period=self._period(d),
                report_date=d.isoformat(), eps_actual=round(eps, 2),
                eps_estimate=round(estimate, 2), revenue=round(revenue, -5),
                revenue_estimate=round(revenue * (1 + q.uniform(-0.04, 0.04)), -5)))
        gross = rng.uniform(25, 75)
        operating = gross * rng.uniform(0.3, 0.7)
        return Fundamentals(
            ticker=ticker, name=f"{ticker} Demo Corp.", quarters=quarters,
            next_report_date=min(upcoming).isoformat() if upcoming else None,
            next_eps_estimate=round(eps * 1.03, 2), next_revenue_estimate=round(revenue * 1.02, -5),
            gross_margin=round(gross, 1), operating_margin=round(operating, 1),
            net_margin=round(operating * 0.78, 1), source="Demo data (synthetic)", demo=True)


# ---------------------------------------------------------------------------------------------
# file


class FileProvider:
    """A JSON calendar (Finnhub-style export) and an optional fundamentals JSON.

    Fundamentals file: ``{"TICKER": {name, quarters: [{period, report_date, eps_actual,
    eps_estimate, revenue, revenue_estimate}], next_report_date, next_eps_estimate,
    next_revenue_estimate, gross_margin, operating_margin, net_margin}}``.
    """

    name = "file"
    demo = False

    def __init__(self, calendar_path: str | Path | None,
                 fundamentals_path: str | Path | None = None) -> None:
        if not calendar_path:
            raise EarningsDataError("no earnings calendar file is configured "
                                    "(set TICKZEN_EARNINGS_CALENDAR_FILE)")
        self.calendar_path = Path(calendar_path)
        self.fundamentals_path = Path(fundamentals_path) if fundamentals_path else None

    @staticmethod
    def _load(path: Path, what: str) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise EarningsDataError(f"the {what} file {path.name} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EarningsDataError(f"the {what} file {path.name} is not valid JSON: {exc}"
                                    ) from None

    def _entries(self) -> list[CalendarEntry]:
        data = self._load(self.calendar_path, "earnings calendar")
        calendar = data.get("calendar") if isinstance(data, dict) else None
        if not isinstance(calendar, dict):
            raise EarningsDataError("the earnings calendar file has no 'calendar' object "
                                    "({calendar: {date: [{ticker, name, date}]}})")
        rows = []
        for day, items in calendar.items():
            if not isinstance(items, list):
                raise EarningsDataError(f"calendar day {str(day)[:12]!r} is not a list")
            for raw in items:
                if not isinstance(raw, dict):
                    continue
                try:
                    ticker = EARNINGS.normalise(raw.get("ticker") or raw.get("symbol"))
                    when = date.fromisoformat(str(raw.get("date") or day)).isoformat()
                except ValueError:
                    continue                       # one bad row does not spoil the week
                rows.append(CalendarEntry(ticker=ticker, date=when, name=raw.get("name"),
                                          hour=raw.get("hour")))
        return sorted(rows, key=lambda e: (e.date, e.ticker))

    def calendar(self, start: date, end: date) -> list[CalendarEntry]:
        s, e = start.isoformat(), end.isoformat()
        return [row for row in self._entries() if s <= row.date <= e]

    def first_day(self, today: date) -> date | None:
        """Where the run page's week starts without a chosen date: the file's first day from
        ``today`` on, or its first day when the whole file lies in the past (a snapshot)."""
        days = sorted({row.date for row in self._entries()})
        if not days:
            return None
        return date.fromisoformat(next((d for d in days if d >= today.isoformat()), days[0]))

    def report_date(self, ticker: str, today: date) -> str:
        dates = sorted({row.date for row in self._entries() if row.ticker == ticker})
        if not dates and self.fundamentals_path:
            try:
                nxt = self._fundamentals_raw(ticker).get("next_report_date")
            except UnknownTicker:
                nxt = None
            dates = [str(nxt)] if nxt else []
        if not dates:
            raise UnknownTicker(f"{ticker} is not in the earnings calendar file")
        upcoming = [d for d in dates if d >= today.isoformat()]
        return upcoming[0] if upcoming else dates[-1]

    def _fundamentals_raw(self, ticker: str) -> dict[str, Any]:
        if self.fundamentals_path is None:
            raise EarningsDataError("the file provider has no fundamentals file "
                                    "(set TICKZEN_EARNINGS_FUNDAMENTALS_FILE)")
        data = self._load(self.fundamentals_path, "fundamentals")
        raw = data.get(ticker) if isinstance(data, dict) else None
        if not isinstance(raw, dict):
            raise UnknownTicker(f"no fundamentals for {ticker} in the fundamentals file")
        return raw

    def fundamentals(self, ticker: str, today: date) -> Fundamentals:
        raw = self._fundamentals_raw(ticker)
        try:
            quarters = [Quarter(period=str(q["period"]), report_date=q.get("report_date"),
                                eps_actual=_num(q.get("eps_actual")),
                                eps_estimate=_num(q.get("eps_estimate")),
                                revenue=_num(q.get("revenue")),
                                revenue_estimate=_num(q.get("revenue_estimate")))
                        for q in raw.get("quarters", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise EarningsDataError(f"bad quarter for {ticker} in the fundamentals file: {exc}"
                                    ) from None
        quarters = [q for q in quarters
                    if q.report_date is None or q.report_date < today.isoformat()][-8:]
        return Fundamentals(
            ticker=ticker, name=str(raw.get("name") or ticker), quarters=quarters,
            next_report_date=raw.get("next_report_date"),
            next_eps_estimate=_num(raw.get("next_eps_estimate")),
            next_revenue_estimate=_num(raw.get("next_revenue_estimate")),
            gross_margin=_num(raw.get("gross_margin")),
            operating_margin=_num(raw.get("operating_margin")),
            net_margin=_num(raw.get("net_margin")), source="File data", demo=False)


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


# ---------------------------------------------------------------------------------------------
# finnhub


class FinnhubProvider:
    """Finnhub's REST API: ``/calendar/earnings`` (dates, EPS and revenue actual vs estimate
    per quarter) and ``/stock/metric`` (TTM margins)."""

    name = "finnhub"
    demo = False

    def __init__(self, api_key: str | None, *, base_url: str = FINNHUB_URL,
                 timeout: float = 10.0, session: requests.Session | None = None) -> None:
        if not api_key:
            raise EarningsDataError("the finnhub provider needs an API key "
                                    "(set FINNHUB_API_KEY)")
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _get(self, path: str, **params: Any) -> Any:
        try:
            resp = self.session.get(f"{self.base_url}{path}",
                                    params={**params, "token": self.api_key},
                                    timeout=self.timeout)
        except requests.RequestException as exc:
            raise EarningsDataError(f"finnhub is unreachable: {type(exc).__name__}") from None
        if resp.status_code in (401, 403):
            raise EarningsDataError("finnhub refused the API key")
        if resp.status_code == 429:
            raise EarningsDataError("finnhub rate limit reached; try again in a minute")
        if resp.status_code != 200:
            raise EarningsDataError(f"finnhub answered HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError:
            raise EarningsDataError("finnhub answered with something that is not JSON") from None

    def _earnings(self, start: date, end: date, symbol: str | None = None
                  ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
        if symbol:
            params["symbol"] = symbol
        data = self._get("/calendar/earnings", **params)
        rows = data.get("earningsCalendar") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise EarningsDataError("finnhub's calendar answer has no earningsCalendar list")
        return [r for r in rows if isinstance(r, dict)]

    def calendar(self, start: date, end: date) -> list[CalendarEntry]:
        out = []
        for row in self._earnings(start, end):
            try:
                out.append(CalendarEntry(ticker=EARNINGS.normalise(row.get("symbol")),
                                         date=date.fromisoformat(str(row.get("date"))).isoformat(),
                                         hour=row.get("hour") or None))
            except ValueError:
                continue
        return sorted(out, key=lambda e: (e.date, e.ticker))

    def report_date(self, ticker: str, today: date) -> str:
        rows = self._earnings(today - timedelta(days=120), today + timedelta(days=120), ticker)
        dates = sorted(str(r.get("date")) for r in rows if r.get("date"))
        if not dates:
            raise UnknownTicker(f"finnhub has no earnings dates for {ticker}")
        upcoming = [d for d in dates if d >= today.isoformat()]
        return upcoming[0] if upcoming else dates[-1]

    def fundamentals(self, ticker: str, today: date) -> Fundamentals:
        rows = self._earnings(today - timedelta(days=2 * 366), today + timedelta(days=120),
                              ticker)
        if not rows:
            raise UnknownTicker(f"finnhub has no earnings history for {ticker}")
        rows.sort(key=lambda r: str(r.get("date")))
        past = [r for r in rows if str(r.get("date")) < today.isoformat()
                and r.get("epsActual") is not None][-8:]
        future = [r for r in rows if str(r.get("date")) >= today.isoformat()]
        quarters = [Quarter(period=f"{r.get('year')}-Q{r.get('quarter')}",
                            report_date=str(r.get("date")), eps_actual=_num(r.get("epsActual")),
                            eps_estimate=_num(r.get("epsEstimate")),
                            revenue=_num(r.get("revenueActual")),
                            revenue_estimate=_num(r.get("revenueEstimate"))) for r in past]
        metric = self._get("/stock/metric", symbol=ticker, metric="all")
        metrics = metric.get("metric") if isinstance(metric, dict) else None
        metrics = metrics if isinstance(metrics, dict) else {}
        nxt = future[0] if future else {}
        return Fundamentals(
            ticker=ticker, name=ticker, quarters=quarters,
            next_report_date=nxt.get("date"), next_eps_estimate=_num(nxt.get("epsEstimate")),
            next_revenue_estimate=_num(nxt.get("revenueEstimate")),
            gross_margin=_num(metrics.get("grossMarginTTM")),
            operating_margin=_num(metrics.get("operatingMarginTTM")),
            net_margin=_num(metrics.get("netProfitMarginTTM")), source="Finnhub")


# ---------------------------------------------------------------------------------------------
# yahoo


class YahooProvider:
    """Yahoo Finance through yfinance, when that package is installed."""

    name = "yahoo"
    demo = False

    def __init__(self) -> None:
        try:
            import yfinance  # noqa: F401
        except ImportError:
            raise EarningsDataError("the yahoo provider needs the yfinance package, which is "
                                    "not installed here; use demo, file or finnhub") from None
        self._yf = yfinance

    def _dates(self, ticker: str) -> list[tuple[str, float | None, float | None]]:
        try:
            frame = self._yf.Ticker(ticker).get_earnings_dates(limit=12)
        except Exception as exc:   # yfinance raises many types; all mean "no answer"
            raise EarningsDataError(f"yahoo did not answer for {ticker}: {exc}") from None
        if frame is None or len(frame) == 0:
            raise UnknownTicker(f"yahoo has no earnings dates for {ticker}")
        out = []
        for stamp, row in frame.iterrows():
            out.append((stamp.date().isoformat(), _nan_none(row.get("Reported EPS")),
                        _nan_none(row.get("EPS Estimate"))))
        return sorted(out)

    def calendar(self, start: date, end: date) -> list[CalendarEntry]:
        try:
            frame = self._yf.Calendars(start=start, end=end).get_earnings_calendar(limit=200)
        except Exception as exc:
            raise EarningsDataError(f"yahoo's earnings calendar is unavailable: {exc}") from None
        rows = []
        for symbol, row in frame.iterrows():
            try:
                when = row.get("Event Start Date")
                rows.append(CalendarEntry(ticker=EARNINGS.normalise(str(symbol)),
                                          date=when.date().isoformat(),
                                          name=row.get("Company")))
            except (ValueError, AttributeError):
                continue
        return sorted(rows, key=lambda e: (e.date, e.ticker))

    def report_date(self, ticker: str, today: date) -> str:
        dates = [d for d, _, _ in self._dates(ticker)]
        upcoming = [d for d in dates if d >= today.isoformat()]
        return upcoming[0] if upcoming else dates[-1]

    def fundamentals(self, ticker: str, today: date) -> Fundamentals:
        dates = self._dates(ticker)
        past = [d for d in dates if d[0] < today.isoformat() and d[1] is not None][-8:]
        future = [d for d in dates if d[0] >= today.isoformat()]
        quarters = [Quarter(period=d, report_date=d, eps_actual=a, eps_estimate=e)
                    for d, a, e in past]
        try:
            stmt = self._yf.Ticker(ticker).quarterly_income_stmt
            revenue = stmt.loc["Total Revenue"].dropna().sort_index()
            for q, value in zip(reversed(quarters), reversed(list(revenue)), strict=False):
                q.revenue = float(value)
        except Exception:   # revenue is optional: the article says "not available"
            pass
        return Fundamentals(ticker=ticker, name=ticker, quarters=quarters,
                            next_report_date=future[0][0] if future else None,
                            next_eps_estimate=future[0][2] if future else None,
                            source="Yahoo Finance")


def _nan_none(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


# ---------------------------------------------------------------------------------------------


@dataclass
class ProviderConfig:
    """What building a provider needs, taken from the automation's settings (never from the
    user). ``None`` leaves the provider's own default (the app always passes its settings,
    whose defaults ``portal/config.py`` states)."""

    calendar_file: str | None = None
    fundamentals_file: str | None = None
    finnhub_api_key: str | None = None
    finnhub_url: str | None = None
    timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ProviderConfig:
        timeout = settings.get("TICKZEN_PROVIDER_TIMEOUT")
        return cls(calendar_file=settings.get("TICKZEN_EARNINGS_CALENDAR_FILE") or None,
                   fundamentals_file=settings.get("TICKZEN_EARNINGS_FUNDAMENTALS_FILE") or None,
                   finnhub_api_key=settings.get("FINNHUB_API_KEY") or None,
                   finnhub_url=settings.get("FINNHUB_API_URL") or None,
                   timeout=float(timeout) if timeout else None)


def get_provider(name: str, config: ProviderConfig) -> EarningsProvider:
    """Build the named provider; ValueError for an unknown name, EarningsDataError when the
    provider cannot work here (no key, no yfinance, no file)."""
    if name == "demo":
        return DemoProvider()
    if name == "file":
        return FileProvider(config.calendar_file, config.fundamentals_file)
    if name == "finnhub":
        chosen = {"base_url": config.finnhub_url, "timeout": config.timeout}
        return FinnhubProvider(config.finnhub_api_key,
                               **{k: v for k, v in chosen.items() if v is not None})
    if name == "yahoo":
        return YahooProvider()
    raise ValueError(f"unknown earnings provider {str(name)[:30]!r}; use one of "
                     f"{', '.join(PROVIDERS)}")
