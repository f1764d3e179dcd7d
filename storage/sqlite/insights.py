"""SQLite insights: the dashboard's figures from a few queries over one snapshot.

Posts per day and the runs' figures come from the day totals (storage/sqlite/day_totals.py):
one row per day (and site and kind) whatever the number of runs; a day the window covers only
in part is corrected by the raw rows of its part outside the window, read by the runs'
``runs_user_time`` index and two partial indexes on the publish time of published entries
(which also find each site's last post). Errors and tickers read the items of the window's
newest ``detail_limit`` runs from two partial indexes that hold what they need (failed items'
errors, published items' labels), never the item rows with their results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from storage._common import day_of, to_iso
from storage._day_totals import RunFigures, WindowTotals, day_window
from storage.base import LedgerEntry
from storage.insight_records import (
    DETAIL_RUNS,
    TICKER_KINDS,
    TOP_TICKERS,
    Insights,
    SiteActivity,
    check_window,
    ranked,
)
from storage.sqlite.connection import SQLiteConnection, decode
from storage.sqlite.day_totals import DAY_TOTALS_SCHEMA

# The window's newest runs, the ones errors and tickers are read from (?: user, since, until,
# limit).
_DETAIL_RUNS = """
    WITH detail AS (
        SELECT id, kind FROM runs WHERE user_id = ? AND created_at >= ? AND created_at < ?
        ORDER BY created_at DESC, id DESC LIMIT ?)
"""


class InsightsMixin(SQLiteConnection):
    LATE_SCHEMA = """
    CREATE INDEX IF NOT EXISTS posts_user_published
        ON posts(user_id, published_at) WHERE status = 'published';
    CREATE INDEX IF NOT EXISTS posts_user_site_published
        ON posts(user_id, site_id, published_at, slug) WHERE status = 'published';
    CREATE INDEX IF NOT EXISTS items_failed_errors
        ON items(run_id, error) WHERE status = 'failed';
    CREATE INDEX IF NOT EXISTS items_published_labels
        ON items(run_id, label, key) WHERE status = 'published';
    """ + DAY_TOTALS_SCHEMA

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        """One read transaction: every figure comes from the same state of the file."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                yield db
            finally:
                db.execute("COMMIT")

    def insights(self, user_id: str, since: datetime, until: datetime, *,
                 ticker_kinds: Sequence[str] = TICKER_KINDS, top: int = TOP_TICKERS,
                 detail_limit: int = DETAIL_RUNS) -> Insights:
        since, until = check_window(since, until, top, detail_limit)
        window = (user_id, to_iso(since), to_iso(until))
        found = Insights(since=since, until=until)
        with self._snapshot() as db:
            totals = self._window_totals(db, user_id, since, until)
            found.posts = totals.day_counts()
            found.runs, found.published, found.failed = (totals.runs.runs,
                                                         totals.runs.published,
                                                         totals.runs.failed)
            found.detail_runs = min(found.runs, detail_limit)
            detail = (*window, detail_limit)
            found.errors = ranked({r["error"]: r["n"] for r in db.execute(
                f"{_DETAIL_RUNS} SELECT COALESCE(i.error, '') AS error, COUNT(*) AS n "
                "FROM detail d JOIN items i INDEXED BY items_failed_errors ON i.run_id = d.id "
                "WHERE i.status = 'failed' "
                "GROUP BY 1", detail)})
            kinds = list(ticker_kinds)
            if kinds and top:
                found.tickers = ranked({r["label"]: r["n"] for r in db.execute(
                    f"{_DETAIL_RUNS} SELECT COALESCE(NULLIF(i.label, ''), i.key) AS label, "
                    "COUNT(*) AS n FROM detail d JOIN items i INDEXED BY items_published_labels "
                    "ON i.run_id = d.id "
                    f"WHERE i.status = 'published' AND d.kind IN ({', '.join('?' * len(kinds))})"
                    " GROUP BY 1", (*detail, *kinds))}, top)
            found.sites = [self._site_activity(db, user_id, row, to_iso(until), day_of(until))
                           for row in db.execute("SELECT id, name, daily_limit FROM sites "
                                                 "WHERE user_id = ? ORDER BY created_at, id",
                                                 (user_id,))]
        return found

    @staticmethod
    def _window_totals(db: Any, user_id: str, since: datetime, until: datetime
                       ) -> WindowTotals:
        """The day totals of the window's days, minus the raw rows of their parts outside
        it."""
        days = day_window(since, until)
        span = (user_id, days.days[0], days.days[-1])
        found = WindowTotals()
        found.posts.update({(r["day"], r["site_id"], r["kind"]): r["count"] for r in db.execute(
            "SELECT day, site_id, kind, count FROM post_day_totals WHERE user_id = ? "
            "AND day >= ? AND day <= ? AND count != 0", span)})
        found.runs = RunFigures(*db.execute(
            "SELECT COALESCE(SUM(runs), 0), COALESCE(SUM(published), 0), "
            "COALESCE(SUM(failed), 0) FROM run_day_totals WHERE user_id = ? AND day >= ? "
            "AND day <= ?", span).fetchone())
        for start, end in days.outside:
            part = (user_id, to_iso(start), to_iso(end))
            posts = Counter({(r["day"], r["site_id"], r["kind"]): r["n"] for r in db.execute(
                "SELECT substr(published_at, 1, 10) AS day, site_id, kind, COUNT(*) AS n "
                "FROM posts WHERE user_id = ? AND status = 'published' AND published_at >= ? "
                "AND published_at < ? GROUP BY day, site_id, kind", part)})
            runs = RunFigures(*db.execute(
                "SELECT COUNT(*), COALESCE(SUM(json_extract(counts, '$.published')), 0), "
                "COALESCE(SUM(json_extract(counts, '$.failed')), 0) FROM runs "
                "WHERE user_id = ? AND created_at >= ? AND created_at < ?", part).fetchone())
            found.remove(posts, runs)
        return found

    @staticmethod
    def _site_activity(db: Any, user_id: str, site: Any, until: str, today: str
                       ) -> SiteActivity:
        key = (user_id, site["id"])
        used = db.execute("SELECT COUNT(*) FROM posts WHERE user_id = ? AND site_id = ? "
                          "AND day = ?", (*key, today)).fetchone()[0]
        last = db.execute("SELECT * FROM posts WHERE user_id = ? AND site_id = ? "
                          "AND status = 'published' AND published_at < ? "
                          "ORDER BY published_at DESC, slug DESC LIMIT 1", (*key, until)
                          ).fetchone()
        return SiteActivity(site_id=site["id"], name=site["name"],
                            daily_limit=site["daily_limit"], today=int(used),
                            last_post=decode(LedgerEntry, last) if last else None)
