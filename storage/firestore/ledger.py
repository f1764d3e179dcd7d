"""Firestore publish ledger: ``users/{uid}/sites/{sid}/posts/{slug}`` plus per-day counters."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud import firestore

from storage._common import aware_utc, check_page, day_of
from storage.base import ConflictError, DailyLimitReached, LedgerEntry, NotFoundError, utcnow
from storage.firestore.connection import DOC_ID, FirestoreConnection, from_doc, to_doc


class LedgerMixin(FirestoreConnection):
    @staticmethod
    def _post_from(snap: Any) -> LedgerEntry:
        return from_doc(LedgerEntry, snap.to_dict())

    def reserve_post(self, entry: LedgerEntry, daily_limit: int | None = None
                     ) -> tuple[LedgerEntry, bool]:
        if not entry.slug:
            raise ValueError("slug is required")
        created = aware_utc(entry.created_at)
        stored = LedgerEntry(**{**entry.__dict__, "day": entry.day or day_of(created),
                                "created_at": created})
        site = self._site(entry.user_id, entry.site_id)
        post = self._post(entry.user_id, entry.site_id, entry.slug)
        counter = self._post_day(entry.user_id, entry.site_id, stored.day)

        def body(t: firestore.Transaction) -> tuple[LedgerEntry, bool]:
            if not site.get(transaction=t).exists:
                raise NotFoundError(f"no site {entry.site_id}")
            existing = post.get(transaction=t)
            if existing.exists:
                return self._post_from(existing), False
            counted = counter.get(transaction=t)
            used = int(counted.get("count") or 0) if counted.exists else 0
            if daily_limit is not None and used >= daily_limit:
                raise DailyLimitReached(
                    f"site {entry.site_id} has {used} of {daily_limit} posts on {stored.day}")
            t.create(post, to_doc(LedgerEntry, asdict(stored)))
            t.set(counter, {"day": stored.day, "count": used + 1})
            return stored, True

        return self._tx(f"site:{entry.user_id}/{entry.site_id}", body)

    def complete_post(self, user_id: str, site_id: str, slug: str, *, post_id: str,
                      post_url: str, title: str = "") -> LedgerEntry:
        ref = self._post(user_id, site_id, slug)
        changes = {"status": "published", "post_id": str(post_id), "post_url": post_url,
                   "title": title, "published_at": aware_utc(utcnow())}

        def body(t: firestore.Transaction) -> LedgerEntry:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            t.update(ref, to_doc(LedgerEntry, changes))
            return LedgerEntry(**{**self._post_from(snap).__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def release_post(self, user_id: str, site_id: str, slug: str,
                     attempt: str | None = None) -> None:
        ref = self._post(user_id, site_id, slug)

        def body(t: firestore.Transaction) -> None:
            snap = ref.get(transaction=t)
            if not snap.exists or snap.get("status") != "reserved":
                return
            if attempt is not None and (snap.to_dict().get("attempt") or "") != attempt:
                return
            t.delete(ref)
            t.set(self._post_day(user_id, site_id, snap.get("day")),
                  {"count": firestore.Increment(-1)}, merge=True)

        self._tx(f"site:{user_id}/{site_id}", body)

    def claim_post(self, user_id: str, site_id: str, slug: str, *, expected_attempt: str,
                   attempt: str, now: datetime) -> LedgerEntry:
        ref = self._post(user_id, site_id, slug)
        changes = {"attempt": attempt, "reserved_at": aware_utc(now)}

        def body(t: firestore.Transaction) -> LedgerEntry:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            current = self._post_from(snap)
            if current.status != "reserved" or current.attempt != expected_attempt:
                raise ConflictError(f"ledger entry {slug} is {current.status} by another "
                                    "attempt", current=current.status)
            t.update(ref, to_doc(LedgerEntry, changes))
            return LedgerEntry(**{**current.__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def record_update(self, user_id: str, site_id: str, slug: str, *, run_id: str,
                      post_id: str, post_url: str, title: str = "") -> LedgerEntry:
        ref = self._post(user_id, site_id, slug)
        changes = {"last_updated_run": run_id, "post_id": str(post_id), "post_url": post_url,
                   "title": title}

        def body(t: firestore.Transaction) -> LedgerEntry:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            t.update(ref, to_doc(LedgerEntry, changes))
            return LedgerEntry(**{**self._post_from(snap).__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def get_post(self, user_id: str, site_id: str, slug: str) -> LedgerEntry | None:
        snap = self._post(user_id, site_id, slug).get()
        return self._post_from(snap) if snap.exists else None

    def list_posts(self, user_id: str, site_id: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[LedgerEntry]:
        check_page(limit, offset)
        if limit == 0:
            return []
        site_ids = [site_id] if site_id is not None else [
            s.id for s in self._user(user_id).collection("sites").select([]).stream()]
        # Newest first per site, then merged: no collection-group index is needed.
        found: list[LedgerEntry] = []
        for sid in site_ids:
            query = (self._site(user_id, sid).collection("posts")
                     .order_by("created_at", direction=firestore.Query.DESCENDING)
                     .order_by(DOC_ID, direction=firestore.Query.DESCENDING)
                     .limit(offset + limit))
            found.extend(self._post_from(s) for s in query.stream())
        found.sort(key=lambda p: (p.created_at, p.slug), reverse=True)
        return found[offset:offset + limit]
