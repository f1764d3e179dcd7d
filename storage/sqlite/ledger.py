"""SQLite publish ledger: one row per post per site, the exactly-once record."""

from __future__ import annotations

from datetime import datetime

from storage._common import aware_utc
from storage._ledger import new_post_entry
from storage._listing import check_listing, cursor_values
from storage.base import ConflictError, DailyLimitReached, LedgerEntry, NotFoundError, utcnow
from storage.paging import Cursor
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns

_POST_KEY = "user_id = ? AND site_id = ? AND slug = ?"


class LedgerMixin(SQLiteConnection):
    SCHEMA = """
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
        last_updated_run TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (user_id, site_id, slug)
    );
    DROP INDEX IF EXISTS posts_by_day;
    CREATE INDEX IF NOT EXISTS posts_user_site_day ON posts(user_id, site_id, day);
    DROP INDEX IF EXISTS posts_by_user;
    CREATE INDEX IF NOT EXISTS posts_user_time ON posts(user_id, created_at, site_id, slug);
    CREATE INDEX IF NOT EXISTS posts_user_site_time ON posts(user_id, site_id, created_at, slug);
    CREATE INDEX IF NOT EXISTS posts_user_kind_time
        ON posts(user_id, kind, created_at, site_id, slug);
    CREATE INDEX IF NOT EXISTS posts_user_site_kind_time
        ON posts(user_id, site_id, kind, created_at, slug);
    """
    ADDED_COLUMNS = (
        ("posts", "attempt", "TEXT NOT NULL DEFAULT ''"),
        ("posts", "reserved_at", "TEXT"),
        ("posts", "last_updated_run", "TEXT NOT NULL DEFAULT ''"),
    )

    def reserve_post(self, entry: LedgerEntry, daily_limit: int | None = None
                     ) -> tuple[LedgerEntry, bool]:
        stored = new_post_entry(entry)
        key = (entry.user_id, entry.site_id, entry.slug)
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM sites WHERE id = ? AND user_id = ?",
                              (entry.site_id, entry.user_id)).fetchone():
                raise NotFoundError(f"no site {entry.site_id}")
            row = db.execute(f"SELECT * FROM posts WHERE {_POST_KEY}", key).fetchone()
            if row is not None:
                return decode(LedgerEntry, row), False
            if daily_limit is not None:
                used = db.execute("SELECT COUNT(*) FROM posts WHERE user_id = ? AND site_id = ? "
                                  "AND day = ?", (entry.user_id, entry.site_id, stored.day)
                                  ).fetchone()[0]
                if used >= daily_limit:
                    raise DailyLimitReached(
                        f"site {entry.site_id} has {used} of {daily_limit} posts on {stored.day}")
            insert(db, "posts", LedgerEntry, stored)
        return stored, True

    def complete_post(self, user_id: str, site_id: str, slug: str, *, post_id: str,
                      post_url: str, title: str = "") -> LedgerEntry:
        key = (user_id, site_id, slug)
        with self._tx() as db:
            if not db.execute(f"SELECT 1 FROM posts WHERE {_POST_KEY}", key).fetchone():
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            set_columns(db, "posts", LedgerEntry,
                        {"status": "published", "post_id": str(post_id), "post_url": post_url,
                         "title": title, "published_at": utcnow()}, _POST_KEY, key)
            return decode(LedgerEntry, db.execute(f"SELECT * FROM posts WHERE {_POST_KEY}",
                                                  key).fetchone())

    def release_post(self, user_id: str, site_id: str, slug: str,
                     attempt: str | None = None) -> None:
        where, args = f"{_POST_KEY} AND status = 'reserved'", [user_id, site_id, slug]
        if attempt is not None:
            where += " AND attempt = ?"
            args.append(attempt)
        with self._tx() as db:
            db.execute(f"DELETE FROM posts WHERE {where}", args)

    def claim_post(self, user_id: str, site_id: str, slug: str, *, expected_attempt: str,
                   attempt: str, now: datetime) -> LedgerEntry:
        key = (user_id, site_id, slug)
        with self._tx() as db:
            row = db.execute(f"SELECT * FROM posts WHERE {_POST_KEY}", key).fetchone()
            if row is None:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            if row["status"] != "reserved" or row["attempt"] != expected_attempt:
                raise ConflictError(f"ledger entry {slug} is {row['status']} by another attempt",
                                    current=row["status"])
            set_columns(db, "posts", LedgerEntry, {"attempt": attempt,
                                                   "reserved_at": aware_utc(now)},
                        _POST_KEY, key)
            return decode(LedgerEntry, db.execute(f"SELECT * FROM posts WHERE {_POST_KEY}",
                                                  key).fetchone())

    def record_update(self, user_id: str, site_id: str, slug: str, *, run_id: str,
                      post_id: str, post_url: str, title: str = "") -> LedgerEntry:
        key = (user_id, site_id, slug)
        with self._tx() as db:
            if not db.execute(f"SELECT 1 FROM posts WHERE {_POST_KEY}", key).fetchone():
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            set_columns(db, "posts", LedgerEntry,
                        {"last_updated_run": run_id, "post_id": str(post_id),
                         "post_url": post_url, "title": title}, _POST_KEY, key)
            return decode(LedgerEntry, db.execute(f"SELECT * FROM posts WHERE {_POST_KEY}",
                                                  key).fetchone())

    def get_post(self, user_id: str, site_id: str, slug: str) -> LedgerEntry | None:
        row = self._one(f"SELECT * FROM posts WHERE {_POST_KEY}", (user_id, site_id, slug))
        return decode(LedgerEntry, row) if row else None

    def list_posts(self, user_id: str, site_id: str | None = None, limit: int = 50,
                   offset: int = 0, *, kind: str | None = None, after: Cursor | None = None,
                   oldest_first: bool = False) -> list[LedgerEntry]:
        check_listing(limit, offset, after, 2)
        where, args = ["user_id = ?"], [user_id]
        for column, value in (("site_id", site_id), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if after is not None:
            where.append(f"(created_at, site_id, slug) {'>' if oldest_first else '<'} (?, ?, ?)")
            args.extend(cursor_values(after))
        order = "ASC" if oldest_first else "DESC"
        rows = self._all(f"SELECT * FROM posts WHERE {' AND '.join(where)} ORDER BY "
                         f"created_at {order}, site_id {order}, slug {order} LIMIT ? OFFSET ?",
                         [*args, limit, offset])
        return [decode(LedgerEntry, r) for r in rows]
