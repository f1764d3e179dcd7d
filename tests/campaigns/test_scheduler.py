"""The scheduler's rules, on a real store with a clock the test moves: a due fire starts one
run; late fires are missed, several due ones coalesce, an active previous run gives skipped, a
run that cannot be made gives failed; the queue goes on where it stopped, failed items first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from runner.campaign_checks import CampaignConflict
from runner.campaigns import CampaignService, fire_key
from runner.manager import RunManager
from runner.scheduler import Scheduler
from storage.base import Run, Store
from tests.campaigns.conftest import T0, Clock, Owner, campaign_body

Factory = Callable[..., tuple[CampaignService, RunManager]]


def outcomes(store: Store, campaign_id: str) -> list[tuple[str, str]]:
    """(outcome, reason) of every fire, oldest first."""
    return [(f.outcome, f.reason) for f in reversed(store.list_fires(campaign_id, limit=500))]


def item_names(store: Store, run: Run) -> list[str]:
    return [i.input["name"] for i in store.list_items(run.id)]


def finish(store: Store, run: Run, failed: tuple[int, ...] = ()) -> None:
    """Play the worker: every item published (or failed), the run completed."""
    store.transition_run(run.id, ["queued"], "running")
    for item in store.list_items(run.id):
        store.transition_item(run.id, item.position, ["pending"], "processing")
        store.transition_item(run.id, item.position, ["processing"],
                              "failed" if item.position in failed else "published")
    store.transition_run(run.id, ["running"], "completed")


def test_a_due_fire_starts_one_run_with_the_first_items(
        store: Store, service: CampaignService, scheduler: Scheduler, clock: Clock,
        owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner))
    assert campaign.next_fire_at == T0 + timedelta(minutes=10)
    assert scheduler.tick() == []                              # not due yet
    clock.advance(600)
    [result] = scheduler.tick()
    assert result.won and result.outcome == "started"
    run = result.run
    assert (run.campaign_id, run.fire_id, run.status) == (
        campaign.id, fire_key(campaign.id, T0 + timedelta(minutes=10)), "queued")
    assert item_names(store, run) == ["alpha", "bravo"]
    assert run.options == {"steps": 1}
    stored = store.get_campaign(owner.user_id, campaign.id)
    assert stored.next_fire_at == T0 + timedelta(minutes=20)
    assert stored.last_run_id == run.id and stored.queue["cursor"] == 2
    [fire] = store.list_fires(campaign.id)
    assert (fire.outcome, fire.run_id, fire.scheduled_for) == ("started", run.id,
                                                              T0 + timedelta(minutes=10))
    assert scheduler.tick() == []                              # the same moment: nothing more
    assert store.list_runs(campaign_id=campaign.id) == [run]


def test_an_active_previous_run_gives_skipped_then_the_queue_goes_on(
        store: Store, scheduler: Scheduler, service: CampaignService, clock: Clock,
        owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner))
    clock.advance(600)
    [first] = scheduler.tick()
    for status in ("queued", "running", "paused", "interrupted"):
        if status != "queued":
            store.transition_run(first.run.id, [store.get_run(first.run.id).status], status)
        clock.advance(600)
        [skipped] = scheduler.tick()
        assert (skipped.outcome, skipped.reason, skipped.run) == (
            "skipped", "previous run still active", None)
    finish(store, store.transition_run(first.run.id, ["interrupted"], "queued"))
    clock.advance(600)
    [second] = scheduler.tick()
    assert second.outcome == "started" and item_names(store, second.run) == ["charlie", "delta"]
    assert [o for o, _ in outcomes(store, campaign.id)] == [
        "started", "skipped", "skipped", "skipped", "skipped", "started"]


def test_failed_items_go_back_to_the_front(store: Store, scheduler: Scheduler,
                                          service: CampaignService, clock: Clock,
                                          owner: Owner) -> None:
    service.create(owner.user_id, campaign_body(owner))
    clock.advance(600)
    [first] = scheduler.tick()
    finish(store, first.run, failed=(1,))                          # bravo failed
    clock.advance(600)
    [second] = scheduler.tick()
    assert item_names(store, second.run) == ["bravo", "charlie"]
    finish(store, second.run)
    clock.advance(600)
    [third] = scheduler.tick()
    assert item_names(store, third.run) == ["delta", "echo"]       # bravo is not taken twice


def test_a_repeating_list_starts_again_from_the_top(store: Store, scheduler: Scheduler,
                                                   service: CampaignService, clock: Clock,
                                                   owner: Owner) -> None:
    service.create(owner.user_id, campaign_body(owner, ["a1", "b2", "c3"]))
    taken = []
    for _ in range(3):
        clock.advance(600)
        [result] = scheduler.tick()
        taken.append(item_names(store, result.run))
        finish(store, result.run)
    assert taken == [["a1", "b2"], ["c3", "a1"], ["b2", "c3"]]


def test_a_list_without_repeat_completes_the_campaign(store: Store, scheduler: Scheduler,
                                                     service: CampaignService, clock: Clock,
                                                     owner: Owner) -> None:
    body = campaign_body(owner, ["a1", "b2", "c3"])
    body["source"]["repeat"] = False
    campaign = service.create(owner.user_id, body)
    for expected in (["a1", "b2"], ["c3"]):
        clock.advance(600)
        [result] = scheduler.tick()
        assert item_names(store, result.run) == expected
        finish(store, result.run)
    clock.advance(600)
    [last] = scheduler.tick()
    assert (last.outcome, last.run) == ("skipped", None)
    assert "used up" in last.reason
    assert store.get_campaign(owner.user_id, campaign.id).status == "completed"
    clock.advance(6000)
    assert scheduler.tick() == []
    assert service.next_fires(store.get_campaign(owner.user_id, campaign.id)) == []


def test_an_outage_gives_missed_and_coalesced_fires_and_one_run(
        store: Store, scheduler: Scheduler, service: CampaignService, clock: Clock,
        owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner, catch_up_seconds=1800))
    clock.advance(600 + 2 * 3600 + 5)                   # 2 h 5 s after the first fire
    [result] = scheduler.tick()
    assert result.outcome == "started"
    fires = store.list_fires(campaign.id, limit=100)
    assert len(fires) == 13                             # due at 10, 20, ... 130 minutes
    assert fires[0].outcome == "started" and fires[0].scheduled_for == T0 + timedelta(
        minutes=130)
    coalesced = [f for f in fires if f.reason == "coalesced"]
    late = [f for f in fires if f.outcome == "missed" and f.reason != "coalesced"]
    assert [f.scheduled_for for f in coalesced] == [T0 + timedelta(minutes=m)
                                                    for m in (120, 110)]
    assert len(late) == 10 and all("1800 s late" in f.reason for f in late)   # 10 .. 100
    assert store.list_runs(campaign_id=campaign.id) == [result.run]
    assert store.get_campaign(None, campaign.id).next_fire_at == T0 + timedelta(minutes=140)


def test_a_run_that_cannot_be_made_gives_failed_with_the_reason(
        store: Store, scheduler: Scheduler, service: CampaignService, clock: Clock,
        owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner))
    store.delete_site(owner.user_id, owner.site_id)
    clock.advance(600)
    [result] = scheduler.tick()
    assert (result.outcome, result.reason, result.run) == ("failed", "the site was deleted",
                                                           None)
    assert store.list_runs(campaign_id=campaign.id) == []
    assert store.get_campaign(None, campaign.id).next_fire_at == T0 + timedelta(minutes=20)


def test_items_refused_at_fire_time_give_failed(store: Store, scheduler: Scheduler,
                                               service: CampaignService, clock: Clock,
                                               owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner))
    # The queue as an older version left it: a name the automation now refuses.
    store.update_campaign(owner.user_id, campaign.id,
                          {"source": {"items": ["bad!name", "also!bad"], "repeat": True}})
    clock.advance(600)
    [result] = scheduler.tick()
    assert result.outcome == "failed" and "invalid" in result.reason
    assert "bad!name" in result.reason


def test_pause_stops_fires_and_resume_does_not_catch_up(
        store: Store, scheduler: Scheduler, service: CampaignService, clock: Clock,
        owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner))
    service.pause(owner.user_id, campaign.id)
    with pytest.raises(CampaignConflict):
        service.pause(owner.user_id, campaign.id)
    clock.advance(3 * 3600)
    assert scheduler.tick() == []
    resumed = service.resume(owner.user_id, campaign.id)
    assert resumed.next_fire_at == clock.now + timedelta(minutes=10)
    assert scheduler.tick() == [] and store.list_fires(campaign.id) == []
    clock.advance(600)
    [result] = scheduler.tick()
    assert result.outcome == "started"


def test_run_now_starts_a_run_or_says_why_not(store: Store, service: CampaignService,
                                              clock: Clock, owner: Owner) -> None:
    campaign = service.create(owner.user_id, campaign_body(owner))
    run = service.run_now(owner.user_id, campaign.id)
    assert run.campaign_id == campaign.id and item_names(store, run) == ["alpha", "bravo"]
    with pytest.raises(CampaignConflict) as caught:
        service.run_now(owner.user_id, campaign.id)
    assert "previous run still active" in str(caught.value)
    [fire] = store.list_fires(campaign.id)
    assert (fire.outcome, fire.reason, fire.run_id) == ("started", "run now", run.id)
    # the schedule is untouched: its next fire is still the first one
    assert store.get_campaign(None, campaign.id).next_fire_at == campaign.next_fire_at
    finish(store, run)
    clock.advance(1)
    assert item_names(store, service.run_now(owner.user_id, campaign.id)) == ["charlie",
                                                                              "delta"]


def test_another_users_campaign_is_not_found(store: Store, service: CampaignService,
                                             owner: Owner) -> None:
    from runner.campaign_checks import CampaignNotFound
    from tests.campaigns.conftest import make_owner

    campaign = service.create(owner.user_id, campaign_body(owner))
    bob = make_owner(store, "bob@example.com")
    for action in (service.get, service.pause, service.resume, service.run_now,
                   service.delete, service.fires):
        with pytest.raises(CampaignNotFound):
            action(bob.user_id, campaign.id)
    with pytest.raises(CampaignNotFound):
        service.update(bob.user_id, campaign.id, {"name": "mine now"})
    assert store.get_campaign(owner.user_id, campaign.id) == campaign


def test_the_thread_ticks_and_reports_its_health(store: Store, service: CampaignService,
                                                 owner: Owner) -> None:
    from tests.support.procs import wait_until

    scheduler = Scheduler(service, tick_seconds=0.05)
    assert scheduler.health() == {"status": "stopped", "last_tick": None}
    scheduler.start()
    try:
        wait_until(lambda: scheduler.ticks >= 2, "two scheduler ticks")
        health = scheduler.health()
        assert health["status"] == "ok" and health["last_tick"]
    finally:
        scheduler.stop()
    assert not scheduler.running and scheduler.health()["status"] == "stopped"
