"""SQLite retention of what the outbox leaves behind: old notifications, finished outbox
events and webhooks' old delivery attempts (each webhook's newest ones stay), deleted in bounded
batches (each one short write transaction, so the portal's writes wait at most a batch). Runs
are pruned in ``runs`` (``list_prunable_runs``, ``prune_run``).
"""

from __future__ import annotations

from datetime import datetime

from storage._common import from_iso, to_iso
from storage._listing import check_listing, cursor_values
from storage.housekeeping import OutboxPruned, WebhookAttemptsPruned, walk_webhook_attempts
from storage.paging import Cursor
from storage.sqlite.connection import SQLiteConnection

_AGED_NOTIFICATIONS = ("SELECT id FROM notifications WHERE read = 1 AND created_at < ? "
                       "UNION ALL SELECT id FROM notifications WHERE read = 0 AND created_at < ?")

# One webhook's attempts created before a time, except its newest ones (the log's own order).
_AGED_ATTEMPTS = ("SELECT id FROM webhook_attempts WHERE webhook_id = ? AND created_at < ? "
                  "AND id NOT IN (SELECT id FROM webhook_attempts WHERE webhook_id = ? "
                  "ORDER BY created_at DESC, attempt DESC, id DESC LIMIT ?)")


class HousekeepingMixin(SQLiteConnection):
    # Retention's walks: notifications by (read, age), outbox events by age.
    LATE_SCHEMA = """
    CREATE INDEX IF NOT EXISTS notifications_by_age ON notifications(read, created_at);
    CREATE INDEX IF NOT EXISTS outbox_by_age ON outbox(created_at, id);
    """

    def backfill_runs(self, after: str | None = None, limit: int = 500
                      ) -> tuple[int, str | None]:
        # A column added to an older file reads NULL in every row: nothing to fill.
        return 0, None

    def count_prunable_notifications(self, *, read_before: datetime,
                                     unread_before: datetime) -> int:
        row = self._one(f"SELECT count(*) FROM ({_AGED_NOTIFICATIONS})",
                        (to_iso(read_before), to_iso(unread_before)))
        return int(row[0]) if row else 0

    def prune_notifications(self, *, read_before: datetime, unread_before: datetime,
                            limit: int = 200) -> int:
        check_listing(limit, 0, None, 1)
        with self._tx() as db:
            cur = db.execute(f"DELETE FROM notifications WHERE id IN ({_AGED_NOTIFICATIONS} "
                             "LIMIT ?)", (to_iso(read_before), to_iso(unread_before), limit))
            return cur.rowcount

    def prune_outbox(self, created_before: datetime, *, limit: int = 200,
                     after: Cursor | None = None, dry_run: bool = False) -> OutboxPruned:
        check_listing(limit, 0, after, 1)
        where, args = "created_at < ?", [to_iso(created_before)]
        if after is not None:
            where += " AND (created_at, id) > (?, ?)"
            args += cursor_values(after)
        with self._tx() as db:
            rows = db.execute(f"SELECT id, created_at FROM outbox WHERE {where} "
                              "ORDER BY created_at, id LIMIT ?", (*args, limit)).fetchall()
            if not rows:
                return OutboxPruned(0, 0, None)
            ids = [r["id"] for r in rows]
            marks = ", ".join("?" for _ in ids)
            states = db.execute(f"SELECT event_id, state FROM deliveries "
                                f"WHERE event_id IN ({marks})", ids).fetchall()
            held = {r["event_id"] for r in states if r["state"] == "pending"}
            gone = [i for i in ids if i not in held]
            deliveries = sum(1 for r in states if r["event_id"] not in held)
            if gone and not dry_run:            # the deliveries go with them (ON DELETE CASCADE)
                db.execute(f"DELETE FROM outbox WHERE id IN ({', '.join('?' for _ in gone)})",
                           gone)
        last = rows[-1]
        more = Cursor(from_iso(last["created_at"]), (last["id"],)) if len(rows) == limit else None
        return OutboxPruned(len(gone), deliveries, more)

    def prune_webhook_attempts(self, created_before: datetime, *, keep: int = 50,
                               limit: int = 200, start: str | None = None,
                               dry_run: bool = False) -> WebhookAttemptsPruned:
        before = to_iso(created_before)
        with self._tx() as db:
            def webhooks(first: str | None, count: int) -> list[str]:
                return [r["id"] for r in db.execute(
                    "SELECT id FROM webhooks WHERE id >= ? ORDER BY id LIMIT ?",
                    (first or "", count)).fetchall()]

            def prunable(hook: str) -> int:
                row = db.execute(f"SELECT count(*) FROM ({_AGED_ATTEMPTS})",
                                 (hook, before, hook, keep)).fetchone()
                return int(row[0])

            def delete(hook: str, count: int) -> int:
                return db.execute(f"DELETE FROM webhook_attempts WHERE id IN ({_AGED_ATTEMPTS} "
                                  "LIMIT ?)", (hook, before, hook, keep, count)).rowcount

            return walk_webhook_attempts(limit, keep, start, webhooks=webhooks,
                                         prunable=prunable, delete=None if dry_run else delete)
