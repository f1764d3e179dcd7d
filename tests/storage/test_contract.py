"""The Store contract, held against both backends (the ``store`` fixture is parametrized).

Each test states one promise of ``storage.base.Store``; the concurrency tests race real threads
against one store and check that every compare-and-set has exactly one winner.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from storage.base import (
    ITEM_STATES,
    ConflictError,
    DailyLimitReached,
    DuplicateError,
    LedgerEntry,
    NewItem,
    NotFoundError,
    Run,
    Site,
    Store,
    StoreError,
)

THREADS = 8
T0 = datetime(2026, 11, 25, 9, 30, 15, 123456, tzinfo=UTC)


# helpers -------------------------------------------------------------------------------------

def race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) on n threads released together; return each result or raised error."""
    barrier = threading.Barrier(n)

    def call(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except StoreError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(call, range(n)))


def make_user(store: Store, email: str = "ann@example.com") -> str:
    return store.create_user(email, "hash").id


def make_site(store: Store, user_id: str, name: str = "Blog", **fields: Any) -> Site:
    return store.create_site(user_id, Site(id="", user_id=user_id, name=name, kind="local",
                                           **fields))


def make_run(store: Store, user_id: str = "u1", keys: tuple[str, ...] = ("a", "b", "c"),
             **fields: Any) -> Run:
    items = [NewItem(key=k, input=k.upper(), label=k.upper()) for k in keys]
    return store.create_run(Run(id="", user_id=user_id, kind="stock", site_id="s1", **fields),
                            items)


def entry(user_id: str, site_id: str, slug: str, **fields: Any) -> LedgerEntry:
    fields.setdefault("day", "2026-11-25")
    fields.setdefault("run_id", "r1")
    return LedgerEntry(user_id=user_id, site_id=site_id, slug=slug, item_key=slug, kind="stock",
                       **fields)


def assert_aware_utc(value: datetime) -> None:
    assert type(value) is datetime
    assert value.utcoffset() == timedelta(0)


# protocol ------------------------------------------------------------------------------------

def test_backend_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


# users ---------------------------------------------------------------------------------------

def test_user_round_trip(store: Store) -> None:
    user = store.create_user("ann@example.com", "pbkdf2:hash", "Ann")
    assert user.id
    assert_aware_utc(user.created_at)
    assert store.get_user(user.id) == user
    assert store.get_user_by_email("ann@example.com") == user
    assert store.get_user(user.id).display_name == "Ann"


def test_missing_user_is_none(store: Store) -> None:
    assert store.get_user("nobody") is None
    assert store.get_user_by_email("nobody@example.com") is None


def test_duplicate_email_is_refused_and_stores_nothing(store: Store) -> None:
    first = store.create_user("ann@example.com", "h1")
    with pytest.raises(DuplicateError):
        store.create_user("ann@example.com", "h2", "Impostor")
    assert store.get_user_by_email("ann@example.com") == first


def test_concurrent_registrations_of_one_email_have_one_winner(store: Store) -> None:
    results = race(THREADS, lambda i: store.create_user("race@example.com", f"h{i}"))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, DuplicateError) for r in results if r not in winners)
    assert store.get_user_by_email("race@example.com") == winners[0]


def test_empty_email_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.create_user("", "h")


def test_update_user_settings_merges(store: Store) -> None:
    uid = make_user(store)
    store.update_user_settings(uid, {"feeds": ["a", "b"], "theme": "dark"})
    user = store.update_user_settings(uid, {"theme": "light"})
    assert user.settings == {"feeds": ["a", "b"], "theme": "light"}
    assert store.get_user(uid).settings == {"feeds": ["a", "b"], "theme": "light"}


