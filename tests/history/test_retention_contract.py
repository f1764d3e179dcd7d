"""Retention and job leases in the Store, held against both backends.

``prune_run`` removes a finished run's events (a compare-and-set: a run retried meanwhile is
left alone) and records when; the run, its items, ``last_seq`` and the ledger stay.
``claim_job``/``finish_job`` lease a periodic job to exactly one claimer, also across separate
handles of one database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.base import ConflictError, Item, LedgerEntry, NewItem, NotFoundError, Run, Store
from storage.housekeeping import Job, SeededRun
from storage.paging import Cursor
from tests.storage.test_contract import THREADS, assert_aware_utc, make_site, make_user, race

T0 = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
CUTOFF = T0 - timedelta(days=90)


def finished_run(store: Store, user_id: str, finished: datetime, status: str = "completed",
                 events: int = 3) -> Run:
    run = store.create_run(Run(id="", user_id=user_id, kind="stock", site_id="s1",
                               created_at=finished - timedelta(minutes=5)),
                           [NewItem(key="aapl", input="AAPL"), NewItem(key="msft", input="MSFT")])
    for n in range(events):
        store.append_event(run.id, {"stage": "processing", "n": n})
    return store.transition_run(run.id, ["queued"], status, updated_at=finished)


def test_prunable_runs_are_the_finished_ones_past_the_window(store: Store) -> None:
    user = make_user(store)
    old = [finished_run(store, user, CUTOFF - timedelta(days=d), status)
           for d, status in ((3, "completed"), (2, "failed"), (1, "cancelled"))]
    finished_run(store, user, CUTOFF + timedelta(hours=1))                  # inside the window
    active = store.create_run(Run(id="", user_id=user, kind="stock", site_id="s1",
                                  created_at=CUTOFF - timedelta(days=9),
                                  updated_at=CUTOFF - timedelta(days=9)), [])   # queued
    found = store.list_prunable_runs(CUTOFF)
    assert [r.id for r in found] == [r.id for r in old]                       # oldest first
    assert active.id not in {r.id for r in found}
    assert [r.id for r in store.list_prunable_runs(CUTOFF, limit=1,
                                                   after=Cursor(old[0].updated_at,
                                                                (old[0].id,)))] == [old[1].id]
    store.prune_run(old[1].id, finished_before=CUTOFF, when=T0, files_pruned=True)
    assert [r.id for r in store.list_prunable_runs(CUTOFF)] == [old[0].id, old[2].id]


def test_prune_removes_the_events_and_keeps_the_record(store: Store) -> None:
    user = make_user(store)
    site = make_site(store, user)
    run = finished_run(store, user, CUTOFF - timedelta(days=1), events=5)
    entry = LedgerEntry(user_id=user, site_id=site.id, slug="aapl-1", item_key="aapl",
                        kind="stock", run_id=run.id, day="2026-02-01")
    store.reserve_post(entry)
    store.complete_post(user, site.id, "aapl-1", post_id="7", post_url="https://x/7")
    items = store.list_items(run.id)
    pruned = store.prune_run(run.id, finished_before=CUTOFF, when=T0, files_pruned=False)
    assert pruned.events_pruned_at == T0 and pruned.files_pruned_at is None
    assert_aware_utc(pruned.events_pruned_at)
    stored = store.get_run(run.id)
    assert stored == pruned
    assert stored.last_seq == 5 and stored.status == "completed" and stored.counts == run.counts
    assert store.list_events(run.id) == []
    assert store.list_items(run.id) == items
    assert store.get_post(user, site.id, "aapl-1").status == "published"
    later = T0 + timedelta(hours=1)
    again = store.prune_run(run.id, finished_before=CUTOFF, when=later, files_pruned=True)
    assert again.events_pruned_at == T0 and again.files_pruned_at == later   # first time kept


def test_a_run_retried_meanwhile_is_not_pruned(store: Store) -> None:
    user = make_user(store)
    run = finished_run(store, user, CUTOFF - timedelta(days=1))
    store.transition_run(run.id, ["completed"], "queued")          # retried: changed just now
    with pytest.raises(ConflictError):
        store.prune_run(run.id, finished_before=CUTOFF, when=T0, files_pruned=True)
    assert len(store.list_events(run.id)) == 3
    recent = finished_run(store, user, CUTOFF + timedelta(seconds=1))
    with pytest.raises(ConflictError):
        store.prune_run(recent.id, finished_before=CUTOFF, when=T0, files_pruned=True)
    with pytest.raises(NotFoundError):
        store.prune_run("no-such-run", finished_before=CUTOFF, when=T0, files_pruned=True)


def test_the_prune_marks_are_the_stores_own(store: Store) -> None:
    user = make_user(store)
    run = finished_run(store, user, CUTOFF)
    with pytest.raises(ValueError):
        store.update_run(run.id, events_pruned_at=T0)
    with pytest.raises(ValueError):
        store.transition_run(run.id, ["completed"], "queued", files_pruned_at=T0)


def test_a_job_is_leased_to_one_claimer_until_it_is_due_again(store: Store) -> None:
    assert store.get_job("retention") is None
    job = store.claim_job("retention", "a", T0, T0 + timedelta(minutes=10))
    assert isinstance(job, Job) and job.owner == "a" and job.last_started_at == T0
    assert store.claim_job("retention", "b", T0 + timedelta(minutes=1),
                           T0 + timedelta(minutes=11)) is None            # a holds it
    renewed = store.claim_job("retention", "a", T0 + timedelta(minutes=5),
                              T0 + timedelta(minutes=15))
    assert renewed is not None and renewed.lease_until == T0 + timedelta(minutes=15)
    with pytest.raises(ConflictError):
        store.finish_job("retention", "b", now=T0, next_run_at=T0 + timedelta(days=1),
                         result={})
    done = store.finish_job("retention", "a", now=T0 + timedelta(minutes=6),
                            next_run_at=T0 + timedelta(days=1), result={"runs": 3})
    assert done.owner is None and done.last_result == {"runs": 3}
    assert store.get_job("retention") == done
    assert store.claim_job("retention", "b", T0 + timedelta(hours=23),
                           T0 + timedelta(hours=24)) is None               # not due yet
    tomorrow = store.claim_job("retention", "b", T0 + timedelta(days=1),
                               T0 + timedelta(days=1, minutes=10))
    assert tomorrow is not None and tomorrow.owner == "b"


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_finish(store: Store) -> None:
    store.claim_job("retention", "a", T0, T0 + timedelta(minutes=10))
    taken = store.claim_job("retention", "b", T0 + timedelta(minutes=11),
                            T0 + timedelta(minutes=21))
    assert taken is not None and taken.owner == "b"
    with pytest.raises(ConflictError):
        store.finish_job("retention", "a", now=T0 + timedelta(minutes=12),
                         next_run_at=T0 + timedelta(days=1), result={})


def test_racing_claimers_get_one_lease(store: Store) -> None:
    results = race(THREADS, lambda i: store.claim_job("retention", f"owner-{i}", T0,
                                                      T0 + timedelta(minutes=10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and not any(isinstance(r, Exception) for r in results)
    assert store.get_job("retention").owner == winners[0].owner


@pytest.fixture(params=["sqlite", "firestore"])
def two_handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Store]]:
    """Two separate handles on one database: two instances of the portal."""
    if request.param == "sqlite":
        from storage.sqlite import SQLiteStore

        handles = [SQLiteStore(tmp_path / "shared.db") for _ in range(2)]
    else:
        from google.cloud import firestore

        from storage.firestore import FirestoreStore

        request.getfixturevalue("firestore_store")          # an emptied emulator
        handles = [FirestoreStore("demo-test", client=firestore.Client(project="demo-test"))
                   for _ in range(2)]
    try:
        yield handles
    finally:
        for handle in handles:
            handle.close()


def test_two_instances_claim_the_job_once(two_handles: list[Store]) -> None:
    results = race(8, lambda i: two_handles[i % 2].claim_job("retention", f"i{i}", T0,
                                                             T0 + timedelta(minutes=10)))
    assert len([r for r in results if r is not None]) == 1


def test_seeded_runs_read_back_like_any_other(store: Store) -> None:
    user = make_user(store)
    site = make_site(store, user)
    run = Run(id="seed-1", user_id=user, kind="stock", site_id=site.id, status="completed",
              total=2, counts={"published": 2}, percent=100, created_at=T0, updated_at=T0)
    items = [Item(run_id="seed-1", position=i, key=f"k{i}", input=f"K{i}", status="published",
                  post_id=str(i), updated_at=T0) for i in range(2)]
    posts = [LedgerEntry(user_id=user, site_id=site.id, slug=f"k{i}", item_key=f"k{i}",
                         kind="stock", run_id="seed-1", status="published", day="2026-06-01",
                         created_at=T0) for i in range(2)]
    store.seed_runs([SeededRun(run, items, [{"stage": "complete"}] * 3, posts)])
    assert store.get_run("seed-1") == Run(**{**run.__dict__, "last_seq": 3})
    assert store.list_items("seed-1") == items
    assert [e["seq"] for e in store.list_events("seed-1")] == [1, 2, 3]
    assert {p.slug for p in store.list_posts(user)} == {"k0", "k1"}
    assert store.list_runs(user) == [store.get_run("seed-1")]
