"""Firestore sites: ``users/{uid}/sites/{sid}`` and their bookkeeping state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from google.cloud import firestore

from storage._common import SITE_FIXED, aware_utc, check_changes, jsonable, new_id
from storage.base import DuplicateError, NotFoundError, Site, utcnow
from storage.firestore.connection import DOC_ID, FirestoreConnection, from_doc, to_doc


class SitesMixin(FirestoreConnection):
    @staticmethod
    def _site_from(snap: Any, user_id: str) -> Site:
        return from_doc(Site, snap.to_dict(), id=snap.id, user_id=user_id)

    def create_site(self, user_id: str, site: Site) -> Site:
        stored = Site(**{**site.__dict__, "id": site.id or new_id(), "user_id": user_id,
                         "defaults": jsonable(site.defaults), "authors": jsonable(site.authors),
                         "state": jsonable(site.state), "created_at": aware_utc(site.created_at),
                         "updated_at": aware_utc(utcnow())})
        ref = self._site(user_id, stored.id)

        def body(t: firestore.Transaction) -> None:
            if not self._user(user_id).get(transaction=t).exists:
                raise NotFoundError(f"no user {user_id}")
            if ref.get(transaction=t).exists:
                raise DuplicateError(f"site id already used: {stored.id}")
            t.create(ref, to_doc(Site, asdict(stored), skip=("id",)))

        self._tx(f"site:{user_id}/{stored.id}", body)
        return stored

    def get_site(self, user_id: str, site_id: str) -> Site | None:
        snap = self._site(user_id, site_id).get()
        return self._site_from(snap, user_id) if snap.exists else None

    def list_sites(self, user_id: str) -> list[Site]:
        query = self._user(user_id).collection("sites").order_by("created_at").order_by(DOC_ID)
        return [self._site_from(s, user_id) for s in query.stream()]

    def update_site(self, user_id: str, site_id: str, changes: dict[str, Any]) -> Site:
        check_changes(Site, changes, SITE_FIXED)
        changes = {**changes, "updated_at": aware_utc(changes.get("updated_at") or utcnow())}
        for name in ("defaults", "authors"):
            if name in changes:
                changes[name] = jsonable(changes[name])
        ref = self._site(user_id, site_id)

        def body(t: firestore.Transaction) -> Site:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no site {site_id}")
            t.update(ref, to_doc(Site, changes))
            site = self._site_from(snap, user_id)
            return Site(**{**site.__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def delete_site(self, user_id: str, site_id: str) -> None:
        ref = self._site(user_id, site_id)
        if not ref.get().exists:
            raise NotFoundError(f"no site {site_id}")
        # The document and its ledger (posts, post_days) go together, as SQLite's cascade does.
        self._client.recursive_delete(ref)

    def update_site_state(self, user_id: str, site_id: str,
                          mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        ref = self._site(user_id, site_id)

        def body(t: firestore.Transaction) -> dict[str, Any]:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no site {site_id}")
            state = jsonable(mutate(dict(snap.to_dict().get("state") or {})))
            t.update(ref, {"state": state, "updated_at": aware_utc(utcnow())})
            return state

        return self._tx(f"site:{user_id}/{site_id}", body)
