"""Campaign records as both backends store them: the checked changes of an update or a fire,
the new campaign and each recorded fire (the transactions stay in each backend)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage._common import (
    CAMPAIGN_FIXED,
    aware_utc,
    check_campaign_status,
    check_changes,
    jsonable,
    new_id,
)
from storage.base import Campaign, Fire, Run, utcnow

CAMPAIGN_JSON_FIELDS = ("options", "source", "schedule", "queue")


def campaign_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The fields an update or a fire writes, checked and normalised, with a fresh
    ``updated_at`` unless the caller gave one."""
    check_changes(Campaign, changes, CAMPAIGN_FIXED)
    out = dict(changes)
    if "status" in out:
        check_campaign_status(out["status"])
    for name in CAMPAIGN_JSON_FIELDS:
        if name in out:
            out[name] = jsonable(out[name])
    if out.get("next_fire_at") is not None:
        out["next_fire_at"] = aware_utc(out["next_fire_at"])
    out["updated_at"] = aware_utc(changes.get("updated_at") or utcnow())
    return out


def new_campaign(campaign: Campaign) -> Campaign:
    """The record ``create_campaign`` stores: an id, revision 0, JSON-plain fields, UTC times."""
    check_campaign_status(campaign.status)
    return Campaign(**{
        **campaign.__dict__, "id": campaign.id or new_id(), "revision": 0,
        **{n: jsonable(getattr(campaign, n)) for n in CAMPAIGN_JSON_FIELDS},
        "next_fire_at": aware_utc(campaign.next_fire_at) if campaign.next_fire_at else None,
        "created_at": aware_utc(campaign.created_at), "updated_at": aware_utc(utcnow())})


def check_fire_run(campaign_id: str, run: Run | None) -> None:
    """A run a fire creates belongs to that fire's campaign."""
    if run is not None and run.campaign_id != campaign_id:
        raise ValueError("the run must carry its campaign's id")


def recorded_fire(fire: Fire, user_id: str, run: Run | None, now: datetime) -> Fire:
    """A fire as stored: its campaign's owner, UTC times, and the run when it started one."""
    return Fire(**{**fire.__dict__, "user_id": user_id,
                   "scheduled_for": aware_utc(fire.scheduled_for),
                   "fired_at": aware_utc(fire.fired_at or now),
                   "run_id": run.id if fire.outcome == "started"
                   and run is not None else fire.run_id})
