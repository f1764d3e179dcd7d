"""Helpers both backends share, so they encode, validate and default records the same way."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from storage.base import (
    CAMPAIGN_STATES,
    FIRE_OUTCOMES,
    ITEM_STATES,
    RUN_STATES,
    ApiToken,
    Campaign,
    Fire,
    Item,
    LedgerEntry,
    Run,
    Site,
    User,
)
from storage.housekeeping import Job
from storage.notification_records import (
    Delivery,
    Notification,
    OutboxEvent,
    Webhook,
    WebhookAttempt,
)

# Fields a caller may not set through update_*/transition_* ``changes``: identities, the status
# (only a compare-and-set changes it) and the counters the store keeps itself.
RUN_FIXED = frozenset({"id", "user_id", "status", "last_seq", "counts", "total", "created_at",
                       "campaign_id", "fire_id", "events_pruned_at", "files_pruned_at",
                       "events_pruned_seq"})
ITEM_FIXED = frozenset({"run_id", "position", "key", "status"})
SITE_FIXED = frozenset({"id", "user_id", "created_at", "state"})
CAMPAIGN_FIXED = frozenset({"id", "user_id", "created_at", "revision"})
# What ``update_user`` may set: the profile. The password and the session version change only
# through ``change_password`` / ``end_sessions``.
USER_PROFILE_FIELDS = ("display_name", "timezone")
# Per record: the fields that hold datetimes (native timestamps on Firestore, fixed-width ISO
# text on SQLite); both backends keep them aware UTC.
TIME_FIELDS: dict[type, tuple[str, ...]] = {
    User: ("created_at",),
    ApiToken: ("created_at", "last_used_at"),
    Site: ("created_at", "updated_at"),
    Run: ("lease_until", "created_at", "updated_at", "events_pruned_at", "files_pruned_at"),
    Item: ("updated_at",),
    LedgerEntry: ("published_at", "created_at", "reserved_at"),
    Campaign: ("next_fire_at", "created_at", "updated_at"),
    Fire: ("scheduled_for", "fired_at"),
    Notification: ("created_at",),
    Webhook: ("last_success_at", "created_at", "updated_at"),
    WebhookAttempt: ("created_at",),
    OutboxEvent: ("created_at",),
    Delivery: ("next_attempt_at", "created_at", "updated_at", "delivered_at"),
    Job: ("lease_until", "next_run_at", "last_started_at", "last_finished_at"),
}


def new_id() -> str:
    """Random, URL-safe, unguessable: ids appear in URLs a user could tamper with."""
    return uuid.uuid4().hex


def aware_utc(value: datetime) -> datetime:
    """Reject naive datetimes (a bug upstream), normalise aware ones to UTC."""
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: the store keeps aware UTC datetimes only")
    value = value.astimezone(UTC)
    # Drop subclasses (Firestore's DatetimeWithNanoseconds) so records compare plainly.
    return datetime(value.year, value.month, value.day, value.hour, value.minute,
                    value.second, value.microsecond, tzinfo=UTC)


def to_iso(value: datetime | None) -> str | None:
    """Fixed-width ISO text, so SQLite orders timestamps correctly as strings."""
    if value is None:
        return None
    return aware_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def from_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return aware_utc(datetime.fromisoformat(value))


def day_of(value: datetime) -> str:
    """The UTC day (YYYY-MM-DD) a ledger slot counts against."""
    return aware_utc(value).date().isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_iso(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    try:
        return json.dumps(value, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"value cannot be stored as JSON: {exc}") from exc


def jsonable(value: Any) -> Any:
    """What the value looks like after a JSON round trip: both backends return exactly this."""
    return json.loads(dumps(value))


def check_changes(cls: type, changes: dict[str, Any], fixed: frozenset[str]) -> None:
    """Unknown or store-managed fields are programming errors: say so loudly."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    forbidden = sorted(set(changes) & fixed)
    if forbidden:
        raise ValueError(f"{cls.__name__} field(s) not settable here: {', '.join(forbidden)}")


def check_run_status(status: str) -> None:
    if status not in RUN_STATES:
        raise ValueError(f"unknown run status {status!r}")


def check_item_status(status: str) -> None:
    if status not in ITEM_STATES:
        raise ValueError(f"unknown item status {status!r}")


def expected_set(expected: Iterable[str] | str) -> frozenset[str]:
    """A bare string is one state, not a set of characters."""
    if isinstance(expected, str):
        return frozenset({expected})
    return frozenset(expected)


def initial_counts(n: int) -> dict[str, int]:
    counts = {state: 0 for state in ITEM_STATES}
    counts["pending"] = n
    return counts


def check_page(limit: int | None, offset: int = 0) -> None:
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if offset < 0:
        raise ValueError("offset must be >= 0")


def check_campaign_status(status: str) -> None:
    if status not in CAMPAIGN_STATES:
        raise ValueError(f"unknown campaign status {status!r}")


def check_fires(campaign_id: str, fires: Iterable[Fire], run_fire_id: str | None) -> None:
    """What ``fire_campaign`` accepts: fires of this campaign with known outcomes, and exactly
    one ``started`` fire, the run's, when a run is created (none otherwise)."""
    started = []
    for fire in fires:
        if fire.outcome not in FIRE_OUTCOMES:
            raise ValueError(f"unknown fire outcome {fire.outcome!r}")
        if fire.campaign_id != campaign_id or not fire.id:
            raise ValueError(f"fire {fire.id!r} is not one of campaign {campaign_id}")
        if fire.outcome == "started":
            started.append(fire.id)
    if run_fire_id is None and started:
        raise ValueError("a started fire needs its run")
    if run_fire_id is not None and started != [run_fire_id]:
        raise ValueError("the run's fire_id must be the one started fire's id")


def check_profile(changes: dict[str, Any]) -> None:
    """``update_user`` takes profile fields only, as strings."""
    unknown = sorted(set(changes) - set(USER_PROFILE_FIELDS))
    if unknown:
        raise ValueError(f"User field(s) not settable here: {', '.join(unknown)}")
    for name, value in changes.items():
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
