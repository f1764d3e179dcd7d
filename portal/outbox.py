"""How an app's notifications are wired: the Notices its runner builds events with, and the
delivery thread that works the outbox (Socket.IO through the app's own emit, email over
``TICKZEN_SMTP_URL``, webhooks). ``portal.services`` builds both with the run manager."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from portal.config import allow_private_urls
from runner.delivery import DeliveryWorker, parse_retry_seconds
from runner.mailer import Mailer
from runner.notifications import Notices
from runner.progress import Emit
from runner.webhook_sender import WebhookSender
from storage.base import Store

log = logging.getLogger(__name__)


def mailer_for(app: Flask) -> Mailer | None:
    """The SMTP mailer, or None when ``TICKZEN_SMTP_URL`` is unset or unusable (logged): the
    portal runs without email then."""
    url = app.config.get("TICKZEN_SMTP_URL")
    if not url:
        return None
    try:
        return Mailer.from_url(url, app.config["TICKZEN_MAIL_FROM"])
    except ValueError as exc:
        log.error("email is off: %s", exc)
        return None


def notices_for(app: Flask, store: Store) -> Notices:
    """What the runner builds each transition's events with."""
    return Notices(store, email_enabled=mailer_for(app) is not None,
                   public_url=app.config["TICKZEN_PUBLIC_URL"])


def delivery_worker(app: Flask, store: Store, *, emit: Emit, secrets: Any, notices: Notices,
                    owner: str) -> DeliveryWorker:
    """The app's delivery thread (not started: the caller starts it with the runner)."""
    return DeliveryWorker(
        store, owner=owner, emit=emit, notices=notices, secrets=secrets,
        webhooks=WebhookSender(allow_private_urls=allow_private_urls(app.config)),
        mailer=mailer_for(app), public_url=app.config["TICKZEN_PUBLIC_URL"],
        webhook_retry=_delays(app.config["TICKZEN_WEBHOOK_RETRY_SECONDS"]))


def _delays(value: Any) -> tuple[float, ...]:
    """The retry schedule as config holds it: parsed from the environment, or as a test's
    config dict gives it (text or numbers)."""
    if isinstance(value, str):
        return parse_retry_seconds(value)
    if isinstance(value, int | float):
        return (float(value),)
    return tuple(float(v) for v in value)
