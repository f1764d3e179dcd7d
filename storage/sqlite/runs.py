"""SQLite runs: a run, its items, its event log and its lease, one aggregate."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from storage._common import (
    ITEM_FIXED,
    RUN_FIXED,
    aware_utc,
    check_changes,
    check_item_status,
    check_page,
    check_run_status,
    dumps,
    expected_set,
    from_iso,
    initial_counts,
    jsonable,
    new_id,
    to_iso,
)
from storage.base import (
    ConflictError,
    DuplicateError,
    Item,
    NewItem,
    NotFoundError,
    OutboxEvent,
    Run,
    utcnow,
)
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns
from storage.sqlite.notifications import write_outbox


class RunsMixin(SQLiteConnection):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS runs (
        id          TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        site_id     TEXT NOT NULL,
        status      TEXT NOT NULL,
        options     TEXT NOT NULL DEFAULT '{}',
        total       INTEGER NOT NULL DEFAULT 0,
        counts      TEXT NOT NULL DEFAULT '{}',
        percent     INTEGER NOT NULL DEFAULT 0,
        last_seq    INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        owner       TEXT,
        lease_until TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        campaign_id TEXT,
        fire_id     TEXT
    );
    CREATE INDEX IF NOT EXISTS runs_by_user ON runs(user_id, created_at);
    CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, created_at);
    CREATE TABLE IF NOT EXISTS items (
        run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        key        TEXT NOT NULL,
        input      TEXT NOT NULL,
        label      TEXT NOT NULL DEFAULT '',
        status     TEXT NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        post_id    TEXT,
        post_url   TEXT,
        error      TEXT,
        result     TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (run_id, position)
    );
    CREATE TABLE IF NOT EXISTS events (
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq    INTEGER NOT NULL,
        body   TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    """
    ADDED_COLUMNS = (
        ("runs", "campaign_id", "TEXT"),
        ("runs", "fire_id", "TEXT"),
    )
    # One fire makes at most one run: the fire id is the run's second unique key.
    LATE_SCHEMA = """
    CREATE UNIQUE INDEX IF NOT EXISTS runs_by_fire ON runs(fire_id);
    CREATE INDEX IF NOT EXISTS runs_by_campaign ON runs(campaign_id, created_at);
    """

    # runs --------------------------------------------------------------------------------------
    @staticmethod
    def _new_run(run: Run, items: Sequence[NewItem]) -> tuple[Run, list[Item]]:
        """The run and item rows ``create_run`` stores (also used inside other transactions)."""
        check_run_status(run.status)
        now = aware_utc(utcnow())
        stored = Run(**{**run.__dict__, "id": run.id or new_id(), "total": len(items),
                        "counts": initial_counts(len(items)), "options": jsonable(run.options),
                        "created_at": aware_utc(run.created_at),
                        "updated_at": aware_utc(run.updated_at)})
        rows = [Item(run_id=stored.id, position=i, key=it.key, input=jsonable(it.input),
                     label=it.label, updated_at=now) for i, it in enumerate(items)]
        return stored, rows

    @staticmethod
    def _insert_run(db: sqlite3.Connection, run: Run, items: Sequence[Item]) -> None:
        if db.execute("SELECT 1 FROM runs WHERE id = ?", (run.id,)).fetchone():
            raise DuplicateError(f"run id already used: {run.id}")
        if run.fire_id is not None and db.execute("SELECT 1 FROM runs WHERE fire_id = ?",
                                                  (run.fire_id,)).fetchone():
            raise DuplicateError(f"fire {run.fire_id} already has its run")
        try:
            insert(db, "runs", Run, run)
        except sqlite3.IntegrityError as exc:       # the unique index, should a check miss
            raise DuplicateError(f"run already stored: {exc}") from exc
        for item in items:
            insert(db, "items", Item, item)

    def create_run(self, run: Run, items: Sequence[NewItem]) -> Run:
        if run.fire_id is not None:
            raise ValueError("a fire's run is created by fire_campaign, with its fire")
        stored, rows = self._new_run(run, items)
        with self._tx() as db:
            self._insert_run(db, stored, rows)
        return stored

    def get_run(self, run_id: str) -> Run | None:
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        return decode(Run, row) if row else None

    def list_runs(self, user_id: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 50, offset: int = 0, campaign_id: str | None = None
                  ) -> list[Run]:
        check_page(limit, offset)
        where, args = [], []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if campaign_id is not None:
            where.append("campaign_id = ?")
            args.append(campaign_id)
        if statuses is not None:
            wanted = sorted(expected_set(statuses))
            if not wanted:
                return []
            where.append(f"status IN ({', '.join('?' for _ in wanted)})")
            args.extend(wanted)
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        return [decode(Run, r) for r in self._all(sql, [*args, limit, offset])]

    def transition_run(self, run_id: str, expected: Iterable[str], new_status: str, *,
                       outbox: Sequence[OutboxEvent] = (), **changes: Any) -> Run:
        check_run_status(new_status)
        check_changes(Run, changes, RUN_FIXED)
        allowed = expected_set(expected)
        with self._tx() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            if row["status"] not in allowed:
                raise ConflictError(
                    f"run {run_id} is {row['status']}, not {'/'.join(sorted(allowed))}",
                    current=row["status"])
            set_columns(db, "runs", Run, self._run_changes(changes, status=new_status),
                        "id = ?", (run_id,))
            write_outbox(db, outbox)
            return decode(Run, db.execute("SELECT * FROM runs WHERE id = ?",
                                          (run_id,)).fetchone())

    @staticmethod
    def _run_changes(changes: dict[str, Any], **more: Any) -> dict[str, Any]:
        out = {**changes, **more}
        if "options" in out:
            out["options"] = jsonable(out["options"])
        out["updated_at"] = changes.get("updated_at") or utcnow()
        return out

    def update_run(self, run_id: str, **changes: Any) -> Run:
        check_changes(Run, changes, RUN_FIXED)
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                raise NotFoundError(f"no run {run_id}")
            set_columns(db, "runs", Run, self._run_changes(changes), "id = ?", (run_id,))
            return decode(Run, db.execute("SELECT * FROM runs WHERE id = ?",
                                          (run_id,)).fetchone())

    # items -------------------------------------------------------------------------------------
    def list_items(self, run_id: str) -> list[Item]:
        rows = self._all("SELECT * FROM items WHERE run_id = ? ORDER BY position", (run_id,))
        return [decode(Item, r) for r in rows]

    def get_item(self, run_id: str, position: int) -> Item | None:
        row = self._one("SELECT * FROM items WHERE run_id = ? AND position = ?",
                        (run_id, position))
        return decode(Item, row) if row else None

    @staticmethod
    def _item_changes(changes: dict[str, Any], **more: Any) -> dict[str, Any]:
        out = {**changes, **more}
        for name in ("input", "result"):
            if name in out:
                out[name] = jsonable(out[name])
        out["updated_at"] = changes.get("updated_at") or utcnow()
        return out

    def transition_item(self, run_id: str, position: int, expected: Iterable[str],
                        new_status: str, *, outbox: Sequence[OutboxEvent] = (),
                        **changes: Any) -> Item:
        check_item_status(new_status)
        check_changes(Item, changes, ITEM_FIXED)
        allowed = expected_set(expected)
        where, args = "run_id = ? AND position = ?", (run_id, position)
        with self._tx() as db:
            row = db.execute(f"SELECT status FROM items WHERE {where}", args).fetchone()
            if row is None:
                raise NotFoundError(f"no item {position} in run {run_id}")
            old = row["status"]
            if old not in allowed:
                raise ConflictError(
                    f"item {position} of run {run_id} is {old}, not {'/'.join(sorted(allowed))}",
                    current=old)
            set_columns(db, "items", Item, self._item_changes(changes, status=new_status),
                        where, args)
            if old != new_status:
                counts = json.loads(db.execute("SELECT counts FROM runs WHERE id = ?",
                                               (run_id,)).fetchone()["counts"])
                counts[old] = counts.get(old, 0) - 1
                counts[new_status] = counts.get(new_status, 0) + 1
                db.execute("UPDATE runs SET counts = ? WHERE id = ?", (dumps(counts), run_id))
            write_outbox(db, outbox)
            return decode(Item, db.execute(f"SELECT * FROM items WHERE {where}",
                                           args).fetchone())

    def update_item(self, run_id: str, position: int, **changes: Any) -> Item:
        check_changes(Item, changes, ITEM_FIXED)
        where, args = "run_id = ? AND position = ?", (run_id, position)
        with self._tx() as db:
            if not db.execute(f"SELECT 1 FROM items WHERE {where}", args).fetchone():
                raise NotFoundError(f"no item {position} in run {run_id}")
            set_columns(db, "items", Item, self._item_changes(changes), where, args)
            return decode(Item, db.execute(f"SELECT * FROM items WHERE {where}",
                                           args).fetchone())

    # events ------------------------------------------------------------------------------------
    def append_event(self, run_id: str, event: dict[str, Any]) -> int:
        with self._tx() as db:
            row = db.execute("SELECT last_seq FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            seq = row["last_seq"] + 1
            db.execute("UPDATE runs SET last_seq = ? WHERE id = ?", (seq, run_id))
            db.execute("INSERT INTO events (run_id, seq, body) VALUES (?, ?, ?)",
                       (run_id, seq, dumps({**event, "seq": seq})))
        return seq

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        check_page(limit)
        rows = self._all("SELECT body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq "
                         "LIMIT ?", (run_id, after_seq, -1 if limit is None else limit))
        return [json.loads(r["body"]) for r in rows]

    # leases ------------------------------------------------------------------------------------
    def acquire_lease(self, run_id: str, owner: str, until: datetime, now: datetime) -> bool:
        until, now = aware_utc(until), aware_utc(now)
        with self._tx() as db:
            row = db.execute("SELECT owner, lease_until FROM runs WHERE id = ?",
                             (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            held_until = from_iso(row["lease_until"])
            free = row["owner"] is None or held_until is None or held_until <= now
            if not (free or row["owner"] == owner):
                return False
            db.execute("UPDATE runs SET owner = ?, lease_until = ? WHERE id = ?",
                       (owner, to_iso(until), run_id))
        return True

    def release_lease(self, run_id: str, owner: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET owner = NULL, lease_until = NULL "
                       "WHERE id = ? AND owner = ?", (run_id, owner))