def test_update_settings_of_missing_user(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.update_user_settings("nobody", {"x": 1})


# sites ---------------------------------------------------------------------------------------

def test_site_round_trip(store: Store) -> None:
    uid = make_user(store)
    site = make_site(store, uid, url="https://blog.example", username="bot",
                     app_password_enc="gAAAA...", daily_limit=5,
                     defaults={"default_status": "draft", "gap_minutes": [5, 10],
                               "tags": ["stocks"]},
                     authors=[{"username": "a1", "app_password_enc": "x"}])
    assert site.id and site.user_id == uid
    got = store.get_site(uid, site.id)
    assert got == site
    assert got.defaults["gap_minutes"] == [5, 10]
    assert_aware_utc(got.updated_at)


def test_create_site_for_missing_user(store: Store) -> None:
    with pytest.raises(NotFoundError):
        make_site(store, "nobody")


def test_sites_are_isolated_between_users(store: Store) -> None:
    ann, bob = make_user(store), make_user(store, "bob@example.com")
    site = make_site(store, ann)
    make_site(store, bob, "Bob's")
    assert store.get_site(bob, site.id) is None
    assert [s.name for s in store.list_sites(ann)] == ["Blog"]
    assert [s.name for s in store.list_sites(bob)] == ["Bob's"]
    with pytest.raises(NotFoundError):
        store.update_site(bob, site.id, {"name": "stolen"})
    with pytest.raises(NotFoundError):
        store.delete_site(bob, site.id)
    with pytest.raises(NotFoundError):
        store.update_site_state(bob, site.id, lambda s: {"hacked": True})
    assert store.get_site(ann, site.id).name == "Blog"


def test_list_sites_empty_and_ordered(store: Store) -> None:
    uid = make_user(store)
    assert store.list_sites(uid) == []
    for name, minute in (("one", 1), ("two", 2), ("three", 3)):
        make_site(store, uid, name, created_at=T0 + timedelta(minutes=minute))
    assert [s.name for s in store.list_sites(uid)] == ["one", "two", "three"]


def test_update_site(store: Store) -> None:
    uid = make_user(store)
    site = make_site(store, uid)
    updated = store.update_site(uid, site.id, {"name": "Renamed", "daily_limit": 3,
                                                "defaults": {"category": "Markets"}})
    assert (updated.name, updated.daily_limit, updated.defaults) == (
        "Renamed", 3, {"category": "Markets"})
    assert updated.updated_at >= site.updated_at
    assert store.get_site(uid, site.id) == updated


def test_update_site_bad_input(store: Store) -> None:
    uid = make_user(store)
    site = make_site(store, uid)
    with pytest.raises(NotFoundError):
        store.update_site(uid, "missing", {"name": "x"})
    with pytest.raises(ValueError):
        store.update_site(uid, site.id, {"no_such_field": 1})
    with pytest.raises(ValueError):
        store.update_site(uid, site.id, {"state": {}})      # only via update_site_state
    with pytest.raises(ValueError):
        store.update_site(uid, site.id, {"user_id": "someone-else"})
    assert store.get_site(uid, site.id) == site


def test_delete_site(store: Store) -> None:
    uid = make_user(store)
    site = make_site(store, uid)
    store.reserve_post(entry(uid, site.id, "aapl"))
    store.delete_site(uid, site.id)
    assert store.get_site(uid, site.id) is None
    assert store.list_sites(uid) == []
    assert store.list_posts(uid) == []
    with pytest.raises(NotFoundError):
        store.delete_site(uid, site.id)


def test_update_site_state(store: Store) -> None:
    uid = make_user(store)
    site = make_site(store, uid)
    state = store.update_site_state(uid, site.id, lambda s: {**s, "author_cursor": 1})
    assert state == {"author_cursor": 1}
    state = store.update_site_state(
        uid, site.id, lambda s: {**s, "author_cursor": s["author_cursor"] + 1, "last": "x"})
    assert state == {"author_cursor": 2, "last": "x"}
    assert store.get_site(uid, site.id).state == state
    with pytest.raises(NotFoundError):
        store.update_site_state(uid, "missing", lambda s: s)


def test_concurrent_site_state_updates_lose_nothing(store: Store) -> None:
    uid = make_user(store)
    site = make_site(store, uid)
    race(THREADS, lambda i: store.update_site_state(
        uid, site.id, lambda s: {**s, "n": s.get("n", 0) + 1}))
    assert store.get_site(uid, site.id).state == {"n": THREADS}


# runs ----------------------------------------------------------------------------------------

def test_create_run_with_items(store: Store) -> None:
    run = store.create_run(
        Run(id="", user_id="u1", kind="sports", site_id="s1", options={"status": "draft"}),
        [NewItem(key="story-1", input={"title": "Cup final", "tags": ["x"]}, label="Cup final"),
         NewItem(key="story-2", input="plain text")])
    assert run.id and run.status == "queued" and run.total == 2 and run.last_seq == 0
    assert run.counts == {**{s: 0 for s in ITEM_STATES}, "pending": 2}
    assert store.get_run(run.id) == run
    items = store.list_items(run.id)
    assert [(i.position, i.key, i.status, i.attempts) for i in items] == [
        (0, "story-1", "pending", 0), (1, "story-2", "pending", 0)]
    assert items[0].input == {"title": "Cup final", "tags": ["x"]}
    assert items[0].label == "Cup final"
    assert items[1].input == "plain text"
    assert store.get_item(run.id, 1) == items[1]


def test_create_run_without_items(store: Store) -> None:
    run = make_run(store, keys=())
    assert run.total == 0 and store.list_items(run.id) == []


def test_create_run_with_the_largest_allowed_batch(store: Store) -> None:
    run = make_run(store, keys=tuple(f"t{i}" for i in range(500)))
    items = store.list_items(run.id)
    assert len(items) == 500 and items[499].key == "t499" and items[499].position == 499
    assert store.get_run(run.id).counts["pending"] == 500


def test_missing_run_and_items(store: Store) -> None:
    run = make_run(store)
    assert store.get_run("missing") is None
    assert store.get_item(run.id, 99) is None
    assert store.get_item("missing", 0) is None
    assert store.list_items("missing") == []


def test_list_runs_filters_orders_and_pages(store: Store) -> None:
    made = []
    for i in range(5):
        made.append(make_run(store, user_id="ann" if i % 2 == 0 else "bob",
                             created_at=T0 + timedelta(minutes=i)))
    store.transition_run(made[4].id, ["queued"], "running")
    store.transition_run(made[0].id, ["queued"], "cancelled")
    ids = [r.id for r in made]

    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs("ann")] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in store.list_runs("bob")] == [ids[3], ids[1]]
    assert [r.id for r in store.list_runs("ann", statuses=["queued", "running"])] == [
        ids[4], ids[2]]
    assert [r.id for r in store.list_runs(statuses=["queued"])] == [ids[3], ids[2], ids[1]]
    assert [r.id for r in store.list_runs(limit=2)] == [ids[4], ids[3]]
    assert [r.id for r in store.list_runs(limit=2, offset=2)] == [ids[2], ids[1]]
    assert [r.id for r in store.list_runs(offset=4)] == [ids[0]]
    assert store.list_runs(statuses=[]) == []
    assert store.list_runs("carol") == []
    with pytest.raises(ValueError):
        store.list_runs(limit=-1)


