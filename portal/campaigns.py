"""Campaigns: the JSON API and the pages (``/campaigns``, ``/campaigns/new``, ``/campaigns/<id>``).

Everything is checked by the runner's CampaignService; its errors carry their HTTP status and
the one error handler answers them (``{error, details?}`` with a 4xx for the API; the pages
show the message beside the form). Another user's campaign answers 404, like a missing one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.access import current_user_id
from portal.errors import InvalidRequest, NotFound
from portal.local_time import fire_time
from portal.quotas import CAMPAIGNS, QuotaReached
from portal.services import services
from runner.campaign_checks import CampaignError
from runner.campaigns import CampaignService
from storage.base import Campaign, Fire, NotFoundError

bp = Blueprint("campaigns", __name__)

ACTIONS = ("pause", "resume")
KINDS = {"stock": "Stock analysis", "earnings": "Earnings", "sports": "Sports roundups"}
DATA_SOURCES = {"stock": ("demo", "yahoo", "csv"), "earnings": ("demo", "file", "yahoo",
                                                                 "finnhub")}
PRESETS = ("weekdays", "daily", "hours", "cron", "interval")
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
TICKER_SPLIT = re.compile(r"[\s,;]+")
FIRES_SHOWN = 50


def _service() -> CampaignService:
    return services().campaigns


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def fire_view(fire: Fire) -> dict[str, Any]:
    return {"fire_id": fire.id, "scheduled_for": _iso(fire.scheduled_for),
            "fired_at": _iso(fire.fired_at), "outcome": fire.outcome, "reason": fire.reason,
            "run_id": fire.run_id}


def campaign_view(campaign: Campaign, *, with_last_fire: bool = True) -> dict[str, Any]:
    """A campaign as the API answers it: its fields, ``schedule_text``, ``next_fires`` (ISO
    UTC), ``queue: {total, done, next}`` and its newest fire."""
    service = _service()
    queue = service.queue_of(campaign)
    last = service.store.list_fires(campaign.id, limit=1) if with_last_fire else []
    return {
        "id": campaign.id, "campaign_id": campaign.id, "name": campaign.name,
        "kind": campaign.kind, "site_id": campaign.site_id, "status": campaign.status,
        "options": campaign.options, "source": campaign.source, "per_run": campaign.per_run,
        "schedule": campaign.schedule, "schedule_text": service.schedule_of(campaign).text,
        "next_fire_at": _iso(campaign.next_fire_at) if campaign.status == "active" else None,
        "next_fires": [_iso(t) for t in service.next_fires(campaign)],
        "catch_up_seconds": campaign.catch_up_seconds,
        "queue": {"total": queue.total, "done": queue.done, "cycle": queue.cycle,
                  "next": queue.next} if queue else {"total": None, "done": None,
                                                      "cycle": None, "next": []},
        "last_run_id": campaign.last_run_id,
        "last_fire": fire_view(last[0]) if last else None,
        "created_at": _iso(campaign.created_at), "updated_at": _iso(campaign.updated_at),
    }


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


def _page_arg(name: str, default: int, low: int, high: int) -> int:
    value = request.args.get(name, default=default, type=int)
    if value is None or not low <= value <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return value


# -- the JSON API --------------------------------------------------------------------------------


@bp.post("/api/campaigns")
@login_required
def api_create():
    CAMPAIGNS.check(current_user_id())
    campaign = _service().create(current_user_id(), _json_body())
    return jsonify(campaign_view(campaign)), 201


@bp.get("/api/campaigns")
@login_required
def api_list():
    return jsonify({"campaigns": [campaign_view(c) for c in _service().list(current_user_id())]})


@bp.post("/api/campaigns/schedule-preview")
@login_required
def api_schedule_preview():
    """What the form's schedule builder shows as you type: the words and the next fires, the
    local ones as the campaign pages will show them (``fire_time``)."""
    body = _json_body()
    schedule, fires = _service().preview(body.get("schedule"))
    return jsonify({"schedule": schedule.as_dict(), "schedule_text": schedule.text,
                    "next_fires": [_iso(t) for t in fires],
                    "next_fires_local": [fire_time(t, schedule.timezone) for t in fires]})


@bp.get("/api/campaigns/<campaign_id>")
@login_required
def api_get(campaign_id: str):
    return jsonify(campaign_view(_service().get(current_user_id(), campaign_id)))


@bp.patch("/api/campaigns/<campaign_id>")
@login_required
def api_update(campaign_id: str):
    campaign = _service().update(current_user_id(), campaign_id, _json_body())
    return jsonify(campaign_view(campaign))


@bp.delete("/api/campaigns/<campaign_id>")
@login_required
def api_delete(campaign_id: str):
    _service().delete(current_user_id(), campaign_id)
    return jsonify({"deleted": campaign_id})


@bp.post("/api/campaigns/<campaign_id>/run")
@login_required
def api_run_now(campaign_id: str):
    run = _service().run_now(current_user_id(), campaign_id)
    return jsonify({"run_id": run.id, "status": run.status}), 202


@bp.post("/api/campaigns/<campaign_id>/<action>")
@login_required
def api_steer(campaign_id: str, action: str):
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action[:20]!r}")
    campaign = getattr(_service(), action)(current_user_id(), campaign_id)
    return jsonify(campaign_view(campaign))


@bp.get("/api/campaigns/<campaign_id>/fires")
@login_required
def api_fires(campaign_id: str):
    limit = _page_arg("limit", 50, 1, 200)
    offset = _page_arg("offset", 0, 0, 1_000_000)
    fires = _service().fires(current_user_id(), campaign_id, limit=limit, offset=offset)
    return jsonify({"fires": [fire_view(f) for f in fires]})


# -- pages ---------------------------------------------------------------------------------------


def _row(campaign: Campaign, site_names: dict[str, str]) -> dict[str, Any]:
    view = campaign_view(campaign)
    zone = campaign.schedule.get("timezone")
    view["site_name"] = site_names.get(campaign.site_id, "(deleted site)")
    view["next_fires_local"] = [fire_time(datetime.fromisoformat(t), zone)
                                for t in view["next_fires"]]
    view["kind_title"] = KINDS.get(campaign.kind, campaign.kind)
    return view


def _site_names() -> dict[str, str]:
    return {s.id: s.name for s in services().store.list_sites(current_user_id())}


@bp.get("/campaigns")
@login_required
def page_list():
    names = _site_names()
    rows = [_row(c, names) for c in _service().list(current_user_id())]
    return render_template("campaigns/list.html", campaigns=rows)


def _lines(text: str) -> list[str]:
    return [t for t in TICKER_SPLIT.split(text or "") if t]


def _form_int(value: str) -> Any:
    """A number typed in a form (the service says what is wrong with anything else)."""
    value = (value or "").strip()
    return int(value) if re.fullmatch(r"-?\d{1,9}", value) else value


def form_schedule(form: Any) -> dict[str, Any]:
    """The schedule builder's fields -> a schedule: "every weekday at", "every day at",
    "every N hours", a cron field, or an interval in minutes."""
    preset = form.get("preset", "weekdays")
    zone = (form.get("timezone") or "UTC").strip()
    if preset in ("weekdays", "daily"):
        match = TIME_RE.match((form.get("time") or "").strip())
        if not match:
            raise InvalidRequest("the time must be HH:MM (24 hours), e.g. 07:00")
        hour, minute = int(match.group(1)), int(match.group(2))
        days = "1-5" if preset == "weekdays" else "*"
        return {"cron": f"{minute} {hour} * * {days}", "timezone": zone}
    if preset == "hours":
        hours = _form_int(form.get("hours", ""))
        if not isinstance(hours, int) or not 1 <= hours <= 24 * 7:
            raise InvalidRequest("every N hours needs N from 1 to 168")
        return {"interval_seconds": hours * 3600}
    if preset == "interval":
        minutes = _form_int(form.get("minutes", ""))
        return {"interval_seconds": minutes * 60 if isinstance(minutes, int) else minutes}
    if preset == "cron":
        return {"cron": form.get("cron", ""), "timezone": zone}
    raise InvalidRequest(f"unknown schedule preset; use one of {', '.join(PRESETS)}")


def form_body(form: Any, kind: str) -> dict[str, Any]:
    """The campaign form -> the API's body (the same checks follow)."""
    options: dict[str, Any] = {}
    if form.get("data_source"):
        options["data_source"] = form["data_source"]
    if form.get("status"):
        options["status"] = form["status"]
    if (form.get("category") or "").strip():
        options["category"] = form["category"].strip()
    tags = [t.strip() for t in (form.get("tags") or "").split(",") if t.strip()]
    if tags:
        options["tags"] = tags
    if kind == "earnings":
        source: dict[str, Any] = {"days_ahead": _form_int(form.get("days_ahead", "1")),
                                  "mode": form.get("mode") or "preview"}
        watchlist = _lines(form.get("watchlist", ""))
        if watchlist:
            source["watchlist"] = watchlist
    elif kind == "sports":
        source = {}
    else:
        source = {"tickers": _lines(form.get("tickers", "")),
                  "repeat": form.get("repeat") == "on"}
    catch_up = _form_int(form.get("catch_up_minutes", "60"))
    return {"name": form.get("name", ""), "kind": kind, "site_id": form.get("site_id", ""),
            "per_run": _form_int(form.get("per_run", "")), "source": source,
            "schedule": form_schedule(form), "options": options,
            "catch_up_seconds": catch_up * 60 if isinstance(catch_up, int) else catch_up}


