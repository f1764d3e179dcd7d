"""Per-user daily totals the insights read, and the window arithmetic both backends share.

Each backend keeps, in the transactions that change the underlying records, per user and UTC
day: the published ledger entries by site and kind (by ``published_at``), and the runs created
(by ``created_at``) with their published and failed item counts. A window of ``insights`` then
reads one row per day (and site and kind) instead of every run and post in it. A window need
not start or end at midnight: a day it covers only in part is its total minus the raw records
of that day outside the window (``DayWindow.outside``), which for the dashboard's window
(midnight to now) is the empty stretch from now to midnight.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from storage._common import aware_utc
from storage.insight_records import DayCount

ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)

PostKey = tuple[str, str, str]          # (day, site_id, kind)


@dataclass(frozen=True)
class DayWindow:
    """The UTC days ``since <= t < until`` touches (oldest first) and the parts of those days
    outside the window, as ``[start, end)`` ranges."""

    days: list[str]
    outside: list[tuple[datetime, datetime]]


def midnight(value: datetime) -> datetime:
    value = aware_utc(value)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def day_window(since: datetime, until: datetime) -> DayWindow:
    """``since < until``, both aware."""
    since, until = aware_utc(since), aware_utc(until)
    first, last = midnight(since), midnight(until - _TICK)
    days = [(first + n * ONE_DAY).date().isoformat()
            for n in range((last - first) // ONE_DAY + 1)]
    outside = []
    if first < since:
        outside.append((first, since))
    if until < last + ONE_DAY:
        outside.append((until, last + ONE_DAY))
    return DayWindow(days, outside)


@dataclass
class RunFigures:
    """Runs created and their published and failed items (one day, or a stretch)."""

    runs: int = 0
    published: int = 0
    failed: int = 0

    def add(self, other: RunFigures, sign: int = 1) -> None:
        self.runs += sign * other.runs
        self.published += sign * other.published
        self.failed += sign * other.failed


@dataclass
class WindowTotals:
    """What a backend gathers for one window: the day totals of its days, then minus the raw
    records of its outside parts."""

    posts: Counter[PostKey] = field(default_factory=Counter)
    runs: RunFigures = field(default_factory=RunFigures)

    def remove(self, posts: Counter[PostKey], runs: RunFigures) -> None:
        self.posts.subtract(posts)
        self.runs.add(runs, -1)

    def day_counts(self) -> list[DayCount]:
        """By (day, site, kind), the order ``Insights.posts`` has."""
        return [DayCount(day, site_id, kind, n)
                for (day, site_id, kind), n in sorted(self.posts.items()) if n > 0]
