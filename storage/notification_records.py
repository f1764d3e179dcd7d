"""The records of notifications and their deliveries: a portal notification, a user's
webhook, an outbox event with its deliveries (portal, email, webhook), a delivery's outcome
and a webhook's attempt log. Kept apart from ``storage.base`` as the campaign records are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.clock import utcnow

DELIVERY_CHANNELS = ("portal", "email", "webhook")      # portal = the live Socket.IO push
DELIVERY_STATES = ("pending", "delivered", "failed")


@dataclass
class Notification:
    """What the user reads on /notifications: ``users/{uid}/notifications/{id}``. Written by
    the store with the outbox event that has a ``portal`` delivery (same id as the event)."""

    id: str
    user_id: str
    type: str
    title: str
    message: str = ""
    run_id: str | None = None
    campaign_id: str | None = None
    link: str = ""                      # the page it is about (a path: /runs/<id> ...)
    read: bool = False
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Webhook:
    """A user's endpoint for Standard Webhooks deliveries: ``users/{uid}/webhooks/{id}``.
    ``failing`` after a delivery's last attempt failed, until one succeeds again."""

    id: str
    user_id: str
    url: str
    events: list[str] = field(default_factory=list)
    secret_enc: str = ""                # the whsec_ secret, encrypted with the SecretBox
    failing: bool = False
    last_error: str | None = None
    last_success_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class NewDelivery:
    """One channel an outbox event goes to: ``portal``, ``email`` (the user's address) or
    ``webhook`` (``target`` = the webhook id)."""

    channel: str
    target: str = ""


@dataclass
class OutboxEvent:
    """An event, written in the transaction of the transition that caused it, with the
    deliveries it needs. ``id`` empty -> generated; an id already stored is not written again
    (nor its notification or deliveries), so a deterministic id makes an event once-only."""

    id: str
    user_id: str
    type: str
    title: str
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    campaign_id: str | None = None
    link: str = ""
    deliveries: list[NewDelivery] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class Delivery:
    """One (event, channel[, webhook]) delivery; its id is ``<event id>.<channel>[.<target>]``,
    so an event cannot be delivered twice on one channel. A claim leases it: ``lease_owner``
    is set and ``next_attempt_at`` moves to the lease's end, so a claimer that dies simply
    lets it fall due again."""

    id: str
    event_id: str
    user_id: str
    channel: str
    target: str = ""
    state: str = "pending"              # pending | delivered | failed
    attempts: int = 0                   # claims so far (a claim is an attempt)
    next_attempt_at: datetime = field(default_factory=utcnow)
    lease_owner: str | None = None
    last_error: str | None = None
    last_status: int | None = None      # the last HTTP status (webhooks) or SMTP code
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    delivered_at: datetime | None = None


@dataclass
class WebhookAttempt:
    """One row of a webhook's delivery log: ``users/{uid}/webhooks/{wid}/attempts/{id}``."""

    id: str
    webhook_id: str
    user_id: str
    delivery_id: str
    event_id: str
    type: str
    attempt: int
    status_code: int | None = None
    duration_ms: int = 0
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class DeliveryOutcome:
    """What ``Store.finish_delivery`` records for one attempt, in one transaction: the
    delivery's new state (``pending`` = again at ``next_attempt_at``), the webhook's log row and
    its ``failing`` flag, and events the outcome causes (the owner's "webhook failing")."""

    state: str
    next_attempt_at: datetime | None = None
    error: str | None = None
    status: int | None = None
    log: WebhookAttempt | None = None
    webhook_failing: bool | None = None  # None: leave the flag
    outbox: list[OutboxEvent] = field(default_factory=list)


def delivery_id(event_id: str, channel: str, target: str = "") -> str:
    """The one id a channel's delivery of an event can have."""
    return f"{event_id}.{channel}.{target}" if target else f"{event_id}.{channel}"
