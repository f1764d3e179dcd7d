"""One fire, one run: two scheduler instances on two store clients tick the same due campaign
from racing threads, on both backends, and each fire makes exactly one run. After a restart a
campaign's interrupted run resumes by itself, whatever TICKZEN_AUTO_RESUME says."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.campaigns import CampaignService
from runner.manager import RunManager
from runner.scheduler import Scheduler
from storage.base import NewItem, Run, Store
from tests.campaigns.conftest import Clock, campaign_body, make_owner
from tests.campaigns.test_scheduler import finish, item_names

Factory = Callable[..., tuple[CampaignService, RunManager]]
THREADS = 8
FIRES = 3


@pytest.fixture
def second_client(any_store: Store, tmp_path: Path) -> Iterator[Store]:
    """Another client of the same database: a second instance shares nothing else."""
    if hasattr(any_store, "path"):
        from storage.sqlite import SQLiteStore

        other: Any = SQLiteStore(any_store.path)
    else:
        from storage.firestore import FirestoreStore

        other = FirestoreStore(project=any_store.project)
    yield other
    other.close()


def test_two_instances_racing_make_one_run_per_fire(any_store: Store, second_client: Store,
                                                    make_service: Factory,
                                                    clock: Clock) -> None:
    owner = make_owner(any_store)
    schedulers = [Scheduler(make_service(s)[0], clock=clock) for s in (any_store, second_client)]
    campaign = schedulers[0].campaigns.create(owner.user_id, campaign_body(owner))
    for fire in range(FIRES):
        clock.advance(600)
        barrier = threading.Barrier(THREADS)

        def tick(i: int, barrier: threading.Barrier = barrier) -> list[Any]:
            barrier.wait()
            return schedulers[i % 2].tick()

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results = [r for batch in pool.map(tick, range(THREADS)) for r in batch]
        started = [r for r in results if r.won and r.run is not None]
        assert len(started) == 1, results
        assert all(not r.won for r in results if r not in started)
        runs = any_store.list_runs(campaign_id=campaign.id, limit=50)
        assert len(runs) == fire + 1
        assert len({r.fire_id for r in runs}) == fire + 1
        for run in runs:                    # let the next fire start: play the worker
            if run.status == "queued":
                finish(any_store, run)
    fires = any_store.list_fires(campaign.id)
    assert [f.outcome for f in fires] == ["started"] * FIRES
    taken = [i.input["name"] for r in reversed(any_store.list_runs(campaign_id=campaign.id))
             for i in any_store.list_items(r.id)]
    assert taken == ["alpha", "bravo", "charlie", "delta", "echo", "alpha"]    # none twice


def test_run_now_racing_the_schedule_makes_one_run(store: Store, make_service: Factory,
                                                   clock: Clock) -> None:
    owner = make_owner(store)
    service, _ = make_service(store)
    campaign = service.create(owner.user_id, campaign_body(owner))
    clock.advance(600)
    scheduler = Scheduler(service, clock=clock)
    barrier = threading.Barrier(2)

    def now_or_tick(i: int) -> Any:
        barrier.wait()
        try:
            return service.run_now(owner.user_id, campaign.id) if i else scheduler.tick()
        except Exception as exc:             # the loser's 409
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(now_or_tick, range(2)))
    scheduler.tick()              # a tick that lost to run now fires on the next one: skipped
    runs = store.list_runs(campaign_id=campaign.id)
    assert len(runs) == 1
    assert sorted(f.outcome for f in store.list_fires(campaign.id)) in (
        ["skipped", "started"], ["started"])
    assert store.get_campaign(None, campaign.id).next_fire_at == clock.now + timedelta(
        minutes=10)


def _dead_instance_left_running(store: Store, run: Run) -> None:
    store.transition_run(run.id, ["queued"], "running", owner="dead-instance",
                         lease_until=run.created_at + timedelta(seconds=5))


def test_a_campaigns_interrupted_run_resumes_after_a_restart(
        store: Store, make_service: Factory, clock: Clock, tmp_path: Path) -> None:
    from tests.support.procs import wait_until

    owner = make_owner(store)
    service, _ = make_service(store)
    campaign = service.create(owner.user_id, campaign_body(owner))
    clock.advance(600)
    [fired] = Scheduler(service, clock=clock).tick()
    _dead_instance_left_running(store, fired.run)
    manual = store.create_run(Run(id="", user_id=owner.user_id, kind="test",
                                  site_id=owner.site_id, options={"steps": 1}),
                              [NewItem(key="zulu-test", input={"name": "zulu"})])
    _dead_instance_left_running(store, manual)

    _, restarted = make_service(store, autostart=True)          # the new process
    assert set(restarted.recover(auto_resume=False)) == {fired.run.id, manual.id}
    wait_until(lambda: store.get_run(fired.run.id).status == "completed",
               "the campaign's run to finish after the restart")
    assert store.get_run(manual.id).status == "interrupted"     # its user decides
    assert item_names(store, fired.run) == ["alpha", "bravo"]
    assert store.get_run(fired.run.id).counts["published"] == 2
    assert campaign.id == store.get_run(fired.run.id).campaign_id


def test_a_fire_wakes_the_run_manager(store: Store, make_service: Factory,
                                      clock: Clock) -> None:
    from tests.support.procs import wait_until

    owner = make_owner(store)
    service, manager = make_service(store, autostart=True, lease_seconds=600)  # slow heartbeat
    manager.start()
    campaign = service.create(owner.user_id, campaign_body(owner))
    clock.advance(600)
    [fired] = Scheduler(service, clock=clock).tick()
    wait_until(lambda: store.get_run(fired.run.id).status == "completed",
               "the fired run to be started at once and finish")
    assert store.get_campaign(None, campaign.id).last_run_id == fired.run.id
