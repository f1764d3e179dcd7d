"""The day totals behind ``insights`` on both backends: after every kind of write (publish,
re-publish, fail, retry, cancel, a campaign's run, a site's or an account's deletion) and after
the backfill of a database written without them, the figures equal the raw computation from
the records themselves (``raw_figures``: the Store's listings, counted here), for windows that
start and end anywhere in a day.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage._common import day_of
from storage.base import NewItem, Run, Store
from storage.clock import utcnow
from storage.insight_records import DayCount
from tests.storage.test_contract import make_site, make_user
from tests.storage.test_contract_campaigns import make_campaign, start
from tests.storage.test_contract_insights import (
    AUTH,
    NO_DATA,
    SINCE,
    UNTIL,
    at,
    build_history,
    clock,  # noqa: F401 - the fixture
)
from tests.support.insight_history import PublishClock, finish, ledger_entry, publish, run_of

ONE_MIN = timedelta(minutes=1)
WINDOWS = [
    (SINCE, UNTIL),                                       # the dashboard's: midnight to now
    (at(24, 0), at(25, 0)),                               # one whole day
    (at(20, 10, 5), at(25, 8, 5)),                        # both ends inside a day
    (at(20, 10, 5) + timedelta(microseconds=1), at(24, 9, 5)),
    (at(25, 8), at(25, 9)),                               # an hour of one day
    (at(1, 0, month=10), at(1, 0, month=12)),             # everything
]


def raw_figures(store: Store, user_id: str, since: datetime, until: datetime
                ) -> tuple[list[DayCount], tuple[int, int, int]]:
    """What the window holds, counted from the runs and ledger entries themselves."""
    runs = store.list_runs(user_id, created_from=since, created_to=until, limit=10_000)
    figures = (len(runs), sum(r.counts.get("published", 0) for r in runs),
               sum(r.counts.get("failed", 0) for r in runs))
    posts: Counter[tuple[str, str, str]] = Counter()
    for post in store.list_posts(user_id, limit=10_000):
        if post.status == "published" and post.published_at is not None \
                and since <= post.published_at < until:
            posts[(day_of(post.published_at), post.site_id, post.kind)] += 1
    return [DayCount(*key, n) for key, n in sorted(posts.items())], figures


def assert_agrees(store: Any, user_id: str,
                  windows: list[tuple[datetime, datetime]] = WINDOWS) -> None:
    for since, until in windows:
        got = store.insights(user_id, since, until)
        assert (got.posts, (got.runs, got.published, got.failed)) == \
            raw_figures(store, user_id, since, until), (since, until)


def is_sqlite(store: Any) -> bool:
    return hasattr(store, "path")


@pytest.fixture
def history(store: Store, clock: PublishClock) -> dict[str, Any]:  # noqa: F811
    return build_history(store, clock)


def test_a_known_history_agrees_in_every_window(store: Any, history: dict[str, Any]) -> None:
    assert_agrees(store, history["ann"])
    assert store.insights(history["ann"], SINCE, UNTIL).runs == 5


def test_publish_and_republish(store: Any, history: dict[str, Any],
                               clock: PublishClock) -> None:  # noqa: F811
    ann, blog = history["ann"], history["blog"]
    clock.now = at(25, 14, 30)
    store.complete_post(ann, blog, "under-way", post_id="9", post_url="/p/9")
    assert_agrees(store, ann)
    # Completed again (a resumed publish) on another day: it moves, it is not counted twice.
    clock.now = at(24, 11)
    store.complete_post(ann, blog, "aapl-1120", post_id="1", post_url="/p/1")
    assert_agrees(store, ann)
    day = store.insights(ann, at(20, 0), at(21, 0))
    assert day.posts == [DayCount("2026-11-20", blog, "stock", 1)]
    # An update in place, a renewed claim and a released reservation change nothing.
    store.record_update(ann, blog, "msft-1120", run_id="r2", post_id="2", post_url="/p/2")
    store.reserve_post(ledger_entry(ann, blog, "given-up", "stock", at(25, 14)))
    store.release_post(ann, blog, "given-up")
    assert_agrees(store, ann)


def test_fail_retry_recount_and_cancel(store: Any, history: dict[str, Any]) -> None:
    ann, news = history["ann"], history["news"]
    run = run_of(store, ann, news, "stock", at(24, 18),
                 {"KO": None, "PEP": NO_DATA, "JPM": "pending", "V": "pending"})
    assert_agrees(store, ann)
    # Retry of the failed item: back to pending, then published.
    store.transition_item(run.id, 1, ["failed"], "pending", error=None)
    assert_agrees(store, ann)
    for old, new in (("pending", "processing"), ("processing", "publishing"),
                     ("publishing", "published")):
        store.transition_item(run.id, 1, [old], new)
    assert_agrees(store, ann)
    # A transition to the state it is in already, and a published item failing after all.
    store.transition_item(run.id, 1, ["published"], "published")
    store.transition_item(run.id, 0, ["published"], "failed", error=AUTH)
    assert_agrees(store, ann)
    # Cancelled: what was left is skipped, one item failed on the way.
    store.transition_item(run.id, 2, ["pending"], "failed", error=AUTH)
    store.transition_item(run.id, 3, ["pending"], "skipped")
    store.transition_run(run.id, ["running"], "cancelled")
    assert_agrees(store, ann)
    day = store.insights(ann, at(24, 18), at(24, 19))
    assert (day.runs, day.published, day.failed) == (1, 1, 2)


def test_a_campaigns_runs(store: Any) -> None:
    ann = make_user(store)
    campaign = make_campaign(store, ann)
    fired, run = start(store, campaign, datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert run is not None
    finish(store, run, [None, AUTH])
    _, second = start(store, fired, datetime(2026, 11, 26, 12, tzinfo=UTC))
    assert second is not None
    finish(store, second, ["skip", None])
    now = utcnow()
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    windows = [(midnight, now + timedelta(seconds=1)), (now - timedelta(days=2), now + ONE_MIN),
               (run.created_at, second.created_at)]
    assert_agrees(store, ann, windows)
    got = store.insights(ann, midnight, now + ONE_MIN)
    assert (got.runs, got.published, got.failed) == (2, 2, 1)


def test_a_deleted_site_takes_its_posts_out(store: Any, history: dict[str, Any]) -> None:
    store.delete_site(history["ann"], history["news"])
    assert_agrees(store, history["ann"])
    assert {d.site_id for d in store.insights(history["ann"], SINCE, UNTIL).posts} == {
        history["blog"]}


def test_account_deletion_removes_the_totals(store: Any, history: dict[str, Any]) -> None:
    ann = history["ann"]
    bob = store.get_user_by_email("bob@example.com").id
    store.delete_user(ann)
    assert totals_left(store, ann) == 0
    assert totals_left(store, bob) > 0
    assert_agrees(store, bob)
    again = store.create_user("ann@example.com", "hash").id
    got = store.insights(again, SINCE, UNTIL)
    assert (got.posts, got.runs, got.published, got.failed) == ([], 0, 0, 0)


# the backfill of a database written without the totals -------------------------------------

def test_backfill_of_records_written_without_the_totals(store: Any, history: dict[str, Any],
                                                        clock: PublishClock  # noqa: F811
                                                        ) -> None:
    ann, blog, news = history["ann"], history["blog"], history["news"]
    expected = [store.insights(ann, since, until) for since, until in WINDOWS]
    strip_totals(store)
    # What an older version writes meanwhile: a publish of an entry reserved before, a retry
    # of an old run's failed item, a new run.
    clock.now = at(25, 14, 30)
    store.complete_post(ann, blog, "under-way", post_id="9", post_url="/p/9")
    old = store.list_runs(ann, created_from=at(24, 9), created_to=at(24, 10))[0]
    store.transition_item(old.id, 1, ["failed"], "pending")
    run_of(store, ann, news, "stock", at(25, 10), {"KO": None, "PEP": AUTH})
    with reopened(store) as again:
        assert_agrees(again, ann)
        first = [again.insights(ann, since, until) for since, until in WINDOWS]
        assert first[0].runs == expected[0].runs + 1
        # Once only: another read, or another instance opening it, counts nothing again.
        with reopened(again) as third:
            assert [third.insights(ann, s, u) for s, u in WINDOWS] == first
        if not is_sqlite(again):
            again._build_day_totals(ann, [blog, news, history["empty"]])
            assert [again.insights(ann, s, u) for s, u in WINDOWS] == first


def test_two_instances_backfilling_at_once_count_once(store: Any,
                                                      history: dict[str, Any]) -> None:
    ann = history["ann"]
    strip_totals(store)
    results: list[Any] = []

    def instance() -> None:
        with reopened(store) as other:
            results.append(other.insights(ann, SINCE, UNTIL))

    threads = [threading.Thread(target=instance) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and results[0] == results[1] == results[2]
    with reopened(store) as again:
        assert_agrees(again, ann)


def test_backfill_of_a_user_with_many_pages(store: Any, clock: PublishClock  # noqa: F811
                                            ) -> None:
    """More runs and entries than one backfill page (200), some already in the totals."""
    ann = make_user(store)
    site = make_site(store, ann).id
    for n in range(230):
        created = at(1 + n % 28, n % 24, n % 60)
        run = store.create_run(Run(id="", user_id=ann, kind="stock", site_id=site,
                                   created_at=created), [NewItem(key=f"k{n}", input="X")])
        finish(store, run, [None if n % 3 else AUTH])
        if n % 3:
            publish(store, clock, ann, site, f"p{n}", created + ONE_MIN)
    strip_totals(store)
    for n in range(5):
        publish(store, clock, ann, site, f"new-{n}", at(27, 8, n))
    with reopened(store) as again:
        assert_agrees(again, ann)


# backend helpers -----------------------------------------------------------------------------

_SQLITE_TOTALS = ("post_day_totals", "run_day_totals")


def totals_left(store: Any, user_id: str) -> int:
    """How many day-total records of the user are stored."""
    if is_sqlite(store):
        return sum(store._one(f"SELECT COUNT(*) FROM {table} WHERE user_id = ?",
                              (user_id,))[0] for table in _SQLITE_TOTALS)
    user = store._user(user_id)
    found = len(list(user.collection("run_days").stream()))
    for site in user.collection("sites").stream():
        found += len(list(site.reference.collection("published_days").stream()))
    return found + len(list(user.collection("day_totals").stream()))


def strip_totals(store: Any) -> None:
    """Make the database what a version without the totals left: no totals, no triggers
    (SQLite; its writes until reopened are an old version's), no marks (Firestore)."""
    if is_sqlite(store):
        triggers = [r[0] for r in store._all(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%day_totals%'")]
        assert len(triggers) == 7
        with store._tx() as db:
            for name in triggers:
                db.execute(f"DROP TRIGGER {name}")
            for table in (*_SQLITE_TOTALS, "day_totals_built"):
                db.execute(f"DROP TABLE {table}")
        return
    from google.cloud import firestore

    from storage.firestore.day_totals import IN_TOTALS

    client = store._client
    for group in ("run_days", "published_days", "day_totals"):
        for snap in client.collection_group(group).stream():
            snap.reference.delete()
    for snaps in (client.collection("runs").stream(),
                  client.collection_group("posts").stream()):
        for snap in snaps:
            snap.reference.update({IN_TOTALS: firestore.DELETE_FIELD})


@contextmanager
def reopened(store: Any) -> Iterator[Any]:
    """Another instance on the same database (SQLite: a new connection, which backfills a
    file without the totals when it opens it; Firestore: a new client)."""
    if is_sqlite(store):
        from storage.sqlite import SQLiteStore

        other: Any = SQLiteStore(store.path)
    else:
        from storage.firestore import FirestoreStore

        other = FirestoreStore(project=store.project)
    try:
        yield other
    finally:
        other.close()
