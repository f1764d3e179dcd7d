"""SQLite notifications, webhooks and the outbox (events and their deliveries).

``write_outbox(db, events)`` is what a transition calls inside its own ``BEGIN IMMEDIATE``, so
an event is stored exactly when its transition is. A claim is one write transaction too: the due
rows are read and leased under the write lock, so two claimers (threads or processes on one
file) never lease the same delivery.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from storage._common import aware_utc, check_page, dumps, jsonable, new_id, to_iso
from storage._outbox import (
    check_outcome,
    finished_delivery_changes,
    finished_webhook_changes,
    prepare_events,
    webhook_attempt_record,
)
from storage.base import ConflictError, DuplicateError, NotFoundError, utcnow
from storage.notification_records import (
    Delivery,
    DeliveryOutcome,
    NewDelivery,
    Notification,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
)
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns


def _notification(row: sqlite3.Row) -> Notification:
    record = decode(Notification, row)
    record.read = bool(record.read)
    return record


def _webhook(row: sqlite3.Row) -> Webhook:
    record = decode(Webhook, row)
    record.failing = bool(record.failing)
    return record


def _event(row: sqlite3.Row) -> OutboxEvent:
    record = decode(OutboxEvent, row)
    record.deliveries = [NewDelivery(d["channel"], d.get("target", ""))
                         for d in record.deliveries]
    return record


def write_outbox(db: sqlite3.Connection, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
    """Inside the caller's transaction: each new event, its notification and its deliveries.
    An id already stored, or an event for a user that does not exist, is left out."""
    written: list[OutboxEvent] = []
    for prepared in prepare_events(events):
        event = prepared.event
        if db.execute("SELECT 1 FROM outbox WHERE id = ?", (event.id,)).fetchone():
            continue
        if not db.execute("SELECT 1 FROM users WHERE id = ?", (event.user_id,)).fetchone():
            continue
        row = {**asdict(event), "deliveries": [asdict(d) for d in event.deliveries]}
        names = list(row)
        values = [dumps(row[n]) if n in ("data", "deliveries") else
                  to_iso(row[n]) if n == "created_at" else row[n] for n in names]
        db.execute(f"INSERT INTO outbox ({', '.join(names)}) "
                   f"VALUES ({', '.join('?' for _ in names)})", values)
        if prepared.notification is not None:
            # An event id retention removed may come again: its notification is the new one.
            db.execute("DELETE FROM notifications WHERE id = ?", (prepared.notification.id,))
            insert(db, "notifications", Notification, prepared.notification)
        for delivery in prepared.deliveries:
            insert(db, "deliveries", Delivery, delivery)
        written.append(event)
    return written


class NotificationsMixin(SQLiteConnection):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS notifications (
        id          TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        type        TEXT NOT NULL,
        title       TEXT NOT NULL,
        message     TEXT NOT NULL DEFAULT '',
        run_id      TEXT,
        campaign_id TEXT,
        link        TEXT NOT NULL DEFAULT '',
        read        INTEGER NOT NULL DEFAULT 0,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications(user_id, created_at);
    CREATE INDEX IF NOT EXISTS notifications_unread ON notifications(user_id, read);
    CREATE TABLE IF NOT EXISTS webhooks (
        id              TEXT PRIMARY KEY,
        user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        url             TEXT NOT NULL,
        events          TEXT NOT NULL DEFAULT '[]',
        secret_enc      TEXT NOT NULL DEFAULT '',
        failing         INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        last_success_at TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS webhooks_by_user ON webhooks(user_id, created_at);
    CREATE TABLE IF NOT EXISTS webhook_attempts (
        id          TEXT PRIMARY KEY,
        webhook_id  TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        user_id     TEXT NOT NULL,
        delivery_id TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        type        TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        status_code INTEGER,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        created_at  TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS attempts_by_webhook ON webhook_attempts(webhook_id, created_at);
    CREATE TABLE IF NOT EXISTS outbox (
        id          TEXT PRIMARY KEY,
        user_id     TEXT NOT NULL,
        type        TEXT NOT NULL,
        title       TEXT NOT NULL,
        message     TEXT NOT NULL DEFAULT '',
        data        TEXT NOT NULL DEFAULT '{}',
        run_id      TEXT,
        campaign_id TEXT,
        link        TEXT NOT NULL DEFAULT '',
        deliveries  TEXT NOT NULL DEFAULT '[]',
        created_at  TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS deliveries (
        id              TEXT PRIMARY KEY,
        event_id        TEXT NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
        user_id         TEXT NOT NULL,
        channel         TEXT NOT NULL,
        target          TEXT NOT NULL DEFAULT '',
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        lease_owner     TEXT,
        last_error      TEXT,
        last_status     INTEGER,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL,
        delivered_at    TEXT
    );
    CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_at);
    CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries(event_id);
    """

    # notifications ---------------------------------------------------------------------------
    def list_notifications(self, user_id: str, *, unread_only: bool = False, limit: int = 50,
                           offset: int = 0) -> list[Notification]:
        check_page(limit, offset)
        where = "user_id = ?" + (" AND read = 0" if unread_only else "")
        rows = self._all(f"SELECT * FROM notifications WHERE {where} "
                         "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                         (user_id, limit, offset))
        return [_notification(r) for r in rows]

    def count_unread_notifications(self, user_id: str) -> int:
        row = self._one("SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read = 0",
                        (user_id,))
        return int(row[0]) if row else 0

    def mark_notifications_read(self, user_id: str, ids: Sequence[str] | None = None) -> int:
        with self._tx() as db:
            if ids is None:
                cur = db.execute("UPDATE notifications SET read = 1 "
                                 "WHERE user_id = ? AND read = 0", (user_id,))
                return cur.rowcount
            wanted = sorted({str(i) for i in ids})
            if not wanted:
                return 0
            cur = db.execute(
                f"UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0 "
                f"AND id IN ({', '.join('?' for _ in wanted)})", [user_id, *wanted])
            return cur.rowcount

    # webhooks --------------------------------------------------------------------------------
    def create_webhook(self, webhook: Webhook) -> Webhook:
        now = aware_utc(utcnow())
        stored = Webhook(**{**webhook.__dict__, "id": webhook.id or new_id(),
                            "events": jsonable(list(webhook.events)),
                            "created_at": aware_utc(webhook.created_at), "updated_at": now})
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM users WHERE id = ?",
                              (stored.user_id,)).fetchone():
                raise NotFoundError(f"no user {stored.user_id}")
            if db.execute("SELECT 1 FROM webhooks WHERE id = ?", (stored.id,)).fetchone():
                raise DuplicateError(f"webhook id already used: {stored.id}")
            insert(db, "webhooks", Webhook, stored)
        return stored

    def get_webhook(self, user_id: str | None, webhook_id: str) -> Webhook | None:
        row = self._one("SELECT * FROM webhooks WHERE id = ?", (webhook_id,))
        if row is None or (user_id is not None and row["user_id"] != user_id):
            return None
        return _webhook(row)

    def list_webhooks(self, user_id: str) -> list[Webhook]:
        rows = self._all("SELECT * FROM webhooks WHERE user_id = ? ORDER BY created_at, id",
                         (user_id,))
        return [_webhook(r) for r in rows]

    def delete_webhook(self, user_id: str, webhook_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM webhooks WHERE id = ? AND user_id = ?",
                             (webhook_id, user_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no webhook {webhook_id}")

    def list_webhook_attempts(self, user_id: str, webhook_id: str, limit: int = 50,
                              offset: int = 0) -> list[WebhookAttempt]:
        check_page(limit, offset)
        rows = self._all("SELECT * FROM webhook_attempts WHERE webhook_id = ? AND user_id = ? "
                         "ORDER BY created_at DESC, attempt DESC, id DESC LIMIT ? OFFSET ?",
                         (webhook_id, user_id, limit, offset))
        return [decode(WebhookAttempt, r) for r in rows]

    # outbox ----------------------------------------------------------------------------------
    def add_outbox(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        with self._tx() as db:
            return write_outbox(db, events)

    def get_outbox_event(self, event_id: str) -> OutboxEvent | None:
        row = self._one("SELECT * FROM outbox WHERE id = ?", (event_id,))
        return _event(row) if row else None

    def list_deliveries(self, event_id: str) -> list[Delivery]:
        rows = self._all("SELECT * FROM deliveries WHERE event_id = ? ORDER BY id", (event_id,))
        return [decode(Delivery, r) for r in rows]

    def claim_deliveries(self, owner: str, now: datetime, lease_until: datetime,
                         limit: int = 20) -> list[Delivery]:
        check_page(limit)
        now_text, until = to_iso(now), aware_utc(lease_until)
        with self._tx() as db:
            rows = db.execute("SELECT * FROM deliveries WHERE state = 'pending' AND "
                              "next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                              (now_text, limit)).fetchall()
            claimed = []
            for row in rows:
                delivery = decode(Delivery, row)
                changes: dict[str, Any] = {"lease_owner": owner, "next_attempt_at": until,
                                           "attempts": delivery.attempts + 1,
                                           "updated_at": aware_utc(now)}
                set_columns(db, "deliveries", Delivery, changes, "id = ?", (delivery.id,))
                claimed.append(Delivery(**{**delivery.__dict__, **changes}))
        return claimed

    def finish_delivery(self, delivery: Delivery, owner: str, outcome: DeliveryOutcome
                        ) -> Delivery:
        outcome = check_outcome(outcome)
        now = aware_utc(utcnow())
        with self._tx() as db:
            row = db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery.id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no delivery {delivery.id}")
            if row["state"] != "pending" or row["lease_owner"] != owner:
                raise ConflictError(f"delivery {delivery.id} is {row['state']} and leased to "
                                    f"{row['lease_owner']}", current=row["state"])
            changes = finished_delivery_changes(outcome, now)
            set_columns(db, "deliveries", Delivery, changes, "id = ?", (delivery.id,))
            self._webhook_after(db, delivery, outcome, now)
            write_outbox(db, outcome.outbox)
            return decode(Delivery, db.execute("SELECT * FROM deliveries WHERE id = ?",
                                               (delivery.id,)).fetchone())

    @staticmethod
    def _webhook_after(db: sqlite3.Connection, delivery: Delivery, outcome: DeliveryOutcome,
                       now: datetime) -> None:
        """The webhook's log row and flags, when the delivery is a webhook's and it exists."""
        if delivery.channel != "webhook":
            return
        hook = db.execute("SELECT id FROM webhooks WHERE id = ?", (delivery.target,)).fetchone()
        if hook is None:
            return
        if outcome.log is not None:
            insert(db, "webhook_attempts", WebhookAttempt, webhook_attempt_record(outcome.log))
        changes = finished_webhook_changes(outcome, now)
        if changes:
            set_columns(db, "webhooks", Webhook, {**changes, "updated_at": now}, "id = ?",
                        (delivery.target,))
