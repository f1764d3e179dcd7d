"""Several items in flight (runner/pipeline.py, runner/generation.py) with a real SQLite store:
generation overlapping publishing, the site's concurrency as the bound, pause / cancel / stops
with items in flight, the process pool (stops and progress through shared memory, a killed
child), and the stored events: seq gap-free, percent never down."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.generation import auto_processes, generation_processes
from runner.pipeline import publishing_slots
from storage.base import Site, StoreError
from tests.engine.conftest import Owner, progress, wait_record, wait_status
from tests.support.cpu_automation import CpuTestAutomation
from tests.support.procs import wait_until
from tests.support.test_automations import RecordingPublisher, read_record


class GatedPublisher(RecordingPublisher):
    """The recording publisher over the real ledger, holding each publish until ``gate`` is
    set and counting how many are inside at once."""

    __test__ = False

    def __init__(self, store: Any, record: Path) -> None:
        super().__init__(store, record)
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.fail_store: set[str] = set()

    def publish(self, user_id: str, site_id: str, article: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            assert self.gate.wait(30), "the test never opened the gate"
            if article.slug in self.fail_store:
                raise StoreError("the store went away")
            return super().publish(user_id, site_id, article, **kwargs)
        finally:
            with self.lock:
                self.inside -= 1


@pytest.fixture
def gated(store, record) -> GatedPublisher:
    return GatedPublisher(store, record)


@pytest.fixture
def wp_owner(store) -> Owner:
    """A user with a WordPress-kind site of concurrency 4 (the recording publisher stands in
    for WordPress here; tests/publishing/test_concurrent_runs.py uses the real one)."""
    user = store.create_user("wp@example.com", "not-a-real-hash")
    site = store.create_site(user.id, Site(id="", user_id=user.id, name="WP", kind="wordpress",
                                           url="http://wp.invalid",
                                           defaults={"concurrency": 4}))
    return Owner(user.id, site.id)


def make(make_manager: Callable[..., Any], publisher: Any, **kwargs: Any) -> Any:
    manager = make_manager(**kwargs)
    manager.publishing = publisher
    return manager


def stored(store, run_id) -> list[dict]:
    return store.list_events(run_id)


def assert_sound(events: list[dict]) -> None:
    """seq gap-free from 1, percent never down."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents)


def test_the_sites_concurrency_bounds_publishing_and_generation_goes_on(
        make_manager, store, wp_owner, gated, record):
    manager = make(make_manager, gated)
    names = [f"i{n}" for n in range(10)]
    run, _ = manager.submit(wp_owner.user_id, "test", wp_owner.site_id, names,
                            {"record": str(record), "steps": 2})
    # Four publish at once (the site's concurrency); meanwhile the next item is generated.
    wait_until(lambda: gated.inside == 4, "four items publishing at once")
    wait_until(lambda: read_record(record).count("process i4-test") == 1,
               "item 5 generated while four publish")
    assert [i.status for i in store.list_items(run.id)][:4] == ["publishing"] * 4
    gated.gate.set()
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert manager.join(run.id)
    assert gated.most_inside == 4
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 10
    assert sorted(line for line in read_record(record) if line.startswith("publish")) == \
        sorted(f"publish {n}-test" for n in names)
    assert_sound(stored(store, run.id))
    assert store.get_run(run.id).percent == 100


def test_a_local_site_publishes_one_at_a_time_in_item_order(make_manager, store, owner, gated,
                                                            record):
    gated.gate.set()
    manager = make(make_manager, gated)
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a", "b", "c", "d"],
                            {"record": str(record), "steps": 1})
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert manager.join(run.id)
    assert gated.most_inside == 1
    assert [line for line in read_record(record) if line.startswith("publish")] == [
        "publish a-test", "publish b-test", "publish c-test", "publish d-test"]


def test_items_finishing_out_of_order_keep_seq_and_percent_sound(make_manager, store, wp_owner,
                                                                 record):
    class Uneven(RecordingPublisher):
        __test__ = False

        def publish(self, user_id, site_id, article, **kwargs):
            time.sleep(0.15 if article.slug.startswith("slow") else 0.0)
            return super().publish(user_id, site_id, article, **kwargs)

    manager = make(make_manager, Uneven(store, record))
    names = ["slow-1", "fast-1", "fast-2", "slow-2", "fast-3", "fast-4", "fast-5"]
    run, _ = manager.submit(wp_owner.user_id, "test", wp_owner.site_id, names, {"steps": 3})
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert manager.join(run.id)
    events = stored(store, run.id)
    assert_sound(events)
    done_order = [e["data"]["item"] for e in events
                  if e.get("data", {}).get("success") and "item" in e["data"]]
    assert sorted(done_order) == sorted(names)
    assert done_order.index("fast-1") < done_order.index("slow-1")     # out of order
    assert events == progress(manager, run.id)                          # emitted as stored


