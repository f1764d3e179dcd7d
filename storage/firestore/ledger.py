"""Firestore publish ledger: ``users/{uid}/sites/{sid}/posts/{slug}`` plus per-day counters."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import aware_utc
from storage._ledger import new_post_entry
from storage._listing import check_listing
from storage.base import ConflictError, DailyLimitReached, LedgerEntry, NotFoundError, utcnow
from storage.firestore.connection import DOC_ID, doc_key, from_doc, to_doc
from storage.firestore.day_totals import IN_TOTALS, DayTotalsMixin
from storage.paging import Cursor


class LedgerMixin(DayTotalsMixin):
    @staticmethod
    def _post_from(snap: Any) -> LedgerEntry:
        return from_doc(LedgerEntry, snap.to_dict())

    def reserve_post(self, entry: LedgerEntry, daily_limit: int | None = None
                     ) -> tuple[LedgerEntry, bool]:
        stored = new_post_entry(entry)
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
            doc = {**to_doc(LedgerEntry, asdict(stored)), IN_TOTALS: True}
            t.create(post, doc)
            t.set(counter, {"day": stored.day, "count": used + 1})
            self._move_post(t, entry.user_id, entry.site_id, None, doc)
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
            old = snap.to_dict()
            t.update(ref, {**to_doc(LedgerEntry, changes), IN_TOTALS: True})
            self._move_post(t, user_id, site_id, old, {**old, **to_doc(LedgerEntry, changes)})
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
                   offset: int = 0, *, kind: str | None = None, after: Cursor | None = None,
                   oldest_first: bool = False) -> list[LedgerEntry]:
        check_listing(limit, offset, after, 2)
        if limit == 0:
            return []
        site_ids = [site_id] if site_id is not None else [
            s.id for s in self._user(user_id).collection("sites").select([]).stream()]
        # Each site's ledger in (created_at, slug) order, then merged with the site id as the
        # middle key: no collection-group index is needed.
        found: list[LedgerEntry] = []
        for sid in site_ids:
            query = self._posts_after(user_id, sid, kind, after, oldest_first)
            found.extend(self._post_from(s) for s in query.limit(offset + limit).stream())
        found.sort(key=lambda p: (p.created_at, p.site_id, doc_key(p.slug)),
                   reverse=not oldest_first)
        return found[offset:offset + limit]

    def _posts_after(self, user_id: str, site_id: str, kind: str | None, after: Cursor | None,
                     oldest_first: bool) -> Any:
        """One site's part of a listing: the entries that follow ``after`` in the merged
        ``(created_at, site_id, slug)`` order."""
        direction = firestore.Query.ASCENDING if oldest_first else firestore.Query.DESCENDING
        query: Any = self._site(user_id, site_id).collection("posts")
        if kind is not None:
            query = query.where(filter=FieldFilter("kind", "==", kind))
        query = query.order_by("created_at", direction=direction).order_by(DOC_ID,
                                                                           direction=direction)
        if after is None:
            return query
        when, after_site, after_slug = aware_utc(after.created_at), *after.key
        if site_id == after_site:
            return query.start_after({"created_at": when, "__name__": doc_key(after_slug)})
        # Another site: its entries at the cursor's very time come before or after it by site.
        later_site = site_id > after_site
        same_time_follows = later_site if oldest_first else not later_site
        op = (">=" if same_time_follows else ">") if oldest_first else \
            ("<=" if same_time_follows else "<")
        return query.where(filter=FieldFilter("created_at", op, when))