def test_transition_run(store: Store) -> None:
    run = make_run(store)
    until = T0 + timedelta(minutes=5)
    moved = store.transition_run(run.id, ["queued"], "running", owner="inst-1",
                                 lease_until=until)
    assert (moved.status, moved.owner, moved.lease_until) == ("running", "inst-1", until)
    assert moved.updated_at >= run.updated_at
    assert store.get_run(run.id) == moved
    done = store.transition_run(run.id, ("running", "pausing"), "failed", error="boom")
    assert (done.status, done.error) == ("failed", "boom")


def test_transition_run_from_the_wrong_state(store: Store) -> None:
    run = make_run(store)
    store.transition_run(run.id, ["queued"], "running")
    with pytest.raises(ConflictError) as caught:
        store.transition_run(run.id, ["paused", "queued"], "running", error="x")
    assert caught.value.current == "running"
    assert store.get_run(run.id).error is None


def test_transition_run_bad_input(store: Store) -> None:
    run = make_run(store)
    with pytest.raises(NotFoundError):
        store.transition_run("missing", ["queued"], "running")
    with pytest.raises(ValueError):
        store.transition_run(run.id, ["queued"], "exploded")
    with pytest.raises(ValueError):
        store.transition_run(run.id, ["queued"], "running", no_such_field=1)
    with pytest.raises(ValueError):
        store.transition_run(run.id, ["queued"], "running", last_seq=99)
    assert store.get_run(run.id).status == "queued"


