"""What a campaign must be before it is stored: every field checked, the runs it will start
checked exactly as ``POST /api/runs`` checks a run (the run manager's ``check`` and
``prepare``), so a saved campaign never fires into a 400. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from automation_scripts.base import InvalidItems
from automation_scripts.tickers import EARNINGS
from runner.campaign_sources import (
    EARNINGS_MODES,
    MAX_DAYS_AHEAD,
    MAX_QUEUE,
    queue_key,
    uses_queue,
)
from runner.errors import InvalidRun
from runner.schedules import Schedule, ScheduleError, parse_schedule

FIELDS = ("name", "kind", "site_id", "source", "per_run", "schedule", "options",
          "catch_up_seconds")
MAX_NAME = 100
DEFAULT_CATCH_UP = 3600
MAX_CATCH_UP = 7 * 24 * 3600
MAX_WATCHLIST = 1000
MAX_DETAILS = 50


class CampaignError(Exception):
    """Base of the campaign errors; each says the HTTP status it means."""

    http_status = 400


class InvalidCampaign(CampaignError):
    """The campaign is unusable (400); ``details``: one message per bad item."""

    http_status = 400

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details or [])[:MAX_DETAILS]


class CampaignNotFound(CampaignError):
    """No such campaign, or another user's (404: never say which)."""

    http_status = 404


class CampaignConflict(CampaignError):
    """The campaign's state forbids it (409): paused twice, run now while a run is active."""

    http_status = 409


@dataclass
class CampaignDraft:
    """A checked campaign, ready to store."""

    name: str
    kind: str
    site_id: str
    source: dict[str, Any]
    per_run: int
    schedule: Schedule
    options: dict[str, Any]
    catch_up_seconds: int
    notes: list[str]


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCampaign(f"{name} must be a whole number")
    if not low <= value <= high:
        raise InvalidCampaign(f"{name} must be from {low} to {high} (got {value})")
    return value


