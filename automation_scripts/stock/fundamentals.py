"""Stock depth: the company's profile, valuation, dividends, analyst targets, and how the stock
did against a benchmark, as plain records read from what a provider answers.

The records are read from yfinance's ``Ticker.info`` keys (``longName``, ``sector``,
``marketCap``, ``trailingPE``, ``dividendYield``, ``targetMeanPrice`` ...) and its dividend
series; any provider that answers in that shape fits (company_data.py has yahoo, a recording
and demo). A part the answer does not cover is None, and the article leaves its section out:
nothing is ever filled with a placeholder. Every figure an article may print is in
``depth_facts``, so the LLM's numbers can be checked against them.

The benchmark comparison (relative return, beta, correlation) uses the daily closes of the
stock and the benchmark over the window the price chart shows (charts.WINDOW, two years),
on the days both traded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from automation_scripts.stock.charts import WINDOW

DEFAULT_BENCHMARK = "SPY"
MIN_OVERLAP = 60                 # common trading days a comparison needs
DIVIDEND_YEARS = 5               # complete calendar years of dividend history shown
RECOMMENDATIONS = {"strong_buy": "strong buy", "buy": "buy", "hold": "hold",
                   "underperform": "underperform", "sell": "sell",
                   "strong_sell": "strong sell"}


def _number(value: Any, *, positive: bool = False) -> float | None:
    """A finite number from a provider's answer (never a bool or a string), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return None
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        return None
    return value


def _text(value: Any, limit: int = 120) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return " ".join(value.split())[:limit]


@dataclass(frozen=True)
class Profile:
    name: str
    sector: str | None = None
    industry: str | None = None
    country: str | None = None
    employees: int | None = None


@dataclass(frozen=True)
class Valuation:
    market_cap: float | None = None
    trailing_pe: float | None = None
    forward_pe: float | None = None
    price_to_sales: float | None = None


@dataclass(frozen=True)
class Dividends:
    """``yield_ratio`` and ``payout_ratio`` are fractions (0.0044 is 0.44 %); ``years`` holds
    the totals paid per share in the last complete calendar years, oldest first."""

    yield_ratio: float | None = None
    payout_ratio: float | None = None
    annual_rate: float | None = None
    last_date: str | None = None
    last_amount: float | None = None
    years: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class AnalystTargets:
    mean: float
    analysts: int
    high: float | None = None
    low: float | None = None
    recommendation: str | None = None
    upside: float | None = None       # mean target against the last close (fraction)


@dataclass(frozen=True)
class CompanyData:
    """What a provider knows of the company beyond its prices; None parts are left out."""

    source: str                        # "yahoo" | "yahoo (recorded)" | "demo"
    profile: Profile | None = None
    valuation: Valuation | None = None
    dividends: Dividends | None = None
    analysts: AnalystTargets | None = None

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"

    @property
    def empty(self) -> bool:
        return not any((self.profile, self.valuation, self.dividends, self.analysts))


@dataclass(frozen=True)
class Comparison:
    """The stock against a benchmark over ``start``..``end`` (``days`` common sessions)."""

    symbol: str
    start: str
    end: str
    days: int
    stock_return: float
    benchmark_return: float
    relative: float                    # stock_return - benchmark_return (fraction)
    beta: float
    correlation: float
    source: str                        # where the benchmark's prices came from

    @property
    def is_demo(self) -> bool:
        return self.source == "demo"


# ---------------------------------------------------------------------------------------------
# Reading a Ticker.info answer.


def dividend_yield(info: Mapping[str, Any], price: float | None) -> float | None:
    """The dividend yield as a fraction. yfinance's ``dividendYield`` changed unit (a fraction
    until early 2025, percent since: 0.44 means 0.44 %), so the value is checked against the
    yield the annual rate implies (``dividendRate`` / price) or ``trailingAnnualDividendYield``
    (a fraction); with neither, it is read as percent, the current unit."""
    raw = _number(info.get("dividendYield"))
    rate = _number(info.get("dividendRate"), positive=True)
    price = _number(info.get("currentPrice"), positive=True) or price
    implied = rate / price if rate and price else \
        _number(info.get("trailingAnnualDividendYield"), positive=True)
    if raw is None or raw <= 0:
        return implied
    if implied:
        return min((raw / 100, raw), key=lambda candidate: abs(candidate - implied))
    return raw / 100


def dividend_history(series: pd.Series | None, as_of: str) -> tuple[list[dict[str, float]],
                                                                     str | None, float | None]:
    """(totals per complete calendar year, oldest first, at most DIVIDEND_YEARS; the last
    payment's date; its amount) from a dividend series indexed by date."""
    if series is None or len(series) == 0:
        return [], None, None
    index = pd.to_datetime(series.index, utc=True, errors="coerce")
    paid = pd.Series(pd.to_numeric(series.to_numpy(), errors="coerce"), index=index)
    paid = paid[paid.index.notna() & (paid > 0)].sort_index()
    if as_of:
        paid = paid[paid.index.date <= pd.Timestamp(as_of).date()]
    if paid.empty:
        return [], None, None
    current_year = int(as_of[:4]) if as_of else paid.index[-1].year + 1
    grouped = paid.groupby(paid.index.year)
    totals, counts = grouped.sum(), grouped.count()
    complete = [int(y) for y in totals.index if int(y) < current_year]
    # The first year of payments is partial when it had fewer payments than the years after.
    if len(complete) > 1 and counts[complete[0]] < int(np.median(counts[complete[1:]])):
        complete = complete[1:]
    years = [{"year": y, "total": round(float(totals[y]), 4)} for y in complete]
    return (years[-DIVIDEND_YEARS:], paid.index[-1].date().isoformat(),
            round(float(paid.iloc[-1]), 4))


