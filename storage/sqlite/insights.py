"""SQLite insights: the dashboard's figures in a few ``GROUP BY`` queries over one snapshot.

Runs are found by the ``runs_user_time`` index (user, created_at), their items by the items'
primary key; published ledger entries by two partial indexes on their publish time, so the
per-day chart and each site's last post read only published rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from storage._common import day_of, to_iso
from storage.base import LedgerEntry
from storage.insight_records import (
    DETAIL_RUNS,
    TICKER_KINDS,
    TOP_TICKERS,
    DayCount,
    Insights,
    SiteActivity,
    check_window,
    ranked,
)
from storage.sqlite.connection import SQLiteConnection, decode

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
    """

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
            found.posts = [DayCount(r["day"], r["site_id"], r["kind"], r["n"]) for r in db.execute(
                "SELECT substr(published_at, 1, 10) AS day, site_id, kind, COUNT(*) AS n "
                "FROM posts WHERE user_id = ? AND status = 'published' AND published_at >= ? "
                "AND published_at < ? GROUP BY day, site_id, kind ORDER BY day, site_id, kind",
                window)]
            totals = db.execute(
                "SELECT COUNT(*) AS runs, "
                "COALESCE(SUM(json_extract(counts, '$.published')), 0) AS published, "
                "COALESCE(SUM(json_extract(counts, '$.failed')), 0) AS failed "
                "FROM runs WHERE user_id = ? AND created_at >= ? AND created_at < ?",
                window).fetchone()
            found.runs, found.published, found.failed = (int(totals["runs"]),
                                                         int(totals["published"]),
                                                         int(totals["failed"]))
            found.detail_runs = min(found.runs, detail_limit)
            detail = (*window, detail_limit)
            found.errors = ranked({r["error"]: r["n"] for r in db.execute(
                f"{_DETAIL_RUNS} SELECT COALESCE(i.error, '') AS error, COUNT(*) AS n "
                "FROM detail d JOIN items i ON i.run_id = d.id WHERE i.status = 'failed' "
                "GROUP BY 1", detail)})
            kinds = list(ticker_kinds)
            if kinds and top:
                found.tickers = ranked({r["label"]: r["n"] for r in db.execute(
                    f"{_DETAIL_RUNS} SELECT COALESCE(NULLIF(i.label, ''), i.key) AS label, "
                    "COUNT(*) AS n FROM detail d JOIN items i ON i.run_id = d.id "
                    f"WHERE i.status = 'published' AND d.kind IN ({', '.join('?' * len(kinds))})"
                    " GROUP BY 1", (*detail, *kinds))}, top)
            found.sites = [self._site_activity(db, user_id, row, to_iso(until), day_of(until))
                           for row in db.execute("SELECT id, name, daily_limit FROM sites "
                                                 "WHERE user_id = ? ORDER BY created_at, id",
                                                 (user_id,))]
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
