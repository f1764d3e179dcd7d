"""Notifications and webhooks (portal/notifications.py, portal/webhooks.py)."""

from __future__ import annotations

from pydantic import Field

from portal.api_models.common import ID, LIMIT, OFFSET, Deleted, Model, Operation, Param, ops


class Notification(Model):
    id: str
    type: str = Field(description="run.completed, run.failed, run.cancelled, campaign.missed, "
                                  "campaign.skipped, campaign.failed, site.auth_failed, "
                                  "site.daily_limit or webhook.failing.")
    title: str
    message: str
    run_id: str | None = None
    campaign_id: str | None = None
    link: str | None = Field(None, description="The portal page it is about (a path).")
    created_at: str
    read: bool


class NotificationList(Model):
    notifications: list[Notification] = Field(description="Newest first.")
    unread: int = Field(description="How many of yours are unread (all of them, not this page).")


class MarkRead(Model):
    """``{ids: [...]}`` or ``{all: true}``."""

    ids: list[str] | None = Field(None, min_length=1, max_length=500)
    all: bool | None = Field(None, description="true: every notification of yours.")


class Marked(Model):
    marked: int = Field(description="How many became read.")
    unread: int


class WebhookCreate(Model):
    url: str = Field(min_length=1, max_length=2048, description="http(s); passes the SSRF "
                                                                "checks of site URLs.")
    events: list[str] = Field(min_length=1, description="Event types to send.")


class Webhook(Model):
    id: str
    url: str
    events: list[str]
    failing: bool = Field(description="The last delivery gave up after its last attempt.")
    last_error: str | None = None
    last_success_at: str | None = None
    created_at: str


class NewWebhook(Webhook):
    secret: str = Field(description="`whsec_...`: the signing secret, shown this once.")


class WebhookList(Model):
    webhooks: list[Webhook]


class PingQueued(Model):
    event_id: str
    delivery_id: str = Field(description="The `webhook-id` the ping is sent with.")


class DeliveryAttempt(Model):
    id: str
    type: str
    attempt: int
    status_code: int | None = None
    duration_ms: int
    error: str | None = None
    created_at: str


class DeliveryLog(Model):
    deliveries: list[DeliveryAttempt] = Field(description="One row per attempt, newest first.")


UNREAD = Param("unread", {"type": "string", "enum": ["0", "1", "true", "false"]},
               "1: only the unread ones.")
WEBHOOK = {"webhook_id": ID}

OPERATIONS = ops(
    ("notifications.api_list", "GET", Operation(
        "Your notifications", "notifications", {200: NotificationList},
        query=(UNREAD, LIMIT, OFFSET))),
    ("notifications.api_read", "POST", Operation(
        "Mark notifications read", "notifications", {200: Marked}, body=MarkRead)),
    ("webhooks.api_create", "POST", Operation(
        "Add a webhook (its secret is shown once)", "webhooks", {201: NewWebhook},
        body=WebhookCreate, errors=(400, 401, 409, 429),
        description="409 past TICKZEN_MAX_WEBHOOKS.")),
    ("webhooks.api_list", "GET", Operation("Your webhooks", "webhooks", {200: WebhookList})),
    ("webhooks.api_get", "GET", Operation("One webhook", "webhooks", {200: Webhook},
                                          path=WEBHOOK)),
    ("webhooks.api_delete", "DELETE", Operation("Delete a webhook and its delivery log",
                                                "webhooks", {200: Deleted}, path=WEBHOOK)),
    ("webhooks.api_test", "POST", Operation(
        "Send a ping to a webhook", "webhooks", {202: PingQueued}, path=WEBHOOK,
        description="Delivered by the delivery thread; see the delivery log.")),
    ("webhooks.api_deliveries", "GET", Operation(
        "A webhook's delivery log", "webhooks", {200: DeliveryLog}, path=WEBHOOK,
        query=(LIMIT, OFFSET))),
)
