"""What the dashboard's insights read from the store, and the Store method that reads them.

``InsightsStore`` is the Store protocol plus ``insights`` (both backends implement it; kept
apart so ``storage.base`` stays small, as ``storage.housekeeping`` is). The figures are
aggregated in the store, never by listing a history page by page: posts per day and the runs'
figures from per-user daily totals each backend keeps in the transactions that change them
(storage._day_totals), so a window costs its days, not its runs; errors and tickers from the
items of the window's newest runs. Days are UTC days, the days a site's daily limit counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from storage._common import aware_utc
from storage.base import LedgerEntry, Store

# Defaults of ``insights``: the item labels of these kinds are tickers; how many tickers it
# ranks; how many of the window's newest runs it reads items from.
TICKER_KINDS = ("stock", "earnings")
TOP_TICKERS = 10
DETAIL_RUNS = 200


@dataclass(frozen=True)
class Tally:
    """One value (an error text, a ticker) and how many times it occurred."""

    key: str
    count: int


@dataclass(frozen=True)
class DayCount:
    """Posts published on one UTC day (``YYYY-MM-DD``) to one site, of one kind."""

    day: str
    site_id: str
    kind: str
    count: int


@dataclass
class SiteActivity:
    """A site today: ``today`` is what counts against its daily limit for the UTC day of the
    window's end (reserved and published entries, as the limit counts them); ``last_post`` its
    newest ledger entry published before the window's end (however long before)."""

    site_id: str
    name: str
    daily_limit: int | None
    today: int = 0
    last_post: LedgerEntry | None = None


@dataclass
class Insights:
    """A user's last days in figures, for ``since <= t < until``.

    ``posts``: published ledger entries by their publish time, per (day, site, kind), in that
    order. ``runs``, ``published``, ``failed``: the runs created in the window and their items
    in those states. ``errors`` (the failed items' error texts) and ``tickers`` (published
    items' labels of the ticker kinds, the top ones) come from the newest ``detail_runs`` of
    those runs, most frequent first, then by text. ``sites``: every site of the user, in
    ``list_sites`` order.
    """

    since: datetime
    until: datetime
    posts: list[DayCount] = field(default_factory=list)
    runs: int = 0
    published: int = 0
    failed: int = 0
    errors: list[Tally] = field(default_factory=list)
    tickers: list[Tally] = field(default_factory=list)
    detail_runs: int = 0
    sites: list[SiteActivity] = field(default_factory=list)

    @property
    def detail_truncated(self) -> bool:
        """Errors and tickers cover only the newest runs of the window."""
        return self.detail_runs < self.runs


def ranked(counts: dict[str, int], limit: int | None = None) -> list[Tally]:
    """Most first, then by key; both backends rank with it."""
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Tally(k, n) for k, n in (order if limit is None else order[:limit])]


def check_window(since: datetime, until: datetime, top: int, detail_limit: int
                 ) -> tuple[datetime, datetime]:
    """Programming errors fail loudly: naive times, an empty window, negative limits."""
    since, until = aware_utc(since), aware_utc(until)
    if since >= until:
        raise ValueError("insights need since < until")
    if top < 0 or detail_limit < 0:
        raise ValueError("top and detail_limit must be >= 0")
    return since, until


@runtime_checkable
class InsightsStore(Store, Protocol):
    def insights(self, user_id: str, since: datetime, until: datetime, *,
                 ticker_kinds: Sequence[str] = TICKER_KINDS, top: int = TOP_TICKERS,
                 detail_limit: int = DETAIL_RUNS) -> Insights:
        """The user's figures for ``since <= t < until`` (see Insights); aware datetimes."""