def _form_page(form: dict[str, Any], error: str | None = None, status: int = 200,
               campaign: Campaign | None = None):
    sites = services().store.list_sites(current_user_id())
    return render_template("campaigns/form.html", form=form, error=error, sites=sites,
                           kinds=KINDS, data_sources=DATA_SOURCES, presets=PRESETS,
                           campaign=campaign), status


def _form_of(campaign: Campaign) -> dict[str, Any]:
    """A stored campaign as the form shows it (cron or interval in the matching preset)."""
    schedule = campaign.schedule
    form: dict[str, Any] = {
        "name": campaign.name, "kind": campaign.kind, "site_id": campaign.site_id,
        "per_run": campaign.per_run, "timezone": schedule.get("timezone", "UTC"),
        "catch_up_minutes": max(1, campaign.catch_up_seconds // 60),
        "data_source": campaign.options.get("data_source", ""),
        "status": campaign.options.get("status", ""),
        "category": campaign.options.get("category", ""),
        "tags": ", ".join(campaign.options.get("tags") or []),
        "tickers": "\n".join(map(str, campaign.source.get("tickers") or [])),
        "repeat": "on" if campaign.source.get("repeat", True) else "",
        "days_ahead": campaign.source.get("days_ahead", 1),
        "mode": campaign.source.get("mode", "preview"),
        "watchlist": "\n".join(campaign.source.get("watchlist") or []),
    }
    if schedule.get("cron"):
        form.update(preset="cron", cron=schedule["cron"])
    else:
        seconds = int(schedule.get("interval_seconds") or 0)
        form.update(preset="interval", minutes=seconds // 60)
    return form


@bp.route("/campaigns/new", methods=["GET", "POST"])
@login_required
def page_new():
    if request.method == "GET":
        kind = request.args.get("kind", "stock")
        return _form_page({"kind": kind if kind in KINDS else "stock", "preset": "weekdays",
                           "time": "07:00", "timezone": current_user.timezone,
                           "per_run": 5, "repeat": "on",
                           "catch_up_minutes": 60})
    form = request.form.to_dict()
    kind = form.get("kind", "")
    try:
        CAMPAIGNS.check(current_user_id())
        campaign = _service().create(current_user_id(), form_body(form, kind))
    except QuotaReached as exc:
        return _form_page(form, exc.message, exc.http_status)
    except (CampaignError, InvalidRequest, NotFoundError) as exc:
        return _form_page(form, _message(exc), 400)
    flash(f"Campaign “{campaign.name}” saved: {_service().schedule_of(campaign).text}.", "info")
    return redirect(url_for("campaigns.page_detail", campaign_id=campaign.id))


def _message(exc: Exception) -> str:
    details = getattr(exc, "details", None) or []
    return str(exc) + (": " + "; ".join(details[:10]) if details else "")


@bp.get("/campaigns/<campaign_id>")
@login_required
def page_detail(campaign_id: str):
    campaign = _service().get(current_user_id(), campaign_id)
    view = _row(campaign, _site_names())
    fires = _service().fires(current_user_id(), campaign_id, limit=FIRES_SHOWN)
    zone = campaign.schedule.get("timezone")
    rows = [{**fire_view(f), "local": fire_time(f.scheduled_for, zone)} for f in fires]
    return render_template("campaigns/detail.html", campaign=view, fires=rows)


@bp.route("/campaigns/<campaign_id>/edit", methods=["GET", "POST"])
@login_required
def page_edit(campaign_id: str):
    campaign = _service().get(current_user_id(), campaign_id)
    if request.method == "GET":
        return _form_page(_form_of(campaign), campaign=campaign)
    form = request.form.to_dict()
    try:
        body = form_body(form, campaign.kind)
        body.pop("kind")
        campaign = _service().update(current_user_id(), campaign_id, body)
    except (CampaignError, InvalidRequest, NotFoundError) as exc:
        return _form_page({**form, "kind": campaign.kind}, _message(exc), 400, campaign)
    flash("Campaign saved.", "info")
    return redirect(url_for("campaigns.page_detail", campaign_id=campaign.id))


@bp.post("/campaigns/<campaign_id>/<action>")
@login_required
def page_action(campaign_id: str, action: str):
    """The buttons: pause, resume, run now, delete; back to where the button was."""
    service, user_id = _service(), current_user_id()
    back = request.form.get("back") == "list"
    if action == "delete":
        service.delete(user_id, campaign_id)
        flash("Campaign deleted; the runs it started are kept.", "info")
        return redirect(url_for("campaigns.page_list"))
    try:
        if action == "run":
            run = service.run_now(user_id, campaign_id)
            flash("Run started.", "info")
            return redirect(url_for("run_pages.run_detail", run_id=run.id))
        if action not in ACTIONS:
            raise NotFound("unknown action")
        getattr(service, action)(user_id, campaign_id)
        flash(f"Campaign {action}d.", "info")
    except CampaignError as exc:
        if exc.http_status == 404:
            raise
        flash(str(exc), "error")
    target = url_for("campaigns.page_list") if back else url_for("campaigns.page_detail",
                                                                  campaign_id=campaign_id)
    return redirect(target)
