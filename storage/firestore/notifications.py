"""Firestore notifications, webhooks and the outbox::

    users/{uid}/notifications/{event_id}        users/{uid}/webhooks/{wid}/attempts/{id}
    outbox/{event_id}                           outbox/{event_id}/deliveries/{delivery_id}

A transition writes its events in its own transaction in two steps, because Firestore wants
every read before the first write: ``read_outbox`` (which events are new, whose user exists)
among its reads, ``write_outbox`` among its writes. Claims find due deliveries with a collection
group query and lease each in a transaction that reads it again, so of several instances one
wins each delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import aware_utc, check_page, jsonable, new_id
from storage._outbox import (
    PreparedEvent,
    check_outcome,
    finished_delivery_changes,
    finished_webhook_changes,
    prepare_events,
    webhook_attempt_record,
)
from storage.base import ConflictError, DuplicateError, NotFoundError, utcnow
from storage.firestore.connection import DOC_ID, FirestoreConnection, doc_key, from_doc, to_doc
from storage.notification_records import (
    Delivery,
    DeliveryOutcome,
    NewDelivery,
    Notification,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
)

BATCH_MAX = 400                 # writes per batch when marking many notifications read


def _outbox_ref(conn: FirestoreConnection, event_id: str) -> firestore.DocumentReference:
    return conn._client.collection("outbox").document(doc_key(event_id))


def _delivery_ref(conn: FirestoreConnection, event_id: str, delivery_id: str
                  ) -> firestore.DocumentReference:
    return _outbox_ref(conn, event_id).collection("deliveries").document(doc_key(delivery_id))


def _notification_ref(conn: FirestoreConnection, user_id: str, notification_id: str
                      ) -> firestore.DocumentReference:
    return conn._user(user_id).collection("notifications").document(doc_key(notification_id))


def _webhook_ref(conn: FirestoreConnection, user_id: str, webhook_id: str
                 ) -> firestore.DocumentReference:
    return conn._user(user_id).collection("webhooks").document(doc_key(webhook_id))


def newest_attempts_first(attempts: Any) -> Any:
    """A webhook's attempts in the log's order (the one composite index of ``attempts``)."""
    down = firestore.Query.DESCENDING
    return (attempts.order_by("created_at", direction=down).order_by("attempt", direction=down)
            .order_by(DOC_ID, direction=down))


def read_outbox(conn: FirestoreConnection, t: firestore.Transaction,
                events: Sequence[OutboxEvent]) -> list[PreparedEvent]:
    """The transaction's read step: the events not stored yet whose user exists."""
    prepared = prepare_events(events)
    if not prepared:
        return []
    stored = {snap.id for snap in conn._client.get_all(
        [_outbox_ref(conn, p.event.id) for p in prepared], transaction=t) if snap.exists}
    user_ids = sorted({p.event.user_id for p in prepared})
    users = {snap.id for snap in conn._client.get_all(
        [conn._user(u) for u in user_ids], transaction=t) if snap.exists}
    return [p for p in prepared if doc_key(p.event.id) not in stored
            and doc_key(p.event.user_id) in users]


def write_outbox(conn: FirestoreConnection, t: firestore.Transaction,
                 prepared: Sequence[PreparedEvent]) -> list[OutboxEvent]:
    """The transaction's write step for what ``read_outbox`` returned."""
    for item in prepared:
        event = item.event
        doc = to_doc(OutboxEvent, {**asdict(event),
                                   "deliveries": [asdict(d) for d in event.deliveries]})
        t.create(_outbox_ref(conn, event.id), doc)
        if item.notification is not None:
            # Set, not create: an event id retention removed may come again, and its
            # notification (kept longer) is then replaced by the new one.
            note = item.notification
            t.set(_notification_ref(conn, note.user_id, note.id),
                  to_doc(Notification, asdict(note)))
        for delivery in item.deliveries:
            t.create(_delivery_ref(conn, event.id, delivery.id),
                     to_doc(Delivery, asdict(delivery)))
    return [item.event for item in prepared]


