"""SQLite sites: a user's publishing targets and their bookkeeping state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from storage._common import SITE_FIXED, aware_utc, check_changes, jsonable, new_id
from storage.base import DuplicateError, NotFoundError, Site, utcnow
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns


class SitesMixin(SQLiteConnection):
    SCHEMA = """
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
    """

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
            insert(db, "sites", Site, stored)
        return stored

    def get_site(self, user_id: str, site_id: str) -> Site | None:
        row = self._one("SELECT * FROM sites WHERE id = ? AND user_id = ?", (site_id, user_id))
        return decode(Site, row) if row else None

    def list_sites(self, user_id: str) -> list[Site]:
        rows = self._all("SELECT * FROM sites WHERE user_id = ? ORDER BY created_at, id",
                         (user_id,))
        return [decode(Site, r) for r in rows]

    def update_site(self, user_id: str, site_id: str, changes: dict[str, Any]) -> Site:
        check_changes(Site, changes, SITE_FIXED)
        changes = {**changes, "updated_at": aware_utc(changes.get("updated_at") or utcnow())}
        with self._tx() as db:
            where, args = "id = ? AND user_id = ?", (site_id, user_id)
            if not db.execute(f"SELECT 1 FROM sites WHERE {where}", args).fetchone():
                raise NotFoundError(f"no site {site_id}")
            set_columns(db, "sites", Site, changes, where, args)
            row = db.execute(f"SELECT * FROM sites WHERE {where}", args).fetchone()
        return decode(Site, row)

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
            set_columns(db, "sites", Site, {"state": state, "updated_at": utcnow()}, where, args)
        return state
