"""Keyset paging and filters in the Store, held against both backends.

Pages walked with ``after`` cursors cover every row exactly once, in the list's order
(``created_at`` newest first, ties broken by the id, or for ledger entries by site and slug),
whatever ties there are, with each filter, backwards (``oldest_first``) as forwards, and while
new runs arrive.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage.base import LedgerEntry, NewItem, Run, Store
from storage.paging import BadCursor, Cursor
from tests.storage.test_contract import make_site, make_user

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KINDS = ("stock", "earnings", "sports")
STATUSES = ("completed", "failed", "running", "paused")


def add_run(store: Store, user_id: str, created_at: datetime, **fields: Any) -> Run:
    fields.setdefault("kind", "stock")
    fields.setdefault("site_id", "site-a")
    return store.create_run(Run(id="", user_id=user_id, created_at=created_at,
                                updated_at=created_at, **fields), [NewItem(key="k", input="K")])


def history(store: Store, user_id: str, count: int = 30) -> list[Run]:
    """``count`` runs at 6 distinct times (so every time is shared by 5 runs), with kinds,
    sites, statuses and a campaign spread over them."""
    return [add_run(store, user_id, T0 + timedelta(minutes=i // 5), kind=KINDS[i % 3],
                    site_id=("site-a", "site-b")[i % 2], status=STATUSES[i % 4],
                    campaign_id="camp-1" if i % 5 == 0 else None)
            for i in range(count)]


def newest_first(runs: list[Run]) -> list[str]:
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]


def walk(page: Callable[..., list[Any]], size: int, cursor_of: Callable[[Any], Cursor],
         **kwargs: Any) -> list[list[Any]]:
    """Every page, following the last row's cursor until a short page."""
    pages, after = [], None
    while True:
        rows = page(limit=size, after=after, **kwargs)
        pages.append(rows)
        if len(rows) < size:
            return pages
        after = cursor_of(rows[-1])


def run_ids(pages: list[list[Run]]) -> list[str]:
    return [r.id for p in pages for r in p]


@pytest.mark.parametrize("size", [1, 4, 5, 7, 30, 31])
def test_pages_cover_every_run_once_in_order_with_ties(store: Store, size: int) -> None:
    user = make_user(store)
    runs = history(store, user)
    history(store, make_user(store, "bob@example.com"), 6)           # never in ann's pages
    pages = walk(lambda **kw: store.list_runs(user, **kw), size, Cursor.of_run)
    assert run_ids(pages) == newest_first(runs)
    assert all(len(p) == size for p in pages[:-1])


def test_oldest_first_is_the_same_order_reversed_and_pages_go_back(store: Store) -> None:
    user = make_user(store)
    expected = newest_first(history(store, user))
    backwards = walk(lambda **kw: store.list_runs(user, oldest_first=True, **kw), 4,
                     Cursor.of_run)
    assert run_ids(backwards) == expected[::-1]
    forwards = walk(lambda **kw: store.list_runs(user, **kw), 4, Cursor.of_run)
    third = forwards[2]
    # "Newer runs" from the third page: the rows just before its first, read oldest first.
    previous = store.list_runs(user, limit=4, after=Cursor.of_run(third[0]), oldest_first=True)
    assert [r.id for r in reversed(previous)] == [r.id for r in forwards[1]]
    oldest = store.list_runs(user, limit=4, oldest_first=True)
    assert [r.id for r in reversed(oldest)] == expected[-4:]