def test_pause_with_four_in_flight_waits_for_them_then_resume_does_the_rest_once(
        make_manager, store, wp_owner, gated, record):
    manager = make(make_manager, gated)
    names = [f"p{n}" for n in range(9)]
    run, _ = manager.submit(wp_owner.user_id, "test", wp_owner.site_id, names,
                            {"record": str(record), "steps": 2})
    wait_until(lambda: gated.inside == 4, "four items publishing at once")
    wait_until(lambda: "process p4-test" in read_record(record), "item 5 generated")
    assert manager.pause(run.id, wp_owner.user_id).status == "pausing"
    time.sleep(0.3)                     # the run waits for its four publishing items
    assert store.get_run(run.id).status == "pausing"
    gated.gate.set()
    assert wait_status(store, run.id, ("paused",)) == "paused"
    assert manager.join(run.id)
    statuses = [i.status for i in store.list_items(run.id)]
    assert statuses[:4] == ["published"] * 4 and set(statuses[4:]) == {"pending"}
    assert progress(manager, run.id)[-1]["stage"] == "paused"
    assert manager.active_run_ids == []

    manager.resume(run.id, wp_owner.user_id)
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert manager.join(run.id)
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 9
    published = [line for line in read_record(record) if line.startswith("publish")]
    assert sorted(published) == sorted(f"publish {n}-test" for n in names)
    assert len(store.list_posts(wp_owner.user_id, wp_owner.site_id, limit=50)) == 9
    assert_sound(stored(store, run.id))


def test_pause_reaches_items_waiting_for_a_turn_at_the_site(make_manager, store, wp_owner,
                                                             gated, record, tmp_path):
    # one slot: item 1 publishes (held), item 2 is generated and waits for the slot; the
    # pause stops item 2 at that wait, not after item 1's turn.
    site = store.get_site(wp_owner.user_id, wp_owner.site_id)
    store.update_site(wp_owner.user_id, site.id, {"defaults": {**site.defaults, "concurrency": 1}})
    manager = make(make_manager, gated)
    run, _ = manager.submit(wp_owner.user_id, "test", wp_owner.site_id, ["w1", "w2", "w3"],
                            {"record": str(record), "steps": 1})
    wait_until(lambda: gated.inside == 1 and "process w2-test" in read_record(record),
               "item 1 publishing, item 2 generated")
    manager.pause(run.id, wp_owner.user_id)
    wait_until(lambda: store.get_item(run.id, 1).status == "pending",
               "item 2 back to pending while item 1 still publishes")
    assert store.get_item(run.id, 0).status == "publishing"
    gated.gate.set()
    assert wait_status(store, run.id, ("paused",)) == "paused"
    assert [i.status for i in store.list_items(run.id)] == ["published", "pending", "pending"]


def test_cancel_with_items_in_flight(make_manager, store, wp_owner, gated, record):
    manager = make(make_manager, gated)
    run, _ = manager.submit(wp_owner.user_id, "test", wp_owner.site_id,
                            [f"c{n}" for n in range(8)], {"record": str(record), "steps": 2})
    wait_until(lambda: gated.inside == 4, "four items publishing at once")
    manager.cancel(run.id, wp_owner.user_id)
    gated.gate.set()
    assert manager.join(run.id)
    statuses = [i.status for i in store.list_items(run.id)]
    assert statuses[:4] == ["published"] * 4 and set(statuses[4:]) == {"pending"}
    assert store.get_run(run.id).status == "cancelled"
    assert progress(manager, run.id)[-1]["stage"] == "cancelled"
    assert_sound(stored(store, run.id))


def test_a_store_failure_in_one_lane_fails_the_run_and_stops_the_others(
        make_manager, store, wp_owner, gated, record):
    gated.fail_store = {"s1-test"}
    manager = make(make_manager, gated)
    run, _ = manager.submit(wp_owner.user_id, "test", wp_owner.site_id,
                            [f"s{n}" for n in range(8)], {"record": str(record), "steps": 2})
    wait_until(lambda: gated.inside == 4, "four items publishing at once")
    gated.gate.set()
    assert wait_status(store, run.id, ("failed",)) == "failed"
    assert manager.join(run.id)
    assert store.get_run(run.id).error == "the store went away"
    statuses = [i.status for i in store.list_items(run.id)]
    assert statuses.count("published") >= 3 and "pending" in statuses
    # the failure was recoverable: a retry finishes every item, each published once
    gated.fail_store = set()
    manager.retry(run.id, wp_owner.user_id)
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 8
    published = [line for line in read_record(record) if line.startswith("publish")]
    assert sorted(published) == sorted(f"publish s{n}-test" for n in range(8))


