"""storage/firestore.indexes.json holds every composite index the history queries need.

The emulator answers any query without indexes, so this test records the structured query of
every listing the history issues (runs by each filter and both directions, with cursors and
dates; ledger entries by kind and site; retention's candidates; a webhook's delivery log and
retention's walk of it) and checks each against the file the way Firestore decides:
single-field indexes serve a query with no equality filter and one ordered field, or
equalities alone; otherwise a listed composite index of (equality fields..., then exactly the
query's order) must cover each equality field, or the order alone when there is none —
Firestore merges such indexes for several equalities. A collection-group query (retention's
over every user's notifications) needs an index of collection-group scope: Firestore keeps
none of those by itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud.firestore_v1.query import Query

from storage.paging import Cursor
from tests.history.test_paging_contract import history, ledger
from tests.storage.test_contract import make_site, make_user
from tests.storage.test_contract_retention import hourly, webhook_with_attempts

INDEX_FILE = Path(__file__).resolve().parents[2] / "storage" / "firestore.indexes.json"
EQUALITY = {"EQUAL", "IN", "ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY", "IS_NULL"}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUP_SCOPE = "@group"          # marks a collection-group query and its indexes


def listed() -> dict[str, list[tuple[tuple[str, str], ...]]]:
    by_group: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    for index in json.loads(INDEX_FILE.read_text())["indexes"]:
        fields = tuple((f["fieldPath"], f["order"]) for f in index["fields"])
        group = index["collectionGroup"] + (GROUP_SCOPE if index["queryScope"] ==
                                            "COLLECTION_GROUP" else "")
        by_group.setdefault(group, []).append(fields)
    return by_group


def shape(query: Any) -> tuple[str, frozenset[str], tuple[tuple[str, str], ...]]:
    """(collection, equality fields, order) of a query, from its protobuf."""
    proto = query._to_protobuf()
    collection = proto.from_[0].collection_id + (GROUP_SCOPE if proto.from_[0].all_descendants
                                                 else "")
    filters = []
    where = proto.where
    stack = [where] if where else []
    while stack:
        node = stack.pop()
        if node.composite_filter.filters:
            stack.extend(node.composite_filter.filters)
        elif node.field_filter.field.field_path:
            filters.append((node.field_filter.field.field_path, node.field_filter.op.name))
        elif node.unary_filter.field.field_path:
            filters.append((node.unary_filter.field.field_path, node.unary_filter.op.name))
    equal = frozenset(f for f, op in filters if op in EQUALITY)
    order = tuple((o.field.field_path, o.direction.name) for o in proto.order_by)
    return collection, equal, order


def missing_index(collection: str, equal: frozenset[str], order: tuple[tuple[str, str], ...],
                  indexes: dict[str, list[tuple[tuple[str, str], ...]]]) -> str | None:
    ordered = [f for f, _ in order if f != "__name__"]
    group = collection.endswith(GROUP_SCOPE)             # no automatic indexes at all
    if not equal and len(ordered) <= 1 and not group:
        return None                                      # a single-field index serves it
    if not ordered and not group:
        return None                                      # equalities alone: merged
    covering = [fields for fields in indexes.get(collection, [])
                if fields[len(fields) - len(order):] == order
                and {f for f, _ in fields[:len(fields) - len(order)]} <= equal
                and all(o == "ASCENDING" for _, o in fields[:len(fields) - len(order)])]
    covered = {f for fields in covering for f, _ in fields[:len(fields) - len(order)]}
    if covered >= equal and covering:
        return None
    return f"{collection}: {sorted(equal)} ordered by {order} (uncovered {sorted(equal - covered)})"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    shapes: list[Any] = []
    real_stream = Query.stream

    def stream(self: Query, *args: Any, **kwargs: Any) -> Any:
        shapes.append(shape(self))
        return real_stream(self, *args, **kwargs)

    monkeypatch.setattr(Query, "stream", stream)
    yield shapes


def test_every_history_query_has_its_index(firestore_store: Any, recorded: list[Any]) -> None:
    store = firestore_store
    user = make_user(store)
    runs = history(store, user, 10)
    sites = [make_site(store, user, name=f"S{n}").id for n in range(2)]
    ledger(store, user, sites, 8)
    cursor = Cursor.of_run(runs[3])
    filters: list[dict[str, Any]] = [
        {}, {"kind": "stock"}, {"site_id": "site-a"}, {"statuses": ["failed"]},
        {"statuses": ["running", "paused", "queued"]}, {"campaign_id": "camp-1"},
        {"kind": "stock", "site_id": "site-a", "statuses": ["completed"],
         "campaign_id": "camp-1"},
        {"created_from": T0, "created_to": T0 + timedelta(minutes=3)},
        {"kind": "earnings", "created_from": T0},
    ]
    for kw in filters:
        for oldest_first in (False, True):
            store.list_runs(user, limit=5, oldest_first=oldest_first, **kw)
            store.list_runs(user, limit=5, after=cursor, oldest_first=oldest_first, **kw)
    store.list_runs(statuses=["running", "pausing"], limit=100)            # recovery
    store.list_runs(campaign_id="camp-1", limit=10)
    post_cursor = Cursor(T0, (sites[0], "post-01"))
    for kw in ({}, {"kind": "stock"}, {"site_id": sites[1]},
               {"site_id": sites[1], "kind": "stock"}):
        for oldest_first in (False, True):
            store.list_posts(user, limit=5, oldest_first=oldest_first, **kw)
            store.list_posts(user, limit=5, after=post_cursor, oldest_first=oldest_first, **kw)
    store.list_prunable_runs(T0, limit=10)
    store.list_prunable_runs(T0, limit=10, after=Cursor(T0, ("r",)))
    store.prune_notifications(read_before=T0, unread_before=T0, limit=10)
    store.prune_outbox(T0, limit=10)
    store.prune_outbox(T0, limit=10, after=Cursor(T0, ("e",)))
    store.backfill_runs(None, limit=10)
    store.backfill_runs("r", limit=10)
    hook = webhook_with_attempts(store, user, hourly(4, T0))
    store.list_webhook_attempts(user, hook, limit=2, offset=1)
    for keep in (2, 0):                 # from after the newest kept, or from the newest
        assert store.prune_webhook_attempts(T0 + timedelta(days=1), keep=keep,
                                            limit=10).attempts == 2
    store.prune_webhook_attempts(T0, limit=10, start=hook, dry_run=True)
    indexes = listed()
    missing = {m for s in recorded if (m := missing_index(*s, indexes))}
    assert recorded and not missing, "\n".join(sorted(missing))


def test_the_index_file_lists_each_index_once() -> None:
    entries = json.loads(INDEX_FILE.read_text())["indexes"]
    seen = [(e["collectionGroup"], e["queryScope"],
             tuple((f["fieldPath"], f["order"]) for f in e["fields"])) for e in entries]
    assert len(seen) == len(set(seen))


def test_the_check_finds_a_missing_index() -> None:
    order = (("created_at", "ASCENDING"), ("__name__", "ASCENDING"))
    indexes = {"runs": [(("user_id", "ASCENDING"), *order)]}
    assert missing_index("runs", frozenset({"user_id"}), order, indexes) is None
    assert missing_index("runs", frozenset({"user_id", "kind"}), order, indexes)
    assert missing_index("runs", frozenset({"user_id"}), order[::-1], indexes)
    assert missing_index("posts", frozenset(), order, indexes) is None
    newest = (("created_at", "DESCENDING"), ("attempt", "DESCENDING"))
    assert missing_index("attempts", frozenset(), newest, indexes)   # two orders: a composite
    assert missing_index("attempts", frozenset(), newest, {"attempts": [newest]}) is None
    by_age = (("created_at", "ASCENDING"),)
    assert missing_index("notifications" + GROUP_SCOPE, frozenset(), by_age, indexes)
    assert missing_index("notifications" + GROUP_SCOPE, frozenset({"read"}), by_age, {
        "notifications": [(("read", "ASCENDING"), *by_age)]})     # a collection's is no help
