"""Webhooks: the JSON API, and the "Webhooks" section of /account with its forms.

A webhook is a URL and the event types it wants; deliveries follow the Standard Webhooks
specification (runner/webhook_sender.py) and run on the delivery thread, never here: the test
button only stores a ``ping`` in the outbox and wakes the thread. The ``whsec_`` signing secret
is made here, stored encrypted with the app's SecretBox and shown once, in the creating answer
(the API's 201, or the page right after the form). The URL passes the site URLs' SSRF checks.
Another user's webhook is "not found" (404).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request
from flask_login import current_user, login_required

from automation_scripts.publishing.safety import url_problem
from portal.access import current_user_id
from portal.config import allow_private_urls
from portal.errors import InvalidRequest, NotFound
from portal.quotas import WEBHOOKS, QuotaReached
from portal.services import services
from runner.notifications import EVENT_TYPES
from runner.retention import WEBHOOK_ATTEMPTS_KEPT
from runner.webhook_sender import new_secret
from storage.notification_records import Webhook, WebhookAttempt

bp = Blueprint("webhooks", __name__)

URL_MAX = 2048
SECTION = "/account#webhooks"


class WebhookInputError(InvalidRequest):
    """A submitted webhook is unusable (400); the message says which field and why."""


def webhook_json(hook: Webhook, secret: str | None = None) -> dict[str, Any]:
    """A webhook as the API answers it: never its secret, except the one time it is made."""
    body: dict[str, Any] = {
        "id": hook.id, "url": hook.url, "events": list(hook.events), "failing": hook.failing,
        "last_error": hook.last_error,
        "last_success_at": hook.last_success_at.isoformat() if hook.last_success_at else None,
        "created_at": hook.created_at.isoformat()}
    if secret is not None:
        body["secret"] = secret
    return body


def attempt_json(row: WebhookAttempt) -> dict[str, Any]:
    return {"id": row.id, "type": row.type, "attempt": row.attempt,
            "status_code": row.status_code, "duration_ms": row.duration_ms, "error": row.error,
            "created_at": row.created_at.isoformat(), "delivery_id": row.delivery_id,
            "event_id": row.event_id}


def parse_webhook(body: Any) -> tuple[str, list[str]]:
    """``{url, events}`` checked: a safe http(s) URL, known event types (at least one)."""
    if not isinstance(body, dict):
        raise WebhookInputError("the body must be a JSON object: {url, events}")
    unknown = sorted(set(body) - {"url", "events"})
    if unknown:
        raise WebhookInputError(f"unknown field(s): {', '.join(unknown)[:200]}")
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise WebhookInputError("url is required")
    url = url.strip()
    if len(url) > URL_MAX:
        raise WebhookInputError(f"url is longer than {URL_MAX} characters")
    problem = url_problem(url, allow_private=allow_private_urls())
    if problem:
        raise WebhookInputError(problem)
    events = body.get("events")
    if not isinstance(events, list) or not events or not all(isinstance(e, str)
                                                             for e in events):
        raise WebhookInputError("events must be a non-empty list of event types")
    unknown_events = sorted(set(events) - set(EVENT_TYPES))
    if unknown_events:
        raise WebhookInputError(f"unknown event type(s): {', '.join(unknown_events)[:200]}; "
                                f"use {', '.join(EVENT_TYPES)}")
    return url, [t for t in EVENT_TYPES if t in events]


def create_webhook(body: Any) -> tuple[Webhook, str]:
    """Check and store a new webhook for the signed-in user; returns it and its secret.
    409 past the account's TICKZEN_MAX_WEBHOOKS."""
    user_id = current_user_id()
    WEBHOOKS.check(user_id)
    url, events = parse_webhook(body)
    store = services().store
    secret = new_secret()
    hook = store.create_webhook(Webhook(id="", user_id=user_id, url=url, events=events,
                                        secret_enc=services().secrets.encrypt(secret)))
    return hook, secret


def owned_webhook(webhook_id: str) -> Webhook:
    hook = services().store.get_webhook(current_user_id(), webhook_id) \
        if isinstance(webhook_id, str) and webhook_id else None
    if hook is None:
        raise NotFound("webhook not found")
    return hook