def _event_from(snap: Any) -> OutboxEvent:
    event = from_doc(OutboxEvent, snap.to_dict())
    event.deliveries = [NewDelivery(d["channel"], d.get("target", ""))
                        for d in event.deliveries]
    return event


class NotificationsMixin(FirestoreConnection):
    """Every record here keeps its own id among its fields (ids may be any text)."""

    # notifications ---------------------------------------------------------------------------
    def list_notifications(self, user_id: str, *, unread_only: bool = False, limit: int = 50,
                           offset: int = 0) -> list[Notification]:
        check_page(limit, offset)
        if limit == 0:
            return []
        query: Any = self._user(user_id).collection("notifications")
        if unread_only:
            query = query.where(filter=FieldFilter("read", "==", False))
        query = (query.order_by("created_at", direction=firestore.Query.DESCENDING)
                 .order_by(DOC_ID, direction=firestore.Query.DESCENDING))
        if offset:
            query = query.offset(offset)
        return [from_doc(Notification, s.to_dict()) for s in query.limit(limit).stream()]

    def count_unread_notifications(self, user_id: str) -> int:
        query = (self._user(user_id).collection("notifications")
                 .where(filter=FieldFilter("read", "==", False)))
        result = query.count().get()
        return int(result[0][0].value) if result else 0

    def mark_notifications_read(self, user_id: str, ids: Sequence[str] | None = None) -> int:
        unread = (self._user(user_id).collection("notifications")
                  .where(filter=FieldFilter("read", "==", False)))
        if ids is None:
            refs = [s.reference for s in unread.stream()]
        else:
            wanted = sorted({str(i) for i in ids})
            snaps = self._client.get_all([_notification_ref(self, user_id, i) for i in wanted])
            refs = [s.reference for s in snaps if s.exists and s.get("read") is False]
        for start in range(0, len(refs), BATCH_MAX):
            batch = self._client.batch()
            for ref in refs[start:start + BATCH_MAX]:
                batch.update(ref, {"read": True})
            batch.commit()
        return len(refs)

    # webhooks --------------------------------------------------------------------------------
    def create_webhook(self, webhook: Webhook) -> Webhook:
        stored = Webhook(**{**webhook.__dict__, "id": webhook.id or new_id(),
                            "events": jsonable(list(webhook.events)),
                            "created_at": aware_utc(webhook.created_at),
                            "updated_at": aware_utc(utcnow())})
        ref = _webhook_ref(self, stored.user_id, stored.id)
        index = self._client.collection("webhook_ids").document(doc_key(stored.id))

        def body(t: firestore.Transaction) -> None:
            if not self._user(stored.user_id).get(transaction=t).exists:
                raise NotFoundError(f"no user {stored.user_id}")
            if index.get(transaction=t).exists:
                raise DuplicateError(f"webhook id already used: {stored.id}")
            t.create(index, {"user_id": stored.user_id})
            t.create(ref, to_doc(Webhook, asdict(stored)))

        self._tx(f"webhook:{stored.id}", body)
        return stored

    def get_webhook(self, user_id: str | None, webhook_id: str) -> Webhook | None:
        if user_id is None:
            index = self._client.collection("webhook_ids").document(doc_key(webhook_id)).get()
            if not index.exists:
                return None
            user_id = index.get("user_id")
        snap = _webhook_ref(self, user_id, webhook_id).get()
        return from_doc(Webhook, snap.to_dict()) if snap.exists else None

    def list_webhooks(self, user_id: str) -> list[Webhook]:
        query = (self._user(user_id).collection("webhooks")
                 .order_by("created_at").order_by(DOC_ID))
        return [from_doc(Webhook, s.to_dict()) for s in query.stream()]

    def delete_webhook(self, user_id: str, webhook_id: str) -> None:
        ref = _webhook_ref(self, user_id, webhook_id)
        if not ref.get().exists:
            raise NotFoundError(f"no webhook {webhook_id}")
        self._client.recursive_delete(ref)        # the webhook and its delivery log
        self._client.collection("webhook_ids").document(doc_key(webhook_id)).delete()

    def list_webhook_attempts(self, user_id: str, webhook_id: str, limit: int = 50,
                              offset: int = 0) -> list[WebhookAttempt]:
        check_page(limit, offset)
        if limit == 0:
            return []
        query = newest_attempts_first(_webhook_ref(self, user_id, webhook_id)
                                      .collection("attempts"))
        if offset:
            query = query.offset(offset)
        return [from_doc(WebhookAttempt, s.to_dict()) for s in query.limit(limit).stream()]

    # outbox ----------------------------------------------------------------------------------
    def add_outbox(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        def body(t: firestore.Transaction) -> list[OutboxEvent]:
            return write_outbox(self, t, read_outbox(self, t, events))

        return self._tx("outbox", body)

    def get_outbox_event(self, event_id: str) -> OutboxEvent | None:
        snap = _outbox_ref(self, event_id).get()
        return _event_from(snap) if snap.exists else None

    def list_deliveries(self, event_id: str) -> list[Delivery]:
        query = _outbox_ref(self, event_id).collection("deliveries").order_by(DOC_ID)
        return [from_doc(Delivery, s.to_dict()) for s in query.stream()]

    def claim_deliveries(self, owner: str, now: datetime, lease_until: datetime,
                         limit: int = 20) -> list[Delivery]:
        check_page(limit)
        if limit == 0:
            return []
        now, until = aware_utc(now), aware_utc(lease_until)
        query = (self._client.collection_group("deliveries")
                 .where(filter=FieldFilter("state", "==", "pending"))
                 .where(filter=FieldFilter("next_attempt_at", "<=", now))
                 .order_by("next_attempt_at").limit(limit))
        claimed = []
        for snap in query.stream():
            ref = snap.reference

            def body(t: firestore.Transaction, ref: Any = ref) -> Delivery | None:
                current = ref.get(transaction=t)
                if not current.exists:
                    return None
                delivery = from_doc(Delivery, current.to_dict())
                if delivery.state != "pending" or delivery.next_attempt_at > now:
                    return None                     # another claimer was first
                changes = {"lease_owner": owner, "next_attempt_at": until,
                           "attempts": delivery.attempts + 1, "updated_at": now}
                t.update(ref, to_doc(Delivery, changes))
                return Delivery(**{**delivery.__dict__, **changes})

            won = self._tx(f"delivery:{snap.id}", body)
            if won is not None:
                claimed.append(won)
        return claimed

    def finish_delivery(self, delivery: Delivery, owner: str, outcome: DeliveryOutcome
                        ) -> Delivery:
        outcome = check_outcome(outcome)
        ref = _delivery_ref(self, delivery.event_id, delivery.id)
        hook_ref = _webhook_ref(self, delivery.user_id, delivery.target) \
            if delivery.channel == "webhook" else None
        now = aware_utc(utcnow())
        log = None
        if outcome.log is not None:
            log = webhook_attempt_record(outcome.log)

        def body(t: firestore.Transaction) -> Delivery:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no delivery {delivery.id}")
            current = from_doc(Delivery, snap.to_dict())
            if current.state != "pending" or current.lease_owner != owner:
                raise ConflictError(f"delivery {delivery.id} is {current.state} and leased to "
                                    f"{current.lease_owner}", current=current.state)
            hook = hook_ref.get(transaction=t) if hook_ref is not None else None
            prepared = read_outbox(self, t, outcome.outbox)
            changes = finished_delivery_changes(outcome, now)
            t.update(ref, to_doc(Delivery, changes))
            if hook is not None and hook.exists:
                self._webhook_after(t, hook.reference, outcome, log, now)
            write_outbox(self, t, prepared)
            return Delivery(**{**current.__dict__, **changes})

        return self._tx(f"delivery:{doc_key(delivery.id)}", body)

    @staticmethod
    def _webhook_after(t: firestore.Transaction, hook: firestore.DocumentReference,
                       outcome: DeliveryOutcome, log: WebhookAttempt | None,
                       now: datetime) -> None:
        if log is not None:
            t.create(hook.collection("attempts").document(doc_key(log.id)),
                     to_doc(WebhookAttempt, asdict(log)))
        changes = finished_webhook_changes(outcome, now)
        if changes:
            t.update(hook, to_doc(Webhook, {**changes, "updated_at": now}))
