"""The run JSON API (the run pages live in portal/run_pages.py).

POST /api/runs validates everything before anything is stored; every error is ``{error}`` with a
4xx. Another user's run or site answers 404, so ids reveal nothing.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user, login_required

from portal.errors import error_response
from portal.services import services
from runner.errors import InvalidRun, RunNotFound, TransitionNotAllowed
from runner.views import run_view

bp = Blueprint("automation", __name__)

ACTIONS = ("pause", "resume", "cancel", "retry")


def _uid() -> str:
    return current_user.id


@bp.post("/api/runs")
@login_required
def create_run():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, "the body must be a JSON object")
    kind, site_id, items = body.get("kind"), body.get("site_id"), body.get("items")
    options = body.get("options", {})
    if not isinstance(kind, str) or not kind:
        return error_response(400, "kind is required")
    if not isinstance(site_id, str) or not site_id:
        return error_response(400, "site_id is required")
    if not isinstance(items, list):
        return error_response(400, "items must be a list")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        return error_response(400, "options must be an object")
    try:
        run, notes = services().runs.submit(_uid(), kind, site_id, items, options)
    except RunNotFound:
        return error_response(404, "site not found")
    except InvalidRun as exc:
        if exc.details:      # the same {error} shape, plus one message per bad item
            return jsonify({"error": exc.message, "details": exc.details}), 400
        return error_response(400, exc.message)
    return jsonify({"run_id": run.id, "status": run.status, "notes": notes}), 202


@bp.get("/api/runs")
@login_required
def list_runs():
    limit = request.args.get("limit", default=50, type=int)
    offset = request.args.get("offset", default=0, type=int)
    if limit is None or offset is None or not 1 <= limit <= 200 or offset < 0:
        return error_response(400, "limit must be 1..200 and offset >= 0")
    manager = services().runs
    runs = manager.list_runs(_uid(), limit=limit, offset=offset)
    return jsonify({"runs": [run_view(r, manager.items(r.id)) for r in runs]})


@bp.get("/api/runs/<run_id>")
@login_required
def get_run(run_id: str):
    manager = services().runs
    try:
        run = manager.get(run_id, _uid())
    except RunNotFound:
        return error_response(404, "run not found")
    return jsonify(run_view(run, manager.items(run.id)))


@bp.post("/api/runs/<run_id>/<action>")
@login_required
def steer_run(run_id: str, action: str):
    if action not in ACTIONS:
        return error_response(404, f"unknown action {action!r}")
    manager = services().runs
    try:
        run = getattr(manager, action)(run_id, _uid())
    except RunNotFound:
        return error_response(404, "run not found")
    except TransitionNotAllowed as exc:
        return error_response(409, str(exc))
    return jsonify(run_view(run, manager.items(run.id)))
