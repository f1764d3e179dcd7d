"""The Store protocol: the one seam between the portal/runner and persistence.

Every status change is a compare-and-set (``transition_*``): the caller names the states it
expects, and exactly one of several racing callers wins; the losers get ``ConflictError``.
Two backends implement it (``storage.sqlite``, ``storage.firestore``) and one contract test
suite (``tests/storage``) holds both to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from storage.campaign_records import CAMPAIGN_STATES as CAMPAIGN_STATES
from storage.campaign_records import FIRE_OUTCOMES as FIRE_OUTCOMES
from storage.campaign_records import Campaign, Fire
from storage.clock import utcnow
from storage.notification_records import (
    Delivery,
    DeliveryOutcome,
    Notification,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
)
from storage.paging import Cursor

# ---------------------------------------------------------------------------------------------
# Errors: a small tree, so callers catch at the level they care about.


class StoreError(Exception):
    """Base of every storage error. A subclass's ``http_status`` is the HTTP status it means
    when it reaches a web caller (the portal's error handler reads it)."""


class NotFoundError(StoreError):
    """The record does not exist (or belongs to another user)."""

    http_status = 404


class DuplicateError(StoreError):
    """A unique value (a user's email) is already taken."""

    http_status = 409


class ConflictError(StoreError):
    """A compare-and-set lost: the record was not in an expected state."""

    http_status = 409

    def __init__(self, message: str, current: str | None = None) -> None:
        super().__init__(message)
        self.current = current


class DailyLimitReached(StoreError):
    """The site already has its daily number of posts reserved or published."""

    http_status = 409


# ---------------------------------------------------------------------------------------------
# States.

RUN_STATES = ("queued", "running", "pausing", "paused", "completed", "cancelled", "failed",
              "interrupted")
RUN_ACTIVE = ("queued", "running", "pausing")          # a thread owns or will own it
RUN_FINAL = ("completed", "cancelled", "failed")
ITEM_STATES = ("pending", "processing", "publishing", "published", "skipped", "failed")
ITEM_DONE = ("published", "skipped")                    # never processed again
# What a resume (or recovery, or takeover) continues: failed items stay failed until a retry.
ITEM_TODO = ("pending", "processing", "publishing")
LEDGER_STATES = ("reserved", "published")               # reserved = publish under way


# ---------------------------------------------------------------------------------------------
# Records.


@dataclass
class User:
    id: str
    email: str
    password_hash: str
    display_name: str = ""
    settings: dict[str, Any] = field(default_factory=dict)   # e.g. sports feed sources
    created_at: datetime = field(default_factory=utcnow)
    timezone: str = ""                  # IANA zone for campaigns and shown times ("" = UTC)
    # Grows with every password change, reset and "sign out everywhere": a session that
    # carries an older number is no longer signed in.
    session_version: int = 0


@dataclass
class ApiToken:
    """A personal API token: only its SHA-256 is kept (``users/{uid}/tokens/{id}``)."""

    id: str
    user_id: str
    name: str
    token_sha256: str
    created_at: datetime = field(default_factory=utcnow)
    last_used_at: datetime | None = None


@dataclass
class Site:
    """A publishing target. ``kind`` is ``wordpress`` or ``local``.

    ``defaults`` holds default_status, gap_minutes [min, max], category, tags;
    ``authors`` is a list of {username, app_password_enc} for rotation;
    ``state`` is mutable bookkeeping (last scheduled time, author cursor) changed only via
    ``Store.update_site_state``.
    """

    id: str
    user_id: str
    name: str
    kind: str
    url: str = ""
    username: str = ""
    app_password_enc: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    daily_limit: int | None = None
    authors: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Run:
    id: str
    user_id: str
    kind: str
    site_id: str
    status: str = "queued"
    options: dict[str, Any] = field(default_factory=dict)
    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)   # item status -> how many
    percent: int = 0
    last_seq: int = 0
    error: str | None = None
    owner: str | None = None            # instance holding the lease
    lease_until: datetime | None = None
    campaign_id: str | None = None      # the campaign whose fire started it
    fire_id: str | None = None          # that fire: unique, so one fire makes at most one run
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    events_pruned_at: datetime | None = None    # retention removed its event log / workdir
    files_pruned_at: datetime | None = None
    events_pruned_seq: int = 0          # events up to this seq were removed (kept on a retry)