def send_ping(hook: Webhook) -> tuple[str, str]:
    """Store a ``ping`` for ``hook`` and wake the delivery thread; (event id, delivery id)."""
    svc = services()
    [event] = svc.store.add_outbox([svc.runs.notices.ping(hook)])
    if svc.delivery is not None:
        svc.delivery.wake()
    return event.id, svc.store.list_deliveries(event.id)[0].id


def _limits() -> tuple[int, int]:
    limit = request.args.get("limit", default=50, type=int)
    offset = request.args.get("offset", default=0, type=int)
    if limit is None or offset is None or not 1 <= limit <= 200 or offset < 0:
        raise InvalidRequest("limit must be 1..200 and offset >= 0")
    return limit, offset


# -- the API -----------------------------------------------------------------------------------

@bp.post("/api/webhooks")
@login_required
def api_create() -> tuple[Response, int]:
    hook, secret = create_webhook(request.get_json(silent=True))
    return jsonify(webhook_json(hook, secret)), 201


@bp.get("/api/webhooks")
@login_required
def api_list() -> Response:
    hooks = services().store.list_webhooks(current_user_id())
    return jsonify({"webhooks": [webhook_json(h) for h in hooks]})


@bp.get("/api/webhooks/<webhook_id>")
@login_required
def api_get(webhook_id: str) -> Response:
    return jsonify(webhook_json(owned_webhook(webhook_id)))


@bp.delete("/api/webhooks/<webhook_id>")
@login_required
def api_delete(webhook_id: str) -> Response:
    hook = owned_webhook(webhook_id)
    services().store.delete_webhook(hook.user_id, hook.id)
    return jsonify({"deleted": hook.id})


@bp.post("/api/webhooks/<webhook_id>/test")
@login_required
def api_test(webhook_id: str) -> tuple[Response, int]:
    event_id, delivery_id = send_ping(owned_webhook(webhook_id))
    return jsonify({"event_id": event_id, "delivery_id": delivery_id}), 202


@bp.get("/api/webhooks/<webhook_id>/deliveries")
@login_required
def api_deliveries(webhook_id: str) -> Response:
    hook = owned_webhook(webhook_id)
    limit, offset = _limits()
    rows = services().store.list_webhook_attempts(hook.user_id, hook.id, limit, offset)
    return jsonify({"deliveries": [attempt_json(r) for r in rows]})


# -- the section on /account and its forms -----------------------------------------------------

@bp.app_template_global("current_webhooks")
def current_webhooks() -> list[Webhook]:
    """The signed-in user's webhooks, for the section on /account."""
    if not current_user.is_authenticated:
        return []
    return services().store.list_webhooks(current_user_id())


@bp.app_template_global("webhook_event_types")
def webhook_event_types() -> tuple[str, ...]:
    return EVENT_TYPES


@bp.post("/webhooks")
@login_required
def page_create() -> Any:
    form = request.form
    try:
        hook, secret = create_webhook({"url": form.get("url", ""),
                                       "events": form.getlist("events")})
    except (WebhookInputError, QuotaReached) as exc:
        return render_template("webhooks/created.html", error=exc.message, hook=None,
                               secret=None, url=form.get("url", ""),
                               events=form.getlist("events")), exc.http_status
    return render_template("webhooks/created.html", error=None, hook=hook, secret=secret)


@bp.post("/webhooks/<webhook_id>/delete")
@login_required
def page_delete(webhook_id: str) -> Response:
    hook = owned_webhook(webhook_id)
    services().store.delete_webhook(hook.user_id, hook.id)
    flash(f"Webhook {hook.url} deleted.", "info")
    return redirect(SECTION, code=303)


@bp.post("/webhooks/<webhook_id>/test")
@login_required
def page_test(webhook_id: str) -> Response:
    hook = owned_webhook(webhook_id)
    send_ping(hook)
    flash(f"A ping is on its way to {hook.url}; its delivery log shows the answer.", "info")
    return redirect(SECTION, code=303)


@bp.get("/webhooks/<webhook_id>")
@login_required
def page_log(webhook_id: str) -> str:
    hook = owned_webhook(webhook_id)
    # The newest attempts retention always keeps, however old: the log never shows a gap.
    rows = services().store.list_webhook_attempts(hook.user_id, hook.id, WEBHOOK_ATTEMPTS_KEPT, 0)
    return render_template("webhooks/log.html", hook=hook, attempts=rows)
