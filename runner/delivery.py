"""The delivery thread: it works the outbox, never a run's thread or a request.

Every tick it claims due deliveries from the store (a lease, so with several instances each is
worked by one), works them on a small pool, and records each outcome with
``Store.finish_delivery`` while it still holds the lease. What a delivery is:

- ``portal``: the Socket.IO ``notification`` event to ``user_<id>`` (the notification itself
  was stored with the event);
- ``email``: one message per event over SMTP (``runner.mailer``);
- ``webhook``: one signed Standard Webhooks POST (``runner.webhook_sender``).

A failure that may pass (network, timeout, 429, 5xx, SMTP 4xx) is tried again after the
channel's next delay; the last failure, or one that will not pass (another 4xx, a refused URL),
ends the delivery ``failed``. A webhook then becomes ``failing`` and its owner gets a portal
notice. A process that dies mid-delivery loses nothing: the lease runs out and the delivery is
due again, for any instance (a webhook receiver may then see the same ``webhook-id`` twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runner.background import BackgroundThread
from runner.mailer import Mailer, MailError, compose
from runner.notifications import Notices, notification_payload
from runner.progress import Emit, user_room
from runner.webhook_sender import WebhookSender, payload
from storage.base import ConflictError, NotFoundError, Store, StoreError, utcnow
from storage.notification_records import Delivery, DeliveryOutcome, OutboxEvent, WebhookAttempt
from storage.secrets import SecretsError

log = logging.getLogger(__name__)

DEFAULT_WEBHOOK_RETRY = (10.0, 60.0, 300.0, 1800.0, 7200.0)
DEFAULT_EMAIL_RETRY = (30.0, 120.0, 600.0, 1800.0, 7200.0)
DEFAULT_PORTAL_RETRY = (1.0, 5.0, 30.0)
STALL_AFTER = timedelta(seconds=120)


def parse_retry_seconds(text: str) -> tuple[float, ...]:
    """``"5,30,120,600"`` -> the delays between attempts; ValueError naming a bad one."""
    delays = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number of seconds") from None
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"{part!r} is not a number of seconds >= 0")
        delays.append(value)
    if not delays:
        raise ValueError("give at least one delay, e.g. 10,60,300")
    return tuple(delays)


@dataclass(frozen=True)
class Retry:
    """The delays after attempt 1, 2, ...; attempts = len(delays) + 1."""

    delays: tuple[float, ...]

    def after(self, attempt: int) -> float | None:
        """Seconds until the next attempt after ``attempt`` failed; None: it was the last."""
        return self.delays[attempt - 1] if 1 <= attempt <= len(self.delays) else None


class DeliveryWorker(BackgroundThread):
    """Claims and works deliveries on its own daemon thread (``start``/``stop``), or one
    batch at a time in the caller's thread (``run_once``, for tools and tests)."""

    thread_name = "tickzen-delivery"

    def __init__(self, store: Store, *, owner: str, emit: Emit, notices: Notices,
                 webhooks: WebhookSender, secrets: Any, mailer: Mailer | None = None,
                 public_url: str = "",
                 webhook_retry: Sequence[float] = DEFAULT_WEBHOOK_RETRY,
                 email_retry: Sequence[float] = DEFAULT_EMAIL_RETRY,
                 portal_retry: Sequence[float] = DEFAULT_PORTAL_RETRY,
                 lease_seconds: float = 120.0, poll_seconds: float = 1.0, batch: int = 20,
                 threads: int = 4, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.owner = owner
        self.emit = emit
        self.notices = notices
        self.webhooks = webhooks
        self.secrets = secrets
        self.mailer = mailer
        self.public_url = public_url
        self.retry = {"webhook": Retry(tuple(map(float, webhook_retry))),
                      "email": Retry(tuple(map(float, email_retry))),
                      "portal": Retry(tuple(map(float, portal_retry)))}
        self.lease_seconds = float(lease_seconds)
        self.poll_seconds = max(0.01, float(poll_seconds))
        self.batch = max(1, int(batch))
        self.threads = max(1, int(threads))
        self.clock = clock
        self.last_poll: datetime | None = None
        super().__init__()
        self._wake = threading.Event()

    # ------------------------------------------------------------------------------------------
    # The thread.

    def stop(self, timeout: float = 15.0) -> None:
        """Stop claiming and wait for the batch under way (its leases are released by
        recording each outcome; an unfinished one falls due when its lease ends)."""
        self._stop.set()
        self._wake.set()
        super().stop(timeout)

    def wake(self) -> None:
        """Look for due deliveries now (an event was just stored)."""
        self._wake.set()

    def health(self) -> dict[str, Any]:
        """``{status, last_poll}`` (BackgroundThread.beat_health)."""
        return self.beat_health("last_poll", self.last_poll, self.clock(), max(
            STALL_AFTER, timedelta(seconds=self.poll_seconds * 50)))

    def _loop(self) -> None:
        with ThreadPoolExecutor(max_workers=self.threads,
                                thread_name_prefix="tickzen-deliver") as pool:
            while not self._stop.is_set():
                try:
                    claimed = self._claim()
                    if claimed:
                        list(pool.map(self.deliver, claimed))
                        continue                    # more may be due: look again at once
                except Exception:        # the thread must outlive a store hiccup
                    log.exception("delivery loop failed")
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    # ------------------------------------------------------------------------------------------
    # One batch, one delivery.

    def run_once(self) -> int:
        """Claim one batch and work it here; returns how many were worked."""
        claimed = self._claim()
        for delivery in claimed:
            self.deliver(delivery)
        return len(claimed)

    def _claim(self) -> list[Delivery]:
        now = self.clock()
        self.last_poll = now
        return self.store.claim_deliveries(
            self.owner, now, now + timedelta(seconds=self.lease_seconds), limit=self.batch)

    def deliver(self, delivery: Delivery) -> None:
        """Work one claimed delivery and record its outcome; never raises (what goes wrong
        is logged, and the delivery falls due again when its lease ends)."""
        try:
            self._deliver(delivery)
        except Exception:
            log.exception("delivery %s could not be worked", delivery.id)

    def _deliver(self, delivery: Delivery) -> None:
        try:
            event = self.store.get_outbox_event(delivery.event_id)
            if event is None:
                outcome = DeliveryOutcome("failed", error="the event is gone")
            elif delivery.channel == "portal":
                outcome = self._portal(delivery, event)
            elif delivery.channel == "email":
                outcome = self._email(delivery, event)
            elif delivery.channel == "webhook":
                outcome = self._webhook(delivery, event)
            else:
                outcome = DeliveryOutcome("failed", error=f"unknown channel {delivery.channel}")
        except Exception as exc:      # a bug in one channel must not wedge the delivery
            log.exception("delivery %s failed unexpectedly", delivery.id)
            outcome = self._failed(delivery, f"internal error: {type(exc).__name__}",
                                   retryable=True)
        try:
            self.store.finish_delivery(delivery, self.owner, outcome)
        except (ConflictError, NotFoundError) as exc:
            log.warning("delivery %s: outcome not recorded (%s); another claimer has it",
                        delivery.id, exc)
        except StoreError:
            log.exception("delivery %s: recording the outcome failed; it falls due again "
                          "when its lease ends", delivery.id)

    def _failed(self, delivery: Delivery, error: str, *, retryable: bool,
                status: int | None = None, wait: float | None = None,
                log_row: WebhookAttempt | None = None) -> DeliveryOutcome:
        """Again after the channel's next delay (or ``wait``), or ``failed`` for good."""
        delay = self.retry[delivery.channel].after(delivery.attempts) if retryable else None
        if delay is not None:
            if wait is not None:
                delay = wait
            return DeliveryOutcome("pending", self.clock() + timedelta(seconds=delay),
                                   error=error, status=status, log=log_row)
        log.warning("delivery %s (%s) failed for good after %d attempts: %s", delivery.id,
                    delivery.channel, delivery.attempts, error)
        return DeliveryOutcome("failed", error=error, status=status, log=log_row)

    # ------------------------------------------------------------------------------------------
    # The channels.

    def _portal(self, delivery: Delivery, event: OutboxEvent) -> DeliveryOutcome:
        body = {**notification_payload(event),
                "unread": self.store.count_unread_notifications(event.user_id)}
        try:
            self.emit("notification", body, user_room(event.user_id))
        except Exception as exc:
            return self._failed(delivery, f"emit failed: {type(exc).__name__}", retryable=True)
        return DeliveryOutcome("delivered")

    def _email(self, delivery: Delivery, event: OutboxEvent) -> DeliveryOutcome:
        if self.mailer is None:
            return DeliveryOutcome("failed", error="email is not set up (TICKZEN_SMTP_URL)")
        user = self.store.get_user(event.user_id)
        if user is None or not user.email:
            return DeliveryOutcome("failed", error="the user is gone")
        message = compose(event, user.email, self.mailer.mail_from, self.public_url)
        try:
            self.mailer.send(message)
        except MailError as exc:
            return self._failed(delivery, str(exc), retryable=exc.retryable, status=exc.code)
        log.info("emailed %s about %s (%s)", user.email, event.type, event.id)
        return DeliveryOutcome("delivered")

    def _webhook(self, delivery: Delivery, event: OutboxEvent) -> DeliveryOutcome:
        hook = self.store.get_webhook(event.user_id, delivery.target)
        if hook is None:
            return DeliveryOutcome("failed", error="the webhook was deleted")
        now = self.clock()
        data = {**event.data, "id": event.id, "title": event.title, "message": event.message,
                "run_id": event.run_id, "campaign_id": event.campaign_id}
        body = payload(event.type, event.created_at, data)
        try:
            secret = self.secrets.decrypt(hook.secret_enc)
        except SecretsError as exc:        # TICKZEN_SECRETS_KEY changed: a new secret is needed
            return DeliveryOutcome("failed", error=str(exc), webhook_failing=True)
        result = self.webhooks.send(hook.url, delivery.id, body, secret, now)
        row = WebhookAttempt(id="", webhook_id=hook.id, user_id=hook.user_id,
                             delivery_id=delivery.id, event_id=event.id, type=event.type,
                             attempt=delivery.attempts, status_code=result.status_code,
                             duration_ms=result.duration_ms, error=result.error, created_at=now)
        if result.ok:
            return DeliveryOutcome("delivered", status=result.status_code, log=row)
        outcome = self._failed(delivery, result.error or "failed", retryable=result.retryable,
                               status=result.status_code, wait=result.retry_after, log_row=row)
        if outcome.state == "failed":
            outcome.webhook_failing = True
            outcome.outbox = self.notices.webhook_failing(hook, result.error)
        return outcome
