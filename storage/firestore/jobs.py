"""Firestore periodic-job leases: ``jobs/{name}``, claimed and finished in transactions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud import firestore

from storage._common import aware_utc, jsonable
from storage.base import ConflictError
from storage.firestore.connection import FirestoreConnection, doc_key, from_doc, to_doc
from storage.housekeeping import Job


class JobsMixin(FirestoreConnection):
    def _job(self, name: str) -> firestore.DocumentReference:
        return self._client.collection("jobs").document(doc_key(name))

    def get_job(self, name: str) -> Job | None:
        snap = self._job(name).get()
        return from_doc(Job, snap.to_dict(), name=name) if snap.exists else None

    def claim_job(self, name: str, owner: str, now: datetime, lease_until: datetime
                  ) -> Job | None:
        now, lease_until = aware_utc(now), aware_utc(lease_until)
        ref = self._job(name)

        def body(t: firestore.Transaction) -> Job | None:
            snap = ref.get(transaction=t)
            job = from_doc(Job, snap.to_dict(), name=name) if snap.exists else Job(name=name)
            due = job.next_run_at is None or job.next_run_at <= now
            held = job.owner not in (None, owner) and job.lease_until is not None and \
                job.lease_until > now
            if not due or held:
                return None
            claimed = Job(**{**job.__dict__, "owner": owner, "lease_until": lease_until,
                             "last_started_at": now})
            t.set(ref, to_doc(Job, asdict(claimed), skip=("name",)))
            return claimed

        return self._tx(f"job:{name}", body)

    def finish_job(self, name: str, owner: str, *, now: datetime, next_run_at: datetime,
                   result: dict[str, Any]) -> Job:
        ref = self._job(name)

        def body(t: firestore.Transaction) -> Job:
            snap = ref.get(transaction=t)
            current = snap.to_dict().get("owner") if snap.exists else None
            if current != owner:
                raise ConflictError(f"job {name} is not held by {owner}", current=current)
            job = from_doc(Job, snap.to_dict(), name=name)
            done = Job(**{**job.__dict__, "owner": None, "lease_until": None,
                          "last_finished_at": aware_utc(now),
                          "next_run_at": aware_utc(next_run_at),
                          "last_result": jsonable(result)})
            t.set(ref, to_doc(Job, asdict(done), skip=("name",)))
            return done

        return self._tx(f"job:{name}", body)
