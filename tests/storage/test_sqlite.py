"""What only the SQLite backend promises: its file, WAL, and safety across connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import open_store
from storage.base import ConflictError, NewItem, Run
from storage.sqlite import SQLiteStore
from tests.storage.test_contract import THREADS, race


def test_creates_the_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "tickzen.db"
    store = SQLiteStore(path)
    store.create_user("ann@example.com", "h")
    store.close()
    assert path.is_file()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "tickzen.db"
    first = SQLiteStore(path)
    run = first.create_run(Run(id="", user_id="u", kind="stock", site_id="s"),
                           [NewItem(key="aapl", input="AAPL")])
    first.append_event(run.id, {"stage": "processing"})
    first.close()
    second = SQLiteStore(path)
    try:
        assert second.get_run(run.id) == run.__class__(**{**run.__dict__, "last_seq": 1})
        assert second.list_items(run.id)[0].key == "aapl"
        assert second.append_event(run.id, {"stage": "complete"}) == 2
    finally:
        second.close()


def test_compare_and_set_across_separate_connections(tmp_path: Path) -> None:
    """Two stores on one file stand for two processes: BEGIN IMMEDIATE keeps one winner."""
    path = tmp_path / "shared.db"
    stores = [SQLiteStore(path) for _ in range(THREADS)]
    try:
        run = stores[0].create_run(Run(id="", user_id="u", kind="stock", site_id="s"), [])
        results = race(THREADS, lambda i: stores[i].transition_run(run.id, ["queued"],
                                                                   "running", owner=str(i)))
        winners = [r for r in results if not isinstance(r, Exception)]
        assert len(winners) == 1
        assert all(isinstance(r, ConflictError) for r in results if r not in winners)
        seqs = race(THREADS, lambda i: stores[i].append_event(run.id, {"from": i}))
        assert sorted(seqs) == list(range(1, THREADS + 1))
    finally:
        for store in stores:
            store.close()


def test_open_store_urls(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/via-url/tickzen.db")
    try:
        assert isinstance(store, SQLiteStore)
        assert (tmp_path / "via-url").is_dir()
    finally:
        store.close()
    with pytest.raises(ValueError):
        open_store("mysql://localhost/tickzen")


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    store.close()
    store.close()                       # idempotent
    with pytest.raises(RuntimeError):
        store.get_user("x")


def test_a_file_made_before_the_ledger_holder_columns_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = SQLiteStore(path)
    user = store.create_user("ann@example.com", "h")
    from storage.base import LedgerEntry, Site

    site = store.create_site(user.id, Site(id="", user_id=user.id, name="s", kind="local"))
    store.close()
    with sqlite3.connect(path) as db:                   # as the first release left it
        db.execute("ALTER TABLE posts DROP COLUMN attempt")
        db.execute("ALTER TABLE posts DROP COLUMN reserved_at")
    upgraded = SQLiteStore(path)
    stored, new = upgraded.reserve_post(LedgerEntry(user.id, site.id, "x", "x", "stock", "r",
                                                    attempt="a1"))
    assert new and upgraded.get_post(user.id, site.id, "x").attempt == "a1"
    upgraded.close()
    SQLiteStore(path).close()                           # a second open finds them present


def test_a_file_made_before_campaigns_is_upgraded(tmp_path: Path) -> None:
    from storage.base import Campaign, Fire

    path = tmp_path / "before-campaigns.db"
    store = SQLiteStore(path)
    user = store.create_user("ann@example.com", "h")
    old_run = store.create_run(Run(id="", user_id=user.id, kind="stock", site_id="s"), [])
    store.close()
    with sqlite3.connect(path) as db:                   # as the release before campaigns
        db.executescript("DROP INDEX runs_by_fire; DROP INDEX runs_campaign_time;"
                         "ALTER TABLE runs DROP COLUMN fire_id;"
                         "ALTER TABLE runs DROP COLUMN campaign_id;"
                         "DROP TABLE fires; DROP TABLE campaigns;")
    upgraded = SQLiteStore(path)
    try:
        assert upgraded.get_run(old_run.id).campaign_id is None
        campaign = upgraded.create_campaign(Campaign(id="", user_id=user.id, name="c",
                                                     kind="stock", site_id="s"))
        fire = Fire(id=f"{campaign.id}:1", campaign_id=campaign.id, user_id=user.id,
                    scheduled_for=old_run.created_at, outcome="started")
        _, run = upgraded.fire_campaign(
            campaign.id, expected_revision=0, fires=[fire], changes={},
            run=Run(id="", user_id=user.id, kind="stock", site_id="s",
                    campaign_id=campaign.id, fire_id=fire.id))
        assert upgraded.get_run(run.id).fire_id == fire.id
    finally:
        upgraded.close()
    SQLiteStore(path).close()
