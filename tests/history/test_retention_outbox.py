"""The daily retention pass beyond runs: old notifications, finished outbox events and old
webhook attempts (each webhook's newest 50 stay) go, in batches, counted in its report, its job
result and the ``tickzen prune`` CLI; on Firestore its
first pass gives run documents written before ``events_pruned_at`` existed the field (under
the job's lease, resumable), so they are pruned like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from runner.retention import BACKFILL_DONE, BACKFILL_KEY, Retention, RetentionJob
from runner.workdirs import Workdirs
from storage.base import Store, utcnow
from storage.notification_records import DeliveryOutcome, NewDelivery, OutboxEvent
from tests.history.test_retention import cli_env, owner_of, seed_finished  # noqa: F401
from tests.storage.test_contract import make_user
from tests.storage.test_contract_retention import hourly, webhook_with_attempts

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
DAYS = 90


def outbox_at(store: Store, user_id: str, name: str, created: datetime, *,
              read: bool = False, delivered: bool = True, now: datetime = T0) -> None:
    """An event with a portal and an email delivery, both delivered unless ``delivered`` is
    False (the email one then stays pending, leased to a sender)."""
    store.add_outbox([OutboxEvent(id=name, user_id=user_id, type="run.completed",
                                  title=name, created_at=created,
                                  deliveries=[NewDelivery("portal"), NewDelivery("email")])])
    for delivery in store.claim_deliveries("sender", now, now + timedelta(minutes=5), 10):
        if delivered or delivery.channel == "portal":
            store.finish_delivery(delivery, "sender", DeliveryOutcome(state="delivered"))
    if read:
        store.mark_notifications_read(user_id, [name])


def history_of_notices(store: Store, now: datetime, email: str = "ann@example.com") -> str:
    user = make_user(store, email)
    days = timedelta(days=1)
    outbox_at(store, user, "read-old", now - (DAYS + 1) * days, read=True, now=now)
    outbox_at(store, user, "unread-old", now - (DAYS + 1) * days, now=now)
    outbox_at(store, user, "unread-ancient", now - (4 * DAYS + 1) * days, now=now)
    outbox_at(store, user, "read-recent", now - (DAYS - 1) * days, read=True, now=now)
    outbox_at(store, user, "sending-old", now - (DAYS + 2) * days, delivered=False, now=now)
    return user


def test_the_pass_removes_old_notifications_and_finished_outbox_events(store: Store,
                                                                       tmp_path: Path) -> None:
    user = history_of_notices(store, T0)
    retention = Retention(store, Workdirs(tmp_path / "work"), DAYS)
    dry = retention.prune(T0, dry_run=True)
    assert (dry.notifications, dry.outbox_events, dry.outbox_deliveries) == (2, 3, 6)
    assert len(store.list_notifications(user)) == 5                          # dry: nothing
    done = retention.prune(T0)
    assert (done.notifications, done.outbox_events, done.outbox_deliveries) == (2, 3, 6)
    assert done.unread_cutoff == T0 - timedelta(days=4 * DAYS)
    assert {n.id for n in store.list_notifications(user)} == {
        "unread-old", "read-recent", "sending-old"}
    for gone in ("read-old", "unread-old", "unread-ancient"):
        assert store.get_outbox_event(gone) is None
    assert store.get_outbox_event("sending-old") is not None          # its email is pending
    assert {d.state for d in store.list_deliveries("sending-old")} == {"delivered", "pending"}
    summary = done.summary()
    assert (summary["notifications"], summary["outbox_events"],
            summary["outbox_deliveries"]) == (2, 3, 6)
    again = retention.prune(T0)
    assert (again.notifications, again.outbox_events) == (0, 0)
    off = Retention(store, Workdirs(tmp_path / "work"), 0).prune(T0 + timedelta(days=9999))
    assert (off.notifications, off.outbox_events) == (0, 0)           # 0: keep everything


def test_a_pass_stops_between_batches_when_its_lease_is_lost(store: Store,
                                                             tmp_path: Path) -> None:
    user = make_user(store)
    old = T0 - timedelta(days=DAYS + 1)
    store.add_outbox([OutboxEvent(id=f"e{n:03d}", user_id=user, type="ping", title="Ping",
                                  created_at=old, deliveries=[NewDelivery("portal")])
                      for n in range(205)])
    store.mark_notifications_read(user)
    report = Retention(store, Workdirs(tmp_path / "work"), DAYS).prune(
        T0, keep_going=lambda: False)
    assert report.stopped and report.notifications == 200              # one batch, then stop
    assert report.outbox_events == 0                                   # not reached
    assert len(store.list_notifications(user, limit=100)) == 5


def test_the_job_records_what_it_removed_and_backfills_once(store: Store,
                                                            tmp_path: Path) -> None:
    history_of_notices(store, T0)
    job = RetentionJob(Retention(store, Workdirs(tmp_path / "work"), DAYS), "i1",
                       clock=lambda: T0)
    report = job.run_due(T0)
    assert report is not None and report.backfill == BACKFILL_DONE
    result = store.get_job("retention").last_result
    assert (result["notifications"], result["outbox_events"], result["outbox_deliveries"],
            result[BACKFILL_KEY]) == (2, 3, 6, BACKFILL_DONE)
    tomorrow = job.run_due(T0 + timedelta(days=1))
    assert tomorrow is not None and tomorrow.backfilled == 0
    assert store.get_job("retention").last_result[BACKFILL_KEY] == BACKFILL_DONE


def legacy(store: Any, run_id: str) -> None:
    """Make a Firestore run document look written before the prune fields existed."""
    from google.cloud import firestore

    store._run(run_id).update({"events_pruned_at": firestore.DELETE_FIELD,
                               "files_pruned_at": firestore.DELETE_FIELD,
                               "events_pruned_seq": firestore.DELETE_FIELD})


def test_on_firestore_the_first_pass_prunes_runs_written_before_the_field(
        firestore_store: Any, tmp_path: Path) -> None:
    store = firestore_store
    user, site = owner_of(store)
    now = utcnow()
    old = seed_finished(store, user, site, 4, now - timedelta(days=DAYS + 3))
    for run_id in old[:3]:
        legacy(store, run_id)
    retention = Retention(store, Workdirs(tmp_path / "work"), DAYS)
    assert [r.run_id for r in retention.prune(now, dry_run=True).runs] == old[3:]   # unseen
    report = RetentionJob(retention, "i1", clock=lambda: now).run_due(now)
    assert report is not None and report.backfilled == 3 and report.backfill == BACKFILL_DONE
    assert sorted(r.run_id for r in report.runs) == old
    assert all(store.get_run(r).events_pruned_seq == 4 and store.list_events(r) == []
               for r in old)


def test_on_firestore_the_backfill_goes_on_from_where_a_stopped_pass_left_it(
        firestore_store: Any, tmp_path: Path) -> None:
    store = firestore_store
    user, site = owner_of(store)
    now = utcnow()
    old = seed_finished(store, user, site, 4, now - timedelta(days=DAYS + 3))
    for run_id in old:
        legacy(store, run_id)
    # A pass that stopped after the first two runs left this in the job's result.
    store.claim_job("retention", "i0", now - timedelta(days=1), now)
    store.finish_job("retention", "i0", now=now - timedelta(days=1), next_run_at=now,
                     result={BACKFILL_KEY: old[1]})
    report = RetentionJob(Retention(store, Workdirs(tmp_path / "work"), DAYS), "i1",
                          clock=lambda: now).run_due(now)
    assert report is not None and report.backfilled == 2             # those after the token
    assert sorted(r.run_id for r in report.runs) == old[2:]
    assert store.get_job("retention").last_result[BACKFILL_KEY] == BACKFILL_DONE


def test_the_prune_command_counts_notifications_and_outbox_events(
        cli_env: dict[str, Any]) -> None:  # noqa: F811
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(cli_env["store_path"])
    try:
        history_of_notices(store, utcnow(), "notices@example.com")
    finally:
        store.close()
    dry, done, again = prune_outputs(cli_env["cli"])
    assert "Would remove 2 notifications (read before " in dry
    assert "3 outbox events with 6 finished deliveries" in dry
    assert "Removed 2 notifications" in done and "3 outbox events" in done
    assert "Removed 0 notifications" in again and "0 outbox events" in again


def prune_outputs(cli: Any) -> list[str]:
    """What ``tickzen prune --dry-run`` and then ``tickzen prune`` twice print."""
    outputs = []
    for flags in (["--dry-run"], [], []):
        result = CliRunner().invoke(cli, ["tickzen", "prune", *flags])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    return outputs


def test_the_job_removes_old_webhook_attempts_but_each_webhooks_newest_50(
        store: Store, tmp_path: Path) -> None:
    ann, bob = make_user(store), make_user(store, "bob@example.com")
    old = T0 - timedelta(days=DAYS + 1)
    busy = webhook_with_attempts(store, ann, hourly(53, old))
    quiet = webhook_with_attempts(store, bob, hourly(20, old))
    retention = Retention(store, Workdirs(tmp_path / "work"), DAYS)
    assert retention.prune(T0, dry_run=True).webhook_attempts == 3
    assert len(store.list_webhook_attempts(ann, busy, limit=100)) == 53       # dry: nothing
    report = RetentionJob(retention, "i1", clock=lambda: T0).run_due(T0)
    assert report is not None and report.webhook_attempts == 3
    assert store.get_job("retention").last_result["webhook_attempts"] == 3
    assert len(store.list_webhook_attempts(ann, busy, limit=100)) == 50
    assert len(store.list_webhook_attempts(bob, quiet, limit=100)) == 20
    assert (report.notifications, report.outbox_events) == (0, 0)    # their events are new


def test_a_pass_stops_between_webhook_attempt_batches_when_its_lease_is_lost(
        store: Store, tmp_path: Path) -> None:
    ann = make_user(store)
    hook = webhook_with_attempts(store, ann, hourly(251, T0 - timedelta(days=DAYS + 1)))
    retention = Retention(store, Workdirs(tmp_path / "work"), DAYS)
    asked: list[str] = []

    def lost() -> bool:
        asked.append("renew")
        return False

    report = retention.prune(T0, keep_going=lost)
    assert report.stopped and report.webhook_attempts == 200 and asked == ["renew"]
    assert len(store.list_webhook_attempts(ann, hook, limit=200)) == 51
    assert retention.prune(T0).webhook_attempts == 1                  # the next pass goes on
    assert len(store.list_webhook_attempts(ann, hook, limit=200)) == 50


def test_the_prune_command_counts_webhook_attempts(cli_env: dict[str, Any]  # noqa: F811
                                                   ) -> None:
    from storage.sqlite import SQLiteStore

    now = utcnow()
    store = SQLiteStore(cli_env["store_path"])
    try:
        user = make_user(store, "hooks@example.com")
        webhook_with_attempts(store, user, hourly(52, now - timedelta(days=DAYS + 1)), at=now)
    finally:
        store.close()
    dry, done, again = prune_outputs(cli_env["cli"])
    assert "Would remove 2 webhook delivery attempts from before " in dry
    assert "(each webhook's newest 50 are kept)" in dry
    assert "Removed 2 webhook delivery attempts" in done
    assert "Removed 0 webhook delivery attempts" in again