def test_concurrent_transitions_have_exactly_one_winner(store: Store) -> None:
    run = make_run(store)
    results = race(THREADS, lambda i: store.transition_run(run.id, ["queued"], "running",
                                                           owner=f"inst-{i}"))
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert len(losers) == THREADS - 1
    assert all(isinstance(e, ConflictError) and e.current == "running" for e in losers)
    assert store.get_run(run.id).owner == winners[0].owner


def test_pause_racing_finish_has_one_winner(store: Store) -> None:
    run = make_run(store, status="running")
    outcomes = race(2, lambda i: store.transition_run(
        run.id, ["running"], "pausing" if i == 0 else "completed"))
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    final = store.get_run(run.id).status
    assert final in ("pausing", "completed")
    assert [o.status for o in outcomes if not isinstance(o, Exception)] == [final]


def test_update_run(store: Store) -> None:
    run = make_run(store)
    updated = store.update_run(run.id, percent=40, options={"status": "publish"}, error="slow")
    assert (updated.percent, updated.options, updated.error) == (40, {"status": "publish"},
                                                                 "slow")
    assert updated.status == "queued"
    assert store.get_run(run.id) == updated
    with pytest.raises(NotFoundError):
        store.update_run("missing", percent=1)
    with pytest.raises(ValueError):
        store.update_run(run.id, status="completed")
    with pytest.raises(ValueError):
        store.update_run(run.id, nonsense=True)
    assert store.get_run(run.id).status == "queued"


# items ---------------------------------------------------------------------------------------

def test_transition_item_keeps_counts_in_step(store: Store) -> None:
    run = make_run(store)
    store.transition_item(run.id, 0, ["pending"], "processing", attempts=1)
    store.transition_item(run.id, 1, ["pending"], "processing", attempts=1)
    store.transition_item(run.id, 0, ["processing"], "publishing")
    item = store.transition_item(run.id, 0, ["publishing"], "published", post_id="42",
                                 post_url="https://blog.example/aapl")
    store.transition_item(run.id, 1, ["processing"], "failed", error="no data")
    assert (item.status, item.post_id, item.attempts) == ("published", "42", 1)
    counts = store.get_run(run.id).counts
    assert counts == {**{s: 0 for s in ITEM_STATES},
                      "pending": 1, "published": 1, "failed": 1}
    assert sum(counts.values()) == run.total
    assert store.get_item(run.id, 1).error == "no data"
    # retry: failed -> pending puts it back among the pending
    store.transition_item(run.id, 1, ["failed"], "pending", error=None)
    assert store.get_run(run.id).counts["pending"] == 2
    assert store.get_item(run.id, 1).error is None


def test_transition_item_to_the_same_state_leaves_counts(store: Store) -> None:
    run = make_run(store)
    store.transition_item(run.id, 0, ["pending"], "processing")
    store.transition_item(run.id, 0, ["processing"], "processing", attempts=2)
    assert store.get_run(run.id).counts["processing"] == 1
    assert store.get_item(run.id, 0).attempts == 2


