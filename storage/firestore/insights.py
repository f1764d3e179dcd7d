"""Firestore insights: the dashboard's figures from bounded queries, never a whole history.

- the window's runs: one aggregation (count and the sums of ``counts.published`` and
  ``counts.failed``) over ``runs`` by (user_id, created_at);
- errors and tickers: the newest ``detail_limit`` runs of the window (kind and counts only),
  then one query per run that has failed items or published tickers, on a small pool;
- per site: published ledger entries of the window by ``publishedDate`` (kind and time only),
  its newest published entry before the window's end, and that day's ``post_days`` counter
  (the daily limit's own count).

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
from storage.base import LedgerEntry, Site
from storage.firestore.connection import DOC_ID, FirestoreConnection, from_doc
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

_POOL = 8                   # item queries in flight at once
_PUBLISHED = "publishedDate"


class InsightsMixin(FirestoreConnection):
    def insights(self, user_id: str, since: datetime, until: datetime, *,
                 ticker_kinds: Sequence[str] = TICKER_KINDS, top: int = TOP_TICKERS,
                 detail_limit: int = DETAIL_RUNS) -> Insights:
        since, until = check_window(since, until, top, detail_limit)
        found = Insights(since=since, until=until)
        runs = (self._client.collection("runs")
                .where(filter=FieldFilter("user_id", "==", user_id))
                .where(filter=FieldFilter("created_at", ">=", since))
                .where(filter=FieldFilter("created_at", "<", until)))
        totals = (runs.count(alias="runs")
                  .sum("counts.published", alias="published")
                  .sum("counts.failed", alias="failed"))
        values = {r.alias: r.value for row in totals.get() for r in row}
        found.runs = int(values.get("runs") or 0)
        found.published = int(values.get("published") or 0)
        found.failed = int(values.get("failed") or 0)
        newest = (runs.order_by("created_at", direction=firestore.Query.DESCENDING)
                  .order_by(DOC_ID, direction=firestore.Query.DESCENDING)
                  .select(["kind", "counts"]).limit(detail_limit)) if detail_limit else None
        detail = [(s.id, s.to_dict() or {}) for s in newest.stream()] if newest else []
        found.detail_runs = len(detail)
        errors, tickers = self._item_tallies(detail, set(ticker_kinds) if top else set())
        found.errors, found.tickers = ranked(errors), ranked(tickers, top)
        sites = self.list_sites(user_id)       # type: ignore[attr-defined]
        found.posts = self._posts_by_day(user_id, sites, since, until)
        found.sites = self._site_activity(user_id, sites, until)
        return found

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

    def _posts_by_day(self, user_id: str, sites: list[Site], since: datetime,
                      until: datetime) -> list[DayCount]:
        counts: Counter[tuple[str, str, str]] = Counter()
        for site in sites:
            query = (self._published(user_id, site.id)
                     .where(filter=FieldFilter(_PUBLISHED, ">=", since))
                     .where(filter=FieldFilter(_PUBLISHED, "<", until))
                     .order_by(_PUBLISHED).order_by(DOC_ID).select(["kind", _PUBLISHED]))
            for snap in query.stream():
                data = snap.to_dict() or {}
                counts[(day_of(aware_utc(data[_PUBLISHED])), site.id,
                        str(data.get("kind") or ""))] += 1
        return [DayCount(day, site_id, kind, n)
                for (day, site_id, kind), n in sorted(counts.items())]

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

