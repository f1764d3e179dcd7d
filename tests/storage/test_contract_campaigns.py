"""The Store contract for campaigns and fires, held against both backends.

The promise that matters most: one fire makes at most one run. ``fire_campaign`` is a
compare-and-set on the campaign's revision and records the fire, the run (keyed by the fire id)
and the campaign's new state in one transaction, so racing threads and separate clients of one
database have exactly one winner, and a fire id can never be used twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.base import (
    Campaign,
    ConflictError,
    DuplicateError,
    Fire,
    NewItem,
    NotFoundError,
    Run,
    Store,
)
from tests.storage.test_contract import THREADS, assert_aware_utc, make_run, make_user, race

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CLIENTS = 4


def make_campaign(store: Store, user_id: str, name: str = "Daily", **fields: Any) -> Campaign:
    fields.setdefault("next_fire_at", T0)
    fields.setdefault("source", {"tickers": ["AAPL", "MSFT", "NVDA"], "repeat": True})
    fields.setdefault("schedule", {"cron": "0 7 * * 1-5", "timezone": "America/New_York"})
    return store.create_campaign(Campaign(id="", user_id=user_id, name=name, kind="stock",
                                          site_id="s1", per_run=2, **fields))


def fire_of(campaign: Campaign, when: datetime, outcome: str = "started",
            reason: str = "") -> Fire:
    return Fire(id=f"{campaign.id}:{when.isoformat()}", campaign_id=campaign.id,
                user_id=campaign.user_id, scheduled_for=when, outcome=outcome, reason=reason,
                fired_at=T0)


def run_for(campaign: Campaign, fire: Fire) -> Run:
    return Run(id="", user_id=campaign.user_id, kind=campaign.kind, site_id=campaign.site_id,
               options={"data_source": "demo"}, campaign_id=campaign.id, fire_id=fire.id)


def start(store: Store, campaign: Campaign, when: datetime, revision: int | None = None,
          keys: tuple[str, ...] = ("aapl", "msft")) -> tuple[Campaign, Run | None]:
    fire = fire_of(campaign, when)
    return store.fire_campaign(
        campaign.id, expected_revision=campaign.revision if revision is None else revision,
        fires=[fire], changes={"next_fire_at": when + timedelta(days=1),
                               "queue": {"cursor": len(keys)}},
        run=run_for(campaign, fire), items=[NewItem(key=k, input=k.upper()) for k in keys])


def runs_of(store: Store, campaign_id: str) -> list[Run]:
    return store.list_runs(campaign_id=campaign_id, limit=200)


# campaigns -----------------------------------------------------------------------------------

def test_campaign_round_trip(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid, options={"status": "draft", "tags": ["a", "b"]},
                             queue={"cursor": 0, "retry": []})
    assert campaign.id and campaign.revision == 0 and campaign.status == "active"
    got = store.get_campaign(uid, campaign.id)
    assert got == campaign
    assert store.get_campaign(None, campaign.id) == campaign
    assert got.source == {"tickers": ["AAPL", "MSFT", "NVDA"], "repeat": True}
    assert got.next_fire_at == T0 and got.catch_up_seconds == 3600
    assert_aware_utc(got.next_fire_at)
    assert_aware_utc(got.updated_at)
    assert store.list_campaigns(uid) == [campaign]


def test_campaign_for_a_missing_user(store: Store) -> None:
    with pytest.raises(NotFoundError):
        make_campaign(store, "nobody")


def test_campaigns_are_isolated_between_users(store: Store) -> None:
    ann, bob = make_user(store), make_user(store, "bob@example.com")
    campaign = make_campaign(store, ann)
    assert store.get_campaign(bob, campaign.id) is None
    assert store.list_campaigns(bob) == []
    with pytest.raises(NotFoundError):
        store.update_campaign(bob, campaign.id, {"name": "stolen"})
    with pytest.raises(NotFoundError):
        store.delete_campaign(bob, campaign.id)
    assert store.get_campaign(ann, campaign.id) == campaign


def test_list_campaigns_oldest_first(store: Store) -> None:
    uid = make_user(store)
    for name, minute in (("one", 1), ("two", 2), ("three", 3)):
        make_campaign(store, uid, name, created_at=T0 + timedelta(minutes=minute))
    assert [c.name for c in store.list_campaigns(uid)] == ["one", "two", "three"]


def test_update_campaign_bumps_the_revision(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    later = T0 + timedelta(hours=2)
    updated = store.update_campaign(uid, campaign.id, {"name": "Renamed", "status": "paused",
                                                       "next_fire_at": later})
    assert (updated.name, updated.status, updated.next_fire_at, updated.revision) == (
        "Renamed", "paused", later, 1)
    assert store.get_campaign(uid, campaign.id) == updated
    again = store.update_campaign(uid, campaign.id, {"per_run": 5}, expected_revision=1)
    assert again.revision == 2 and again.per_run == 5
    with pytest.raises(ConflictError):
        store.update_campaign(uid, campaign.id, {"per_run": 9}, expected_revision=1)
    assert store.get_campaign(uid, campaign.id) == again


def test_update_campaign_bad_input(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    with pytest.raises(NotFoundError):
        store.update_campaign(uid, "missing", {"name": "x"})
    with pytest.raises(ValueError):
        store.update_campaign(uid, campaign.id, {"no_such_field": 1})
    with pytest.raises(ValueError):
        store.update_campaign(uid, campaign.id, {"revision": 7})
    with pytest.raises(ValueError):
        store.update_campaign(uid, campaign.id, {"user_id": "someone-else"})
    with pytest.raises(ValueError):
        store.update_campaign(uid, campaign.id, {"status": "exploded"})
    with pytest.raises(ValueError):
        store.update_campaign(uid, campaign.id, {"next_fire_at": datetime(2026, 1, 1)})
    assert store.get_campaign(uid, campaign.id) == campaign


def test_due_campaigns_are_active_and_due_soonest_first(store: Store) -> None:
    uid = make_user(store)
    late = make_campaign(store, uid, "late", next_fire_at=T0 - timedelta(minutes=5))
    now = make_campaign(store, uid, "now", next_fire_at=T0)
    make_campaign(store, uid, "future", next_fire_at=T0 + timedelta(seconds=1))
    make_campaign(store, uid, "paused", status="paused", next_fire_at=T0 - timedelta(hours=1))
    make_campaign(store, uid, "never", next_fire_at=None)
    other = make_campaign(store, make_user(store, "bob@example.com"), "bob's",
                          next_fire_at=T0 - timedelta(minutes=1))
    assert [c.id for c in store.list_due_campaigns(T0)] == [late.id, other.id, now.id]
    assert [c.id for c in store.list_due_campaigns(T0, limit=1)] == [late.id]


def test_delete_campaign_keeps_its_runs(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    _, run = start(store, campaign, T0)
    store.delete_campaign(uid, campaign.id)
    assert store.get_campaign(uid, campaign.id) is None
    assert store.list_fires(campaign.id) == []
    assert store.get_run(run.id).campaign_id == campaign.id
    with pytest.raises(NotFoundError):
        store.delete_campaign(uid, campaign.id)


# fires ---------------------------------------------------------------------------------------

def test_a_started_fire_creates_its_run_in_the_same_step(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    fired, run = start(store, campaign, T0)
    assert run is not None and run.id
    assert (run.campaign_id, run.fire_id, run.status, run.total) == (
        campaign.id, f"{campaign.id}:{T0.isoformat()}", "queued", 2)
    assert store.get_run(run.id) == run
    assert [i.key for i in store.list_items(run.id)] == ["aapl", "msft"]
    assert (fired.revision, fired.last_run_id, fired.queue) == (1, run.id, {"cursor": 2})
    assert fired.next_fire_at == T0 + timedelta(days=1)
    assert store.get_campaign(uid, campaign.id) == fired
    [fire] = store.list_fires(campaign.id)
    assert (fire.outcome, fire.run_id, fire.scheduled_for, fire.user_id) == (
        "started", run.id, T0, uid)
    assert_aware_utc(fire.fired_at)
    assert runs_of(store, campaign.id) == [run]
    assert store.list_runs(uid, campaign_id=campaign.id) == [run]
    assert store.list_runs(campaign_id="other") == []


def test_fires_without_a_run_are_recorded(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    times = [T0 - timedelta(hours=h) for h in (3, 2, 1)]
    fires = [fire_of(campaign, times[0], "missed", "more than 3600 s late"),
             fire_of(campaign, times[1], "missed", "coalesced"),
             fire_of(campaign, times[2], "skipped", "previous run still active")]
    fired, run = store.fire_campaign(campaign.id, expected_revision=0, fires=fires,
                                     changes={"next_fire_at": T0})
    assert run is None and fired.revision == 1 and fired.last_run_id is None
    got = store.list_fires(campaign.id)
    assert [(f.outcome, f.reason, f.scheduled_for) for f in got] == [
        ("skipped", "previous run still active", times[2]),
        ("missed", "coalesced", times[1]),
        ("missed", "more than 3600 s late", times[0])]
    assert [f.id for f in store.list_fires(campaign.id, limit=1, offset=1)] == [fires[1].id]
    assert runs_of(store, campaign.id) == []


def test_a_stale_revision_writes_nothing(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    store.update_campaign(uid, campaign.id, {"name": "edited meanwhile"})
    with pytest.raises(ConflictError):
        start(store, campaign, T0, revision=0)
    assert store.list_fires(campaign.id) == [] and runs_of(store, campaign.id) == []
    assert store.get_campaign(uid, campaign.id).queue == {}


def test_a_fire_id_is_used_once(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    fired, first = start(store, campaign, T0)
    with pytest.raises(DuplicateError):                 # fresh revision, same fire
        start(store, fired, T0)
    with pytest.raises(DuplicateError):                 # recorded again as skipped
        store.fire_campaign(campaign.id, expected_revision=fired.revision,
                            fires=[fire_of(campaign, T0, "skipped")], changes={})
    assert runs_of(store, campaign.id) == [first]
    assert len(store.list_fires(campaign.id)) == 1
    assert store.get_campaign(uid, campaign.id) == fired


def test_only_fire_campaign_creates_a_fires_run(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    fire = fire_of(campaign, T0)
    with pytest.raises(ValueError):
        store.create_run(run_for(campaign, fire), [NewItem(key="a", input="A")])
    assert make_run(store, user_id=uid).campaign_id is None


def test_fire_campaign_bad_input(store: Store) -> None:
    uid = make_user(store)
    campaign = make_campaign(store, uid)
    fire = fire_of(campaign, T0)
    with pytest.raises(NotFoundError):
        store.fire_campaign("missing", expected_revision=0, fires=[], changes={})
    with pytest.raises(ValueError):                      # a started fire without its run
        store.fire_campaign(campaign.id, expected_revision=0, fires=[fire], changes={})
    with pytest.raises(ValueError):                      # the run names another fire
        store.fire_campaign(campaign.id, expected_revision=0, fires=[fire], changes={},
                            run=run_for(campaign, fire_of(campaign, T0 + timedelta(1))))
    with pytest.raises(ValueError):
        store.fire_campaign(campaign.id, expected_revision=0,
                            fires=[fire_of(campaign, T0, "vanished")], changes={})
    with pytest.raises(ValueError):
        store.fire_campaign(campaign.id, expected_revision=0, fires=[], changes={"revision": 3})
    assert store.get_campaign(uid, campaign.id) == campaign
    assert store.list_fires(campaign.id) == [] and runs_of(store, campaign.id) == []


# races ---------------------------------------------------------------------------------------

def _one_run_per_fire(store: Store, campaign: Campaign, results: list[Any]) -> None:
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, (ConflictError, DuplicateError))
               for r in results if isinstance(r, Exception))
    runs = runs_of(store, campaign.id)
    assert [r.id for r in runs] == [winners[0][1].id]
    assert len(store.list_fires(campaign.id)) == 1
    assert store.get_campaign(None, campaign.id).revision == 1


def test_threads_racing_one_fire_make_one_run(store: Store) -> None:
    campaign = make_campaign(store, make_user(store))
    results = race(THREADS, lambda i: start(store, campaign, T0, keys=(f"k{i}",)))
    _one_run_per_fire(store, campaign, results)


def test_threads_with_fresh_revisions_still_make_one_run(store: Store) -> None:
    """Each thread re-reads the campaign first, so some pass the revision check and are
    stopped by the fire id itself."""
    campaign = make_campaign(store, make_user(store))

    def fire(i: int) -> Any:
        for _ in range(THREADS):
            current = store.get_campaign(None, campaign.id)
            try:
                return start(store, current, T0, keys=(f"k{i}",))
            except ConflictError:
                continue
        raise AssertionError("never got past the revision check")

    results = race(THREADS, fire)
    assert sum(isinstance(r, DuplicateError) for r in results) == THREADS - 1
    _one_run_per_fire(store, campaign, results)


@pytest.fixture
def clients(store: Store) -> Iterator[list[Store]]:
    """Separate clients of the same database, standing for separate instances."""
    if hasattr(store, "path"):
        from storage.sqlite import SQLiteStore

        others: list[Any] = [SQLiteStore(store.path) for _ in range(CLIENTS - 1)]
    else:
        from storage.firestore import FirestoreStore

        others = [FirestoreStore(project=store.project) for _ in range(CLIENTS - 1)]
    try:
        yield [store, *others]
    finally:
        for other in others:
            other.close()


def test_separate_clients_racing_one_fire_make_one_run(clients: list[Store]) -> None:
    store = clients[0]
    campaign = make_campaign(store, make_user(store))
    results = race(CLIENTS, lambda i: start(clients[i], campaign, T0, keys=(f"k{i}",)))
    _one_run_per_fire(store, campaign, results)
    with pytest.raises(DuplicateError):
        start(clients[1], store.get_campaign(None, campaign.id), T0)