def test_transition_item_bad_cases(store: Store) -> None:
    run = make_run(store)
    store.transition_item(run.id, 0, ["pending"], "processing")
    with pytest.raises(ConflictError) as caught:
        store.transition_item(run.id, 0, ["pending"], "processing")
    assert caught.value.current == "processing"
    with pytest.raises(NotFoundError):
        store.transition_item(run.id, 7, ["pending"], "processing")
    with pytest.raises(NotFoundError):
        store.transition_item("missing", 0, ["pending"], "processing")
    with pytest.raises(ValueError):
        store.transition_item(run.id, 1, ["pending"], "vanished")
    with pytest.raises(ValueError):
        store.transition_item(run.id, 1, ["pending"], "processing", key="other")
    assert store.get_run(run.id).counts["processing"] == 1
    assert store.get_item(run.id, 1).status == "pending"


def test_concurrent_item_transitions_have_one_winner(store: Store) -> None:
    run = make_run(store)
    results = race(THREADS, lambda i: store.transition_item(run.id, 0, ["pending"],
                                                            "processing", attempts=i + 1))
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, ConflictError) for r in results if isinstance(r, Exception))
    counts = store.get_run(run.id).counts
    assert (counts["pending"], counts["processing"]) == (2, 1)


def test_concurrent_transitions_of_different_items_keep_counts(store: Store) -> None:
    run = make_run(store, keys=tuple(f"k{i}" for i in range(THREADS)))
    race(THREADS, lambda i: store.transition_item(run.id, i, ["pending"], "processing"))
    counts = store.get_run(run.id).counts
    assert (counts["pending"], counts["processing"]) == (0, THREADS)


def test_update_item(store: Store) -> None:
    run = make_run(store)
    item = store.update_item(run.id, 2, result={"title": "AAPL", "files": ["a.png"]},
                             post_id="7", post_url="https://x/7")
    assert item.status == "pending"
    assert item.result == {"title": "AAPL", "files": ["a.png"]}
    assert store.get_item(run.id, 2) == item
    with pytest.raises(NotFoundError):
        store.update_item(run.id, 3, error="x")
    with pytest.raises(ValueError):
        store.update_item(run.id, 2, status="published")
    assert store.get_item(run.id, 2).status == "pending"


# events --------------------------------------------------------------------------------------

def test_events_get_gap_free_seqs_in_order(store: Store) -> None:
    run = make_run(store)
    event = {"run_id": run.id, "stage": "processing", "message": "AAPL",
             "data": {"ticker": "AAPL", "index": 1, "total": 3}}
    seqs = [store.append_event(run.id, {**event, "percent": p}) for p in (10, 20, 30, 40)]
    assert seqs == [1, 2, 3, 4]
    assert "seq" not in event
    assert store.get_run(run.id).last_seq == 4
    stored = store.list_events(run.id)
    assert [e["seq"] for e in stored] == [1, 2, 3, 4]
    assert [e["percent"] for e in stored] == [10, 20, 30, 40]
    assert stored[0] == {**event, "percent": 10, "seq": 1}


def test_list_events_after_seq_and_limit(store: Store) -> None:
    run = make_run(store)
    for i in range(12):
        store.append_event(run.id, {"stage": "processing", "i": i})
    assert [e["seq"] for e in store.list_events(run.id, after_seq=9)] == [10, 11, 12]
    assert [e["seq"] for e in store.list_events(run.id, after_seq=2, limit=3)] == [3, 4, 5]
    assert store.list_events(run.id, after_seq=12) == []
    assert store.list_events(run.id, limit=0) == []
    assert store.list_events("missing") == []


def test_events_are_per_run(store: Store) -> None:
    a, b = make_run(store), make_run(store)
    assert store.append_event(a.id, {"stage": "processing"}) == 1
    assert store.append_event(b.id, {"stage": "processing"}) == 1
    assert store.append_event(a.id, {"stage": "complete"}) == 2
    assert [e["stage"] for e in store.list_events(b.id)] == ["processing"]


