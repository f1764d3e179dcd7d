"""What retention removes besides runs, and a retried run's prune marks, held against both
backends (SQLite and the Firestore emulator).

Notifications: read ones past the read bound go, unread ones only past the (longer) unread
bound, every user's, in batches. Outbox events go with their deliveries once none is pending
(a leased delivery is pending); their notifications stay, and an event id that comes back
afterwards is written again. A webhook's delivery attempts go once old, but never its newest
50 (each webhook's own; every user's webhooks are walked, in batches). A retry of a pruned run
clears ``events_pruned_at`` (so it is pruned again once it finishes anew) and keeps how far
its events went. On Firestore, run documents written before ``events_pruned_at`` existed are
invisible to the prune query until ``backfill_runs`` gives them the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storage.base import NewItem, Run, Store
from storage.housekeeping import item_files_pruned, pruned_seq, run_files_pruned
from storage.notification_records import (
    DeliveryOutcome,
    NewDelivery,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
)
from tests.storage.test_contract import make_user

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
READ_BEFORE = T0 - timedelta(days=90)
UNREAD_BEFORE = T0 - timedelta(days=360)


def add_event(store: Store, user_id: str, event_id: str, created: datetime,
              channels: tuple[str, ...] = ("portal", "email")) -> None:
    written = store.add_outbox([OutboxEvent(
        id=event_id, user_id=user_id, type="run.completed", title=f"Run {event_id}",
        deliveries=[NewDelivery(c) for c in channels], created_at=created)])
    assert [e.id for e in written] == [event_id]


def settle(store: Store, outcomes: dict[str, dict[str, str]], owner: str = "w") -> None:
    """Claim every due delivery and record ``outcomes`` (event id -> channel -> delivered |
    failed | pending, which schedules another attempt); the deliveries not named stay
    leased to ``owner``."""
    claimed = store.claim_deliveries(owner, T0, T0 + timedelta(minutes=5), limit=100)
    for delivery in claimed:
        state = outcomes.get(delivery.event_id, {}).get(delivery.channel)
        if state is None:
            continue
        store.finish_delivery(delivery, owner, DeliveryOutcome(
            state=state, next_attempt_at=T0 + timedelta(days=1) if state == "pending" else None,
            error=None if state == "delivered" else "smtp said no"))


def prune_all_outbox(store: Store, created_before: datetime, limit: int, **kw: Any
                     ) -> tuple[int, int, int]:
    """(events, deliveries, batches) of a whole scan in batches of ``limit``."""
    events = deliveries = batches = 0
    after = None
    while True:
        batch = store.prune_outbox(created_before, limit=limit, after=after, **kw)
        events, deliveries, batches = events + batch.events, deliveries + batch.deliveries, \
            batches + 1
        if batch.after is None:
            return events, deliveries, batches
        after = batch.after


# notifications -------------------------------------------------------------------------------

def test_read_notifications_go_after_the_window_and_unread_ones_much_later(store: Store
                                                                            ) -> None:
    ann, bob = make_user(store), make_user(store, "bob@example.com")
    old, recent, ancient = READ_BEFORE - timedelta(days=1), READ_BEFORE + timedelta(days=1), \
        UNREAD_BEFORE - timedelta(days=1)
    for name, created in (("read-old", old), ("unread-old", old), ("read-recent", recent),
                          ("unread-ancient", ancient), ("read-ancient", ancient)):
        add_event(store, ann, name, created, channels=("portal",))
    add_event(store, bob, "bob-read-old", old, channels=("portal",))
    store.mark_notifications_read(ann, ["read-old", "read-recent", "read-ancient"])
    store.mark_notifications_read(bob)
    bounds = {"read_before": READ_BEFORE, "unread_before": UNREAD_BEFORE}
    assert store.count_prunable_notifications(**bounds) == 4
    assert len(store.list_notifications(ann)) == 5                        # counting removes none
    assert store.prune_notifications(**bounds, limit=3) == 3
    assert store.prune_notifications(**bounds, limit=3) == 1
    assert store.prune_notifications(**bounds, limit=3) == 0
    assert {n.id for n in store.list_notifications(ann)} == {"unread-old", "read-recent"}
    assert store.list_notifications(bob) == []
    assert store.count_unread_notifications(ann) == 1
    assert store.count_prunable_notifications(**bounds) == 0
    # the outbox events are retention's other half: untouched here
    assert store.get_outbox_event("read-old") is not None


# outbox --------------------------------------------------------------------------------------

def test_finished_outbox_events_go_with_their_deliveries_and_pending_ones_stay(store: Store
                                                                                ) -> None:
    ann = make_user(store)
    old = READ_BEFORE - timedelta(days=2)
    for n, name in enumerate(("delivered", "failed", "leased", "waiting", "delivered-too")):
        add_event(store, ann, name, old + timedelta(minutes=n))
    add_event(store, ann, "recent", READ_BEFORE + timedelta(hours=1))
    store.add_outbox([OutboxEvent(id="no-deliveries", user_id=ann, type="ping", title="Ping",
                                  created_at=old)])
    both = {"portal": "delivered", "email": "delivered"}
    settle(store, {"delivered": both, "failed": {"portal": "delivered", "email": "failed"},
                   "leased": {"portal": "delivered"},              # email: claimed, leased
                   "waiting": {"portal": "delivered", "email": "pending"},  # a later attempt
                   "recent": both, "delivered-too": both})
    leased = {d.channel: d for d in store.list_deliveries("leased")}["email"]
    assert leased.state == "pending" and leased.lease_owner == "w"

    dry = prune_all_outbox(store, READ_BEFORE, 100, dry_run=True)
    assert dry[:2] == (4, 6)                   # delivered, failed, delivered-too, no-deliveries
    assert store.get_outbox_event("delivered") is not None                 # a dry run deletes none
    assert prune_all_outbox(store, READ_BEFORE, 2) == (4, 6, 4)            # 6 old events, 2 a batch
    for gone in ("delivered", "failed", "delivered-too", "no-deliveries"):
        assert store.get_outbox_event(gone) is None and store.list_deliveries(gone) == []
    for kept, deliveries in (("leased", 2), ("waiting", 2), ("recent", 2)):
        assert store.get_outbox_event(kept) is not None
        assert len(store.list_deliveries(kept)) == deliveries
    # the user's notifications are not the outbox's to remove
    assert {n.id for n in store.list_notifications(ann)} >= {"delivered", "failed"}
    assert prune_all_outbox(store, READ_BEFORE, 100)[:2] == (0, 0)         # done once

    # the leased delivery finishes: its event goes on the next pass
    store.finish_delivery(leased, "w", DeliveryOutcome(state="delivered"))
    assert prune_all_outbox(store, READ_BEFORE, 100)[:2] == (1, 2)
    assert store.get_outbox_event("leased") is None


def test_an_event_id_that_comes_back_after_retention_is_written_again(store: Store) -> None:
    ann = make_user(store)
    add_event(store, ann, "item-failed-x", READ_BEFORE - timedelta(days=1))
    settle(store, {"item-failed-x": {"portal": "delivered", "email": "delivered"}})
    assert prune_all_outbox(store, READ_BEFORE, 10)[:2] == (1, 2)
    [kept] = store.list_notifications(ann)                       # unread: kept much longer
    assert kept.id == "item-failed-x"
    again = T0 + timedelta(days=1)
    add_event(store, ann, "item-failed-x", again)
    [note] = store.list_notifications(ann)
    assert note.id == "item-failed-x" and note.created_at == again and not note.read
    assert {d.state for d in store.list_deliveries("item-failed-x")} == {"pending"}


# webhooks' delivery attempts -----------------------------------------------------------------

def log_attempts(store: Store, user_id: str, hook_id: str, times: list[datetime],
                 tag: str = "a", at: datetime = T0) -> None:
    """One logged delivery attempt to the webhook at each of ``times`` (an event each,
    created ``at``, so the outbox's own retention leaves them)."""
    store.add_outbox([OutboxEvent(id=f"{hook_id}-{tag}{n:03d}", user_id=user_id,
                                  type="run.completed", title="Done", created_at=at,
                                  deliveries=[NewDelivery("webhook", hook_id)])
                      for n in range(len(times))])
    claimed = {d.event_id: d for d in store.claim_deliveries(
        "w", at, at + timedelta(minutes=5), limit=len(times) + 1)}
    for n, when in enumerate(times):
        delivery = claimed[f"{hook_id}-{tag}{n:03d}"]
        store.finish_delivery(delivery, "w", DeliveryOutcome(
            state="delivered", status=204, log=WebhookAttempt(
                id=delivery.event_id, webhook_id=hook_id, user_id=user_id,
                delivery_id=delivery.id, event_id=delivery.event_id, type="run.completed",
                attempt=1, status_code=204, created_at=when)))


def webhook_with_attempts(store: Store, user_id: str, times: list[datetime],
                          at: datetime = T0) -> str:
    hook = store.create_webhook(Webhook(id="", user_id=user_id, url="http://hook.test/h",
                                        events=["run.completed"]))
    log_attempts(store, user_id, hook.id, times, at=at)
    return hook.id


def hourly(count: int, last: datetime) -> list[datetime]:
    """``count`` times an hour apart, the last at ``last``, oldest first."""
    return [last - timedelta(hours=count - 1 - n) for n in range(count)]


def attempt_ids(store: Store, user_id: str, hook_id: str) -> list[str]:
    """The webhook's log, newest first, as its page lists it."""
    return [a.id for a in store.list_webhook_attempts(user_id, hook_id, limit=200)]


def prune_all_attempts(store: Store, limit: int, **kw: Any) -> tuple[int, int]:
    """(attempts, batches) of a whole walk in batches of ``limit``."""
    attempts = batches = 0
    start = None
    while True:
        batch = store.prune_webhook_attempts(READ_BEFORE, limit=limit, start=start, **kw)
        assert kw.get("dry_run") or batch.attempts <= limit
        attempts, batches = attempts + batch.attempts, batches + 1
        if batch.start is None:
            return attempts, batches
        start = batch.start


def test_old_webhook_attempts_go_but_each_webhooks_newest_50_stay(store: Store) -> None:
    ann, bob = make_user(store), make_user(store, "bob@example.com")
    old, recent = READ_BEFORE - timedelta(days=1), READ_BEFORE + timedelta(days=3)
    hooks = {"all-old": (ann, webhook_with_attempts(store, ann, hourly(53, old))),   # 3 go
             "mixed": (ann, webhook_with_attempts(store, ann, hourly(4, old)
                                                  + hourly(48, recent))),          # 2 go
             "few": (ann, webhook_with_attempts(store, ann, hourly(10, old))),     # none
             "bobs": (bob, webhook_with_attempts(store, bob, hourly(51, old))),    # 1 goes
             "bobs-few": (bob, webhook_with_attempts(store, bob, hourly(30, old)))}

    def logs() -> dict[str, list[str]]:
        return {name: attempt_ids(store, *owned) for name, owned in hooks.items()}

    before = logs()
    assert prune_all_attempts(store, 2, dry_run=True)[0] == 6
    assert logs() == before                                           # a dry run deletes none
    pruned, batches = prune_all_attempts(store, 2)
    assert pruned == 6 and batches >= 3                               # 2 a batch at the most
    after = logs()
    for name in ("all-old", "mixed", "bobs"):                         # each one's newest 50
        assert after[name] == before[name][:50]
    assert after["few"] == before["few"] and after["bobs-few"] == before["bobs-few"]
    assert prune_all_attempts(store, 100) == (0, 1)                   # done once

    # a new attempt pushes the oldest kept one out of the newest 50: it goes the next time
    ann_hook = hooks["all-old"][1]
    log_attempts(store, ann, ann_hook, [T0], tag="new")
    assert prune_all_attempts(store, 100) == (1, 1)
    assert attempt_ids(store, ann, ann_hook) == [f"{ann_hook}-new000"] + before["all-old"][:49]
    smaller = store.prune_webhook_attempts(READ_BEFORE, keep=10, limit=200)
    assert (smaller.attempts, smaller.start) == (40 + 2 + 0 + 40 + 20, None)
    assert attempt_ids(store, *hooks["mixed"]) == before["mixed"][:48]   # all of them recent


# a retry of a pruned run ---------------------------------------------------------------------

def finished(store: Store, user_id: str, at: datetime, events: int = 3) -> Run:
    run = store.create_run(Run(id="", user_id=user_id, kind="stock", site_id="s1",
                               created_at=at - timedelta(minutes=5), updated_at=at),
                           [NewItem(key="aapl", input="AAPL"), NewItem(key="msft", input="MSFT")])
    for n in range(events):
        store.append_event(run.id, {"stage": "processing", "n": n})
    store.transition_item(run.id, 0, ["pending"], "failed", error="x", updated_at=at)
    store.transition_item(run.id, 1, ["pending"], "published", updated_at=at)
    return store.transition_run(run.id, ["queued"], "completed", updated_at=at)


def test_a_retry_of_a_pruned_run_keeps_what_went_and_is_pruned_again_later(store: Store
                                                                           ) -> None:
    ann = make_user(store)
    run = finished(store, ann, READ_BEFORE - timedelta(days=1))
    pruned = store.prune_run(run.id, finished_before=READ_BEFORE, when=T0, files_pruned=True)
    assert (pruned.events_pruned_at, pruned.files_pruned_at, pruned.events_pruned_seq) == \
        (T0, T0, 3)
    assert pruned_seq(pruned) == 3 and run_files_pruned(pruned)

    retry_at = T0 + timedelta(hours=1)
    retried = store.transition_run(run.id, ["completed"], "queued", updated_at=retry_at)
    assert retried.events_pruned_at is None and retried.events_pruned_seq == 3
    assert retried.files_pruned_at == T0 and store.get_run(run.id) == retried
    assert not run_files_pruned(retried)                        # the retry writes files again
    store.transition_item(run.id, 0, ["failed"], "pending", error=None, updated_at=retry_at)
    assert [store.append_event(run.id, {"stage": "resumed"}) for _ in range(2)] == [4, 5]
    assert [e["seq"] for e in store.list_events(run.id)] == [4, 5]
    store.transition_item(run.id, 0, ["pending"], "published", updated_at=retry_at)
    items = store.list_items(run.id)
    assert [item_files_pruned(retried, i) for i in items] == [False, True]  # redone / not

    done_at = T0 + timedelta(hours=2)
    again = store.transition_run(run.id, ["queued"], "completed", updated_at=done_at)
    assert again.events_pruned_at is None and pruned_seq(again) == 3
    later = done_at + timedelta(days=91)
    cutoff = later - timedelta(days=90)
    assert [r.id for r in store.list_prunable_runs(cutoff)] == [run.id]     # a candidate again
    second = store.prune_run(run.id, finished_before=cutoff, when=later, files_pruned=True)
    assert (second.events_pruned_at, second.files_pruned_at, second.events_pruned_seq) == \
        (later, later, 5)
    assert store.list_events(run.id) == [] and store.list_prunable_runs(cutoff) == []


def test_only_leaving_a_finished_state_clears_the_prune_mark(store: Store) -> None:
    ann = make_user(store)
    run = finished(store, ann, READ_BEFORE - timedelta(days=1))
    store.prune_run(run.id, finished_before=READ_BEFORE, when=T0, files_pruned=False)
    moved = store.transition_run(run.id, ["completed"], "failed", updated_at=T0)
    assert moved.events_pruned_at == T0 and moved.events_pruned_seq == 3
    assert store.update_run(run.id, percent=100).events_pruned_at == T0
    never = finished(store, ann, READ_BEFORE - timedelta(days=1))
    fresh = store.transition_run(never.id, ["completed"], "queued", updated_at=T0)
    assert fresh.events_pruned_at is None and fresh.events_pruned_seq == 0


def backfill_all(store: Store, limit: int) -> tuple[int, int]:
    """``backfill_runs`` until the walk ends: (documents fixed, batches)."""
    fixed, after, batches = 0, None, 0
    while True:
        count, after = store.backfill_runs(after, limit=limit)
        fixed, batches = fixed + count, batches + 1
        if after is None:
            return fixed, batches


def test_every_run_is_found_by_the_prune_query_after_the_backfill(store: Store) -> None:
    ann = make_user(store)
    runs = [finished(store, ann, READ_BEFORE - timedelta(days=d)) for d in (3, 2, 1)]
    fixed, walked = backfill_all(store, limit=2)
    assert fixed == 0 and walked <= 2                    # new records have every field
    assert [r.id for r in store.list_prunable_runs(READ_BEFORE)] == [r.id for r in runs]


def test_firestore_run_documents_without_the_field_are_found_once_backfilled(
        firestore_store: Any) -> None:
    """A run written before ``events_pruned_at`` existed: Firestore's ``== null`` does not
    match a missing field, so only the backfill makes it a candidate."""
    from google.cloud import firestore

    store = firestore_store
    ann = make_user(store)
    runs = [finished(store, ann, READ_BEFORE - timedelta(days=d)) for d in (4, 3, 2, 1)]
    legacy = {runs[0].id, runs[2].id}
    for run_id in legacy:
        store._run(run_id).update({"events_pruned_at": firestore.DELETE_FIELD,
                                   "files_pruned_at": firestore.DELETE_FIELD,
                                   "events_pruned_seq": firestore.DELETE_FIELD})
        assert "events_pruned_at" not in store._run(run_id).get().to_dict()
        assert store.get_run(run_id).events_pruned_seq == 0       # read with the defaults
    assert {r.id for r in store.list_prunable_runs(READ_BEFORE)} == \
        {runs[1].id, runs[3].id}                                   # the old ones are unseen
    fixed, batches = backfill_all(store, limit=3)
    assert fixed == 2 and batches == 2
    assert store._run(runs[0].id).get().to_dict()["events_pruned_at"] is None
    assert [r.id for r in store.list_prunable_runs(READ_BEFORE)] == [r.id for r in runs]
    assert store.backfill_runs(None, limit=10) == (0, None)        # idempotent
    pruned = store.prune_run(runs[0].id, finished_before=READ_BEFORE, when=T0,
                             files_pruned=True)
    assert pruned.events_pruned_seq == 3 and store.list_events(runs[0].id) == []