def test_runs_arriving_while_paging_neither_shift_nor_repeat_a_page(store: Store) -> None:
    user = make_user(store)
    expected = newest_first(history(store, user))
    pages = [store.list_runs(user, limit=7)]
    for i in range(5):                       # newer runs, some at the newest page's own time
        add_run(store, user, pages[0][0].created_at + timedelta(seconds=i // 2))
    while len(pages[-1]) == 7:
        pages.append(store.list_runs(user, limit=7, after=Cursor.of_run(pages[-1][-1])))
    assert run_ids(pages) == expected


FILTERS: list[tuple[dict[str, Any], Callable[[Run], bool]]] = [
    ({"kind": "earnings"}, lambda r: r.kind == "earnings"),
    ({"site_id": "site-b"}, lambda r: r.site_id == "site-b"),
    ({"statuses": ["failed"]}, lambda r: r.status == "failed"),
    ({"statuses": ["running", "paused"]}, lambda r: r.status in ("running", "paused")),
    ({"campaign_id": "camp-1"}, lambda r: r.campaign_id == "camp-1"),
    ({"created_from": T0 + timedelta(minutes=1), "created_to": T0 + timedelta(minutes=4)},
     lambda r: T0 + timedelta(minutes=1) <= r.created_at < T0 + timedelta(minutes=4)),
    ({"kind": "stock", "site_id": "site-a"}, lambda r: r.kind == "stock" and r.site_id == "site-a"),
    ({"kind": "sports", "statuses": ["completed", "running"]},
     lambda r: r.kind == "sports" and r.status in ("completed", "running")),
    ({"site_id": "site-b", "statuses": ["paused"], "created_from": T0 + timedelta(minutes=2)},
     lambda r: r.site_id == "site-b" and r.status == "paused"
     and r.created_at >= T0 + timedelta(minutes=2)),
]


@pytest.mark.parametrize("size", [2, 5])
@pytest.mark.parametrize(("filters", "keep"), FILTERS,
                         ids=[",".join(f) for f, _ in FILTERS])
def test_each_filter_is_applied_in_the_query_and_pages_cleanly(
        store: Store, filters: dict[str, Any], keep: Callable[[Run], bool], size: int) -> None:
    user = make_user(store)
    runs = history(store, user)
    history(store, make_user(store, "bob@example.com"), 10)
    expected = newest_first([r for r in runs if keep(r)])
    assert expected, "the filter should match something"
    pages = walk(lambda **kw: store.list_runs(user, **kw, **filters), size, Cursor.of_run)
    assert run_ids(pages) == expected
    backwards = walk(lambda **kw: store.list_runs(user, oldest_first=True, **kw, **filters),
                     size, Cursor.of_run)
    assert run_ids(backwards) == expected[::-1]
    assert [r.id for r in store.list_runs(user, limit=3, offset=1, **filters)] == expected[1:4]


@pytest.mark.parametrize("filters", [
    {"kind": "sports", "site_id": "nowhere"},
    {"statuses": ["interrupted"]},
    {"statuses": []},
    {"campaign_id": "camp-2"},
    {"created_from": T0 + timedelta(days=1)},
    {"created_from": T0 + timedelta(minutes=3), "created_to": T0 + timedelta(minutes=3)},
], ids=["site", "status", "no-status", "campaign", "future", "empty-range"])
def test_a_filter_that_matches_nothing_answers_nothing(store: Store,
                                                       filters: dict[str, Any]) -> None:
    user = make_user(store)
    history(store, user)
    assert store.list_runs(user, **filters) == []
    assert store.list_runs(user, oldest_first=True, **filters) == []


def test_every_users_runs_by_status_for_recovery(store: Store) -> None:
    """Without a user (recovery, the queue): every user's runs in one state, newest first."""
    ann, bob = make_user(store), make_user(store, "bob@example.com")
    runs = history(store, ann, 12) + history(store, bob, 12)
    expected = newest_first([r for r in runs if r.status in ("running", "paused")])
    assert [r.id for r in store.list_runs(statuses=["running", "paused"], limit=100)] == expected


def test_cursor_text_round_trips_and_refuses_anything_else() -> None:
    cursor = Cursor(T0 + timedelta(microseconds=17), ("run-1",))
    assert Cursor.decode(cursor.encode()) == cursor
    post = Cursor(T0, ("site-a", "a slug/with odd chars é"))
    assert Cursor.decode(post.encode(), key_length=2) == post
    for bad in ["", "!!!", "x" * 3000, "bm90IGpzb24", Cursor(T0, ("a", "b")).encode(),
                "WyIyMDI2LTAzLTAxVDEyOjAwOjAwIiwgImEiXQ", None, 42]:
        with pytest.raises(BadCursor):
            Cursor.decode(bad)


def test_a_cursor_of_the_wrong_shape_is_a_programming_error(store: Store) -> None:
    user = make_user(store)
    with pytest.raises(ValueError):
        store.list_runs(user, after=Cursor(T0, ("a", "b")))
    with pytest.raises(ValueError):
        store.list_posts(user, after=Cursor(T0, ("a",)))
    with pytest.raises(ValueError):
        store.list_runs(user, created_from=datetime(2026, 1, 1))       # naive


# ledger entries ------------------------------------------------------------------------------

def ledger(store: Store, user_id: str, sites: list[str], count: int = 24) -> list[LedgerEntry]:
    """Entries over several sites, four at each time (ties across and within sites)."""
    made = []
    for i in range(count):
        entry = LedgerEntry(user_id=user_id, site_id=sites[i % len(sites)], slug=f"post-{i:02d}",
                            item_key=f"k{i}", kind=KINDS[i % 3], run_id="r1",
                            created_at=T0 + timedelta(minutes=i // 4))
        made.append(store.reserve_post(entry)[0])
    return made


def post_keys(rows: list[LedgerEntry]) -> list[tuple[str, str]]:
    return [(p.site_id, p.slug) for p in rows]


def newest_posts(rows: list[LedgerEntry]) -> list[tuple[str, str]]:
    return post_keys(sorted(rows, key=lambda p: (p.created_at, p.site_id, p.slug),
                            reverse=True))


@pytest.mark.parametrize(("kind", "one_site"), [(None, False), ("earnings", False),
                                              (None, True), ("stock", True)],
                         ids=["all", "kind", "site", "site+kind"])
@pytest.mark.parametrize("size", [1, 3, 4, 5])
def test_ledger_pages_cover_every_entry_once_in_order(
        store: Store, kind: str | None, one_site: bool, size: int) -> None:
    user = make_user(store)
    sites = sorted(make_site(store, user, name=f"Site {n}").id for n in range(3))
    entries = ledger(store, user, sites)
    other = make_user(store, "bob@example.com")
    ledger(store, other, [make_site(store, other).id], 5)
    filters: dict[str, Any] = {"kind": kind, "site_id": sites[1] if one_site else None}
    expected = newest_posts([p for p in entries if (kind is None or p.kind == kind)
                             and (not one_site or p.site_id == sites[1])])
    pages = walk(lambda **kw: store.list_posts(user, **kw, **filters), size, Cursor.of_post)
    assert post_keys([p for page in pages for p in page]) == expected
    backwards = walk(lambda **kw: store.list_posts(user, oldest_first=True, **kw, **filters),
                     size, Cursor.of_post)
    assert post_keys([p for page in backwards for p in page]) == expected[::-1]
    assert store.list_posts(user, kind="nothing-like-it") == []
