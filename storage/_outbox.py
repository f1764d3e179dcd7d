"""What both backends do alike with outbox events: check them and turn each into the records
one transaction writes (the event, its notification, its deliveries)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage._common import aware_utc, jsonable, new_id
from storage.notification_records import (
    DELIVERY_CHANNELS,
    DELIVERY_STATES,
    Delivery,
    DeliveryOutcome,
    NewDelivery,
    Notification,
    OutboxEvent,
    WebhookAttempt,
    delivery_id,
)

ERROR_MAX = 1000


@dataclass
class PreparedEvent:
    """One event as the store writes it."""

    event: OutboxEvent
    notification: Notification | None
    deliveries: list[Delivery] = field(default_factory=list)


def prepare_events(events: Iterable[OutboxEvent]) -> list[PreparedEvent]:
    """Checked, ids and times set, payloads JSON-shaped; one delivery per (channel, target);
    a ``portal`` delivery brings the notification (same id as the event)."""
    prepared: list[PreparedEvent] = []
    seen_ids: set[str] = set()
    for given in events:
        if not isinstance(given, OutboxEvent):
            raise ValueError(f"outbox entries must be OutboxEvent, not {type(given).__name__}")
        if not given.user_id or not given.type:
            raise ValueError("an outbox event needs user_id and type")
        event_id = given.id or new_id()
        if event_id in seen_ids:
            continue
        seen_ids.add(event_id)
        created = aware_utc(given.created_at)
        targets: list[NewDelivery] = []
        for wanted in given.deliveries:
            if wanted.channel not in DELIVERY_CHANNELS:
                raise ValueError(f"unknown delivery channel {wanted.channel!r}")
            if wanted.channel == "webhook" and not wanted.target:
                raise ValueError("a webhook delivery names its webhook (target)")
            spec = NewDelivery(wanted.channel, wanted.target or "")
            if spec not in targets:
                targets.append(spec)
        event = OutboxEvent(**{**given.__dict__, "id": event_id, "created_at": created,
                               "data": jsonable(given.data), "deliveries": targets})
        deliveries = [Delivery(id=delivery_id(event_id, t.channel, t.target), event_id=event_id,
                               user_id=event.user_id, channel=t.channel, target=t.target,
                               next_attempt_at=created, created_at=created, updated_at=created)
                      for t in targets]
        notification = None
        if NewDelivery("portal") in targets:
            notification = Notification(id=event_id, user_id=event.user_id, type=event.type,
                                        title=event.title, message=event.message,
                                        run_id=event.run_id, campaign_id=event.campaign_id,
                                        link=event.link, created_at=created)
        prepared.append(PreparedEvent(event, notification, deliveries))
    return prepared


def check_outcome(outcome: DeliveryOutcome) -> DeliveryOutcome:
    """An outcome's state is known; a retry says when; texts are cut to size."""
    if outcome.state not in DELIVERY_STATES:
        raise ValueError(f"unknown delivery state {outcome.state!r}")
    if outcome.state == "pending" and outcome.next_attempt_at is None:
        raise ValueError("a pending outcome needs next_attempt_at")
    error = outcome.error[:ERROR_MAX] if outcome.error else outcome.error
    return DeliveryOutcome(**{**outcome.__dict__, "error": error})


def finished_delivery_changes(outcome: DeliveryOutcome, now: datetime) -> dict[str, Any]:
    """What ``finish_delivery`` writes on the delivery: the outcome, the lease let go."""
    changes: dict[str, Any] = {
        "state": outcome.state, "last_error": outcome.error,
        "last_status": outcome.status, "lease_owner": None, "updated_at": now,
        "next_attempt_at": aware_utc(outcome.next_attempt_at or now)}
    if outcome.state == "delivered":
        changes["delivered_at"] = now
    return changes


def webhook_attempt_record(log: WebhookAttempt) -> WebhookAttempt:
    """An outcome's attempt log as stored: an id and a UTC time."""
    return WebhookAttempt(**{**log.__dict__, "id": log.id or new_id(),
                             "created_at": aware_utc(log.created_at)})


def finished_webhook_changes(outcome: DeliveryOutcome, now: datetime) -> dict[str, Any]:
    """The webhook's flags after one of its deliveries finished (empty: nothing to write)."""
    changes: dict[str, Any] = {}
    if outcome.state == "delivered":
        changes.update(failing=False, last_success_at=now)
    if outcome.webhook_failing is not None:
        changes["failing"] = outcome.webhook_failing
    if outcome.state == "failed":
        changes["last_error"] = outcome.error
    return changes
