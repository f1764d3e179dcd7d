"""The run JSON API (the run pages live in portal/run_pages.py).

POST /api/runs validates everything before anything is stored; every error is ``{error}`` with a
4xx, raised as a domain error and answered by portal/errors.py. Another user's run or site
answers 404, so ids reveal nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask_login import login_required

from portal.access import current_user_id, owned_run, owned_site
from portal.errors import InvalidRequest, NotFound
from portal.run_lists import parse_cursor, parse_filters
from portal.run_views import run_view
from portal.services import services
from storage.paging import Cursor

bp = Blueprint("automation", __name__)

ACTIONS = ("pause", "resume", "cancel", "retry")


@bp.post("/api/runs")
@login_required
def create_run() -> tuple[Response, int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    kind, site_id, items = body.get("kind"), body.get("site_id"), body.get("items")
    options = body.get("options", {})
    if not isinstance(kind, str) or not kind:
        raise InvalidRequest("kind is required")
    if not isinstance(site_id, str) or not site_id:
        raise InvalidRequest("site_id is required")
    if not isinstance(items, list):
        raise InvalidRequest("items must be a list")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequest("options must be an object")
    manager = services().runs
    if kind in manager.automations:      # an unknown kind is answered first, by the runner
        owned_site(site_id)
    run, notes = manager.submit(current_user_id(), kind, site_id, items, options)
    return jsonify({"run_id": run.id, "status": run.status, "notes": notes}), 202


@bp.get("/api/runs")
@login_required
def list_runs() -> Response:
    """Newest first, ``limit`` at a time. Keyset paging: ``cursor`` (the ``next_cursor`` of
    the previous answer, null on the last page) continues after it; ``offset`` still skips.
    Filters: ``kind``, ``status``, ``site_id``, ``campaign_id``, ``from``/``to`` (UTC days)."""
    limit = request.args.get("limit", default=50, type=int)
    offset = request.args.get("offset", default=0, type=int)
    if limit is None or offset is None or not 1 <= limit <= 200 or offset < 0:
        raise InvalidRequest("limit must be 1..200 and offset >= 0")
    manager = services().runs
    filters = parse_filters(request.args, manager.automations, strict=True,
                            site_key="site_id", campaign_key="campaign_id")
    after = parse_cursor(request.args.get("cursor"), strict=True)
    store = services().store
    runs = store.list_runs(current_user_id(), limit=limit + 1, offset=offset, after=after,
                           **filters.store_query())
    more = len(runs) > limit
    runs = runs[:limit]
    return jsonify({"runs": [run_view(r, manager.items(r.id)) for r in runs],
                    "next_cursor": Cursor.of_run(runs[-1]).encode() if more else None})


@bp.get("/api/runs/<run_id>")
@login_required
def get_run(run_id: str) -> Response:
    run = owned_run(run_id)
    return jsonify(run_view(run, services().runs.items(run.id)))


@bp.post("/api/runs/<run_id>/<action>")
@login_required
def steer_run(run_id: str, action: str) -> Response:
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action!r}")
    manager = services().runs
    run = getattr(manager, action)(run_id, current_user_id())
    return jsonify(run_view(run, manager.items(run.id)))

