"""Pages that belong to no single area: the dashboard and the health check; and what every
page's template shares (the ``user_time`` filter, the viewer's clock for scripts)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, jsonify, render_template
from flask_login import login_required

from portal import insights
from portal.access import current_user_id
from portal.local_time import fire_time, page_clock, user_time
from portal.services import services
from storage.base import RUN_ACTIVE, Campaign
from storage.clock import utcnow

bp = Blueprint("pages", __name__)
log = logging.getLogger(__name__)

# Runs the dashboard shows as "active": a thread owns them, or they wait for the user.
DASHBOARD_ACTIVE = (*RUN_ACTIVE, "paused", "interrupted")
RECENT_RUNS = 10
RECENT_POSTS = 5
NEXT_FIRES = 5


@bp.app_template_filter("user_time")
def user_time_filter(value: datetime | str | None) -> str:
    """``{{ run.created_at|user_time }}``: in the signed-in user's zone, the zone named."""
    return user_time(value)


@bp.app_template_global("page_clock")
def page_clock_global() -> dict[str, object]:
    """``page_clock()`` in base.html: the zone static/js/local_time.js formats times in."""
    return page_clock()


@bp.route("/")
@login_required
def dashboard():
    """The signed-in user's sites, active runs, most recent runs and posts, next campaign
    fires, and the last 30 days in charts."""
    store = services().store
    user_id = current_user_id()
    sites = store.list_sites(user_id)
    active = store.list_runs(user_id, statuses=DASHBOARD_ACTIVE, limit=50)
    recent = store.list_runs(user_id, limit=RECENT_RUNS)
    site_names = {site.id: site.name for site in sites}
    campaigns = services().campaigns.list(user_id)
    return render_template("dashboard.html", sites=sites, active_runs=active,
                           recent_runs=recent, site_names=site_names,
                           recent_posts=store.list_posts(user_id, limit=RECENT_POSTS),
                           campaign_names={c.id: c.name for c in campaigns},
                           next_fires=_next_fires(campaigns),
                           insights=_insights(store, user_id))


def _insights(store: Any, user_id: str) -> insights.DashboardInsights | None:
    """The last 30 days, or None when the store cannot answer them (a Firestore index not
    deployed yet, a passing outage): that costs the charts, not the dashboard."""
    try:
        return insights.load(store, user_id, utcnow())
    except Exception as exc:  # any failure of the figures: the page says so, the log why
        log.warning("dashboard insights for user %s unavailable: %s", user_id, exc)
        return None


def _next_fires(campaigns: list[Campaign]) -> list[dict[str, Any]]:
    """The soonest fires of the user's active campaigns, in the user's zone."""
    soon = sorted((c for c in campaigns if c.status == "active" and c.next_fire_at),
                  key=lambda c: c.next_fire_at)
    return [{"id": c.id, "name": c.name, "at": c.next_fire_at.isoformat(),
             "local": fire_time(c.next_fire_at, c.schedule.get("timezone"))}
            for c in soon[:NEXT_FIRES]]


@bp.route("/healthz")
def healthz():
    """200 when the app answers and its store answers; 503 JSON otherwise (load balancers).
    ``scheduler`` says whether this instance's campaign scheduler ticks (``ok``, ``stalled``,
    ``stopped``) and ``scheduler_last_tick`` when it last did; ``delivery`` the same of the
    outbox's delivery thread."""
    try:
        services().store.get_user("healthz-probe")
    except Exception as exc:  # any store failure means "not healthy", reported, not raised
        log.warning("health check: store did not answer: %s", exc)
        return jsonify({"status": "unavailable", "error": "store unavailable"}), 503
    scheduler = services().scheduler
    health = scheduler.health() if scheduler is not None else {"status": "stopped",
                                                               "last_tick": None}
    delivery = services().delivery
    return jsonify({"status": "ok", "scheduler": health["status"],
                    "scheduler_last_tick": health["last_tick"],
                    "delivery": delivery.health()["status"] if delivery else "stopped"})