def test_append_event_to_missing_run(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.append_event("missing", {"stage": "processing"})


def test_concurrent_appends_get_every_seq_once(store: Store) -> None:
    run = make_run(store)
    per_thread = 3
    results = race(THREADS, lambda i: [store.append_event(run.id, {"thread": i, "n": n})
                                       for n in range(per_thread)])
    seqs = sorted(s for r in results for s in r)
    total = THREADS * per_thread
    assert seqs == list(range(1, total + 1))
    events = store.list_events(run.id)
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    assert Counter(e["thread"] for e in events) == {i: per_thread for i in range(THREADS)}
    assert store.get_run(run.id).last_seq == total


# publish ledger ------------------------------------------------------------------------------

@pytest.fixture
def site(store: Store) -> Site:
    return make_site(store, make_user(store))


def test_reserve_and_complete_a_post(store: Store, site: Site) -> None:
    uid = site.user_id
    stored, new = store.reserve_post(entry(uid, site.id, "aapl-2026-11-25", title="AAPL"))
    assert new and stored.status == "reserved" and stored.day == "2026-11-25"
    assert store.get_post(uid, site.id, "aapl-2026-11-25") == stored
    done = store.complete_post(uid, site.id, "aapl-2026-11-25", post_id="101",
                               post_url="https://blog.example/aapl", title="AAPL up")
    assert (done.status, done.post_id, done.post_url, done.title) == (
        "published", "101", "https://blog.example/aapl", "AAPL up")
    assert_aware_utc(done.published_at)
    assert store.get_post(uid, site.id, "aapl-2026-11-25") == done


def test_reserve_returns_the_existing_entry_for_a_known_slug(store: Store, site: Site) -> None:
    uid = site.user_id
    first, _ = store.reserve_post(entry(uid, site.id, "aapl", run_id="r1"))
    again, new = store.reserve_post(entry(uid, site.id, "aapl", run_id="r2"))
    assert not new and again == first
    store.complete_post(uid, site.id, "aapl", post_id="5", post_url="u")
    again, new = store.reserve_post(entry(uid, site.id, "aapl", run_id="r3"), daily_limit=1)
    assert not new and (again.status, again.post_id, again.run_id) == ("published", "5", "r1")


def test_reserve_defaults_the_day_from_created_at(store: Store, site: Site) -> None:
    late = datetime(2026, 11, 25, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    stored, _ = store.reserve_post(entry(site.user_id, site.id, "x", day="", created_at=late))
    assert stored.day == "2026-11-26"            # 04:30 UTC the next day
    assert store.get_post(site.user_id, site.id, "x").created_at == late


def test_daily_limit_and_release(store: Store, site: Site) -> None:
    uid = site.user_id
    for slug in ("a", "b"):
        assert store.reserve_post(entry(uid, site.id, slug), daily_limit=2)[1]
    with pytest.raises(DailyLimitReached):
        store.reserve_post(entry(uid, site.id, "c"), daily_limit=2)
    assert store.get_post(uid, site.id, "c") is None
    # another day has its own slots; no limit means no limit
    assert store.reserve_post(entry(uid, site.id, "d", day="2026-11-26"), daily_limit=2)[1]
    assert store.reserve_post(entry(uid, site.id, "e"))[1]
    # a published entry keeps its slot; releasing a reserved one frees a slot
    store.complete_post(uid, site.id, "a", post_id="1", post_url="u")
    store.release_post(uid, site.id, "a")
    assert store.get_post(uid, site.id, "a").status == "published"
    store.release_post(uid, site.id, "b")
    store.release_post(uid, site.id, "e")
    assert store.get_post(uid, site.id, "b") is None
    assert store.reserve_post(entry(uid, site.id, "c"), daily_limit=2)[1]
    with pytest.raises(DailyLimitReached):
        store.reserve_post(entry(uid, site.id, "f"), daily_limit=2)
    store.release_post(uid, site.id, "never-reserved")      # a no-op, not an error


def test_ledger_bad_cases(store: Store, site: Site) -> None:
    uid = site.user_id
    assert store.get_post(uid, site.id, "missing") is None
    with pytest.raises(NotFoundError):
        store.complete_post(uid, site.id, "missing", post_id="1", post_url="u")
    with pytest.raises(NotFoundError):
        store.reserve_post(entry(uid, "no-such-site", "a"))
    other = make_user(store, "bob@example.com")
    with pytest.raises(NotFoundError):
        store.reserve_post(entry(other, site.id, "a"))       # someone else's site
    assert store.list_posts(uid) == [] and store.list_posts(other) == []


def test_list_posts_newest_first_per_site_and_paged(store: Store, site: Site) -> None:
    uid = site.user_id
    second = make_site(store, uid, "Second")
    for i in range(4):
        target = site if i % 2 == 0 else second
        store.reserve_post(entry(uid, target.id, f"p{i}", created_at=T0 + timedelta(hours=i)))
    assert [p.slug for p in store.list_posts(uid)] == ["p3", "p2", "p1", "p0"]
    assert [p.slug for p in store.list_posts(uid, site.id)] == ["p2", "p0"]
    assert [p.slug for p in store.list_posts(uid, second.id)] == ["p3", "p1"]
    assert [p.slug for p in store.list_posts(uid, limit=2, offset=1)] == ["p2", "p1"]
    assert store.list_posts(make_user(store, "bob@example.com")) == []


def test_concurrent_reservations_respect_the_daily_limit(store: Store, site: Site) -> None:
    limit = 3
    results = race(THREADS, lambda i: store.reserve_post(entry(site.user_id, site.id, f"s{i}"),
                                                         daily_limit=limit))
    reserved = [r for r in results if not isinstance(r, Exception)]
    assert len(reserved) == limit and all(new for _, new in reserved)
    assert all(isinstance(r, DailyLimitReached) for r in results if isinstance(r, Exception))
    assert len(store.list_posts(site.user_id, site.id)) == limit


def test_concurrent_reservations_of_one_slug_have_one_winner(store: Store, site: Site) -> None:
    results = race(THREADS, lambda i: store.reserve_post(
        entry(site.user_id, site.id, "same", run_id=f"r{i}")))
    assert not any(isinstance(r, Exception) for r in results)
    assert sum(new for _, new in results) == 1
    assert len({stored.run_id for stored, _ in results}) == 1


def test_claim_post_is_a_compare_and_set_on_the_holder(store: Store, site: Site) -> None:
    uid = site.user_id
    stored, _ = store.reserve_post(entry(uid, site.id, "x", attempt="a1", reserved_at=T0))
    assert (stored.attempt, stored.reserved_at) == ("a1", T0)
    assert store.get_post(uid, site.id, "x") == stored
    later = T0 + timedelta(minutes=5)
    renewed = store.claim_post(uid, site.id, "x", expected_attempt="a1", attempt="a1",
                               now=later)                      # the holder renews its claim
    assert (renewed.attempt, renewed.reserved_at) == ("a1", later)
    taken = store.claim_post(uid, site.id, "x", expected_attempt="a1", attempt="b2", now=later)
    assert taken.attempt == "b2" and store.get_post(uid, site.id, "x") == taken
    assert taken.created_at == stored.created_at and taken.day == stored.day
    with pytest.raises(ConflictError):                           # a1 lost it
        store.claim_post(uid, site.id, "x", expected_attempt="a1", attempt="a1", now=later)
    store.release_post(uid, site.id, "x", attempt="a1")          # not a1's any more: kept
    assert store.get_post(uid, site.id, "x").attempt == "b2"
    store.complete_post(uid, site.id, "x", post_id="7", post_url="u")
    with pytest.raises(ConflictError):                           # published: nothing to claim
        store.claim_post(uid, site.id, "x", expected_attempt="b2", attempt="c3", now=later)
    with pytest.raises(NotFoundError):
        store.claim_post(uid, site.id, "missing", expected_attempt="", attempt="c", now=later)
    store.reserve_post(entry(uid, site.id, "y", attempt="y1"))
    store.release_post(uid, site.id, "y", attempt="y1")          # the holder's own release
    assert store.get_post(uid, site.id, "y") is None


def test_concurrent_takeovers_of_one_reservation_have_one_winner(store: Store, site: Site
                                                                 ) -> None:
    store.reserve_post(entry(site.user_id, site.id, "same", attempt="dead"))
    results = race(THREADS, lambda i: store.claim_post(
        site.user_id, site.id, "same", expected_attempt="dead", attempt=f"t{i}", now=T0))
    won = [r for r in results if not isinstance(r, Exception)]
    assert len(won) == 1 and all(isinstance(r, ConflictError) for r in results if r not in won)
    assert store.get_post(site.user_id, site.id, "same").attempt == won[0].attempt


# leases --------------------------------------------------------------------------------------

def test_leases(store: Store) -> None:
    run = make_run(store)
    now = T0
    assert store.acquire_lease(run.id, "a", now + timedelta(seconds=30), now)           # free
    assert store.get_run(run.id).lease_until == now + timedelta(seconds=30)
    assert not store.acquire_lease(run.id, "b", now + timedelta(seconds=60),
                                   now + timedelta(seconds=10))                          # held
    assert store.acquire_lease(run.id, "a", now + timedelta(seconds=90),
                               now + timedelta(seconds=20))                              # renew
    assert not store.acquire_lease(run.id, "b", now + timedelta(seconds=120),
                                   now + timedelta(seconds=60))
    assert store.acquire_lease(run.id, "b", now + timedelta(seconds=200),
                               now + timedelta(seconds=91))                              # expired
    held = store.get_run(run.id)
    assert (held.owner, held.lease_until) == ("b", now + timedelta(seconds=200))
    store.release_lease(run.id, "a")                 # not a's any more: nothing changes
    assert store.get_run(run.id).owner == "b"
    store.release_lease(run.id, "b")
    released = store.get_run(run.id)
    assert (released.owner, released.lease_until) == (None, None)
    assert store.acquire_lease(run.id, "c", now + timedelta(seconds=30), now)


def test_lease_bad_cases(store: Store) -> None:
    run = make_run(store)
    with pytest.raises(NotFoundError):
        store.acquire_lease("missing", "a", T0 + timedelta(seconds=30), T0)
    with pytest.raises(ValueError):
        store.acquire_lease(run.id, "a", datetime(2026, 1, 1), T0)         # naive
    store.release_lease("missing", "a")                                     # a no-op
    assert store.get_run(run.id).owner is None


def test_concurrent_lease_takers_have_one_winner(store: Store) -> None:
    run = make_run(store)
    results = race(THREADS, lambda i: store.acquire_lease(
        run.id, f"inst-{i}", T0 + timedelta(seconds=30), T0))
    assert results.count(True) == 1
    assert store.get_run(run.id).owner == f"inst-{results.index(True)}"


# datetimes -----------------------------------------------------------------------------------

def test_datetimes_round_trip_as_aware_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=1))
    created = datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=paris)
    run = make_run(store, created_at=created, lease_until=T0)
    got = store.get_run(run.id)
    assert got.created_at == created
    assert_aware_utc(got.created_at)
    assert got.created_at.hour == 11 and got.created_at.microsecond == 654321
    assert got.lease_until == T0
    assert_aware_utc(got.updated_at)
    assert_aware_utc(store.list_items(run.id)[0].updated_at)


def test_unstorable_values_are_refused_and_store_nothing(store: Store) -> None:
    run = make_run(store)
    with pytest.raises(ValueError):
        store.append_event(run.id, {"stage": "processing", "data": object()})
    with pytest.raises(ValueError):
        store.update_run(run.id, lease_until=datetime(2026, 1, 1))          # naive
    with pytest.raises(ValueError):
        store.update_item(run.id, 0, result={"bad": float("nan")})
    assert store.get_run(run.id) == run
    assert store.list_events(run.id) == []
    assert store.get_item(run.id, 0).result == {}
