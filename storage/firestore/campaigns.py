"""Firestore campaigns: ``campaigns/{cid}`` and ``campaigns/{cid}/fires/{fire_id}``.

A fire is one transaction: it reads the campaign (its revision is the compare-and-set) and the
fire documents it is about to create, then writes the fires, the run with its items and the
campaign's new state. The fire document is keyed by the fire id, so a second transaction for
the same fire, from any client, finds it and fails; the run is never written without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._campaigns import campaign_changes, check_fire_run, new_campaign, recorded_fire
from storage._common import aware_utc, check_fires, check_page
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
from storage.firestore.connection import DOC_ID, FirestoreConnection, from_doc, to_doc
from storage.firestore.notifications import read_outbox, write_outbox
from storage.firestore.runs import RunsMixin
from storage.notification_records import OutboxEvent


class CampaignsMixin(RunsMixin, FirestoreConnection):
    @staticmethod
    def _campaign_from(snap: Any) -> Campaign:
        return from_doc(Campaign, snap.to_dict(), id=snap.id)

    def _checked(self, snap: Any, user_id: str | None, campaign_id: str,
                 expected_revision: int | None) -> Campaign:
        if not snap.exists:
            raise NotFoundError(f"no campaign {campaign_id}")
        campaign = self._campaign_from(snap)
        if user_id is not None and campaign.user_id != user_id:
            raise NotFoundError(f"no campaign {campaign_id}")
        if expected_revision is not None and campaign.revision != expected_revision:
            raise ConflictError(f"campaign {campaign_id} is at revision {campaign.revision}, "
                                f"not {expected_revision}", current=str(campaign.revision))
        return campaign

    def create_campaign(self, campaign: Campaign) -> Campaign:
        stored = new_campaign(campaign)
        ref = self._campaign(stored.id)

        def body(t: firestore.Transaction) -> None:
            if not self._user(stored.user_id).get(transaction=t).exists:
                raise NotFoundError(f"no user {stored.user_id}")
            if ref.get(transaction=t).exists:
                raise DuplicateError(f"campaign id already used: {stored.id}")
            t.create(ref, to_doc(Campaign, asdict(stored), skip=("id",)))

        self._tx(f"campaign:{stored.id}", body)
        return stored

    def get_campaign(self, user_id: str | None, campaign_id: str) -> Campaign | None:
        snap = self._campaign(campaign_id).get()
        if not snap.exists:
            return None
        campaign = self._campaign_from(snap)
        return campaign if user_id is None or campaign.user_id == user_id else None

    def list_campaigns(self, user_id: str) -> list[Campaign]:
        query = (self._client.collection("campaigns")
                 .where(filter=FieldFilter("user_id", "==", user_id))
                 .order_by("created_at").order_by(DOC_ID))
        return [self._campaign_from(s) for s in query.stream()]

    def list_due_campaigns(self, now: datetime, limit: int = 100) -> list[Campaign]:
        check_page(limit)
        if limit == 0:
            return []
        query = (self._client.collection("campaigns")
                 .where(filter=FieldFilter("status", "==", "active"))
                 .where(filter=FieldFilter("next_fire_at", "<=", aware_utc(now)))
                 .order_by("next_fire_at").order_by(DOC_ID).limit(limit))
        return [self._campaign_from(s) for s in query.stream()]

    def update_campaign(self, user_id: str, campaign_id: str, changes: dict[str, Any],
                        expected_revision: int | None = None) -> Campaign:
        out = campaign_changes(changes)
        ref = self._campaign(campaign_id)

        def body(t: firestore.Transaction) -> Campaign:
            current = self._checked(ref.get(transaction=t), user_id, campaign_id,
                                    expected_revision)
            out["revision"] = current.revision + 1
            t.update(ref, to_doc(Campaign, out))
            return Campaign(**{**current.__dict__, **out})

        return self._tx(f"campaign:{campaign_id}", body)

    def delete_campaign(self, user_id: str, campaign_id: str) -> None:
        ref = self._campaign(campaign_id)
        if self.get_campaign(user_id, campaign_id) is None:
            raise NotFoundError(f"no campaign {campaign_id}")
        self._client.recursive_delete(ref)       # the campaign and its fires; runs stay

    def list_fires(self, campaign_id: str, limit: int = 50, offset: int = 0) -> list[Fire]:
        check_page(limit, offset)
        if limit == 0:
            return []
        query = (self._campaign(campaign_id).collection("fires")
                 .order_by("scheduled_for", direction=firestore.Query.DESCENDING)
                 .order_by(DOC_ID, direction=firestore.Query.DESCENDING))
        if offset:
            query = query.offset(offset)
        return [from_doc(Fire, s.to_dict()) for s in query.limit(limit).stream()]

    def fire_campaign(self, campaign_id: str, *, expected_revision: int,
                      fires: Sequence[Fire], changes: dict[str, Any],
                      run: Run | None = None, items: Sequence[NewItem] = (),
                      outbox: Sequence[OutboxEvent] = ()) -> tuple[Campaign, Run | None]:
        out = campaign_changes(changes)
        check_fires(campaign_id, fires, run.fire_id if run is not None else None)
        stored_run, rows = new_run_records(run, items) if run is not None else (None, [])
        check_fire_run(campaign_id, stored_run)
        ref = self._campaign(campaign_id)
        fire_refs = [self._fire(campaign_id, f.id) for f in fires]
        now = aware_utc(utcnow())

        def body(t: firestore.Transaction) -> Campaign:
            current = self._checked(ref.get(transaction=t), None, campaign_id,
                                    expected_revision)
            for snap in self._client.get_all(fire_refs, transaction=t):
                if snap.exists:
                    raise DuplicateError(f"fire {snap.get('id')} is already recorded")
            if stored_run is not None and self._run(stored_run.id).get(transaction=t).exists:
                raise DuplicateError(f"run id already used: {stored_run.id}")
            events = read_outbox(self, t, outbox)
            for fire, fire_ref in zip(fires, fire_refs, strict=True):
                recorded = recorded_fire(fire, current.user_id, stored_run, now)
                t.create(fire_ref, to_doc(Fire, asdict(recorded)))
            changed = {**out, "revision": current.revision + 1}
            if stored_run is not None:
                self._write_run(t, stored_run, rows)
                changed["last_run_id"] = stored_run.id
            t.update(ref, to_doc(Campaign, changed))
            write_outbox(self, t, events)
            return Campaign(**{**current.__dict__, **changed})

        return self._tx(f"campaign:{campaign_id}", body), stored_run
