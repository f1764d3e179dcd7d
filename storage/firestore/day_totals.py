"""Firestore day totals (see storage._day_totals), written by the ledger's and the runs' own
transactions and batches::

    users/{uid}/sites/{sid}/published_days/{day}  {day, kinds: {kind: n}}   by publishedDate
    users/{uid}/run_days/{day}                    {day, runs, published, failed} by created_at
    users/{uid}/day_totals/built                  {built_at}: the backfill below is done

A run or ledger document whose figures are in the totals carries ``in_day_totals: true``; every
write that changes what a document counts (an entry published or re-published, an item
becoming or ceasing to be published or failed) moves the totals by the difference, and only
for a document that is in them. Documents written before the totals existed are added by the
user's backfill, on the first ``insights`` of that user: pages of 200 documents, each page in
one transaction that adds the documents not yet in the totals and marks them, so a backfill
interrupted or run twice at once counts each document once, and a write racing it is
serialised with it by Firestore. Deleting a site or an account removes its totals with it
(they live under its document).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import aware_utc, day_of
from storage._day_totals import RunFigures
from storage.base import utcnow
from storage.firestore.connection import DOC_ID, FirestoreConnection, doc_key

IN_TOTALS = "in_day_totals"
COUNTED_ITEMS = frozenset({"published", "failed"})    # item states the run totals sum
_PUBLISHED = "publishedDate"
_BACKFILL_PAGE = 200


def post_share(data: dict[str, Any] | None) -> tuple[str, str] | None:
    """What a ledger document counts in its site's totals: (day, kind) while it is published
    and in the totals; None otherwise."""
    if not data or not data.get(IN_TOTALS) or data.get("status") != "published" \
            or data.get(_PUBLISHED) is None:
        return None
    return day_of(aware_utc(data[_PUBLISHED])), str(data.get("kind") or "")


def run_share(data: dict[str, Any]) -> tuple[str, RunFigures]:
    """A run document's day and figures (whether or not it is in the totals yet)."""
    counts = data.get("counts") or {}
    return day_of(aware_utc(data["created_at"])), RunFigures(
        1, int(counts.get("published") or 0), int(counts.get("failed") or 0))


class DayTotalsMixin(FirestoreConnection):
    # references ------------------------------------------------------------------------------
    def _run_day(self, user_id: str, day: str) -> firestore.DocumentReference:
        return self._user(user_id).collection("run_days").document(doc_key(day))

    def _published_day(self, user_id: str, site_id: str, day: str
                       ) -> firestore.DocumentReference:
        return self._site(user_id, site_id).collection("published_days").document(doc_key(day))

    def _totals_built(self, user_id: str) -> firestore.DocumentReference:
        return self._user(user_id).collection("day_totals").document("built")

    # writes (on a transaction or a batch) ----------------------------------------------------
    def _add_posts(self, writer: Any, user_id: str, site_id: str,
                   counts: Counter[tuple[str, str]]) -> None:
        """Move the site's totals by ``{(day, kind): n}`` (zero entries are skipped)."""
        by_day: dict[str, dict[str, Any]] = {}
        for (day, kind), n in counts.items():
            if n:
                by_day.setdefault(day, {})[kind] = firestore.Increment(n)
        for day, kinds in by_day.items():
            writer.set(self._published_day(user_id, site_id, day),
                       {"day": day, "kinds": kinds}, merge=True)

    def _move_post(self, writer: Any, user_id: str, site_id: str,
                   old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """A ledger document goes from ``old`` (None: new) to ``new`` (marked in the totals)."""
        moved: Counter[tuple[str, str]] = Counter()
        if (before := post_share(old)) is not None:
            moved[before] -= 1
        if (after := post_share({**new, IN_TOTALS: True})) is not None:
            moved[after] += 1
        self._add_posts(writer, user_id, site_id, moved)

    def _add_runs(self, writer: Any, user_id: str, day: str, figures: RunFigures) -> None:
        if figures.runs or figures.published or figures.failed:
            writer.set(self._run_day(user_id, day), {
                "day": day, "runs": firestore.Increment(figures.runs),
                "published": firestore.Increment(figures.published),
                "failed": firestore.Increment(figures.failed)}, merge=True)

    def _move_item(self, writer: Any, run: dict[str, Any], old: str, new: str) -> None:
        """An item of ``run`` (its document as read in the transaction) went ``old -> new``."""
        if not run.get(IN_TOTALS):
            return
        delta = {state: (state == new) - (state == old) for state in COUNTED_ITEMS}
        self._add_runs(writer, str(run["user_id"]), run_share(run)[0],
                       RunFigures(0, delta["published"], delta["failed"]))

    # the backfill ----------------------------------------------------------------------------
    def _build_day_totals(self, user_id: str, site_ids: Iterable[str]) -> None:
        """Add the user's runs and published entries not yet in the totals, then mark it
        done. Idempotent; each page is one transaction."""
        runs = (self._client.collection("runs")
                .where(filter=FieldFilter("user_id", "==", user_id))
                .order_by("created_at").order_by(DOC_ID))
        self._backfill(user_id, runs, self._add_run_page)
        for site_id in site_ids:
            posts = (self._site(user_id, site_id).collection("posts")
                     .where(filter=FieldFilter("status", "==", "published")).order_by(DOC_ID))
            self._backfill(user_id, posts,
                           lambda t, page, sid=site_id: self._add_post_page(t, user_id, sid,
                                                                             page))
        self._totals_built(user_id).set({"built_at": aware_utc(utcnow())})

    def _backfill(self, user_id: str, query: Any, add: Any) -> None:
        last: Any = None
        while True:
            page_query = (query.start_after(last) if last is not None else query
                          ).limit(_BACKFILL_PAGE)

            def body(t: firestore.Transaction, page_query: Any = page_query) -> list[Any]:
                page = list(t.get(page_query))
                add(t, page)
                return page

            page = self._tx(f"day-totals:{user_id}", body)
            if len(page) < _BACKFILL_PAGE:
                return
            last = page[-1]

    def _add_run_page(self, t: firestore.Transaction, page: list[Any]) -> None:
        by_day: dict[tuple[str, str], RunFigures] = {}
        for snap in page:
            data = snap.to_dict() or {}
            if data.get(IN_TOTALS):
                continue
            day, figures = run_share(data)
            by_day.setdefault((str(data["user_id"]), day), RunFigures()).add(figures)
            t.update(snap.reference, {IN_TOTALS: True})
        for (user_id, day), figures in by_day.items():
            self._add_runs(t, user_id, day, figures)

    def _add_post_page(self, t: firestore.Transaction, user_id: str, site_id: str,
                       page: list[Any]) -> None:
        counts: Counter[tuple[str, str]] = Counter()
        for snap in page:
            data = snap.to_dict() or {}
            if data.get(IN_TOTALS):
                continue
            if (share := post_share({**data, IN_TOTALS: True})) is not None:
                counts[share] += 1
            t.update(snap.reference, {IN_TOTALS: True})
        self._add_posts(t, user_id, site_id, counts)
