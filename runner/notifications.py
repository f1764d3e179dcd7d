"""Notices: the outbox events a transition causes, built before its compare-and-set.

The caller hands the events to the store call that makes the transition (``transition_run``,
``transition_item``, ``fire_campaign`` take ``outbox=``), so an event is stored exactly when
its transition wins. Each event carries the deliveries it needs: ``portal`` always (the
notification and its live push), ``email`` when SMTP is set up and the user chose that type,
one ``webhook`` per webhook of the user that subscribed to it. Building never breaks a
transition: a failure to read what an event needs is logged and the transition goes on without
it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from automation_scripts.publishing import AuthError, LimitReached
from storage.base import Campaign, Fire, Run, Store, User, utcnow
from storage.notification_records import NewDelivery, Notification, OutboxEvent, Webhook

log = logging.getLogger(__name__)

RUN_EVENTS = ("run.completed", "run.failed", "run.cancelled")
CAMPAIGN_EVENTS = ("campaign.missed", "campaign.skipped", "campaign.failed")
SITE_EVENTS = ("site.auth_failed", "site.daily_limit")
# What a user can ask to be emailed about, and a webhook can subscribe to.
EVENT_TYPES = RUN_EVENTS + CAMPAIGN_EVENTS + SITE_EVENTS
DEFAULT_EMAIL_EVENTS = ("run.failed", "campaign.missed", "site.auth_failed")
EMAIL_EVENTS_SETTING = "email_events"          # the key in the user's settings
WEBHOOK_FAILING = "webhook.failing"            # the owner's notice; portal only
PING = "ping"                                  # POST /api/webhooks/<id>/test; that webhook only

EVENT_TITLES = {
    "run.completed": "Run completed", "run.failed": "Run failed",
    "run.cancelled": "Run cancelled", "campaign.missed": "Campaign fires missed",
    "campaign.skipped": "Campaign fire skipped", "campaign.failed": "Campaign fire failed",
    "site.auth_failed": "Site refused the credentials",
    "site.daily_limit": "Site's daily limit reached",
}
KIND_TITLES = {"stock": "Stock analysis", "earnings": "Earnings", "sports": "Sports"}
FAILED_ITEMS_MAX = 100          # named in an event's data; the message names fewer
MESSAGE_ITEMS_MAX = 5
# How runner/campaigns.py words a fire it did not start because the site refused the login.
REFUSED_PREFIX = "the site refused the credentials"


def event_key(*parts: Any) -> str:
    """A deterministic event id: the same cause gives the same id, so the store keeps one."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def email_events_of(user: User | None) -> list[str]:
    """The event types that email ``user``: their choice, else the default."""
    chosen = (user.settings or {}).get(EMAIL_EVENTS_SETTING) if user is not None else None
    if isinstance(chosen, list):
        return [t for t in chosen if t in EVENT_TYPES]
    return list(DEFAULT_EMAIL_EVENTS)


def notification_payload(note: Notification | OutboxEvent, *, read: bool = False
                         ) -> dict[str, Any]:
    """A notification as the API lists it and the ``notification`` socket event carries."""
    return {"id": note.id, "type": note.type, "title": note.title, "message": note.message,
            "run_id": note.run_id, "campaign_id": note.campaign_id, "link": note.link or None,
            "created_at": note.created_at.isoformat(),
            "read": bool(getattr(note, "read", read))}


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind.capitalize() or "Automation")


def _counts(run: Run) -> dict[str, int]:
    counts = run.counts or {}
    return {state: int(counts.get(state, 0)) for state in ("published", "skipped", "failed")}


def _labels(items: Sequence[dict[str, Any]]) -> str:
    shown = [str(i["label"]) for i in items[:MESSAGE_ITEMS_MAX]]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


