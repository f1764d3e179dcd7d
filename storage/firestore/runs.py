"""Firestore runs: ``runs/{rid}`` with its items, events and lease, one aggregate."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import (
    ITEM_FIXED,
    RUN_FIXED,
    aware_utc,
    check_changes,
    check_item_status,
    check_page,
    check_run_status,
    dumps,
    expected_set,
    jsonable,
)
from storage._listing import check_listing, empty_range
from storage._runs import new_run_records, reopened_run_changes
from storage.base import (
    RUN_FINAL,
    ConflictError,
    DuplicateError,
    Item,
    NewItem,
    NotFoundError,
    Run,
    utcnow,
)
from storage.firestore.connection import DOC_ID, doc_key, encode, from_doc, to_doc
from storage.firestore.day_totals import COUNTED_ITEMS, IN_TOTALS, DayTotalsMixin, run_share
from storage.firestore.notifications import read_outbox, write_outbox
from storage.notification_records import OutboxEvent
from storage.paging import Cursor

_DELETE_BATCH = 400         # deletes per commit when a run's events are pruned


class RunsMixin(DayTotalsMixin):
    @staticmethod
    def _run_from(snap: Any) -> Run:
        return from_doc(Run, snap.to_dict(), id=snap.id)

    @staticmethod
    def _item_from(snap: Any, run_id: str) -> Item:
        return from_doc(Item, snap.to_dict(), run_id=run_id)

    # runs --------------------------------------------------------------------------------------
    def _write_run(self, writer: Any, run: Run, items: Sequence[Item]) -> None:
        """Queue the run's create, its items and its day's totals on a batch or a
        transaction."""
        doc = {**to_doc(Run, asdict(run), skip=("id",)), IN_TOTALS: True}
        writer.create(self._run(run.id), doc)
        self._add_runs(writer, run.user_id, *run_share(doc))
        for item in items:
            writer.set(self._item(run.id, item.position),
                       to_doc(Item, asdict(item), skip=("run_id",)))

    def create_run(self, run: Run, items: Sequence[NewItem]) -> Run:
        if run.fire_id is not None:
            raise ValueError("a fire's run is created by fire_campaign, with its fire")
        stored, rows = new_run_records(run, items)
        batch = self._client.batch()            # one atomic commit: the run and all its items
        self._write_run(batch, stored, rows)
        try:
            batch.commit()
        except (gexc.AlreadyExists, gexc.Conflict) as exc:
            raise DuplicateError(f"run id already used: {stored.id}") from exc
        return stored

    def get_run(self, run_id: str) -> Run | None:
        snap = self._run(run_id).get()
        return self._run_from(snap) if snap.exists else None

    def list_runs(self, user_id: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 50, offset: int = 0, campaign_id: str | None = None, *,
                  kind: str | None = None, site_id: str | None = None,
                  created_from: datetime | None = None, created_to: datetime | None = None,
                  after: Cursor | None = None, oldest_first: bool = False) -> list[Run]:
        check_listing(limit, offset, after, 1, created_from, created_to)
        wanted = None if statuses is None else sorted(expected_set(statuses))
        if limit == 0 or wanted == [] or empty_range(created_from, created_to):
            return []
        query: Any = self._client.collection("runs")
        for name, value in (("user_id", user_id), ("campaign_id", campaign_id),
                            ("kind", kind), ("site_id", site_id)):
            if value is not None:
                query = query.where(filter=FieldFilter(name, "==", value))
        if wanted is not None:
            query = query.where(filter=FieldFilter("status", "==", wanted[0])) \
                if len(wanted) == 1 else query.where(filter=FieldFilter("status", "in", wanted))
        if created_from is not None:
            query = query.where(filter=FieldFilter("created_at", ">=", aware_utc(created_from)))
        if created_to is not None:
            query = query.where(filter=FieldFilter("created_at", "<", aware_utc(created_to)))
        direction = firestore.Query.ASCENDING if oldest_first else firestore.Query.DESCENDING
        query = query.order_by("created_at", direction=direction).order_by(DOC_ID,
                                                                           direction=direction)
        if after is not None:
            query = query.start_after({"created_at": aware_utc(after.created_at),
                                       "__name__": doc_key(after.key[0])})
        if offset:
            query = query.offset(offset)
        return [self._run_from(s) for s in query.limit(limit).stream()]

    def _change_run(self, run_id: str, changes: dict[str, Any],
                    check: Callable[[str], None] | None = None,
                    outbox: Sequence[OutboxEvent] = ()) -> Run:
        if "options" in changes:
            changes["options"] = jsonable(changes["options"])
        changes["updated_at"] = aware_utc(changes.get("updated_at") or utcnow())
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> Run:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            run = self._run_from(snap)
            if check is not None:
                check(run.status)
            written = {**changes, **reopened_run_changes(run, changes.get("status", run.status))}
            events = read_outbox(self, t, outbox)
            t.update(ref, to_doc(Run, written))
            write_outbox(self, t, events)
            return Run(**{**run.__dict__, **{n: encode(Run, n, v) for n, v in written.items()}})

        return self._tx(f"run:{run_id}", body)

    def transition_run(self, run_id: str, expected: Iterable[str], new_status: str, *,
                       outbox: Sequence[OutboxEvent] = (), **changes: Any) -> Run:
        check_run_status(new_status)
        check_changes(Run, changes, RUN_FIXED)
        allowed = expected_set(expected)

        def check(current: str) -> None:
            if current not in allowed:
                raise ConflictError(
                    f"run {run_id} is {current}, not {'/'.join(sorted(allowed))}",
                    current=current)

        return self._change_run(run_id, {**changes, "status": new_status}, check, outbox)

    def update_run(self, run_id: str, **changes: Any) -> Run:
        check_changes(Run, changes, RUN_FIXED)
        return self._change_run(run_id, dict(changes))

    # items -------------------------------------------------------------------------------------
    def list_items(self, run_id: str) -> list[Item]:
        query = self._run(run_id).collection("items").order_by("position")
        return [self._item_from(s, run_id) for s in query.stream()]

    def get_item(self, run_id: str, position: int) -> Item | None:
        snap = self._item(run_id, position).get()
        return self._item_from(snap, run_id) if snap.exists else None

    def _change_item(self, run_id: str, position: int, changes: dict[str, Any],
                     expected: frozenset[str] | None = None,
                     outbox: Sequence[OutboxEvent] = ()) -> Item:
        for name in ("input", "result"):
            if name in changes:
                changes[name] = jsonable(changes[name])
        changes["updated_at"] = aware_utc(changes.get("updated_at") or utcnow())
        ref = self._item(run_id, position)

        def body(t: firestore.Transaction) -> Item:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no item {position} in run {run_id}")
            item = self._item_from(snap, run_id)
            old = item.status
            if expected is not None and old not in expected:
                raise ConflictError(
                    f"item {position} of run {run_id} is {old}, "
                    f"not {'/'.join(sorted(expected))}", current=old)
            new = changes.get("status", old)
            # The run is read only when its day totals move (an item enters or leaves
            # published or failed); the counts are increments, so the other steps of its
            # items do not contend on it.
            counted = new != old and bool({old, new} & COUNTED_ITEMS)
            run = self._run(run_id).get(transaction=t).to_dict() if counted else None
            events = read_outbox(self, t, outbox)
            t.update(ref, to_doc(Item, changes))
            write_outbox(self, t, events)
            if new != old:
                t.update(self._run(run_id), {f"counts.{old}": firestore.Increment(-1),
                                             f"counts.{new}": firestore.Increment(1)})
            if run:
                self._move_item(t, run, old, new)
            return Item(**{**item.__dict__, **changes})

        return self._tx(f"run:{run_id}", body)

    def transition_item(self, run_id: str, position: int, expected: Iterable[str],
                        new_status: str, *, outbox: Sequence[OutboxEvent] = (),
                        **changes: Any) -> Item:
        check_item_status(new_status)
        check_changes(Item, changes, ITEM_FIXED)
        return self._change_item(run_id, position, {**changes, "status": new_status},
                                 expected_set(expected), outbox)

    def update_item(self, run_id: str, position: int, **changes: Any) -> Item:
        check_changes(Item, changes, ITEM_FIXED)
        return self._change_item(run_id, position, dict(changes))

    # events ------------------------------------------------------------------------------------
    def append_event(self, run_id: str, event: dict[str, Any]) -> int:
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> int:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            seq = int(snap.get("last_seq") or 0) + 1
            t.update(ref, {"last_seq": seq})
            t.create(ref.collection("events").document(f"{seq:010d}"),
                     {"seq": seq, "body": dumps({**event, "seq": seq})})
            return seq

        return self._tx(f"run:{run_id}", body)

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        check_page(limit)
        if limit == 0:
            return []
        query = (self._run(run_id).collection("events")
                 .where(filter=FieldFilter("seq", ">", after_seq)).order_by("seq"))
        if limit is not None:
            query = query.limit(limit)
        return [json.loads(s.get("body")) for s in query.stream()]

    # retention ---------------------------------------------------------------------------------
    def list_prunable_runs(self, finished_before: datetime, limit: int = 100,
                           after: Cursor | None = None) -> list[Run]:
        check_listing(limit, 0, after, 1)
        if limit == 0:
            return []
        query = (self._client.collection("runs")
                 .where(filter=FieldFilter("events_pruned_at", "==", None))
                 .where(filter=FieldFilter("status", "in", list(RUN_FINAL)))
                 .where(filter=FieldFilter("updated_at", "<", aware_utc(finished_before)))
                 .order_by("updated_at").order_by(DOC_ID))
        if after is not None:
            query = query.start_after({"updated_at": aware_utc(after.created_at),
                                       "__name__": doc_key(after.key[0])})
        return [self._run_from(s) for s in query.limit(limit).stream()]

    def prune_run(self, run_id: str, *, finished_before: datetime, when: datetime,
                  files_pruned: bool) -> Run:
        ref = self._run(run_id)
        cutoff, stamp = aware_utc(finished_before), aware_utc(when)

        def mark(t: firestore.Transaction) -> Run:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            run = self._run_from(snap)
            if run.status not in RUN_FINAL or run.updated_at >= cutoff:
                raise ConflictError(f"run {run_id} changed since it finished",
                                    current=run.status)
            changes: dict[str, Any] = {"events_pruned_at": run.events_pruned_at or stamp,
                                       "events_pruned_seq": run.last_seq}
            if files_pruned:
                # Files removed before the run last changed (a retry since) were older ones.
                older = run.files_pruned_at is None or run.files_pruned_at < run.updated_at
                changes["files_pruned_at"] = stamp if older else run.files_pruned_at
            t.update(ref, changes)
            return Run(**{**run.__dict__, **changes})

        # Marked first, in the compare-and-set: a retry after this point writes seqs above
        # ``last_seq``, which the deletes below never reach.
        run = self._tx(f"run:{run_id}", mark)
        events = (ref.collection("events").where(filter=FieldFilter("seq", "<=", run.last_seq))
                  .select([]).limit(_DELETE_BATCH))
        while True:
            batch, found = self._client.batch(), 0
            for snap in events.stream():
                batch.delete(snap.reference)
                found += 1
            if not found:
                return run
            batch.commit()

    # leases ------------------------------------------------------------------------------------
    def acquire_lease(self, run_id: str, owner: str, until: datetime, now: datetime) -> bool:
        until, now = aware_utc(until), aware_utc(now)
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> bool:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            run = self._run_from(snap)
            free = run.owner is None or run.lease_until is None or run.lease_until <= now
            if not (free or run.owner == owner):
                return False
            t.update(ref, {"owner": owner, "lease_until": until})
            return True

        return self._tx(f"run:{run_id}", body)

    def release_lease(self, run_id: str, owner: str) -> None:
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> None:
            snap = ref.get(transaction=t)
            if snap.exists and snap.get("owner") == owner:
                t.update(ref, {"owner": None, "lease_until": None})

        self._tx(f"run:{run_id}", body)