def test_the_sites_concurrency_option(store):
    local = Site(id="", user_id="u", name="A", kind="local", defaults={"concurrency": 8})
    wordpress = Site(id="", user_id="u", name="W", kind="wordpress")
    assert publishing_slots(local) == 1
    assert publishing_slots(wordpress) == 2
    assert publishing_slots(Site(id="", user_id="u", name="W", kind="wordpress",
                                 defaults={"concurrency": 6})) == 6
    assert publishing_slots(Site(id="", user_id="u", name="W", kind="wordpress",
                                 defaults={"concurrency": 99})) == 8


def test_the_generation_processes_setting():
    assert [auto_processes(cores) for cores in (1, 2, 3, 16)] == [0, 1, 2, 2]
    assert generation_processes(None) == auto_processes()
    assert generation_processes("") == auto_processes()
    assert generation_processes("3") == 3 and generation_processes(0) == 0
    for bad in ("many", "-1", True):
        with pytest.raises(ValueError, match="TICKZEN_GENERATION_PROCESSES"):
            generation_processes(bad)


# ---------------------------------------------------------------------------------------------
# The generation pool: real worker processes.


@pytest.fixture
def cpu_manager(make_manager, gated):
    def factory(**kwargs: Any) -> Any:
        manager = make(make_manager, gated, generation_processes=kwargs.pop("processes", 2),
                       **kwargs)
        manager.automations["test_cpu"] = CpuTestAutomation()
        return manager
    return factory


def makers(manager: Any, run_id: str) -> set[str]:
    root = manager.workdirs.for_run(run_id)
    return {p.read_text() for p in root.glob("*/made_by.txt")}


def test_cpu_bound_items_are_made_in_worker_processes(cpu_manager, store, wp_owner, gated,
                                                      record):
    gated.gate.set()
    manager = cpu_manager()
    names = [f"g{n}" for n in range(8)]
    run, _ = manager.submit(wp_owner.user_id, "test_cpu", wp_owner.site_id, names,
                            {"record": str(record), "steps": 3, "delay": 0.02})
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert manager.join(run.id)
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 8
    pids = makers(manager, run.id)
    assert pids and str(os.getpid()) not in pids
    events = stored(store, run.id)
    assert_sound(events)
    # the children's own progress came up (coarse: the latest step at each poll)
    assert any(": step " in e["message"] for e in events)
    assert sorted(line for line in read_record(record) if line.startswith("process")) == \
        sorted(f"process {n}-test" for n in names)


def test_pause_reaches_an_item_inside_a_worker_process(cpu_manager, store, wp_owner, gated,
                                                       record, tmp_path):
    gated.gate.set()
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = cpu_manager()
    run, _ = manager.submit(wp_owner.user_id, "test_cpu", wp_owner.site_id, ["x1", "x2", "x3"],
                            {"record": str(record), "gate": str(gate), "steps": 2})
    wait_record(record)                     # a worker process is inside an item, at the gate
    manager.pause(run.id, wp_owner.user_id)
    assert wait_status(store, run.id, ("paused",)) == "paused"
    assert manager.join(run.id)
    assert [i.status for i in store.list_items(run.id)] == ["pending"] * 3
    (gate / "open").touch()
    manager.resume(run.id, wp_owner.user_id)
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 3
    assert sorted(line for line in read_record(record) if line.startswith("publish")) == [
        "publish x1-test", "publish x2-test", "publish x3-test"]
    assert_sound(stored(store, run.id))


def test_a_killed_worker_process_costs_a_retry_not_the_item(cpu_manager, store, wp_owner,
                                                            gated, record, tmp_path):
    gated.gate.set()
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = cpu_manager(processes=1)
    run, _ = manager.submit(wp_owner.user_id, "test_cpu", wp_owner.site_id, ["k1", "k2"],
                            {"record": str(record), "gate": str(gate), "gate_items": ["k1"],
                             "steps": 1})
    made_by = manager.workdirs.for_item(run.id, 0, "k1-test") / "made_by.txt"
    child = int(wait_until(lambda: made_by.exists() and made_by.read_text(),
                           "item 1 inside a worker process, at the gate"))
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: read_record(record).count("process k1-test") == 2,
               "item 1 tried again in a new worker process")
    (gate / "open").touch()
    assert wait_status(store, run.id, ("completed",)) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published", "published"]
    assert read_record(record).count("publish k1-test") == 1


def test_shutdown_with_an_item_in_a_worker_process_leaves_it_pending(
        cpu_manager, store, wp_owner, gated, record, tmp_path):
    gated.gate.set()
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = cpu_manager()
    run, _ = manager.submit(wp_owner.user_id, "test_cpu", wp_owner.site_id, ["z1", "z2"],
                            {"record": str(record), "gate": str(gate)})
    wait_record(record)
    manager.shutdown()
    assert store.get_run(run.id).status == "interrupted"
    assert [i.status for i in store.list_items(run.id)] == ["pending", "pending"]
