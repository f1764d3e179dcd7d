"""SQLite campaigns and their fires; a fire's run is created in the fire's own transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage._campaigns import campaign_changes, check_fire_run, new_campaign, recorded_fire
from storage._common import aware_utc, check_fires, check_page, to_iso
from storage._runs import new_run_records
from storage.base import (
    Campaign,
    ConflictError,
    DuplicateError,
    Fire,
    NewItem,
    NotFoundError,
    Run,
    utcnow,
)
from storage.notification_records import OutboxEvent
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns
from storage.sqlite.notifications import write_outbox
from storage.sqlite.runs import RunsMixin


class CampaignsMixin(RunsMixin, SQLiteConnection):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS campaigns (
        id               TEXT PRIMARY KEY,
        user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name             TEXT NOT NULL,
        kind             TEXT NOT NULL,
        site_id          TEXT NOT NULL,
        options          TEXT NOT NULL DEFAULT '{}',
        source           TEXT NOT NULL DEFAULT '{}',
        per_run          INTEGER NOT NULL,
        schedule         TEXT NOT NULL DEFAULT '{}',
        status           TEXT NOT NULL,
        next_fire_at     TEXT,
        catch_up_seconds INTEGER NOT NULL,
        queue            TEXT NOT NULL DEFAULT '{}',
        last_run_id      TEXT,
        revision         INTEGER NOT NULL DEFAULT 0,
        created_at       TEXT NOT NULL,
        updated_at       TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS campaigns_by_user ON campaigns(user_id, created_at);
    CREATE INDEX IF NOT EXISTS campaigns_due ON campaigns(status, next_fire_at);
    CREATE TABLE IF NOT EXISTS fires (
        id            TEXT PRIMARY KEY,
        campaign_id   TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
        user_id       TEXT NOT NULL,
        scheduled_for TEXT NOT NULL,
        outcome       TEXT NOT NULL,
        reason        TEXT NOT NULL DEFAULT '',
        run_id        TEXT,
        fired_at      TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS fires_by_campaign ON fires(campaign_id, scheduled_for);
    """

    def create_campaign(self, campaign: Campaign) -> Campaign:
        stored = new_campaign(campaign)
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM users WHERE id = ?",
                              (stored.user_id,)).fetchone():
                raise NotFoundError(f"no user {stored.user_id}")
            if db.execute("SELECT 1 FROM campaigns WHERE id = ?", (stored.id,)).fetchone():
                raise DuplicateError(f"campaign id already used: {stored.id}")
            insert(db, "campaigns", Campaign, stored)
        return stored

    def get_campaign(self, user_id: str | None, campaign_id: str) -> Campaign | None:
        row = self._one("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        if row is None or (user_id is not None and row["user_id"] != user_id):
            return None
        return decode(Campaign, row)

    def list_campaigns(self, user_id: str) -> list[Campaign]:
        rows = self._all("SELECT * FROM campaigns WHERE user_id = ? ORDER BY created_at, id",
                         (user_id,))
        return [decode(Campaign, r) for r in rows]

    def list_due_campaigns(self, now: datetime, limit: int = 100) -> list[Campaign]:
        check_page(limit)
        rows = self._all("SELECT * FROM campaigns WHERE status = 'active' AND next_fire_at "
                         "IS NOT NULL AND next_fire_at <= ? ORDER BY next_fire_at, id LIMIT ?",
                         (to_iso(now), limit))
        return [decode(Campaign, r) for r in rows]

    @staticmethod
    def _locked_campaign(db: sqlite3.Connection, user_id: str | None, campaign_id: str,
                         expected_revision: int | None) -> sqlite3.Row:
        row = db.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        if row is None or (user_id is not None and row["user_id"] != user_id):
            raise NotFoundError(f"no campaign {campaign_id}")
        if expected_revision is not None and row["revision"] != expected_revision:
            raise ConflictError(f"campaign {campaign_id} is at revision {row['revision']}, "
                                f"not {expected_revision}", current=str(row["revision"]))
        return row

    def update_campaign(self, user_id: str, campaign_id: str, changes: dict[str, Any],
                        expected_revision: int | None = None) -> Campaign:
        out = campaign_changes(changes)
        with self._tx() as db:
            row = self._locked_campaign(db, user_id, campaign_id, expected_revision)
            set_columns(db, "campaigns", Campaign, {**out, "revision": row["revision"] + 1},
                        "id = ?", (campaign_id,))
            return decode(Campaign, db.execute("SELECT * FROM campaigns WHERE id = ?",
                                               (campaign_id,)).fetchone())

    def delete_campaign(self, user_id: str, campaign_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM campaigns WHERE id = ? AND user_id = ?",
                             (campaign_id, user_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no campaign {campaign_id}")

    def list_fires(self, campaign_id: str, limit: int = 50, offset: int = 0) -> list[Fire]:
        check_page(limit, offset)
        rows = self._all("SELECT * FROM fires WHERE campaign_id = ? ORDER BY scheduled_for DESC,"
                         " id DESC LIMIT ? OFFSET ?", (campaign_id, limit, offset))
        return [decode(Fire, r) for r in rows]

    def fire_campaign(self, campaign_id: str, *, expected_revision: int,
                      fires: Sequence[Fire], changes: dict[str, Any],
                      run: Run | None = None, items: Sequence[NewItem] = (),
                      outbox: Sequence[OutboxEvent] = ()) -> tuple[Campaign, Run | None]:
        out = campaign_changes(changes)
        check_fires(campaign_id, fires, run.fire_id if run is not None else None)
        stored_run, rows = new_run_records(run, items) if run is not None else (None, [])
        check_fire_run(campaign_id, stored_run)
        now = aware_utc(utcnow())
        with self._tx() as db:
            row = self._locked_campaign(db, None, campaign_id, expected_revision)
            for fire in fires:
                if db.execute("SELECT 1 FROM fires WHERE id = ?", (fire.id,)).fetchone():
                    raise DuplicateError(f"fire {fire.id} is already recorded")
                recorded = recorded_fire(fire, row["user_id"], stored_run, now)
                insert(db, "fires", Fire, recorded)
            if stored_run is not None:
                self._insert_run(db, stored_run, rows)
                out["last_run_id"] = stored_run.id
            set_columns(db, "campaigns", Campaign, {**out, "revision": row["revision"] + 1},
                        "id = ?", (campaign_id,))
            write_outbox(db, outbox)
            campaign = decode(Campaign, db.execute("SELECT * FROM campaigns WHERE id = ?",
                                                   (campaign_id,)).fetchone())
        return campaign, stored_run
