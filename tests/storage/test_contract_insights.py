"""``InsightsStore.insights`` on both backends against one known history, built through the
Store's own writes (runs and their item transitions, ledger reservations and completions, see
tests/support/insight_history.py): the exact figures, the window's edges, another user's data
left out, the detail limit, and Firestore's indexes for the queries it issues.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.base import Store
from storage.insight_records import DayCount, Insights, InsightsStore, Tally
from tests.storage.test_contract import make_site, make_user
from tests.support.insight_history import PublishClock, ledger_entry, publish, run_of

UNTIL = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
SINCE = datetime(2026, 10, 27, tzinfo=UTC)            # 30 UTC days, 26 Oct excluded
AUTH = "WordPress rejected the username or application password (401 incorrect_password)"
NO_DATA = "Yahoo Finance has no price data for 'TSLA' (delisted?)"
LIMIT = "the daily limit of 5 posts for site 'Blog' is used up (5 of 5 on 2026-11-25)"
FEED = "the feed did not answer in time"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> PublishClock:
    return PublishClock(UNTIL).install(monkeypatch)


@pytest.fixture
def history(store: Store, clock: PublishClock) -> dict[str, Any]:
    return build_history(store, clock)


def build_history(store: Store, clock: PublishClock) -> dict[str, Any]:
    """Three sites of ann's (Blog with a daily limit of 5), runs in and around the window,
    posts on chosen days, and bob's run and post in the window."""
    ann = make_user(store)
    bob = make_user(store, "bob@example.com")
    blog = make_site(store, ann, "Blog", daily_limit=5).id
    news = make_site(store, ann, "News").id
    empty = make_site(store, ann, "Empty").id
    bobs = make_site(store, bob, "Bob's").id
    run_of(store, ann, blog, "stock", at(20, 10), {"AAPL": None, "MSFT": None, "NVDA": AUTH})
    run_of(store, ann, news, "stock", at(24, 9), {"AAPL": None, "TSLA": NO_DATA})
    run_of(store, ann, blog, "earnings", at(25, 8), {"MSFT": None, "AMZN": LIMIT})
    run_of(store, ann, news, "sports", at(22, 12), {"Big match": None, "Cup final": FEED})
    run_of(store, ann, blog, "stock", at(23, 7), {"GOOG": "pending", "META": "skip",
                                                  "ORCL": AUTH})
    run_of(store, ann, blog, "stock", at(26, 23, 59, month=10), {"AAPL": None, "IBM": AUTH})
    run_of(store, ann, blog, "stock", UNTIL, {"AAPL": None, "IBM": AUTH})
    run_of(store, bob, bobs, "stock", at(21, 9), {"AAPL": None, "BOB": AUTH})

    publish(store, clock, ann, blog, "aapl-1120", at(20, 10, 5))
    publish(store, clock, ann, blog, "msft-1120", at(20, 10, 6))
    publish(store, clock, ann, blog, "msft-earnings", at(25, 8, 5), "earnings")
    publish(store, clock, ann, blog, "old-post", at(20, 9, month=10))
    store.reserve_post(ledger_entry(ann, blog, "under-way", "stock", at(25, 14)))
    publish(store, clock, ann, news, "aapl-1124", at(24, 9, 5))
    publish(store, clock, ann, news, "big-match", at(22, 12, 5), "sports")
    publish(store, clock, ann, news, "too-late", UNTIL)
    publish(store, clock, ann, news, "too-early", SINCE - timedelta(microseconds=1))
    publish(store, clock, bob, bobs, "bob-1", at(21, 9, 5))
    return {"ann": ann, "blog": blog, "news": news, "empty": empty}


def test_backend_satisfies_the_insights_protocol(store: Store) -> None:
    assert isinstance(store, InsightsStore)


def test_the_figures_of_a_known_history(store: Any, history: dict[str, Any]) -> None:
    got: Insights = store.insights(history["ann"], SINCE, UNTIL)
    blog, news = history["blog"], history["news"]
    assert (got.since, got.until) == (SINCE, UNTIL)
    assert got.posts == sorted([
        DayCount("2026-11-20", blog, "stock", 2), DayCount("2026-11-22", news, "sports", 1),
        DayCount("2026-11-24", news, "stock", 1), DayCount("2026-11-25", blog, "earnings", 1),
    ], key=lambda d: (d.day, d.site_id, d.kind))
    assert (got.runs, got.published, got.failed) == (5, 5, 5)
    assert got.errors == [Tally(AUTH, 2), Tally(NO_DATA, 1), Tally(LIMIT, 1), Tally(FEED, 1)]
    assert got.tickers == [Tally("AAPL", 2), Tally("MSFT", 2)]
    assert got.detail_runs == 5 and not got.detail_truncated
    assert [(s.name, s.daily_limit, s.today) for s in got.sites] == [
        ("Blog", 5, 2), ("News", None, 1), ("Empty", None, 0)]      # News: "too-late"
    last = {s.name: s.last_post for s in got.sites}
    assert last["Blog"].slug == "msft-earnings" and last["Blog"].published_at == at(25, 8, 5)
    assert last["Blog"].title == "MSFT-EARNINGS" and last["Blog"].status == "published"
    assert last["News"].slug == "aapl-1124" and last["Empty"] is None