def check_campaign(runs: Any, user_id: str, body: Any, *, current: Mapping[str, Any] | None,
                   min_interval_seconds: int, today: date) -> CampaignDraft:
    """``body`` (a create, or a change merged over ``current``'s fields) -> a CampaignDraft.

    ``runs`` is the RunManager. Raises InvalidCampaign (400) naming the problem, or the run
    manager's RunNotFound (404) for an unknown or another user's site.
    """
    if not isinstance(body, Mapping):
        raise InvalidCampaign("the body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidCampaign(f"unknown field(s): {', '.join(unknown)[:100]}")
    if current is not None and "kind" in body and body["kind"] != current["kind"]:
        raise InvalidCampaign("kind cannot change: make a new campaign")
    merged = {**(current or {}), **body}
    missing = [f for f in ("name", "kind", "site_id", "source", "per_run", "schedule")
               if merged.get(f) is None and not (f == "source" and merged.get("kind") == "sports")]
    if missing:
        raise InvalidCampaign(f"missing: {', '.join(missing)}")
    name = merged["name"]
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise InvalidCampaign(f"name must be text of 1 to {MAX_NAME} characters")
    options = merged.get("options") or {}
    if not isinstance(options, Mapping):
        raise InvalidCampaign("options must be an object")
    options = dict(options)
    try:
        runs.check(user_id, merged["kind"], merged["site_id"], options)
    except InvalidRun as exc:
        raise InvalidCampaign(exc.message, exc.details) from None
    kind = str(merged["kind"])
    per_run = _whole(merged["per_run"], "per_run", 1, int(runs.max_items))
    catch_up = _whole(merged.get("catch_up_seconds", DEFAULT_CATCH_UP), "catch_up_seconds",
                      1, MAX_CATCH_UP)
    try:
        schedule = parse_schedule(merged["schedule"],
                                  min_interval_seconds=min_interval_seconds)
    except ScheduleError as exc:
        raise InvalidCampaign(f"schedule: {exc}") from None
    source, sample, notes = _check_source(runs, user_id, kind, merged.get("source"), options,
                                          per_run, today)
    if sample is not None:           # one run as the campaign will start it: POST /api/runs
        try:
            runs.prepare(user_id, kind, merged["site_id"], sample, options, today=today)
        except InvalidRun as exc:
            raise InvalidCampaign(exc.message, exc.details) from None
    return CampaignDraft(name=name.strip(), kind=kind, site_id=str(merged["site_id"]),
                         source=source, per_run=per_run, schedule=schedule, options=options,
                         catch_up_seconds=catch_up, notes=notes)


def _check_source(runs: Any, user_id: str, kind: str, raw: Any, options: dict[str, Any],
                  per_run: int, today: date) -> tuple[dict[str, Any], list[Any] | None,
                                                      list[str]]:
    """(the source as stored, a sample run's raw items or None, notes)."""
    if kind == "sports":
        if raw not in (None, {}):
            raise InvalidCampaign("a sports campaign's source is {} (the stories come from "
                                  "your feeds)")
        return {}, None, []
    if not isinstance(raw, Mapping):
        raise InvalidCampaign("source must be an object")
    if kind == "earnings":
        return _earnings_source(raw, per_run, today)
    return _queue_source(runs, kind, raw, options, per_run, today)


def _queue_source(runs: Any, kind: str, raw: Mapping[str, Any], options: dict[str, Any],
                  per_run: int, today: date) -> tuple[dict[str, Any], list[Any], list[str]]:
    key = queue_key(kind)
    unknown = sorted(set(raw) - {key, "repeat"})
    if unknown:
        raise InvalidCampaign(f"unknown source field(s): {', '.join(unknown)[:100]}; a {kind} "
                              f"campaign's source is {{{key}: [...], repeat}}")
    items = raw.get(key)
    if not isinstance(items, list) or not items:
        raise InvalidCampaign(f"source.{key} must be a non-empty list")
    if len(items) > MAX_QUEUE:
        raise InvalidCampaign(f"source.{key} holds {len(items)}; at most {MAX_QUEUE}")
    repeat = raw.get("repeat", True)
    if not isinstance(repeat, bool):
        raise InvalidCampaign("source.repeat must be true or false")
    automation = runs.automations[kind]
    try:             # the whole list, by the automation's own rules (a run takes per_run)
        prepared, notes = automation.prepare(items, options, today)
    except InvalidItems as exc:
        raise InvalidCampaign(f"some of source.{key} are invalid", list(exc.errors)) from None
    queue = [p.input for p in prepared]
    if not queue:
        raise InvalidCampaign(f"source.{key} has no usable items")
    assert uses_queue(kind)
    return {key: queue, "repeat": repeat}, queue[:per_run], list(notes)


def _earnings_source(raw: Mapping[str, Any], per_run: int, today: date
                     ) -> tuple[dict[str, Any], list[Any], list[str]]:
    unknown = sorted(set(raw) - {"days_ahead", "mode", "watchlist"})
    if unknown:
        raise InvalidCampaign(f"unknown source field(s): {', '.join(unknown)[:100]}; an "
                              "earnings campaign's source is {days_ahead, mode, watchlist?}")
    mode = raw.get("mode", "preview")
    if mode not in EARNINGS_MODES:
        raise InvalidCampaign(f"source.mode must be one of {', '.join(EARNINGS_MODES)}")
    low = 1 if mode == "recap" else 0
    days = _whole(raw.get("days_ahead", 1), "source.days_ahead", low, MAX_DAYS_AHEAD)
    source: dict[str, Any] = {"days_ahead": days, "mode": mode}
    watchlist = raw.get("watchlist")
    if watchlist is not None:
        if not isinstance(watchlist, list) or not watchlist:
            raise InvalidCampaign("source.watchlist must be a non-empty list of tickers")
        if len(watchlist) > MAX_WATCHLIST:
            raise InvalidCampaign(f"source.watchlist holds {len(watchlist)}; at most "
                                  f"{MAX_WATCHLIST}")
        errors, tickers = [], []
        for n, ticker in enumerate(watchlist, 1):
            try:
                tickers.append(EARNINGS.normalise(ticker))
            except ValueError as exc:
                errors.append(f"watchlist item {n}: {exc}")
        if errors:
            raise InvalidCampaign("some of source.watchlist are invalid", errors)
        source["watchlist"] = list(dict.fromkeys(tickers))
    sample_tickers = source.get("watchlist") or ["AAPL"]
    sample = [{"ticker": t, "report_date": today.isoformat()}
              for t in sample_tickers[:per_run]]
    return source, sample, []
