"""Firestore insights: the dashboard's figures from bounded queries, never a whole history.

- posts per day and the runs' figures: the day totals (storage/firestore/day_totals.py) of
  the window's days, in one ``get_all`` with the backfill's mark (a user without it is
  backfilled first); a day the window covers only in part is corrected by the raw records of
  its part outside the window: one aggregation (count and the sums of ``counts.published`` and
  ``counts.failed``) over ``runs`` by (user_id, created_at), and per site its published
  entries there by ``publishedDate`` (kind and time only);
- errors and tickers: the newest ``detail_limit`` runs of the window (kind and counts only),
  then one query per run that has failed items or published tickers, on a small pool;
- per site: its newest published entry before the window's end, and that day's
  ``post_days`` counter (the daily limit's own count).

The composite indexes these need are in ``storage/firestore.indexes.json``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import aware_utc, day_of
from storage._day_totals import PostKey, RunFigures, WindowTotals, day_window
from storage.base import LedgerEntry, Site
from storage.firestore.connection import DOC_ID, from_doc
from storage.firestore.day_totals import DayTotalsMixin
from storage.insight_records import (
    DETAIL_RUNS,
    TICKER_KINDS,
    TOP_TICKERS,
    Insights,
    SiteActivity,
    check_window,
    ranked,
)

_POOL = 8                   # item queries in flight at once
_PUBLISHED = "publishedDate"


class InsightsMixin(DayTotalsMixin):
    def insights(self, user_id: str, since: datetime, until: datetime, *,
                 ticker_kinds: Sequence[str] = TICKER_KINDS, top: int = TOP_TICKERS,
                 detail_limit: int = DETAIL_RUNS) -> Insights:
        since, until = check_window(since, until, top, detail_limit)
        found = Insights(since=since, until=until)
        sites = self.list_sites(user_id)       # type: ignore[attr-defined]
        totals = self._window_totals(user_id, [s.id for s in sites], since, until)
        found.posts = totals.day_counts()
        found.runs, found.published, found.failed = (totals.runs.runs, totals.runs.published,
                                                     totals.runs.failed)
        newest = (self._runs_between(user_id, since, until)
                  .order_by("created_at", direction=firestore.Query.DESCENDING)
                  .order_by(DOC_ID, direction=firestore.Query.DESCENDING)
                  .select(["kind", "counts"]).limit(detail_limit)) if detail_limit else None
        detail = [(s.id, s.to_dict() or {}) for s in newest.stream()] if newest else []
        found.detail_runs = len(detail)
        errors, tickers = self._item_tallies(detail, set(ticker_kinds) if top else set())
        found.errors, found.tickers = ranked(errors), ranked(tickers, top)
        found.sites = self._site_activity(user_id, sites, until)
        return found

    # posts per day and the runs' figures --------------------------------------------------
    def _runs_between(self, user_id: str, start: datetime, end: datetime) -> Any:
        return (self._client.collection("runs")
                .where(filter=FieldFilter("user_id", "==", user_id))
                .where(filter=FieldFilter("created_at", ">=", start))
                .where(filter=FieldFilter("created_at", "<", end)))

    def _window_totals(self, user_id: str, site_ids: list[str], since: datetime,
                       until: datetime) -> WindowTotals:
        """The day totals of the window's days, minus the raw records of their parts outside
        it."""
        window = day_window(since, until)
        found = self._day_totals(user_id, site_ids, window.days)
        if found is None:
            self._build_day_totals(user_id, site_ids)
            found = self._day_totals(user_id, site_ids, window.days) or WindowTotals()
        for start, end in window.outside:
            found.remove(self._raw_posts(user_id, site_ids, start, end),
                         self._raw_runs(user_id, start, end))
        return found

    def _day_totals(self, user_id: str, site_ids: list[str], days: list[str]
                    ) -> WindowTotals | None:
        """One ``get_all``: the run days, each site's published days and the backfill's mark
        (None while the user has none)."""
        built = self._totals_built(user_id)
        posts = {(sid, day): self._published_day(user_id, sid, day)
                 for sid in site_ids for day in days}
        post_paths = {ref.path: key for key, ref in posts.items()}
        refs = [built, *(self._run_day(user_id, day) for day in days), *posts.values()]
        found = WindowTotals()
        marked = False
        for snap in self._client.get_all(refs):
            if snap.reference.path == built.path:
                marked = snap.exists
            elif not snap.exists:
                continue
            elif snap.reference.path in post_paths:
                site_id, day = post_paths[snap.reference.path]
                for kind, n in ((snap.to_dict() or {}).get("kinds") or {}).items():
                    found.posts[(day, site_id, kind)] += int(n or 0)
            else:
                data = snap.to_dict() or {}
                found.runs.add(RunFigures(int(data.get("runs") or 0),
                                          int(data.get("published") or 0),
                                          int(data.get("failed") or 0)))
        return found if marked else None

    def _raw_runs(self, user_id: str, start: datetime, end: datetime) -> RunFigures:
        totals = (self._runs_between(user_id, start, end).count(alias="runs")
                  .sum("counts.published", alias="published")
                  .sum("counts.failed", alias="failed"))
        values = {r.alias: r.value for row in totals.get() for r in row}
        return RunFigures(int(values.get("runs") or 0), int(values.get("published") or 0),
                          int(values.get("failed") or 0))

    def _raw_posts(self, user_id: str, site_ids: list[str], start: datetime, end: datetime
                   ) -> Counter[PostKey]:
        counts: Counter[PostKey] = Counter()
        for site_id in site_ids:
            query = (self._published(user_id, site_id)
                     .where(filter=FieldFilter(_PUBLISHED, ">=", start))
                     .where(filter=FieldFilter(_PUBLISHED, "<", end))
                     .order_by(_PUBLISHED).order_by(DOC_ID).select(["kind", _PUBLISHED]))
            for snap in query.stream():
                data = snap.to_dict() or {}
                counts[(day_of(aware_utc(data[_PUBLISHED])), site_id,
                        str(data.get("kind") or ""))] += 1
        return counts

    # errors and tickers ----------------------------------------------------------------------
    def _item_tallies(self, detail: list[tuple[str, dict[str, Any]]], ticker_kinds: set[str]
                      ) -> tuple[Counter[str], Counter[str]]:
        """Failed items' errors and the ticker kinds' published labels of the detailed runs;
        a run whose counts say it has neither is not read."""
        asks: list[tuple[str, list[str]]] = []
        for run_id, data in detail:
            counts = data.get("counts") or {}
            wanted = (["failed"] if counts.get("failed") else []) + (
                ["published"] if counts.get("published") and data.get("kind") in ticker_kinds
                else [])
            if wanted:
                asks.append((run_id, wanted))
        errors: Counter[str] = Counter()
        tickers: Counter[str] = Counter()
        if not asks:
            return errors, tickers
        with ThreadPoolExecutor(max_workers=min(_POOL, len(asks))) as pool:
            for rows in pool.map(lambda ask: self._run_items(*ask), asks):
                for status, label, error in rows:
                    if status == "failed":
                        errors[error] += 1
                    else:
                        tickers[label] += 1
        return errors, tickers

    def _run_items(self, run_id: str, statuses: list[str]) -> list[tuple[str, str, str]]:
        query: Any = self._run(run_id).collection("items")
        query = query.where(filter=FieldFilter("status", "==", statuses[0])) \
            if len(statuses) == 1 else query.where(filter=FieldFilter("status", "in", statuses))
        rows = []
        for snap in query.select(["status", "label", "key", "error"]).stream():
            data = snap.to_dict() or {}
            rows.append((str(data.get("status")), str(data.get("label") or data.get("key")),
                         str(data.get("error") or "")))
        return rows

    # the ledger ------------------------------------------------------------------------------
    def _published(self, user_id: str, site_id: str) -> Any:
        return self._site(user_id, site_id).collection("posts").where(
            filter=FieldFilter("status", "==", "published"))

    def _site_activity(self, user_id: str, sites: list[Site], until: datetime
                       ) -> list[SiteActivity]:
        refs = [self._post_day(user_id, s.id, day_of(until)) for s in sites]
        used = {snap.reference.path: int((snap.to_dict() or {}).get("count") or 0)
                for snap in self._client.get_all(refs) if snap.exists} if refs else {}
        found = []
        for site, ref in zip(sites, refs, strict=True):
            newest = (self._published(user_id, site.id)
                      .where(filter=FieldFilter(_PUBLISHED, "<", until))
                      .order_by(_PUBLISHED, direction=firestore.Query.DESCENDING)
                      .order_by(DOC_ID, direction=firestore.Query.DESCENDING).limit(1))
            last = [from_doc(LedgerEntry, s.to_dict()) for s in newest.stream()]
            found.append(SiteActivity(site_id=site.id, name=site.name,
                                      daily_limit=site.daily_limit,
                                      today=max(0, used.get(ref.path, 0)),
                                      last_post=last[0] if last else None))
        return found

