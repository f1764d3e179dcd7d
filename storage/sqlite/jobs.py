"""SQLite periodic-job leases: one row per job (``jobs/{name}`` in Firestore's terms)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage._common import aware_utc, jsonable
from storage.base import ConflictError
from storage.housekeeping import Job
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns


class JobsMixin(SQLiteConnection):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS jobs (
        name             TEXT PRIMARY KEY,
        owner            TEXT,
        lease_until      TEXT,
        next_run_at      TEXT,
        last_started_at  TEXT,
        last_finished_at TEXT,
        last_result      TEXT NOT NULL DEFAULT '{}'
    );
    """

    def get_job(self, name: str) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE name = ?", (name,))
        return decode(Job, row) if row else None

    def claim_job(self, name: str, owner: str, now: datetime, lease_until: datetime
                  ) -> Job | None:
        now, lease_until = aware_utc(now), aware_utc(lease_until)
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone()
            if row is None:
                insert(db, "jobs", Job, Job(name=name))
                job = Job(name=name)
            else:
                job = decode(Job, row)
            due = job.next_run_at is None or job.next_run_at <= now
            held = job.owner not in (None, owner) and job.lease_until is not None and \
                job.lease_until > now
            if not due or held:
                return None
            changes = {"owner": owner, "lease_until": lease_until, "last_started_at": now}
            set_columns(db, "jobs", Job, changes, "name = ?", (name,))
            return Job(**{**job.__dict__, **changes})

    def finish_job(self, name: str, owner: str, *, now: datetime, next_run_at: datetime,
                   result: dict[str, Any]) -> Job:
        with self._tx() as db:
            row = db.execute("SELECT owner FROM jobs WHERE name = ?", (name,)).fetchone()
            if row is None or row["owner"] != owner:
                raise ConflictError(f"job {name} is not held by {owner}",
                                    current=row["owner"] if row else None)
            set_columns(db, "jobs", Job, {"owner": None, "lease_until": None,
                                          "last_finished_at": aware_utc(now),
                                          "next_run_at": aware_utc(next_run_at),
                                          "last_result": jsonable(result)},
                        "name = ?", (name,))
            return decode(Job, db.execute("SELECT * FROM jobs WHERE name = ?",
                                          (name,)).fetchone())