def test_top_and_the_detail_limit(store: Any, history: dict[str, Any]) -> None:
    assert store.insights(history["ann"], SINCE, UNTIL, top=1).tickers == [Tally("AAPL", 2)]
    newest = store.insights(history["ann"], SINCE, UNTIL, detail_limit=2)
    # The two newest runs of the window: the earnings run (25 Nov) and the News run (24 Nov).
    assert newest.detail_runs == 2 and newest.detail_truncated
    assert newest.errors == [Tally(NO_DATA, 1), Tally(LIMIT, 1)]
    assert newest.tickers == [Tally("AAPL", 1), Tally("MSFT", 1)]
    assert (newest.runs, newest.published, newest.failed) == (5, 5, 5)
    none = store.insights(history["ann"], SINCE, UNTIL, detail_limit=0, top=0,
                          ticker_kinds=())
    assert none.detail_runs == 0 and none.errors == [] and none.tickers == []
    sports = store.insights(history["ann"], SINCE, UNTIL, ticker_kinds=("sports",))
    assert sports.tickers == [Tally("Big match", 1)]


def test_a_narrow_window_and_its_day(store: Any, history: dict[str, Any]) -> None:
    day = store.insights(history["ann"], at(24, 0), at(25, 0))
    assert day.posts == [DayCount("2026-11-24", history["news"], "stock", 1)]
    assert (day.runs, day.published, day.failed) == (1, 1, 1)
    assert day.tickers == [Tally("AAPL", 1)] and day.errors == [Tally(NO_DATA, 1)]
    # "today" is the UTC day of the window's end (25 Nov here), as for the whole month.
    assert [s.today for s in day.sites] == [2, 1, 0]
    assert {s.name: s.last_post.slug if s.last_post else None for s in day.sites} == {
        "Blog": "msft-1120", "News": "aapl-1124", "Empty": None}


def test_a_user_with_nothing(store: Any) -> None:
    user = make_user(store, "new@example.com")
    got = store.insights(user, SINCE, UNTIL)
    assert got.posts == [] and got.sites == [] and got.errors == [] and got.tickers == []
    assert (got.runs, got.published, got.failed, got.detail_runs) == (0, 0, 0, 0)


@pytest.mark.parametrize(("since", "until"), [
    (UNTIL, UNTIL), (UNTIL, SINCE), (SINCE.replace(tzinfo=None), UNTIL)])
def test_a_bad_window_is_refused(store: Any, since: datetime, until: datetime) -> None:
    with pytest.raises(ValueError):
        store.insights("u1", since, until)


def test_every_firestore_insights_query_has_its_index(firestore_store: Any, clock: PublishClock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator answers without indexes: check each query the insights issue against
    storage/firestore.indexes.json the way Firestore decides (tests/history's checker), and
    the aggregation's index (its filters, then the summed fields)."""
    from google.cloud.firestore_v1.aggregation import AggregationQuery
    from google.cloud.firestore_v1.query import Query

    from tests.history.test_firestore_indexes import listed, missing_index, shape

    store = firestore_store
    known = build_history(store, clock)
    shapes: list[Any] = []
    aggregations: list[Any] = []
    real_stream, real_get = Query.stream, AggregationQuery.get

    def stream(self: Query, *args: Any, **kwargs: Any) -> Any:
        shapes.append(shape(self))
        return real_stream(self, *args, **kwargs)

    def get(self: AggregationQuery, *args: Any, **kwargs: Any) -> Any:
        aggregations.append((shape(self._nested_query),
                             sorted(a.field_ref for a in self._aggregations
                                    if getattr(a, "field_ref", None))))
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(Query, "stream", stream)
    monkeypatch.setattr(AggregationQuery, "get", get)
    store.insights(known["ann"], SINCE, UNTIL)
    indexes = listed()
    missing = {m for s in shapes if (m := missing_index(*s, indexes))}
    assert {s[0] for s in shapes} == {"runs", "items", "posts", "sites"}
    assert not missing, "\n".join(sorted(missing))
    [((collection, equal, _), summed)] = aggregations
    wanted = (*((f, "ASCENDING") for f in sorted(equal)), ("created_at", "ASCENDING"),
              *((f, "ASCENDING") for f in summed))
    assert collection == "runs" and wanted in indexes["runs"]
