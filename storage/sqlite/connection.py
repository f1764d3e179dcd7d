"""SQLite plumbing every aggregate shares: the connection, write transactions, row codecs.

One connection guarded by a lock, so any number of threads (the runner's, Flask's) can share a
store; WAL plus ``busy_timeout`` so another process on the same file waits instead of failing.
Every compare-and-set runs inside one ``BEGIN IMMEDIATE`` transaction: the write lock is taken
before the state is read, so two racing callers cannot both see the expected state.
Dicts and lists live in JSON text columns; datetimes in fixed-width ISO-8601 UTC text, which
sorts correctly and round-trips exactly.

Each aggregate module contributes its tables through class attributes the connection applies
at start-up, in method resolution order: ``SCHEMA`` (idempotent ``CREATE ... IF NOT EXISTS``),
``ADDED_COLUMNS`` (columns added after the first release, for files made before) and
``LATE_SCHEMA`` (indexes on those added columns, created once the columns exist).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from storage._common import TIME_FIELDS, dumps, from_iso, to_iso
from storage.base import ApiToken, Campaign, Fire, Item, LedgerEntry, Run, Site, User
from storage.housekeeping import Job
from storage.notification_records import (
    Delivery,
    Notification,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
)

BUSY_TIMEOUT_MS = 30_000

# Per record: which columns hold JSON (the datetime ones are storage._common.TIME_FIELDS).
JSON_COLUMNS: dict[type, tuple[str, ...]] = {
    User: ("settings",),
    ApiToken: (),
    Site: ("defaults", "authors", "state"),
    Run: ("options", "counts"),
    Item: ("input", "result"),
    LedgerEntry: (),
    Campaign: ("options", "source", "schedule", "queue"),
    Fire: (),
    Notification: (),
    Webhook: ("events",),
    WebhookAttempt: (),
    OutboxEvent: ("data", "deliveries"),
    Delivery: (),
    Job: ("last_result",),
}


def encode(cls: type, name: str, value: Any) -> Any:
    if name in JSON_COLUMNS[cls]:
        return dumps(value)
    if name in TIME_FIELDS[cls]:
        return to_iso(value)
    return value


def decode(cls: type, row: sqlite3.Row) -> Any:
    values: dict[str, Any] = {}
    for name in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        value = row[name]
        if name in JSON_COLUMNS[cls]:
            value = json.loads(value)
        elif name in TIME_FIELDS[cls]:
            value = from_iso(value)
        values[name] = value
    return cls(**values)


def insert(db: sqlite3.Connection, table: str, cls: type, record: Any,
           skip: tuple[str, ...] = ()) -> None:
    names = [n for n in record.__dataclass_fields__ if n not in skip]
    db.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
        [encode(cls, n, getattr(record, n)) for n in names])


def set_columns(db: sqlite3.Connection, table: str, cls: type, changes: dict[str, Any],
                where: str, args: Sequence[Any]) -> None:
    if not changes:
        return
    names = list(changes)
    db.execute(f"UPDATE {table} SET {', '.join(f'{n} = ?' for n in names)} WHERE {where}",
               [encode(cls, n, changes[n]) for n in names] + list(args))


class SQLiteConnection:
    """The shared connection and its transactions; aggregates are mixed in on top."""

    SCHEMA = ""
    ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = ()
    LATE_SCHEMA = ""

    def __init__(self, path: str | Path) -> None:
        path = str(path)
        if path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        if path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._lock:
            parts = [vars(cls) for cls in reversed(type(self).__mro__)]
            for part in parts:
                if part.get("SCHEMA"):
                    self._conn.executescript(part["SCHEMA"])   # idempotent: IF NOT EXISTS
            for part in parts:
                self._add_missing_columns(part.get("ADDED_COLUMNS", ()))
            for part in parts:
                if part.get("LATE_SCHEMA"):
                    self._conn.executescript(part["LATE_SCHEMA"])

    def _add_missing_columns(self, columns: Sequence[tuple[str, str, str]]) -> None:
        """Bring a database file made by an older version up to the current columns."""
        assert self._conn is not None
        for table, column, definition in columns:
            have = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                try:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                except sqlite3.OperationalError as exc:    # another process just added it
                    if "duplicate column" not in str(exc):
                        raise

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is closed")
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the lock serialises this process's threads, BEGIN IMMEDIATE
        (with busy_timeout) serialises other processes."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _one(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._db().execute(sql, args).fetchone()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db().execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