@dataclass
class Item:
    """One unit of a run. ``key`` is the idempotency key (the post slug)."""

    run_id: str
    position: int
    key: str
    input: Any                          # as the automation normalised it (ticker, story dict)
    label: str = ""                     # what the page shows (ticker, headline)
    status: str = "pending"
    attempts: int = 0
    post_id: str | None = None
    post_url: str | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)  # title, excerpt, report files ...
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class NewItem:
    """What ``Store.create_run`` takes per item."""

    key: str
    input: Any
    label: str = ""


@dataclass
class LedgerEntry:
    """One post on one site: ``users/{uid}/sites/{sid}/posts/{slug}``."""

    user_id: str
    site_id: str
    slug: str
    item_key: str
    kind: str
    run_id: str
    status: str = "reserved"            # reserved | published
    day: str = ""                       # YYYY-MM-DD (UTC) the slot counts against
    post_id: str | None = None
    post_url: str | None = None
    title: str = ""
    published_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    # Who holds a ``reserved`` entry and since when (renewed before each create request), so a
    # second worker can tell a live holder from a dead one and take over by compare-and-set.
    attempt: str = ""
    reserved_at: datetime | None = None
    # Update mode: the run that last wrote the post's content (its creation counts), so a
    # retry or resume of that run never updates the post a second time.
    last_updated_run: str = ""


# ---------------------------------------------------------------------------------------------
# The protocol.


