"""Lease takeover between RunManagers sharing one Firestore (the emulator), in one process.

Two managers stand for two instances; a run left by a dead one is set up in the store exactly as
a kill leaves it (items published, ``publishing`` with and without a ledger entry, mid-item,
pending). The publisher is the recording one over the real ledger, so every publish call counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.manager import RunManager
from storage.base import LedgerEntry, NewItem, Run, Site, utcnow
from tests.support.procs import wait_until
from tests.support.test_automations import RecordingPublisher, TestAutomation, read_record

LEASE = 1.0


@pytest.fixture
def owner(firestore_store: Any) -> tuple[str, str]:
    user = firestore_store.create_user("lease@example.com", "not-a-real-hash")
    site = firestore_store.create_site(user.id, Site(id="", user_id=user.id, name="Archive",
                                                     kind="local"))
    return user.id, site.id


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "calls.log"


@pytest.fixture
def make_manager(firestore_store: Any, record: Path, tmp_path: Path
                 ) -> Iterator[Callable[..., RunManager]]:
    made: list[RunManager] = []

    def factory(name: str, **kwargs: Any) -> RunManager:
        options: dict[str, Any] = {"workdir_root": tmp_path / f"work-{name}",
                                   "progress_max_per_second": 0, "lease_seconds": LEASE,
                                   "takeover": True, "instance_id": name}
        options.update(kwargs)
        manager = RunManager(firestore_store, lambda *a: None, {"test": TestAutomation()},
                             RecordingPublisher(firestore_store, record), **options)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        manager.shutdown(timeout=10)


def _dead_run(store: Any, owner: tuple[str, str], statuses: dict[str, str],
              ledger: dict[str, str], record: Path, lease_left: float) -> Run:
    """A run as ``kill -9`` of its instance leaves it: running, the dead owner's lease."""
    user_id, site_id = owner
    run = store.create_run(
        Run(id="", user_id=user_id, kind="test", site_id=site_id,
            options={"record": str(record), "steps": 1}),
        [NewItem(f"{n}-test", {"name": n}, n) for n in statuses])
    now = utcnow()
    assert store.acquire_lease(run.id, "dead-instance", now + timedelta(seconds=lease_left), now)
    store.transition_run(run.id, ["queued"], "running")
    for position, status in enumerate(statuses.values()):
        if status == "published":
            slug = f"{list(statuses)[position]}-test"
            store.transition_item(run.id, position, ["pending"], status, post_id=f"post-{slug}",
                                  post_url=f"http://archive.invalid/{slug}/")
        elif status != "pending":
            store.transition_item(run.id, position, ["pending"], status)
    for name, state in ledger.items():
        slug = f"{name}-test"
        store.reserve_post(LedgerEntry(user_id=user_id, site_id=site_id, slug=slug,
                                       item_key=slug, kind="test", run_id=run.id,
                                       day=now.date().isoformat()))
        if state == "published":
            store.complete_post(user_id, site_id, slug, post_id=f"post-{slug}",
                                post_url=f"http://archive.invalid/{slug}/")
    return run


def test_expired_run_is_taken_over_once_and_nothing_is_published_twice(
        firestore_store, owner, make_manager, record) -> None:
    # a: done; b: publishing, the post recorded in the ledger (killed before the item was
    # marked); c: publishing with only a reservation (killed mid-request, nothing on the site);
    # d: mid-processing; e: not started.
    statuses = {"a": "published", "b": "publishing", "c": "publishing", "d": "processing",
                "e": "pending"}
    run = _dead_run(firestore_store, owner, statuses, {"a": "published", "b": "published",
                                                       "c": "reserved"}, record, lease_left=2)
    first, second = make_manager("inst-1"), make_manager("inst-2")
    assert first.take_over() == [] and second.take_over() == []     # the lease is still live
    assert firestore_store.get_run(run.id).owner == "dead-instance"
    first.start()
    second.start()
    done = wait_until(lambda: (r := firestore_store.get_run(run.id)).status == "completed" and r,
                      "the run to be finished by a surviving instance")
    assert done.counts.get("published") == 5 and not done.counts.get("failed")
    items = firestore_store.list_items(run.id)
    assert [i.status for i in items] == ["published"] * 5
    assert [i.post_id for i in items] == [f"post-{n}-test" for n in "abcde"]
    calls = read_record(record)
    # One instance won the lease: every remaining item processed and published once; a and b
    # (already in the ledger) were neither processed nor published again.
    assert sorted(calls) == sorted([f"{verb} {n}-test" for verb in ("process", "publish")
                                    for n in "cde"])
    posts = firestore_store.list_posts(owner[0], owner[1], limit=50)
    assert sorted(p.slug for p in posts) == [f"{n}-test" for n in "abcde"]
    assert {p.status for p in posts} == {"published"}


def test_a_live_owner_keeps_its_run(firestore_store, owner, make_manager, record,
                                    tmp_path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    holder, other = make_manager("holder"), make_manager("other")
    holder.start()                          # the heartbeat, as recover() starts it
    run, _ = holder.submit(owner[0], "test", owner[1], ["x", "y"],
                           {"gate": str(gate), "record": str(record)})
    wait_until(lambda: read_record(record), "the holder to start the item")
    other.start()
    # Several lease lengths pass: the holder's heartbeat renews, the other never takes it.
    deadline = time.monotonic() + 3 * LEASE
    while time.monotonic() < deadline:
        assert other.take_over() == []
        time.sleep(LEASE / 4)
    current = firestore_store.get_run(run.id)
    assert (current.status, current.owner) == ("running", "holder")
    assert other.active_run_ids == [] and read_record(record) == ["process x-test"]
    (gate / "open").touch()
    wait_until(lambda: firestore_store.get_run(run.id).status == "completed", "completion")
    assert read_record(record).count("publish x-test") == 1


def test_an_owner_that_lost_its_lease_stops_at_the_next_checkpoint(
        firestore_store, owner, make_manager, record, tmp_path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    holder = make_manager("holder")
    holder.start()
    run, _ = holder.submit(owner[0], "test", owner[1], ["x"],
                           {"gate": str(gate), "record": str(record)})
    wait_until(lambda: read_record(record), "the holder to start the item")
    # As if the holder stalled past its lease and another instance took the run.
    firestore_store.release_lease(run.id, "holder")
    now = utcnow()
    assert firestore_store.acquire_lease(run.id, "usurper", now + timedelta(seconds=60), now)
    assert holder.join(run.id, timeout=15)
    current = firestore_store.get_run(run.id)
    assert (current.status, current.owner) == ("running", "usurper")   # left for the usurper
    assert firestore_store.list_items(run.id)[0].status == "pending"
    assert "publish x-test" not in read_record(record)


def test_pause_asked_through_another_instance_is_seen_by_the_owner(
        firestore_store, owner, make_manager, record, tmp_path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    holder = make_manager("holder")
    holder.start()
    elsewhere = make_manager("elsewhere", autostart=False)
    run, _ = holder.submit(owner[0], "test", owner[1], ["x", "y"],
                           {"gate": str(gate), "record": str(record)})
    wait_until(lambda: read_record(record), "the holder to start the item")
    assert elsewhere.pause(run.id, owner[0]).status == "pausing"
    assert holder.join(run.id, timeout=15)
    assert firestore_store.get_run(run.id).status == "paused"
    assert elsewhere.cancel(run.id, owner[0]).status == "cancelled"
    assert read_record(record) == ["process x-test"]
