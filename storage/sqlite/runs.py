"""SQLite runs: a run, its items, its event log and its lease, one aggregate.

Every listing is a walk of one index in ``(created_at, id)`` order: each filter the history
offers has an index that starts with ``user_id`` and the filtered column and ends with the
order (``id`` breaks ties), so a page reads its rows and no others, at any depth (keyset
``after``), and a filter that matches nothing costs one index probe.
"""

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
    jsonable,
    to_iso,
)
from storage._listing import check_listing, cursor_values, empty_range
from storage._runs import new_run_records, reopened_run_changes
from storage.base import (
    RUN_FINAL,
    ConflictError,
    DuplicateError,
    Item,
    NewItem,
    NotFoundError,
    Run,
    utcnow,
)
from storage.notification_records import OutboxEvent
from storage.paging import Cursor
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns
from storage.sqlite.notifications import write_outbox

# The indexes a listing may walk, by the equality columns they start with (each ends in
# created_at, id: the list order).
_LISTING_INDEXES: dict[str, tuple[str, ...]] = {
    "runs_user_time": ("user_id",),
    "runs_user_status_time": ("user_id", "status"),
    "runs_user_kind_time": ("user_id", "kind"),
    "runs_user_site_time": ("user_id", "site_id"),
    "runs_status_time": ("status",),
    "runs_campaign_time": ("campaign_id",),
}
_PROBE_CAP = 2000


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
        ("runs", "events_pruned_at", "TEXT"),
        ("runs", "files_pruned_at", "TEXT"),
        ("runs", "events_pruned_seq", "INTEGER NOT NULL DEFAULT 0"),
    )
    # One fire makes at most one run: the fire id is the run's second unique key. The
    # listing indexes end in (created_at, id), the list order; the older ones without the
    # tie-breaker go. ``runs_to_prune`` holds only finished runs retention has not done yet.
    LATE_SCHEMA = """
    CREATE UNIQUE INDEX IF NOT EXISTS runs_by_fire ON runs(fire_id);
    DROP INDEX IF EXISTS runs_by_user;
    DROP INDEX IF EXISTS runs_by_status;
    DROP INDEX IF EXISTS runs_by_campaign;
    CREATE INDEX IF NOT EXISTS runs_user_time ON runs(user_id, created_at, id);
    CREATE INDEX IF NOT EXISTS runs_user_status_time ON runs(user_id, status, created_at, id);
    CREATE INDEX IF NOT EXISTS runs_user_kind_time ON runs(user_id, kind, created_at, id);
    CREATE INDEX IF NOT EXISTS runs_user_site_time ON runs(user_id, site_id, created_at, id);
    CREATE INDEX IF NOT EXISTS runs_status_time ON runs(status, created_at, id);
    CREATE INDEX IF NOT EXISTS runs_campaign_time ON runs(campaign_id, created_at, id);
    CREATE INDEX IF NOT EXISTS runs_to_prune ON runs(updated_at, id)
        WHERE events_pruned_at IS NULL AND status IN ('completed', 'cancelled', 'failed');
    """

    # runs --------------------------------------------------------------------------------------
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
        stored, rows = new_run_records(run, items)
        with self._tx() as db:
            self._insert_run(db, stored, rows)
        return stored

    def get_run(self, run_id: str) -> Run | None:
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        return decode(Run, row) if row else None

    def list_runs(self, user_id: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 50, offset: int = 0, campaign_id: str | None = None, *,
                  kind: str | None = None, site_id: str | None = None,
                  created_from: datetime | None = None, created_to: datetime | None = None,
                  after: Cursor | None = None, oldest_first: bool = False) -> list[Run]:
        check_listing(limit, offset, after, 1, created_from, created_to)
        wanted = None if statuses is None else sorted(expected_set(statuses))
        if wanted == [] or empty_range(created_from, created_to):
            return []
        equal = {column: value for column, value in (
            ("user_id", user_id), ("campaign_id", campaign_id), ("kind", kind),
            ("site_id", site_id)) if value is not None}
        ranges, range_args = [], []
        if created_from is not None:
            ranges.append("created_at >= ?")
            range_args.append(to_iso(created_from))
        if created_to is not None:
            ranges.append("created_at < ?")
            range_args.append(to_iso(created_to))
        if after is not None:
            ranges.append(f"(created_at, id) {'>' if oldest_first else '<'} (?, ?)")
            range_args.extend(cursor_values(after))
        order = "ASC" if oldest_first else "DESC"
        order_by = f" ORDER BY created_at {order}, id {order}"
        parts: list[str] = []
        values: list[Any] = []
        with self._lock:
            # Several statuses: one ordered index walk per status, merged, so a user's few
            # active runs are found without visiting their thousands of finished ones.
            for status in wanted or [None]:
                columns = {**equal, **({"status": status} if status else {})}
                conditions = [f"{c} = ?" for c in columns] + ranges
                args = [*columns.values(), *range_args]
                hint = self._walk_index(columns, ranges, range_args)
                parts.append(f"SELECT * FROM runs{hint}"
                             + (" WHERE " + " AND ".join(conditions) if conditions else ""))
                values += args
            if len(parts) == 1:
                sql = parts[0] + order_by + " LIMIT ? OFFSET ?"
            else:
                inner = [f"SELECT * FROM ({part}{order_by} LIMIT {int(limit) + int(offset)})"
                         for part in parts]
                sql = f"SELECT * FROM ({' UNION ALL '.join(inner)}){order_by} LIMIT ? OFFSET ?"
            rows = self._all(sql, [*values, limit, offset])
        return [decode(Run, r) for r in rows]

    def _walk_index(self, columns: dict[str, Any], ranges: list[str], range_args: list[Any]
                    ) -> str:
        """``INDEXED BY`` the listing index with the fewest rows in range when several fit
        the equality filters (kind and status, say): SQLite has no per-value statistics, and
        walking the wrong one visits every run of the other filter. Counting stops at
        ``_PROBE_CAP`` entries of each (covering) index."""
        usable = [(name, cols) for name, cols in _LISTING_INDEXES.items()
                  if set(cols) <= set(columns)]
        usable = [(name, cols) for name, cols in usable
                  if not any(set(cols) < set(other) for _, other in usable)]
        if len(usable) < 2:
            return ""
        sizes = []
        for name, cols in usable:
            where = " AND ".join([f"{c} = ?" for c in cols] + ranges)
            count = self._db().execute(
                f"SELECT count(*) FROM (SELECT 1 FROM runs INDEXED BY {name} WHERE {where} "
                f"LIMIT {_PROBE_CAP})", [*(columns[c] for c in cols), *range_args]
            ).fetchone()[0]
            sizes.append((count, name))
        return f" INDEXED BY {min(sizes)[1]}"

    def transition_run(self, run_id: str, expected: Iterable[str], new_status: str, *,
                       outbox: Sequence[OutboxEvent] = (), **changes: Any) -> Run:
        check_run_status(new_status)
        check_changes(Run, changes, RUN_FIXED)
        allowed = expected_set(expected)
        with self._tx() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            if row["status"] not in allowed:
                raise ConflictError(
                    f"run {run_id} is {row['status']}, not {'/'.join(sorted(allowed))}",
                    current=row["status"])
            reopened = reopened_run_changes(decode(Run, row), new_status)
            set_columns(db, "runs", Run,
                        self._run_changes({**changes, **reopened}, status=new_status),
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

    # retention ---------------------------------------------------------------------------------
    def list_prunable_runs(self, finished_before: datetime, limit: int = 100,
                           after: Cursor | None = None) -> list[Run]:
        check_listing(limit, 0, after, 1)
        where, args = "", [to_iso(finished_before)]
        if after is not None:
            where = " AND (updated_at, id) > (?, ?)"
            args += cursor_values(after)
        rows = self._all(
            "SELECT * FROM runs WHERE events_pruned_at IS NULL AND status IN ('completed', "
            f"'cancelled', 'failed') AND updated_at < ?{where} ORDER BY updated_at, id LIMIT ?",
            (*args, limit))
        return [decode(Run, r) for r in rows]

    def prune_run(self, run_id: str, *, finished_before: datetime, when: datetime,
                  files_pruned: bool) -> Run:
        with self._tx() as db:
            row = db.execute("SELECT status, updated_at, events_pruned_at FROM runs "
                             "WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no run {run_id}")
            if row["status"] not in RUN_FINAL or row["updated_at"] >= to_iso(finished_before):
                raise ConflictError(f"run {run_id} changed since it finished",
                                    current=row["status"])
            db.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            stamp = to_iso(when)
            # Files removed before the run last changed (a retry since) were older ones.
            db.execute("UPDATE runs SET events_pruned_at = COALESCE(events_pruned_at, ?), "
                       "events_pruned_seq = last_seq, files_pruned_at = CASE WHEN ? AND "
                       "(files_pruned_at IS NULL OR files_pruned_at < updated_at) THEN ? "
                       "ELSE files_pruned_at END WHERE id = ?",
                       (stamp, files_pruned, stamp, run_id))
            return decode(Run, db.execute("SELECT * FROM runs WHERE id = ?",
                                          (run_id,)).fetchone())

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