@runtime_checkable
class Store(Protocol):
    # users ---------------------------------------------------------------------------------
    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        """Raises DuplicateError when the (already normalised) email is taken."""

    def get_user(self, user_id: str) -> User | None: ...

    def get_user_by_email(self, email: str) -> User | None: ...

    def update_user_settings(self, user_id: str, settings: dict[str, Any]) -> User:
        """Merge ``settings`` into the user's settings. NotFoundError if no such user."""

    def update_user(self, user_id: str, changes: dict[str, Any]) -> User:
        """Set profile fields (``display_name``, ``timezone``). NotFoundError."""

    def change_password(self, user_id: str, password_hash: str,
                        expected_hash: str | None = None) -> User:
        """Set a new password hash and bump ``session_version`` (other sessions end), in one
        step; with ``expected_hash``, only while the current hash is that one (ConflictError
        otherwise: a reset link is used once). NotFoundError."""

    def end_sessions(self, user_id: str) -> User:
        """Bump ``session_version``: every session issued before ends. NotFoundError."""

    def delete_user(self, user_id: str) -> None:
        """The user and everything they own: sites and their ledgers, runs with their items
        and events, campaigns with their fires, tokens (and any other per-user record a
        backend keeps). NotFoundError if no such user."""

    # personal API tokens -------------------------------------------------------------------
    def create_token(self, token: ApiToken) -> ApiToken:
        """Store a token (``id`` empty -> generated). NotFoundError if the user is missing;
        DuplicateError if the hash is already stored."""

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        """Oldest first."""

    def get_token_by_hash(self, token_sha256: str) -> ApiToken | None: ...

    def touch_token(self, user_id: str, token_id: str, when: datetime) -> None:
        """Record the token's last use (nothing happens when it was revoked meanwhile)."""

    def delete_token(self, user_id: str, token_id: str) -> None:
        """Revoke. NotFoundError when it is not the user's."""

    # sites ---------------------------------------------------------------------------------
    def create_site(self, user_id: str, site: Site) -> Site:
        """Store a new site (``site.id`` empty -> generated). Returns it with its id."""

    def get_site(self, user_id: str, site_id: str) -> Site | None:
        """None also when the site belongs to another user."""

    def list_sites(self, user_id: str) -> list[Site]: ...

    def update_site(self, user_id: str, site_id: str, changes: dict[str, Any]) -> Site:
        """Set the given Site fields. NotFoundError if missing."""

    def delete_site(self, user_id: str, site_id: str) -> None:
        """NotFoundError if missing."""

    def update_site_state(self, user_id: str, site_id: str,
                          mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Atomically replace ``site.state`` by ``mutate(state)``; returns the new state.

        ``mutate`` may run more than once (transaction retry) and must be pure.
        """

    # runs ----------------------------------------------------------------------------------
    def create_run(self, run: Run, items: Sequence[NewItem]) -> Run:
        """Store the run and its items (positions 0..n-1) atomically; ``run.id`` generated if
        empty; ``total`` and ``counts`` set from the items. A run with a ``fire_id`` is refused
        (ValueError): only ``fire_campaign`` creates a fire's run."""

    def get_run(self, run_id: str) -> Run | None: ...

    def list_runs(self, user_id: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 50, offset: int = 0, campaign_id: str | None = None, *,
                  kind: str | None = None, site_id: str | None = None,
                  created_from: datetime | None = None, created_to: datetime | None = None,
                  after: Cursor | None = None, oldest_first: bool = False) -> list[Run]:
        """By ``(created_at, id)``, newest first unless ``oldest_first``; ``user_id=None``: every
        user's; ``created_from <= created_at < created_to``; ``after``: the rows following
        that Cursor in this order (keyset paging)."""

    def transition_run(self, run_id: str, expected: Iterable[str], new_status: str, *,
                       outbox: Sequence[OutboxEvent] = (), **changes: Any) -> Run:
        """CAS on ``status``; also sets ``changes`` (other Run fields) and writes ``outbox``
        (see ``add_outbox``) in the same transaction, only when the CAS wins. NotFoundError,
        ConflictError(current=...)."""

    def update_run(self, run_id: str, **changes: Any) -> Run:
        """Set non-status fields (percent, error, options). NotFoundError."""

    # items ---------------------------------------------------------------------------------
    def list_items(self, run_id: str) -> list[Item]:
        """In position order."""

    def get_item(self, run_id: str, position: int) -> Item | None: ...

    def transition_item(self, run_id: str, position: int, expected: Iterable[str],
                        new_status: str, *, outbox: Sequence[OutboxEvent] = (),
                        **changes: Any) -> Item:
        """CAS on the item's status; keeps ``run.counts`` in step, and writes ``outbox``, in
        the same transaction."""

    def update_item(self, run_id: str, position: int, **changes: Any) -> Item:
        """Set non-status fields (result, error, post_id ...)."""

    # events --------------------------------------------------------------------------------
    def append_event(self, run_id: str, event: dict[str, Any]) -> int:
        """Give the event the run's next seq (``run.last_seq + 1``, atomically), store it with
        ``seq`` set, and return the seq."""

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        """Stored events with seq > after_seq, in seq order."""

    # publish ledger ------------------------------------------------------------------------
    def reserve_post(self, entry: LedgerEntry, daily_limit: int | None = None
                     ) -> tuple[LedgerEntry, bool]:
        """Claim ``entry.slug`` on its site. Returns (stored entry, True) when newly reserved,
        (existing entry, False) when the slug already has an entry (any status). Raises
        DailyLimitReached when ``daily_limit`` entries already count against ``entry.day``.
        Atomic: concurrent reservations never exceed the limit or duplicate a slug."""

    def complete_post(self, user_id: str, site_id: str, slug: str, *, post_id: str,
                      post_url: str, title: str = "") -> LedgerEntry:
        """Mark a reserved entry published. NotFoundError if there is no entry."""

    def release_post(self, user_id: str, site_id: str, slug: str,
                     attempt: str | None = None) -> None:
        """Drop a ``reserved`` entry after a definite failure (a published one stays); with
        ``attempt``, only while that attempt still holds it."""

    def claim_post(self, user_id: str, site_id: str, slug: str, *, expected_attempt: str,
                   attempt: str, now: datetime) -> LedgerEntry:
        """CAS on a ``reserved`` entry's holder: when its ``attempt`` is ``expected_attempt``,
        set ``attempt`` and ``reserved_at=now`` (a takeover, or the holder renewing its claim).
        NotFoundError if there is no entry; ConflictError when it is published or held by
        another attempt."""

    def record_update(self, user_id: str, site_id: str, slug: str, *, run_id: str,
                      post_id: str, post_url: str, title: str = "") -> LedgerEntry:
        """A published entry was updated in place by ``run_id`` (update mode): set
        ``last_updated_run`` and the post's id, url and title. NotFoundError if missing."""

    def get_post(self, user_id: str, site_id: str, slug: str) -> LedgerEntry | None: ...

    def list_posts(self, user_id: str, site_id: str | None = None, limit: int = 50,
                   offset: int = 0, *, kind: str | None = None, after: Cursor | None = None,
                   oldest_first: bool = False) -> list[LedgerEntry]:
        """Newest first (``created_at``, then site and slug); every site of the user when
        ``site_id`` is None; ``after`` as for ``list_runs``."""

    # campaigns -----------------------------------------------------------------------------
    def create_campaign(self, campaign: Campaign) -> Campaign:
        """Store a new campaign (``id`` empty -> generated). NotFoundError if the user is
        missing."""

    def get_campaign(self, user_id: str | None, campaign_id: str) -> Campaign | None:
        """None also when it belongs to another user (``user_id=None``: any user's)."""

    def list_campaigns(self, user_id: str) -> list[Campaign]:
        """Oldest first."""

    def list_due_campaigns(self, now: datetime, limit: int = 100) -> list[Campaign]:
        """Every user's ``active`` campaigns whose ``next_fire_at <= now``, soonest first."""

    def update_campaign(self, user_id: str, campaign_id: str, changes: dict[str, Any],
                        expected_revision: int | None = None) -> Campaign:
        """Set Campaign fields and bump ``revision``. NotFoundError; ConflictError when
        ``expected_revision`` is given and the campaign has moved on."""

    def delete_campaign(self, user_id: str, campaign_id: str) -> None:
        """The campaign and its fires go; the runs it started stay. NotFoundError."""

    def list_fires(self, campaign_id: str, limit: int = 50, offset: int = 0) -> list[Fire]:
        """Newest (latest ``scheduled_for``) first."""

    def fire_campaign(self, campaign_id: str, *, expected_revision: int,
                      fires: Sequence[Fire], changes: dict[str, Any],
                      run: Run | None = None, items: Sequence[NewItem] = (),
                      outbox: Sequence[OutboxEvent] = ()) -> tuple[Campaign, Run | None]:
        """One atomic step of the scheduler (``outbox`` written with it): compare-and-set on
        ``revision``, record
        ``fires``, apply ``changes`` (``next_fire_at``, ``queue``, ``status`` ...) and, when
        ``run`` is given, create it and its items with ``run.fire_id`` (a started fire's id) as
        its unique key. ConflictError when the revision moved (another instance fired first);
        DuplicateError when a fire id or the run's fire id is already recorded; NotFoundError.
        Nothing is written unless everything is."""

    # notifications -------------------------------------------------------------------------
    def list_notifications(self, user_id: str, *, unread_only: bool = False, limit: int = 50,
                           offset: int = 0) -> list[Notification]:
        """Newest first."""

    def count_unread_notifications(self, user_id: str) -> int: ...

    def mark_notifications_read(self, user_id: str, ids: Sequence[str] | None = None) -> int:
        """Mark the user's ``ids`` (None: all) read; another user's ids are ignored. Returns
        how many changed."""

    # webhooks ------------------------------------------------------------------------------
    def create_webhook(self, webhook: Webhook) -> Webhook:
        """``id`` empty -> generated. NotFoundError if the user is missing."""

    def get_webhook(self, user_id: str | None, webhook_id: str) -> Webhook | None:
        """None also when it belongs to another user (``user_id=None``: any user's)."""

    def list_webhooks(self, user_id: str) -> list[Webhook]:
        """Oldest first."""

    def delete_webhook(self, user_id: str, webhook_id: str) -> None:
        """The webhook and its delivery log. NotFoundError."""

    def list_webhook_attempts(self, user_id: str, webhook_id: str, limit: int = 50,
                              offset: int = 0) -> list[WebhookAttempt]:
        """The delivery log, newest first (empty for another user's webhook)."""

    # outbox --------------------------------------------------------------------------------
    def add_outbox(self, events: Sequence[OutboxEvent]) -> list[OutboxEvent]:
        """Write events with their deliveries (and, for a ``portal`` delivery, the
        notification) in one transaction; an event whose id is stored already is left out.
        Returns the events written, ids set."""

    def get_outbox_event(self, event_id: str) -> OutboxEvent | None: ...

    def list_deliveries(self, event_id: str) -> list[Delivery]: ...

    def claim_deliveries(self, owner: str, now: datetime, lease_until: datetime,
                         limit: int = 20) -> list[Delivery]:
        """Lease up to ``limit`` pending deliveries due at ``now`` (oldest due first) to
        ``owner`` until ``lease_until``; each counts one more attempt. Of racing claimers each
        delivery goes to exactly one."""

    def finish_delivery(self, delivery: Delivery, owner: str, outcome: DeliveryOutcome
                        ) -> Delivery:
        """Record one attempt's outcome (see DeliveryOutcome) while ``owner`` still holds the
        lease. ConflictError when another claimer holds it or it is no longer pending;
        NotFoundError."""

    # leases (several instances) ------------------------------------------------------------
    def acquire_lease(self, run_id: str, owner: str, until: datetime, now: datetime) -> bool:
        """Take or renew the run's lease when it is free, expired, or already ``owner``'s."""

    def release_lease(self, run_id: str, owner: str) -> None:
        """Clear the lease if ``owner`` holds it."""

    # housekeeping --------------------------------------------------------------------------
    def close(self) -> None: ...