def company_from_info(info: Mapping[str, Any] | None, dividends: pd.Series | None, *,
                      source: str, last_close: float | None, as_of: str = "") -> CompanyData:
    """The records of one ``Ticker.info`` answer (and its dividend series), each None when the
    answer lacks it (an unknown symbol's answer is nearly empty: every part None)."""
    info = info or {}
    name = _text(info.get("longName")) or _text(info.get("shortName"))
    profile = Profile(name=name, sector=_text(info.get("sector")),
                      industry=_text(info.get("industry")), country=_text(info.get("country")),
                      employees=int(e) if (e := _number(info.get("fullTimeEmployees"),
                                                        positive=True)) else None) \
        if name else None
    valuation = Valuation(market_cap=_number(info.get("marketCap"), positive=True),
                          trailing_pe=_number(info.get("trailingPE"), positive=True),
                          forward_pe=_number(info.get("forwardPE")),
                          price_to_sales=_number(info.get("priceToSalesTrailing12Months"),
                                                 positive=True))
    if not any(asdict(valuation).values()):
        valuation = None
    years, last_date, last_amount = dividend_history(dividends, as_of)
    paid = Dividends(yield_ratio=dividend_yield(info, last_close),
                     payout_ratio=_number(info.get("payoutRatio"), positive=True),
                     annual_rate=_number(info.get("dividendRate"), positive=True),
                     last_date=last_date, last_amount=last_amount, years=years)
    dividends_part = paid if (paid.yield_ratio or paid.years) else None
    mean = _number(info.get("targetMeanPrice"), positive=True)
    count = _number(info.get("numberOfAnalystOpinions"), positive=True)
    analysts = None
    if mean and count:
        key = str(info.get("recommendationKey") or "").lower()
        analysts = AnalystTargets(mean=mean, analysts=int(count),
                                  high=_number(info.get("targetHighPrice"), positive=True),
                                  low=_number(info.get("targetLowPrice"), positive=True),
                                  recommendation=RECOMMENDATIONS.get(key),
                                  upside=mean / last_close - 1 if last_close else None)
    return CompanyData(source, profile, valuation, dividends_part, analysts)


# ---------------------------------------------------------------------------------------------
# The benchmark comparison.


def compare(stock: pd.Series, benchmark: pd.Series, symbol: str, *, source: str,
            window: int = WINDOW) -> Comparison | None:
    """The stock's closes against the benchmark's over the chart's window, on the days both
    traded; None with fewer than MIN_OVERLAP common days (or a flat benchmark)."""
    recent = stock.dropna().iloc[-window:]
    both = pd.concat([recent, benchmark.dropna()], axis=1, join="inner").dropna()
    both.columns = ["stock", "bench"]
    if len(both) < MIN_OVERLAP:
        return None
    daily = both.pct_change().dropna()
    spread = float(daily["bench"].var())
    if not spread or not math.isfinite(spread):
        return None
    beta = float(daily["stock"].cov(daily["bench"])) / spread
    correlation = float(daily["stock"].corr(daily["bench"]))
    if not (math.isfinite(beta) and math.isfinite(correlation)):
        return None
    first, last = both.iloc[0], both.iloc[-1]
    stock_return = float(last["stock"] / first["stock"] - 1)
    bench_return = float(last["bench"] / first["bench"] - 1)
    return Comparison(symbol=symbol, start=both.index[0].date().isoformat(),
                      end=both.index[-1].date().isoformat(), days=len(both),
                      stock_return=stock_return, benchmark_return=bench_return,
                      relative=stock_return - bench_return, beta=beta,
                      correlation=correlation, source=source)


# ---------------------------------------------------------------------------------------------
# Facts.


def depth_facts(company: CompanyData | None, comparison: Comparison | None) -> dict[str, Any]:
    """The depth parts of an article's facts: plain numbers, rounded where the text shows
    them (the fact checker then accepts the figure as printed); None parts are left out."""
    facts: dict[str, Any] = {"profile": None, "valuation": None, "dividends": None,
                             "analysts": None, "benchmark": None, "company_source": None}
    if company is not None and not company.empty:
        facts["company_source"] = company.source
        for part in ("profile", "valuation", "dividends", "analysts"):
            record = getattr(company, part)
            facts[part] = asdict(record) if record is not None else None
        if facts["dividends"] is not None:
            facts["dividends"]["growth"] = _growth(company.dividends)
    if comparison is not None:
        row = asdict(comparison)
        # "beat it by 12.3 percentage points": the points themselves are a figure too.
        row["relative_points"] = round(comparison.relative * 100, 1)
        row["years"] = round(comparison.days / 252, 1)
        row["is_demo"] = comparison.is_demo
        facts["benchmark"] = row
    return facts


def _growth(dividends: Dividends | None) -> float | None:
    """Change of the yearly total from the first to the last complete year shown."""
    if dividends is None or len(dividends.years) < 2:
        return None
    first, last = dividends.years[0]["total"], dividends.years[-1]["total"]
    return last / first - 1 if first > 0 else None
