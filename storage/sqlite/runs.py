"""SQLite backend: the embedded default store (one file under instance/).

One connection guarded by a lock, so any number of threads (the runner's, Flask's) can share a
store; WAL plus ``busy_timeout`` so another process on the same file waits instead of failing.
Every compare-and-set runs inside one ``BEGIN IMMEDIATE`` transaction: the write lock is taken
before the state is read, so two racing callers cannot both see the expected state.
Dicts and lists live in JSON text columns; datetimes in fixed-width ISO-8601 UTC text, which
sorts correctly and round-trips exactly.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from storage._common import (
    ITEM_FIXED,
    RUN_FIXED,
    SITE_FIXED,
    aware_utc,
    check_changes,
    check_item_status,
    check_page,
    check_run_status,
    day_of,
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
    DailyLimitReached,
    DuplicateError,
    Item,
    LedgerEntry,
    NewItem,
    NotFoundError,
    Run,
    Site,
    User,
    utcnow,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    settings      TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sites (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    url              TEXT NOT NULL DEFAULT '',
    username         TEXT NOT NULL DEFAULT '',
    app_password_enc TEXT NOT NULL DEFAULT '',
    defaults         TEXT NOT NULL DEFAULT '{}',
    daily_limit      INTEGER,
    authors          TEXT NOT NULL DEFAULT '[]',
    state            TEXT NOT NULL DEFAULT '{}',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sites_by_user ON sites(user_id, created_at);
CREATE TABLE IF NOT EXISTS posts (
    user_id      TEXT NOT NULL,
    site_id      TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    slug         TEXT NOT NULL,
    item_key     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    status       TEXT NOT NULL,
    day          TEXT NOT NULL,
    post_id      TEXT,
    post_url     TEXT,
    title        TEXT NOT NULL DEFAULT '',
    published_at TEXT,
    created_at   TEXT NOT NULL,
    attempt      TEXT NOT NULL DEFAULT '',
    reserved_at  TEXT,
    PRIMARY KEY (user_id, site_id, slug)
);
CREATE INDEX IF NOT EXISTS posts_by_day ON posts(site_id, day);
CREATE INDEX IF NOT EXISTS posts_by_user ON posts(user_id, created_at);
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
    updated_at  TEXT NOT NULL
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

# Per record: which columns hold JSON and which hold datetimes.
_JSON = {
    User: ("settings",),
    Site: ("defaults", "authors", "state"),
    Run: ("options", "counts"),
    Item: ("input", "result"),
    LedgerEntry: (),
}
_TIMES = {
    User: ("created_at",),
    Site: ("created_at", "updated_at"),
    Run: ("lease_until", "created_at", "updated_at"),
    Item: ("updated_at",),
    LedgerEntry: ("published_at", "created_at", "reserved_at"),
}

# Columns added after the first release: (table, column, definition) for files made before.
_ADDED_COLUMNS = (
    ("posts", "attempt", "TEXT NOT NULL DEFAULT ''"),
    ("posts", "reserved_at", "TEXT"),
)

BUSY_TIMEOUT_MS = 30_000


def _encode(cls: type, name: str, value: Any) -> Any:
    if name in _JSON[cls]:
        return dumps(value)
    if name in _TIMES[cls]:
        return to_iso(value)
    return value


def _decode(cls: type, row: sqlite3.Row) -> Any:
    values: dict[str, Any] = {}
    for name in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        value = row[name]
        if name in _JSON[cls]:
            value = json.loads(value)
        elif name in _TIMES[cls]:
            value = from_iso(value)
        values[name] = value
    return cls(**values)


class SQLiteStore:
    """Store on one SQLite file; see the module docstring for the concurrency model."""

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
            self._conn.executescript(SCHEMA)   # idempotent: IF NOT EXISTS throughout
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a database file made by an older version up to the current columns."""
        assert self._conn is not None
        for table, column, definition in _ADDED_COLUMNS:
            have = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                try:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                except sqlite3.OperationalError as exc:    # another process just added it
                    if "duplicate column" not in str(exc):
                        raise

    # plumbing ----------------------------------------------------------------------------------
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

    @staticmethod
    def _insert(db: sqlite3.Connection, table: str, cls: type, record: Any,
                skip: tuple[str, ...] = ()) -> None:
        names = [n for n in record.__dataclass_fields__ if n not in skip]
        db.execute(
            f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [_encode(cls, n, getattr(record, n)) for n in names])

    @staticmethod
    def _set(db: sqlite3.Connection, table: str, cls: type, changes: dict[str, Any],
             where: str, args: Sequence[Any]) -> None:
        if not changes:
            return
        names = list(changes)
        db.execute(f"UPDATE {table} SET {', '.join(f'{n} = ?' for n in names)} WHERE {where}",
                   [_encode(cls, n, changes[n]) for n in names] + list(args))

    # users -------------------------------------------------------------------------------------
    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        if not email:
            raise ValueError("email is required")
        user = User(id=new_id(), email=email, password_hash=password_hash,
                    display_name=display_name, created_at=aware_utc(utcnow()))
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
                raise DuplicateError(f"email already registered: {email}")
            self._insert(db, "users", User, user)
        return user

    def get_user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return _decode(User, row) if row else None

    def get_user_by_email(self, email: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE email = ?", (email,))
        return _decode(User, row) if row else None

    def update_user_settings(self, user_id: str, settings: dict[str, Any]) -> User:
        with self._tx() as db:
            row = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no user {user_id}")
            user = _decode(User, row)
            user.settings = jsonable({**user.settings, **settings})
            self._set(db, "users", User, {"settings": user.settings}, "id = ?", (user_id,))
        return user

    # sites -------------------------------------------------------------------------------------
    def create_site(self, user_id: str, site: Site) -> Site:
        now = aware_utc(utcnow())
        stored = Site(**{**site.__dict__, "id": site.id or new_id(), "user_id": user_id,
                         "defaults": jsonable(site.defaults), "authors": jsonable(site.authors),
                         "state": jsonable(site.state), "created_at": aware_utc(site.created_at),
                         "updated_at": now})
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone():
                raise NotFoundError(f"no user {user_id}")
            if db.execute("SELECT 1 FROM sites WHERE id = ?", (stored.id,)).fetchone():
                raise DuplicateError(f"site id already used: {stored.id}")
            self._insert(db, "sites", Site, stored)
        return stored

    def get_site(self, user_id: str, site_id: str) -> Site | None:
        row = self._one("SELECT * FROM sites WHERE id = ? AND user_id = ?", (site_id, user_id))
        return _decode(Site, row) if row else None

    def list_sites(self, user_id: str) -> list[Site]:
        rows = self._all("SELECT * FROM sites WHERE user_id = ? ORDER BY created_at, id",
                         (user_id,))
        return [_decode(Site, r) for r in rows]

    def update_site(self, user_id: str, site_id: str, changes: dict[str, Any]) -> Site:
        check_changes(Site, changes, SITE_FIXED)
        changes = {**changes, "updated_at": aware_utc(changes.get("updated_at") or utcnow())}
        with self._tx() as db:
            where, args = "id = ? AND user_id = ?", (site_id, user_id)
            if not db.execute(f"SELECT 1 FROM sites WHERE {where}", args).fetchone():
                raise NotFoundError(f"no site {site_id}")
            self._set(db, "sites", Site, changes, where, args)
            row = db.execute(f"SELECT * FROM sites WHERE {where}", args).fetchone()
        return _decode(Site, row)

    def delete_site(self, user_id: str, site_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM sites WHERE id = ? AND user_id = ?", (site_id, user_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no site {site_id}")

    def update_site_state(self, user_id: str, site_id: str,
                          mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        with self._tx() as db:
            where, args = "id = ? AND user_id = ?", (site_id, user_id)
            row = db.execute(f"SELECT state FROM sites WHERE {where}", args).fetchone()
            if row is None:
                raise NotFoundError(f"no site {site_id}")
            state = jsonable(mutate(json.loads(row["state"])))
            self._set(db, "sites", Site, {"state": state, "updated_at": utcnow()}, where, args)
        return state

    # runs --------------------------------------------------------------------------------------
    def create_run(self, run: Run, items: Sequence[NewItem]) -> Run:
        check_run_status(run.status)
        now = aware_utc(utcnow())
        stored = Run(**{**run.__dict__, "id": run.id or new_id(), "total": len(items),
                        "counts": initial_counts(len(items)), "options": jsonable(run.options),
                        "created_at": aware_utc(run.created_at),
                        "updated_at": aware_utc(run.updated_at)})
        rows = [Item(run_id=stored.id, position=i, key=it.key, input=jsonable(it.input),
                     label=it.label, updated_at=now) for i, it in enumerate(items)]
        with self._tx() as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (stored.id,)).fetchone():
                raise DuplicateError(f"run id already used: {stored.id}")
            self._insert(db, "runs", Run, stored)
            for item in rows:
                self._insert(db, "items", Item, item)
        return stored

    def get_run(self, run_id: str) -> Run | None:
        row = self._one("SELECT * FROM runs WHERE id = ?", (run_id,))
        return _decode(Run, row) if row else None

    def list_runs(self, user_id: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 50, offset: int = 0) -> list[Run]:
        check_page(limit, offset)
        where, args = [], []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
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
        return [_decode(Run, r) for r in self._all(sql, [*args, limit, offset])]

    def transition_run(self, run_id: str, expected: Iterable[str], new_status: str,
                       **changes: Any) -> Run:
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
            self._set(db, "runs", Run, self._run_changes(changes, status=new_status),
                      "id = ?", (run_id,))
            return _decode(Run, db.execute("SELECT * FROM runs WHERE id = ?",
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
            self._set(db, "runs", Run, self._run_changes(changes), "id = ?", (run_id,))
            return _decode(Run, db.execute("SELECT * FROM runs WHERE id = ?",
                                            (run_id,)).fetchone())

    # items -------------------------------------------------------------------------------------
    def list_items(self, run_id: str) -> list[Item]:
        rows = self._all("SELECT * FROM items WHERE run_id = ? ORDER BY position", (run_id,))
        return [_decode(Item, r) for r in rows]

    def get_item(self, run_id: str, position: int) -> Item | None:
        row = self._one("SELECT * FROM items WHERE run_id = ? AND position = ?",
                        (run_id, position))
        return _decode(Item, row) if row else None

    @staticmethod
    def _item_changes(changes: dict[str, Any], **more: Any) -> dict[str, Any]:
        out = {**changes, **more}
        for name in ("input", "result"):
            if name in out:
                out[name] = jsonable(out[name])
        out["updated_at"] = changes.get("updated_at") or utcnow()
        return out

    def transition_item(self, run_id: str, position: int, expected: Iterable[str],
                        new_status: str, **changes: Any) -> Item:
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
            self._set(db, "items", Item, self._item_changes(changes, status=new_status),
                      where, args)
            if old != new_status:
                counts = json.loads(db.execute("SELECT counts FROM runs WHERE id = ?",
                                               (run_id,)).fetchone()["counts"])
                counts[old] = counts.get(old, 0) - 1
                counts[new_status] = counts.get(new_status, 0) + 1
                db.execute("UPDATE runs SET counts = ? WHERE id = ?", (dumps(counts), run_id))
            return _decode(Item, db.execute(f"SELECT * FROM items WHERE {where}",
                                             args).fetchone())

    def update_item(self, run_id: str, position: int, **changes: Any) -> Item:
        check_changes(Item, changes, ITEM_FIXED)
        where, args = "run_id = ? AND position = ?", (run_id, position)
        with self._tx() as db:
            if not db.execute(f"SELECT 1 FROM items WHERE {where}", args).fetchone():
                raise NotFoundError(f"no item {position} in run {run_id}")
            self._set(db, "items", Item, self._item_changes(changes), where, args)
            return _decode(Item, db.execute(f"SELECT * FROM items WHERE {where}",
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

    # publish ledger ----------------------------------------------------------------------------
    _POST_KEY = "user_id = ? AND site_id = ? AND slug = ?"

    def reserve_post(self, entry: LedgerEntry, daily_limit: int | None = None
                     ) -> tuple[LedgerEntry, bool]:
        if not entry.slug:
            raise ValueError("slug is required")
        created = aware_utc(entry.created_at)
        stored = LedgerEntry(**{**entry.__dict__, "day": entry.day or day_of(created),
                                "created_at": created})
        key = (entry.user_id, entry.site_id, entry.slug)
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM sites WHERE id = ? AND user_id = ?",
                              (entry.site_id, entry.user_id)).fetchone():
                raise NotFoundError(f"no site {entry.site_id}")
            row = db.execute(f"SELECT * FROM posts WHERE {self._POST_KEY}", key).fetchone()
            if row is not None:
                return _decode(LedgerEntry, row), False
            if daily_limit is not None:
                used = db.execute("SELECT COUNT(*) FROM posts WHERE user_id = ? AND site_id = ? "
                                  "AND day = ?", (entry.user_id, entry.site_id, stored.day)
                                  ).fetchone()[0]
                if used >= daily_limit:
                    raise DailyLimitReached(
                        f"site {entry.site_id} has {used} of {daily_limit} posts on {stored.day}")
            self._insert(db, "posts", LedgerEntry, stored)
        return stored, True

    def complete_post(self, user_id: str, site_id: str, slug: str, *, post_id: str,
                      post_url: str, title: str = "") -> LedgerEntry:
        key = (user_id, site_id, slug)
        with self._tx() as db:
            if not db.execute(f"SELECT 1 FROM posts WHERE {self._POST_KEY}", key).fetchone():
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            self._set(db, "posts", LedgerEntry,
                      {"status": "published", "post_id": str(post_id), "post_url": post_url,
                       "title": title, "published_at": utcnow()}, self._POST_KEY, key)
            return _decode(LedgerEntry, db.execute(f"SELECT * FROM posts WHERE {self._POST_KEY}",
                                                   key).fetchone())

    def release_post(self, user_id: str, site_id: str, slug: str,
                     attempt: str | None = None) -> None:
        where, args = f"{self._POST_KEY} AND status = 'reserved'", [user_id, site_id, slug]
        if attempt is not None:
            where += " AND attempt = ?"
            args.append(attempt)
        with self._tx() as db:
            db.execute(f"DELETE FROM posts WHERE {where}", args)

    def claim_post(self, user_id: str, site_id: str, slug: str, *, expected_attempt: str,
                   attempt: str, now: datetime) -> LedgerEntry:
        key = (user_id, site_id, slug)
        with self._tx() as db:
            row = db.execute(f"SELECT * FROM posts WHERE {self._POST_KEY}", key).fetchone()
            if row is None:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            if row["status"] != "reserved" or row["attempt"] != expected_attempt:
                raise ConflictError(f"ledger entry {slug} is {row['status']} by another attempt",
                                    current=row["status"])
            self._set(db, "posts", LedgerEntry, {"attempt": attempt,
                                                 "reserved_at": aware_utc(now)},
                      self._POST_KEY, key)
            return _decode(LedgerEntry, db.execute(f"SELECT * FROM posts WHERE {self._POST_KEY}",
                                                   key).fetchone())

    def get_post(self, user_id: str, site_id: str, slug: str) -> LedgerEntry | None:
        row = self._one(f"SELECT * FROM posts WHERE {self._POST_KEY}", (user_id, site_id, slug))
        return _decode(LedgerEntry, row) if row else None

    def list_posts(self, user_id: str, site_id: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[LedgerEntry]:
        check_page(limit, offset)
        where, args = "user_id = ?", [user_id]
        if site_id is not None:
            where += " AND site_id = ?"
            args.append(site_id)
        rows = self._all(f"SELECT * FROM posts WHERE {where} ORDER BY created_at DESC, slug DESC "
                         "LIMIT ? OFFSET ?", [*args, limit, offset])
        return [_decode(LedgerEntry, r) for r in rows]

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

    # housekeeping ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
