"""The dashboard's "last 30 days": the store's figures (``InsightsStore.insights``) turned into
what the page draws and tabulates. Days are UTC days, the days the sites' daily limits count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from portal.charts import (
    SERIES_CLASSES,
    HorizontalBars,
    Ring,
    StackedBars,
    horizontal_bars,
    ring,
    series_class,
    stacked_bars,
)
from runner.failure_causes import CAUSES, count_causes
from storage.insight_records import Insights, SiteActivity

WINDOW_DAYS = 30
KIND_TITLES = {"stock": "Stock", "earnings": "Earnings", "sports": "Sports"}


@dataclass
class Series:
    name: str
    css: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class PostsChart:
    """Posts per day by one grouping (sites or kinds): the bars and the table's columns."""

    key: str                            # "site" | "kind"
    title: str
    series: list[Series]
    chart: StackedBars
    rows: list[dict[str, Any]]          # {day, label, counts: [per series], total}

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)


@dataclass
class SiteRow:
    site: SiteActivity
    share: float                        # today / limit, at most 1 (0 without a limit)
    full: bool                          # the limit is used up


@dataclass
class DashboardInsights:
    first_day: str
    last_day: str
    posts_total: int
    by_site: PostsChart
    by_kind: PostsChart
    runs: int
    published: int
    failed: int
    rate_text: str                      # "92.9%", or "—" when nothing finished
    rate_ring: Ring
    causes: list[dict[str, Any]]        # {key, title, hint, count}, CAUSES order
    causes_chart: HorizontalBars
    tickers: list[dict[str, Any]]       # {ticker, count}
    tickers_chart: HorizontalBars
    detail_runs: int
    detail_truncated: bool
    sites: list[SiteRow] = field(default_factory=list)


def window(now: datetime) -> tuple[datetime, list[date]]:
    """The start of the window (midnight UTC, 29 days before today) and its 30 days."""
    today = now.astimezone(UTC).date()
    days = [today - timedelta(days=WINDOW_DAYS - 1 - i) for i in range(WINDOW_DAYS)]
    return datetime(days[0].year, days[0].month, days[0].day, tzinfo=UTC), days


def percent_text(part: int, whole: int) -> str:
    """One decimal, no ".0"; never "100%" while something failed, never "0%" while
    something succeeded."""
    if not whole:
        return "—"
    text = f"{100 * part / whole:.1f}".removesuffix(".0")
    if text == "100" and part < whole:
        text = "99.9"
    if text == "0" and part:
        text = "0.1"
    return f"{text}%"


def _posts_chart(key: str, title: str, series: list[Series], days: list[date]
                 ) -> PostsChart:
    keys = [d.isoformat() for d in days]
    labels = [d.strftime("%d %b").lstrip("0") for d in days]
    chart = stacked_bars(keys, labels, [(s.name, s.css, s.counts) for s in series])
    rows = [{"day": k, "label": label, "counts": [s.counts.get(k, 0) for s in series],
             "total": sum(s.counts.get(k, 0) for s in series)}
            for k, label in zip(keys, labels, strict=True)]
    return PostsChart(key, title, series, chart, rows)


def _by_site(found: Insights) -> list[Series]:
    names = {s.site_id: s.name for s in found.sites}
    order = {s.site_id: i for i, s in enumerate(found.sites)}
    counts: dict[str, dict[str, int]] = {}
    for row in found.posts:
        per_day = counts.setdefault(row.site_id, {})
        per_day[row.day] = per_day.get(row.day, 0) + row.count
    ranked = sorted(counts, key=lambda sid: order.get(sid, len(order)))
    series = [Series(names.get(sid, "(deleted site)"), series_class(i), counts[sid])
              for i, sid in enumerate(ranked[:SERIES_CLASSES - 1])]
    rest = ranked[SERIES_CLASSES - 1:]
    if rest:
        merged: dict[str, int] = {}
        for sid in rest:
            for day, n in counts[sid].items():
                merged[day] = merged.get(day, 0) + n
        series.append(Series(f"{len(rest)} more sites", series_class(SERIES_CLASSES - 1),
                             merged))
    return series


def _by_kind(found: Insights) -> list[Series]:
    counts: dict[str, dict[str, int]] = {}
    for row in found.posts:
        per_day = counts.setdefault(row.kind, {})
        per_day[row.day] = per_day.get(row.day, 0) + row.count
    known = list(KIND_TITLES)
    kinds = sorted(counts, key=lambda k: (known.index(k) if k in known else len(known), k))
    return [Series(KIND_TITLES.get(k, k.capitalize() or "Other"), series_class(i), counts[k])
            for i, k in enumerate(kinds)]


def dashboard_insights(found: Insights, days: list[date]) -> DashboardInsights:
    """The page's figures from the store's."""
    by_site = _posts_chart("site", "By site", _by_site(found), days)
    by_kind = _posts_chart("kind", "By kind", _by_kind(found), days)
    per_cause = count_causes((t.key, t.count) for t in found.errors)
    causes = [{"key": c.key, "title": c.title, "hint": c.hint, "count": per_cause[c.key]}
              for c in CAUSES]
    tickers = [{"ticker": t.key, "count": t.count} for t in found.tickers]
    finished = found.published + found.failed
    sites = []
    for site in found.sites:
        limit = site.daily_limit
        sites.append(SiteRow(site, min(1.0, site.today / limit) if limit else 0.0,
                             bool(limit) and site.today >= limit))
    return DashboardInsights(
        first_day=days[0].isoformat(), last_day=days[-1].isoformat(),
        posts_total=by_site.total, by_site=by_site, by_kind=by_kind, runs=found.runs,
        published=found.published, failed=found.failed,
        rate_text=percent_text(found.published, finished),
        rate_ring=ring(found.published, finished),
        causes=causes,
        causes_chart=horizontal_bars([(c["title"], c["count"], f"cause-{c['key']}")
                                      for c in causes]),
        tickers=tickers,
        tickers_chart=horizontal_bars([(t["ticker"], t["count"], "series-0")
                                       for t in tickers], label_width=70),
        detail_runs=found.detail_runs, detail_truncated=found.detail_truncated,
        sites=sites)


def load(store: Any, user_id: str, now: datetime) -> DashboardInsights:
    """The last 30 UTC days up to ``now`` of ``user_id``, read in one ``insights`` call."""
    since, days = window(now)
    return dashboard_insights(store.insights(user_id, since, now), days)
