"""The events runs, sites and campaigns cause: built by ``runner.notifications.Notices`` and
written with the transition (run threads, the real publishing service, the campaign service)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.campaigns import CampaignService
from runner.manager import RunManager
from runner.notifications import DEFAULT_EMAIL_EVENTS, Notices, event_key
from runner.publishing import PublishingService
from storage.base import NewItem, Run, Site, Store
from storage.notification_records import NewDelivery, OutboxEvent, Webhook
from storage.secrets import SecretBox
from tests.notifications.conftest import Clock, Emitted, Owner, make_owner
from tests.support.test_automations import RecordingPublisher, TestAutomation

PUBLIC = "https://portal.example"


@pytest.fixture
def make_manager(tmp_path: Path) -> Iterator[Callable[..., RunManager]]:
    made: list[RunManager] = []

    def factory(store: Store, *, publishing: Any = None, email: bool = True,
                automations: dict[str, Any] | None = None) -> RunManager:
        manager = RunManager(store, Emitted(), automations or {"test": TestAutomation()},
                             publishing or RecordingPublisher(store),
                             workdir_root=tmp_path / "work", progress_max_per_second=0,
                             lease_seconds=5.0,
                             notices=Notices(store, email_enabled=email, public_url=PUBLIC))
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        manager.shutdown(timeout=10)


def finished_run(manager: RunManager, owner: Owner, items: list[str], **options: Any) -> str:
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, items,
                            {"steps": 1, **options})
    assert manager.join(run.id, timeout=60)
    return run.id


def events_of(store: Store, user_id: str) -> list[OutboxEvent]:
    return [store.get_outbox_event(n.id) for n in store.list_notifications(user_id, limit=200)]


def channels(store: Store, event: OutboxEvent) -> set[tuple[str, str]]:
    return {(d.channel, d.target) for d in store.list_deliveries(event.id)}


def test_a_completed_run_tells_its_counts_and_names_the_failed_items(
        store: Store, make_manager: Callable[..., RunManager]) -> None:
    ann = make_owner(store)
    store.update_user_settings(ann.user_id, {"email_events": ["run.completed"]})
    hook = store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://h.test/",
                                        events=["run.completed"]))
    store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://other.test/",
                                 events=["run.failed"]))
    run_id = finished_run(make_manager(store), ann, ["alpha", "fail-beta", "gamma"])

    [event] = events_of(store, ann.user_id)
    assert event.type == "run.completed" and event.run_id == run_id
    assert event.title == "Run completed: Test run on Archive"
    assert event.message == "2 published, 0 skipped, 1 failed. Failed: fail-beta"
    assert event.data["run"]["counts"] == {"published": 2, "skipped": 0, "failed": 1}
    assert event.data["failed_items"] == [{"key": "fail-beta-test", "label": "fail-beta",
                                           "error": "synthetic failure for fail-beta"}]
    assert event.data["url"] == f"{PUBLIC}/runs/{run_id}" and event.link == f"/runs/{run_id}"
    assert channels(store, event) == {("portal", ""), ("email", ""), ("webhook", hook.id)}
    assert store.get_run(run_id).status == "completed"


def test_email_follows_the_users_choice_and_the_default(
        store: Store, make_manager: Callable[..., RunManager]) -> None:
    ann, bob = make_owner(store), make_owner(store, "bob@example.com")
    store.update_user_settings(bob.user_id, {"email_events": []})
    manager = make_manager(store)
    finished_run(manager, ann, ["alpha"])
    finished_run(manager, bob, ["alpha"])
    [ann_event], [bob_event] = events_of(store, ann.user_id), events_of(store, bob.user_id)
    assert "run.completed" not in DEFAULT_EMAIL_EVENTS
    assert channels(store, ann_event) == {("portal", "")}       # the default: no email
    assert channels(store, bob_event) == {("portal", "")}       # chose none
    no_smtp = make_manager(store, email=False)
    store.update_user_settings(ann.user_id, {"email_events": ["run.completed"]})
    finished_run(no_smtp, ann, ["beta"])
    newest = events_of(store, ann.user_id)[0]
    assert channels(store, newest) == {("portal", "")}           # SMTP is not set up


def test_a_run_that_fails_as_a_whole_and_a_cancelled_run(
        store: Store, make_manager: Callable[..., RunManager], tmp_path: Path) -> None:
    ann = make_owner(store)
    manager = make_manager(store)
    del manager.automations["test"]                   # the kind is gone from this server
    failing = store.create_run(Run(id="", user_id=ann.user_id, kind="test",
                                   site_id=ann.site_id), [NewItem("alpha-test", {"name": "a"})])
    manager.wake()
    assert manager.join(failing.id, timeout=60)
    assert store.get_run(failing.id).status == "failed"
    failed = [e for e in events_of(store, ann.user_id) if e.type == "run.failed"]
    assert len(failed) == 1 and "no automation for kind 'test'" in failed[0].message
    assert failed[0].data["run"]["error"].startswith("no automation")
    assert channels(store, failed[0]) == {("portal", ""), ("email", "")}  # in the default

    manager.automations["test"] = TestAutomation()
    gate = tmp_path / "gate"
    gate.mkdir()
    held, _ = manager.submit(ann.user_id, "test", ann.site_id, ["one", "two"],
                             {"steps": 1, "gate": str(gate)})
    manager.cancel(held.id, ann.user_id)
    assert manager.join(held.id, timeout=60)
    cancelled = [e for e in events_of(store, ann.user_id) if e.type == "run.cancelled"]
    assert len(cancelled) == 1 and cancelled[0].run_id == held.id
    assert store.get_run(held.id).status == "cancelled"


def test_the_daily_limit_is_told_once_per_run(
        store: Store, make_manager: Callable[..., RunManager], tmp_path: Path) -> None:
    ann = make_owner(store)
    store.update_site(ann.user_id, ann.site_id, {"daily_limit": 1})
    publishing = PublishingService(store, SecretBox(SecretBox.generate_key()),
                                   tmp_path / "archive")
    run_id = finished_run(make_manager(store, publishing=publishing), ann,
                          ["alpha", "beta", "gamma"])
    counts = store.get_run(run_id).counts
    assert (counts["published"], counts["failed"]) == (1, 2)
    limit = [e for e in events_of(store, ann.user_id) if e.type == "site.daily_limit"]
    assert len(limit) == 1 and limit[0].id == event_key("site.daily_limit", run_id,
                                                        ann.site_id)
    assert limit[0].title == "Site's daily limit reached: Archive"
    assert [e.type for e in events_of(store, ann.user_id)].count("run.completed") == 1


def test_refused_credentials_are_told_once_per_run(
        store: Store, make_manager: Callable[..., RunManager], tmp_path: Path,
        wordpress: Any) -> None:
    """A real WordPress refusing a wrong application password."""
    ann = make_owner(store)
    box = SecretBox(SecretBox.generate_key())
    site = store.create_site(ann.user_id, Site(
        id="", user_id=ann.user_id, name="Blog", kind="wordpress", url=wordpress.base_url,
        username=wordpress.admin_user, app_password_enc=box.encrypt("wrong pass word 0000")))
    publishing = PublishingService(store, box, tmp_path / "archive")
    manager = make_manager(store, publishing=publishing)
    run, _ = manager.submit(ann.user_id, "test", site.id, ["alpha", "beta"], {"steps": 1})
    assert manager.join(run.id, timeout=120)
    assert store.get_run(run.id).counts["failed"] == 2
    refused = [e for e in events_of(store, ann.user_id) if e.type == "site.auth_failed"]
    assert len(refused) == 1, [e.type for e in events_of(store, ann.user_id)]
    assert refused[0].title == "Site refused the credentials: Blog"
    assert refused[0].data["site"]["id"] == site.id
    assert ("email", "") in channels(store, refused[0])          # in the default


def test_campaign_fires_missed_and_skipped(
        store: Store, make_manager: Callable[..., RunManager], tmp_path: Path) -> None:
    ann = make_owner(store)
    clock = Clock(datetime(2026, 11, 25, 7, tzinfo=UTC))
    manager = make_manager(store)
    manager.autostart = False                   # the fired runs stay queued: an overlap
    service = CampaignService(store, manager, None, min_interval_seconds=60, clock=clock,
                              settings={"INSTANCE_PATH": str(tmp_path / "instance")})
    campaign = service.create(ann.user_id, {
        "name": "Hourly", "kind": "test", "site_id": ann.site_id,
        "source": {"items": ["a", "b", "c", "d"]}, "per_run": 1,
        "schedule": {"interval_seconds": 3600}, "options": {"steps": 1},
        "catch_up_seconds": 600})
    clock.advance(3600)
    assert service.fire_due()[0].outcome == "started"
    clock.advance(3600)
    assert service.fire_due()[0].outcome == "skipped"          # the first run is still queued
    clock.advance(3 * 3600)                                    # down for three hours
    service.fire_due()                          # the late ones missed, the latest skipped

    kinds = [e.type for e in events_of(store, ann.user_id)]
    assert kinds.count("campaign.skipped") == 2 and kinds.count("campaign.missed") == 1
    missed = next(e for e in events_of(store, ann.user_id) if e.type == "campaign.missed")
    assert missed.campaign_id == campaign.id and missed.link == f"/campaigns/{campaign.id}"
    assert missed.title == "Campaign fires missed: Hourly"
    assert all(f["outcome"] == "missed" for f in missed.data["fires"])
    assert ("email", "") in channels(store, missed)           # in the default


def test_building_an_event_never_stops_the_transition(store: Store) -> None:
    ann = make_owner(store)
    notices = Notices(store)
    store.close()                                     # every read now fails
    assert notices.run_finished("any", "completed") == []
    assert Notices(None).run_finished("any", "completed") == []
    assert ann.user_id


def test_a_ping_goes_to_its_webhook_only(store: Store) -> None:
    ann = make_owner(store)
    hook = store.create_webhook(Webhook(id="", user_id=ann.user_id, url="http://h.test/",
                                        events=["run.failed"]))
    ping = Notices(store).ping(hook)
    assert ping.type == "ping" and ping.deliveries == [NewDelivery("webhook", hook.id)]
    [written] = store.add_outbox([ping])
    assert store.list_notifications(ann.user_id) == []
    assert [d.channel for d in store.list_deliveries(written.id)] == ["webhook"]
    assert datetime.now(UTC) - written.created_at < timedelta(hours=1)