class Notices:
    """Builds outbox events; ``Notices(None)`` builds none (a runner without notifications)."""

    def __init__(self, store: Store | None, *, email_enabled: bool = False,
                 public_url: str = "") -> None:
        self.store = store
        self.email_enabled = email_enabled
        self.public_url = public_url.rstrip("/")

    def url(self, link: str) -> str:
        """``link`` (a path) made absolute with TICKZEN_PUBLIC_URL when it is set."""
        return f"{self.public_url}{link}" if self.public_url and link.startswith("/") else link

    # ------------------------------------------------------------------------------------------
    # The events.

    def run_finished(self, run_id: str, status: str, *, error: str | None = None
                     ) -> list[OutboxEvent]:
        """``run.completed|failed|cancelled`` for the run about to become ``status``."""
        return self._safely(f"run {run_id} {status}", self._run_finished, run_id, status, error)

    def item_failed(self, run_id: str, exc: BaseException) -> list[OutboxEvent]:
        """``site.auth_failed`` / ``site.daily_limit`` when an item failed on its site's
        credentials or daily limit: once per run and site (a deterministic id)."""
        return self._safely(f"run {run_id} item failure", self._item_failed, run_id, exc)

    def campaign_fired(self, campaign: Campaign, fires: Sequence[Fire]) -> list[OutboxEvent]:
        """``campaign.missed`` (all the missed fires of one step in one event),
        ``campaign.skipped``, ``campaign.failed``, or ``site.auth_failed`` (the site refused
        the credentials before the run could start)."""
        return self._safely(f"campaign {campaign.id} fires", self._campaign_fired, campaign,
                            fires)

    def webhook_failing(self, webhook: Webhook, error: str | None) -> list[OutboxEvent]:
        """The owner's notice that a webhook gave up; once per failing spell."""
        since = webhook.last_success_at or webhook.created_at
        return self._safely(f"webhook {webhook.id}", lambda: [OutboxEvent(
            id=event_key(WEBHOOK_FAILING, webhook.id, since.isoformat()),
            user_id=webhook.user_id, type=WEBHOOK_FAILING, title=f"Webhook failing: "
            f"{webhook.url}"[:200], message=f"Deliveries to {webhook.url} gave up after their "
            f"last attempt: {error or 'no answer'}. New events are still sent to it.",
            data={"webhook_id": webhook.id, "url": webhook.url, "error": error},
            link="/account#webhooks", deliveries=[NewDelivery("portal")])])

    def ping(self, webhook: Webhook) -> OutboxEvent:
        """A ``ping`` to one webhook (its test button): no notification, no email."""
        return OutboxEvent(id="", user_id=webhook.user_id, type=PING, title="Ping",
                           message="A test delivery from TickZen.",
                           data={"webhook_id": webhook.id, "message": "ping"},
                           deliveries=[NewDelivery("webhook", webhook.id)])

    # ------------------------------------------------------------------------------------------
    # How they are built.

    def _safely(self, what: str, build: Any, *args: Any) -> list[OutboxEvent]:
        if self.store is None:
            return []
        try:
            return [e for e in build(*args) if e is not None]
        except Exception:       # an event must never stop the transition it belongs to
            log.exception("building the notification for %s failed; it is left out", what)
            return []

    def _event(self, user_id: str, type_: str, title: str, message: str, *,
               data: dict[str, Any], link: str, run_id: str | None = None,
               campaign_id: str | None = None, event_id: str = "") -> OutboxEvent | None:
        assert self.store is not None
        user = self.store.get_user(user_id)
        if user is None:
            return None
        deliveries = [NewDelivery("portal")]
        if self.email_enabled and type_ in email_events_of(user):
            deliveries.append(NewDelivery("email"))
        deliveries += [NewDelivery("webhook", hook.id) for hook in
                       self.store.list_webhooks(user_id) if type_ in (hook.events or [])]
        return OutboxEvent(id=event_id, user_id=user_id, type=type_, title=title[:200],
                           message=message[:2000], data={**data, "url": self.url(link)},
                           run_id=run_id, campaign_id=campaign_id, link=link,
                           deliveries=deliveries, created_at=utcnow())

    def _run_context(self, run: Run) -> tuple[str, dict[str, Any]]:
        assert self.store is not None
        site = self.store.get_site(run.user_id, run.site_id)
        campaign = self.store.get_campaign(run.user_id, run.campaign_id) \
            if run.campaign_id else None
        site_name = site.name if site is not None else "a deleted site"
        name = f"{kind_title(run.kind)} run on {site_name}"
        if campaign is not None:
            name = f"{campaign.name}: {name}"
        return name, {"id": run.id, "name": name, "kind": run.kind, "site_id": run.site_id,
                      "site_name": site_name, "campaign_id": run.campaign_id,
                      "campaign_name": campaign.name if campaign is not None else None,
                      "total": run.total, "counts": _counts(run)}

    def _run_finished(self, run_id: str, status: str, error: str | None
                      ) -> list[OutboxEvent | None]:
        assert self.store is not None
        run = self.store.get_run(run_id)
        if run is None:
            return []
        type_ = {"completed": "run.completed", "failed": "run.failed",
                 "cancelled": "run.cancelled"}.get(status)
        if type_ is None:
            return []
        name, about = self._run_context(run)
        failed = [{"key": i.key, "label": i.label or i.key, "error": i.error or ""}
                  for i in self.store.list_items(run.id) if i.status == "failed"]
        counts = about["counts"]
        message = (f"{counts['published']} published, {counts['skipped']} skipped, "
                   f"{counts['failed']} failed")
        if status == "failed":
            message = f"{error or run.error or 'the run stopped'}. {message}"
        if failed:
            message += f". Failed: {_labels(failed)}"
        about.update(status=status, error=error if status == "failed" else None)
        return [self._event(run.user_id, type_, f"{EVENT_TITLES[type_]}: {name}", message,
                            data={"run": about, "failed_items": failed[:FAILED_ITEMS_MAX]},
                            link=f"/runs/{run.id}", run_id=run.id,
                            campaign_id=run.campaign_id)]

    def _item_failed(self, run_id: str, exc: BaseException) -> list[OutboxEvent | None]:
        if isinstance(exc, AuthError):
            type_ = "site.auth_failed"
        elif isinstance(exc, LimitReached):
            type_ = "site.daily_limit"
        else:
            return []
        assert self.store is not None
        run = self.store.get_run(run_id)
        if run is None:
            return []
        site = self.store.get_site(run.user_id, run.site_id)
        site_name = site.name if site is not None else run.site_id
        name, about = self._run_context(run)
        error = str(exc) or type(exc).__name__
        if type_ == "site.auth_failed":
            message = (f"{site_name} refused the credentials while {name} was publishing: "
                       f"{error}. Check the site's username and application password.")
        else:
            message = (f"{name} stopped publishing at {site_name}'s daily limit: {error}. "
                       "The remaining items failed; retry the run tomorrow.")
        return [self._event(run.user_id, type_, f"{EVENT_TITLES[type_]}: {site_name}",
                            message, data={"site": self._site_data(site, run.site_id),
                                           "run": about, "error": error},
                            link=f"/runs/{run.id}", run_id=run.id,
                            campaign_id=run.campaign_id,
                            event_id=event_key(type_, run.id, run.site_id))]

    @staticmethod
    def _site_data(site: Any, site_id: str) -> dict[str, Any]:
        if site is None:
            return {"id": site_id, "name": None, "kind": None, "url": None}
        return {"id": site.id, "name": site.name, "kind": site.kind, "url": site.url or None}

    def _campaign_fired(self, campaign: Campaign, fires: Sequence[Fire]
                        ) -> list[OutboxEvent | None]:
        missed = [f for f in fires if f.outcome == "missed"]
        others = [f for f in fires if f.outcome in ("skipped", "failed")]
        if not missed and not others:
            return []
        about = {"id": campaign.id, "name": campaign.name, "kind": campaign.kind,
                 "site_id": campaign.site_id}
        link = f"/campaigns/{campaign.id}"
        events: list[OutboxEvent | None] = []
        if missed:
            reasons = sorted({f.reason for f in missed if f.reason})
            events.append(self._event(
                campaign.user_id, "campaign.missed",
                f"{EVENT_TITLES['campaign.missed']}: {campaign.name}",
                f"{len(missed)} fire{'s' if len(missed) != 1 else ''} did not run: "
                + "; ".join(reasons), data={"campaign": about, "fires": _fires(missed)},
                link=link, campaign_id=campaign.id,
                event_id=event_key("campaign.missed", *sorted(f.id for f in missed))))
        for fire in others:
            type_ = f"campaign.{fire.outcome}"
            if fire.outcome == "failed" and fire.reason.startswith(REFUSED_PREFIX):
                type_ = "site.auth_failed"
            events.append(self._event(
                campaign.user_id, type_, f"{EVENT_TITLES[type_]}: {campaign.name}",
                f"The fire due {fire.scheduled_for.isoformat()} {fire.outcome}: "
                f"{fire.reason or 'no reason given'}",
                data={"campaign": about, "fires": _fires([fire])}, link=link,
                campaign_id=campaign.id, event_id=event_key(type_, fire.id)))
        return events


def _fires(fires: Iterable[Fire]) -> list[dict[str, Any]]:
    return [{"fire_id": f.id, "scheduled_for": f.scheduled_for.isoformat(),
             "outcome": f.outcome, "reason": f.reason} for f in fires]
