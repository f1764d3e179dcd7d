"""Campaigns: saved automations with a schedule (portal/campaigns.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from portal.api_models.common import ID, LIMIT, OFFSET, Deleted, Model, Operation, ops


class CampaignFields(Model):
    site_id: str | None = Field(None, min_length=1, max_length=200)
    source: dict[str, Any] | None = Field(
        None, description="stock {tickers, repeat}; earnings {days_ahead, mode, watchlist?}; "
                          "sports {}.")
    per_run: int | None = Field(None, ge=1, le=500)
    schedule: dict[str, Any] | None = Field(
        None, description="{cron, timezone} or {interval_seconds}.")
    options: dict[str, Any] | None = None
    catch_up_seconds: int | None = Field(None, ge=0)


class CampaignCreate(CampaignFields):
    name: str = Field(min_length=1, max_length=100)
    kind: str = Field(min_length=1, max_length=50)
    site_id: str = Field(min_length=1, max_length=200)


class CampaignUpdate(CampaignFields):
    name: str | None = Field(None, min_length=1, max_length=100)


class Fire(Model):
    fire_id: str
    scheduled_for: str | None = None
    fired_at: str | None = None
    outcome: str
    reason: str
    run_id: str | None = None


class Queue(Model):
    total: int | None = None
    done: int | None = None
    cycle: int | None = None
    next: list[Any]


class Campaign(Model):
    id: str
    campaign_id: str
    name: str
    kind: str
    site_id: str
    status: str
    options: dict[str, Any]
    source: dict[str, Any]
    per_run: int
    schedule: dict[str, Any]
    schedule_text: str
    next_fire_at: str | None = None
    next_fires: list[str | None]
    catch_up_seconds: int
    queue: Queue
    last_run_id: str | None = None
    last_fire: Fire | None = None
    created_at: str | None = None
    updated_at: str | None = None


class CampaignList(Model):
    campaigns: list[Campaign]


class FireList(Model):
    fires: list[Fire]


class StartedRun(Model):
    run_id: str
    status: str


class SchedulePreviewRequest(Model):
    schedule: dict[str, Any] = Field(description="{cron, timezone} or {interval_seconds}.")


class SchedulePreview(Model):
    schedule: dict[str, Any]
    schedule_text: str
    next_fires: list[str | None]
    next_fires_local: list[str | None]


STEER = {"type": "string", "enum": ["pause", "resume"]}
CAMPAIGN = {"campaign_id": ID}

OPERATIONS = ops(
    ("campaigns.api_create", "POST", Operation(
        "Create a campaign", "campaigns", {201: Campaign}, body=CampaignCreate,
        errors=(400, 401, 404, 409, 429), description="409 past TICKZEN_MAX_CAMPAIGNS.")),
    ("campaigns.api_list", "GET", Operation("List your campaigns", "campaigns",
                                            {200: CampaignList})),
    ("campaigns.api_schedule_preview", "POST", Operation(
        "Describe a schedule and its next fires", "campaigns", {200: SchedulePreview},
        body=SchedulePreviewRequest)),
    ("campaigns.api_get", "GET", Operation("A campaign", "campaigns", {200: Campaign},
                                           path=CAMPAIGN)),
    ("campaigns.api_update", "PATCH", Operation(
        "Change a campaign", "campaigns", {200: Campaign}, body=CampaignUpdate, path=CAMPAIGN,
        errors=(400, 401, 404, 409, 429))),
    ("campaigns.api_delete", "DELETE", Operation(
        "Delete a campaign (its runs stay)", "campaigns", {200: Deleted}, path=CAMPAIGN)),
    ("campaigns.api_run_now", "POST", Operation(
        "Fire a campaign now", "campaigns", {202: StartedRun}, path=CAMPAIGN,
        errors=(400, 401, 404, 409, 429),
        description="409 while the previous run is still active.")),
    ("campaigns.api_steer", "POST", Operation(
        "Pause or resume a campaign", "campaigns", {200: Campaign},
        path={**CAMPAIGN, "action": STEER}, errors=(400, 401, 404, 409, 429))),
    ("campaigns.api_fires", "GET", Operation(
        "A campaign's fires, newest first", "campaigns", {200: FireList}, path=CAMPAIGN,
        query=(LIMIT, OFFSET))),
)
