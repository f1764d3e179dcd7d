"""Firestore retention of what the outbox leaves behind, and the one-off backfill of old runs.

Notifications live under each user (``users/{uid}/notifications``), so retention reads them
with collection-group queries on ``(read, created_at)`` (a collection-group index in
``storage/firestore.indexes.json``). Outbox events are read oldest first, each with its
deliveries; an event goes with them in a batch once none is pending (a final delivery never
changes again, so nothing races the delete). A webhook's delivery attempts
(``users/{uid}/webhooks/{wid}/attempts``) are reached through ``webhook_ids`` (every webhook's
owner, by id): two counts say how many are old beyond its newest ``keep``, and those go from
right after the ``keep``-th newest (read in the same query order as the log's page), so an
attempt that arrives meanwhile only keeps one more. Runs are pruned in ``runs``.

Run documents written before the prune fields existed lack ``events_pruned_at``, and a
Firestore ``== null`` filter matches only documents that store the field: ``backfill_runs``
walks every run once by document id and stores it as null where it is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import aware_utc
from storage._listing import check_listing
from storage.firestore.connection import DOC_ID, FirestoreConnection, doc_key
from storage.firestore.notifications import newest_attempts_first
from storage.housekeeping import OutboxPruned, WebhookAttemptsPruned, walk_webhook_attempts
from storage.paging import Cursor

_WRITES = 400                   # deletes (or updates) per batch commit
_BACKFILLED = "events_pruned_at"


def _count(query: Any) -> int:
    result = query.count().get()
    return int(result[0][0].value) if result else 0


class HousekeepingMixin(FirestoreConnection):
    # runs written before the prune fields ---------------------------------------------------
    def backfill_runs(self, after: str | None = None, limit: int = 500
                      ) -> tuple[int, str | None]:
        check_listing(limit, 0, None, 1)
        if limit == 0:
            return 0, after
        query = self._client.collection("runs").order_by(DOC_ID).select([_BACKFILLED])
        if after is not None:
            query = query.start_after({"__name__": after})
        snaps = list(query.limit(limit).stream())
        # Only the prune itself sets a time here, and only on runs its query found, which
        # have the field: writing null where it is absent overwrites nothing.
        missing = [s.reference for s in snaps if _BACKFILLED not in (s.to_dict() or {})]
        for start in range(0, len(missing), _WRITES):
            chunk = missing[start:start + _WRITES]
            batch = self._client.batch()
            for ref in chunk:
                batch.update(ref, {_BACKFILLED: None})
            try:
                batch.commit()
            except gexc.NotFound:               # a run deleted meanwhile: the others one by one
                for ref in chunk:
                    try:
                        ref.update({_BACKFILLED: None})
                    except gexc.NotFound:
                        continue
        return len(missing), (snaps[-1].id if len(snaps) == limit else None)

    # notifications --------------------------------------------------------------------------
    def _aged_notifications(self, read_before: datetime, unread_before: datetime
                            ) -> Iterator[Any]:
        group = self._client.collection_group("notifications")
        for read, before in ((True, read_before), (False, unread_before)):
            yield (group.where(filter=FieldFilter("read", "==", read))
                   .where(filter=FieldFilter("created_at", "<", aware_utc(before)))
                   .order_by("created_at"))

    def count_prunable_notifications(self, *, read_before: datetime,
                                     unread_before: datetime) -> int:
        return sum(_count(q) for q in self._aged_notifications(read_before, unread_before))

    def prune_notifications(self, *, read_before: datetime, unread_before: datetime,
                            limit: int = 200) -> int:
        check_listing(limit, 0, None, 1)
        refs: list[Any] = []
        for query in self._aged_notifications(read_before, unread_before):
            if len(refs) >= limit:
                break
            refs += [s.reference for s in query.select([]).limit(limit - len(refs)).stream()]
        self._delete(refs)
        return len(refs)

    # outbox ---------------------------------------------------------------------------------
    def prune_outbox(self, created_before: datetime, *, limit: int = 200,
                     after: Cursor | None = None, dry_run: bool = False) -> OutboxPruned:
        check_listing(limit, 0, after, 1)
        if limit == 0:
            return OutboxPruned(0, 0, None)
        query = (self._client.collection("outbox")
                 .where(filter=FieldFilter("created_at", "<", aware_utc(created_before)))
                 .order_by("created_at").order_by(DOC_ID))
        if after is not None:
            query = query.start_after({"created_at": aware_utc(after.created_at),
                                       "__name__": doc_key(after.key[0])})
        snaps = list(query.select(["created_at", "id"]).limit(limit).stream())
        refs: list[Any] = []
        events = deliveries = 0
        for snap in snaps:
            found = list(snap.reference.collection("deliveries").select(["state"]).stream())
            if any(d.get("state") == "pending" for d in found):
                continue
            events += 1
            deliveries += len(found)
            refs += [d.reference for d in found] + [snap.reference]   # the event last
        if not dry_run:
            self._delete(refs)
        more = None
        if len(snaps) == limit:
            last = snaps[-1]
            event_id = (last.to_dict() or {}).get("id") or unquote(last.id)
            more = Cursor(aware_utc(last.get("created_at")), (str(event_id),))
        return OutboxPruned(events, deliveries, more)

    # webhooks' delivery attempts -------------------------------------------------------------
    def prune_webhook_attempts(self, created_before: datetime, *, keep: int = 50,
                               limit: int = 200, start: str | None = None,
                               dry_run: bool = False) -> WebhookAttemptsPruned:
        before = aware_utc(created_before)
        logs: dict[str, Any] = {}           # webhook_ids document id -> its attempts

        def webhooks(first: str | None, count: int) -> list[str]:
            query = self._client.collection("webhook_ids").order_by(DOC_ID).select(["user_id"])
            if first is not None:
                query = query.start_at({"__name__": first})
            for snap in query.limit(count).stream():
                # A webhook's document id under its user is its webhook_ids document's id.
                logs[snap.id] = (self._user(snap.get("user_id")).collection("webhooks")
                                 .document(snap.id).collection("attempts"))
            return list(logs)

        def prunable(hook: str) -> int:
            old = _count(logs[hook].where(filter=FieldFilter("created_at", "<", before)))
            recent = _count(logs[hook]) - old if old else 0
            return max(0, old - max(0, keep - recent))

        def delete(hook: str, count: int) -> int:
            aged = newest_attempts_first(logs[hook].where(
                filter=FieldFilter("created_at", "<", before)))
            if keep:
                kept = list(newest_attempts_first(logs[hook]).select(["created_at", "attempt"])
                            .limit(keep).stream())
                if len(kept) < keep:
                    return 0
                aged = aged.start_after(kept[-1])
            refs = [s.reference for s in aged.select([]).limit(count).stream()]
            self._delete(refs)
            return len(refs)

        return walk_webhook_attempts(limit, keep, start, webhooks=webhooks, prunable=prunable,
                                     delete=None if dry_run else delete)

    def _delete(self, refs: list[Any]) -> None:
        for start in range(0, len(refs), _WRITES):
            batch = self._client.batch()
            for ref in refs[start:start + _WRITES]:
                batch.delete(ref)
            batch.commit()
