"""The outbox, notifications and webhooks in the Store contract, on SQLite and on the Firestore
emulator: an event is written exactly when its transition is, deliveries are leased to one
claimer at a time, and an outcome is recorded only by the lease's holder."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from storage.base import Campaign, ConflictError, Fire, NewItem, NotFoundError, Run, Store, utcnow
from storage.notification_records import (
    DeliveryOutcome,
    NewDelivery,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
    delivery_id,
)
from tests.notifications.conftest import make_owner, make_run


def event(user_id: str, type_: str = "run.completed", *, event_id: str = "",
          channels: tuple[str, ...] = ("portal",), hooks: tuple[str, ...] = (),
          run_id: str | None = None, created_at: datetime | None = None) -> OutboxEvent:
    return OutboxEvent(id=event_id, user_id=user_id, type=type_, title=f"{type_} title",
                       message="3 published", data={"counts": {"published": 3}, "list": [1, 2]},
                       run_id=run_id, link=f"/runs/{run_id}" if run_id else "",
                       deliveries=[NewDelivery(c) for c in channels]
                       + [NewDelivery("webhook", h) for h in hooks],
                       created_at=created_at or utcnow())


def later(seconds: float = 3600) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


# -- written with the transition -------------------------------------------------------------

def test_transition_run_writes_event_notification_and_deliveries_together(store: Store) -> None:
    ann = make_owner(store)
    run = make_run(store, ann)
    hook = store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://x.test/h",
                                        events=["run.completed"], secret_enc="enc"))
    outbox = [event(ann.user_id, event_id="evt1", channels=("portal", "email"),
                    hooks=(hook.id,), run_id=run.id)]

    done = store.transition_run(run.id, ["running"], "completed", percent=100, outbox=outbox)

    assert done.status == "completed" and done.percent == 100
    stored = store.get_outbox_event("evt1")
    assert stored is not None and stored.type == "run.completed"
    assert stored.data == {"counts": {"published": 3}, "list": [1, 2]}
    assert stored.deliveries == [NewDelivery("portal"), NewDelivery("email"),
                                 NewDelivery("webhook", hook.id)]
    deliveries = {d.channel: d for d in store.list_deliveries("evt1")}
    assert set(deliveries) == {"portal", "email", "webhook"}
    assert deliveries["webhook"].id == delivery_id("evt1", "webhook", hook.id)
    assert all(d.state == "pending" and d.attempts == 0 for d in deliveries.values())
    [note] = store.list_notifications(ann.user_id)
    assert (note.id, note.type, note.run_id, note.read) == ("evt1", "run.completed", run.id,
                                                            False)
    assert note.link == f"/runs/{run.id}"
    assert store.count_unread_notifications(ann.user_id) == 1


def test_a_lost_compare_and_set_writes_no_event(store: Store) -> None:
    ann = make_owner(store)
    run = make_run(store, ann, status="paused")
    with pytest.raises(ConflictError):
        store.transition_run(run.id, ["running"], "completed",
                             outbox=[event(ann.user_id, event_id="lost")])
    assert store.get_outbox_event("lost") is None
    assert store.list_notifications(ann.user_id) == []
    assert store.list_deliveries("lost") == []


def test_an_event_id_is_written_once(store: Store) -> None:
    ann = make_owner(store)
    run = make_run(store, ann, ("a", "b", "c"))
    once = event(ann.user_id, "site.auth_failed", event_id="auth-run1")
    for position in range(2):
        store.transition_item(run.id, position, ["pending"], "failed", error="401",
                              outbox=[once])
    store.add_outbox([once])
    assert len(store.list_notifications(ann.user_id)) == 1
    assert len(store.list_deliveries("auth-run1")) == 1
    assert store.get_run(run.id).counts["failed"] == 2     # the transitions themselves went on


def test_an_event_for_a_missing_user_is_left_out(store: Store) -> None:
    assert store.add_outbox([event("nobody", event_id="e")]) == []
    assert store.get_outbox_event("e") is None


def test_add_outbox_generates_ids_and_checks_channels(store: Store) -> None:
    ann = make_owner(store)
    [written] = store.add_outbox([event(ann.user_id, channels=("portal", "portal"))])
    assert written.id and store.get_outbox_event(written.id) is not None
    assert len(store.list_deliveries(written.id)) == 1       # one delivery per channel
    with pytest.raises(ValueError, match="channel"):
        store.add_outbox([OutboxEvent(id="", user_id=ann.user_id, type="x", title="x",
                                      deliveries=[NewDelivery("pigeon")])])
    with pytest.raises(ValueError, match="webhook"):
        store.add_outbox([OutboxEvent(id="", user_id=ann.user_id, type="x", title="x",
                                      deliveries=[NewDelivery("webhook")])])


def test_fire_campaign_writes_its_events_only_when_it_wins(store: Store) -> None:
    ann = make_owner(store)
    now = datetime(2026, 11, 25, 7, tzinfo=UTC)
    campaign = store.create_campaign(Campaign(
        id="", user_id=ann.user_id, name="Mornings", kind="test", site_id=ann.site_id,
        per_run=1, schedule={"interval_seconds": 3600}, next_fire_at=now))
    fire = Fire(id=f"{campaign.id}:a", campaign_id=campaign.id, user_id=ann.user_id,
                scheduled_for=now, outcome="missed", reason="late", fired_at=now)
    missed = event(ann.user_id, "campaign.missed", event_id="missed-a")
    store.fire_campaign(campaign.id, expected_revision=0, fires=[fire],
                        changes={"next_fire_at": now + timedelta(hours=1)}, outbox=[missed])
    assert store.get_outbox_event("missed-a") is not None

    other = event(ann.user_id, "campaign.skipped", event_id="skipped-b")
    fire_b = Fire(id=f"{campaign.id}:b", campaign_id=campaign.id, user_id=ann.user_id,
                  scheduled_for=now, outcome="skipped", reason="busy", fired_at=now)
    with pytest.raises(ConflictError):
        store.fire_campaign(campaign.id, expected_revision=0, fires=[fire_b], changes={},
                            outbox=[other])
    assert store.get_outbox_event("skipped-b") is None

    run = Run(id="", user_id=ann.user_id, kind="test", site_id=ann.site_id,
              campaign_id=campaign.id, fire_id=f"{campaign.id}:c")
    fire_c = Fire(id=f"{campaign.id}:c", campaign_id=campaign.id, user_id=ann.user_id,
                  scheduled_for=now, outcome="started", fired_at=now)
    _, made = store.fire_campaign(campaign.id, expected_revision=1, fires=[fire_c], changes={},
                                  run=run, items=[NewItem("k", {"name": "k"})],
                                  outbox=[event(ann.user_id, event_id="with-run")])
    assert made is not None and store.get_outbox_event("with-run") is not None


# -- notifications ---------------------------------------------------------------------------

def test_notifications_newest_first_unread_and_mark_read(store: Store) -> None:
    ann, bob = make_owner(store), make_owner(store, "bob@example.com")
    base = datetime(2026, 11, 25, 7, tzinfo=UTC)
    store.add_outbox([event(ann.user_id, event_id=f"n{i}", created_at=base + timedelta(
        minutes=i)) for i in range(4)] + [event(bob.user_id, event_id="bob1")])

    assert [n.id for n in store.list_notifications(ann.user_id)] == ["n3", "n2", "n1", "n0"]
    assert [n.id for n in store.list_notifications(ann.user_id, limit=2, offset=1)] == \
        ["n2", "n1"]
    assert store.mark_notifications_read(ann.user_id, ["n1", "n3", "bob1", "missing"]) == 2
    assert store.mark_notifications_read(ann.user_id, ["n1"]) == 0      # already read
    assert [n.id for n in store.list_notifications(ann.user_id, unread_only=True)] == \
        ["n2", "n0"]
    assert store.count_unread_notifications(ann.user_id) == 2
    assert store.count_unread_notifications(bob.user_id) == 1          # bob's untouched
    assert store.mark_notifications_read(ann.user_id) == 2
    assert store.count_unread_notifications(ann.user_id) == 0
    assert [n.id for n in store.list_notifications(bob.user_id)] == ["bob1"]


# -- webhooks --------------------------------------------------------------------------------

def test_webhooks_belong_to_their_user(store: Store) -> None:
    ann, bob = make_owner(store), make_owner(store, "bob@example.com")
    first = store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://a.test/1",
                                         events=["run.failed"], secret_enc="s1"))
    second = store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://a.test/2",
                                          events=["run.completed", "run.failed"]))
    assert [w.id for w in store.list_webhooks(ann.user_id)] == [first.id, second.id]
    assert store.get_webhook(ann.user_id, first.id).events == ["run.failed"]
    assert store.get_webhook(None, first.id).user_id == ann.user_id
    assert store.get_webhook(bob.user_id, first.id) is None
    assert store.list_webhooks(bob.user_id) == []
    with pytest.raises(NotFoundError):
        store.delete_webhook(bob.user_id, first.id)
    with pytest.raises(NotFoundError):
        store.create_webhook(Webhook(id="", user_id="nobody", url="http://x.test"))
    store.delete_webhook(ann.user_id, first.id)
    assert store.get_webhook(ann.user_id, first.id) is None
    assert store.get_webhook(None, first.id) is None
    assert [w.id for w in store.list_webhooks(ann.user_id)] == [second.id]


# -- claims and outcomes ---------------------------------------------------------------------

def test_claim_leases_a_delivery_to_one_owner_until_the_lease_ends(store: Store) -> None:
    ann = make_owner(store)
    store.add_outbox([event(ann.user_id, event_id="e1")])
    now = utcnow()
    [got] = store.claim_deliveries("one", now, now + timedelta(seconds=60))
    assert (got.id, got.lease_owner, got.attempts) == ("e1.portal", "one", 1)
    assert store.claim_deliveries("two", now, now + timedelta(seconds=60)) == []
    assert store.claim_deliveries("two", now + timedelta(seconds=59),
                                  now + timedelta(seconds=120)) == []
    # "one" died: after its lease anyone may claim it, as the second attempt
    [again] = store.claim_deliveries("two", now + timedelta(seconds=61),
                                     now + timedelta(seconds=200))
    assert (again.lease_owner, again.attempts) == ("two", 2)
    with pytest.raises(ConflictError):
        store.finish_delivery(got, "one", DeliveryOutcome("delivered"))
    done = store.finish_delivery(again, "two", DeliveryOutcome("delivered"))
    assert done.state == "delivered" and done.delivered_at is not None
    assert done.lease_owner is None
    assert store.claim_deliveries("three", later(10_000), later(20_000)) == []
    with pytest.raises(ConflictError):
        store.finish_delivery(again, "two", DeliveryOutcome("delivered"))


def test_a_retry_falls_due_at_its_time_and_a_failure_is_final(store: Store) -> None:
    ann = make_owner(store)
    store.add_outbox([event(ann.user_id, event_id="e1", channels=("email",))])
    now = utcnow()
    [got] = store.claim_deliveries("w", now, now + timedelta(seconds=30))
    retry_at = now + timedelta(seconds=300)
    pending = store.finish_delivery(got, "w", DeliveryOutcome(
        "pending", retry_at, error="SMTP unreachable", status=421))
    assert (pending.state, pending.last_error, pending.last_status) == (
        "pending", "SMTP unreachable", 421)
    assert store.claim_deliveries("w", now + timedelta(seconds=299), later(1)) == []
    [second] = store.claim_deliveries("w", now + timedelta(seconds=300),
                                      now + timedelta(seconds=400))
    assert second.attempts == 2
    store.finish_delivery(second, "w", DeliveryOutcome("failed", error="550 no such user"))
    [final] = store.list_deliveries("e1")
    assert (final.state, final.last_error) == ("failed", "550 no such user")
    assert store.claim_deliveries("w", later(10_000), later(20_000)) == []
    with pytest.raises(ValueError):
        store.finish_delivery(second, "w", DeliveryOutcome("pending"))   # needs a time


def test_a_webhook_outcome_logs_the_attempt_and_flags_the_webhook(store: Store) -> None:
    ann = make_owner(store)
    hook = store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://a.test/h",
                                        events=["run.failed"]))
    store.add_outbox([event(ann.user_id, event_id="e1", channels=(), hooks=(hook.id,))])
    now = utcnow()

    def attempt(n: int, status: int | None, error: str | None) -> WebhookAttempt:
        return WebhookAttempt(id="", webhook_id=hook.id, user_id=ann.user_id,
                              delivery_id=f"e1.webhook.{hook.id}", event_id="e1",
                              type="run.failed", attempt=n, status_code=status, duration_ms=12,
                              error=error, created_at=now + timedelta(seconds=n))

    [first] = store.claim_deliveries("w", now, now + timedelta(seconds=30))
    store.finish_delivery(first, "w", DeliveryOutcome(
        "pending", now + timedelta(seconds=1), error="HTTP 500", status=500,
        log=attempt(1, 500, "HTTP 500")))
    [second] = store.claim_deliveries("w", now + timedelta(seconds=2), later(60))
    notice = event(ann.user_id, "webhook.failing", event_id="hook-failing")
    store.finish_delivery(second, "w", DeliveryOutcome(
        "failed", error="HTTP 400", status=400, log=attempt(2, 400, "HTTP 400"),
        webhook_failing=True, outbox=[notice]))

    flagged = store.get_webhook(ann.user_id, hook.id)
    assert flagged.failing and flagged.last_error == "HTTP 400"
    assert [n.id for n in store.list_notifications(ann.user_id)] == ["hook-failing"]
    log = store.list_webhook_attempts(ann.user_id, hook.id)
    assert [(a.attempt, a.status_code) for a in log] == [(2, 400), (1, 500)]
    assert store.list_webhook_attempts("someone-else", hook.id) == []

    store.add_outbox([event(ann.user_id, event_id="e2", channels=(), hooks=(hook.id,))])
    [third] = [d for d in store.claim_deliveries("w", later(100), later(200))
               if d.event_id == "e2"]
    store.finish_delivery(third, "w", DeliveryOutcome("delivered", status=204,
                                                      log=attempt(1, 204, None)))
    healed = store.get_webhook(ann.user_id, hook.id)
    assert not healed.failing and healed.last_success_at is not None
    store.delete_webhook(ann.user_id, hook.id)
    assert store.list_webhook_attempts(ann.user_id, hook.id) == []


def test_racing_claimers_each_get_distinct_deliveries(
        store: Store, open_handle: Callable[[], Store]) -> None:
    """Four claimers on four store handles (four processes or instances) drain 24 deliveries:
    each is claimed exactly once."""
    ann = make_owner(store)
    store.add_outbox([event(ann.user_id, event_id=f"e{i:02d}", channels=("portal", "email"))
                      for i in range(12)])
    handles = [open_handle() for _ in range(4)]
    claimed: dict[str, list[str]] = {f"owner{i}": [] for i in range(4)}
    start = threading.Barrier(len(handles))
    errors: list[BaseException] = []

    def drain(owner: str, handle: Store) -> None:
        try:
            start.wait(timeout=30)
            while True:
                now = utcnow()
                got = handle.claim_deliveries(owner, now, now + timedelta(seconds=300), limit=3)
                if not got:
                    return
                claimed[owner] += [d.id for d in got]
        except BaseException as exc:      # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(owner, handle))
               for owner, handle in zip(claimed, handles, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    every = [d for ids in claimed.values() for d in ids]
    assert len(every) == 24 and len(set(every)) == 24
    owners = {d.id: d.lease_owner for i in range(12) for d in store.list_deliveries(f"e{i:02d}")}
    assert all(owners[d] == owner for owner, ids in claimed.items() for d in ids)
