"""Notifications in the portal: ``/notifications`` (newest first, mark read, mark all read),
the JSON API, and the unread count the navigation's bell shows.

The notifications themselves are written by the store with the transition that caused them
(runner/notifications.py); the delivery thread pushes each one live as the Socket.IO event
``notification`` to ``user_<id>``. Marking read here tells the user's other tabs through
``notifications_read`` (``{ids | all, unread}``), so every bell shows the same count.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from flask_login import current_user, login_required

from portal.access import current_user_id
from portal.errors import InvalidRequest
from portal.services import emitter, services
from runner.notifications import notification_payload
from runner.progress import user_room

bp = Blueprint("notifications", __name__)
log = logging.getLogger(__name__)

PAGE_SIZE = 50
LIMIT_MAX = 200
IDS_MAX = 500
ID_MAX = 200


def _flag(name: str) -> bool:
    value = request.args.get(name, "")
    if value in ("", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise InvalidRequest(f"{name} must be 1 or 0")


def _whole(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise InvalidRequest(f"{name} must be a whole number {bounds}")
    return int(raw)


def _wanted(body: Any) -> list[str] | None:
    """``{ids: [...]}`` -> the ids; ``{all: true}`` -> None (all of them)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object: {ids: [...]} or {all: true}")
    unknown = sorted(set(body) - {"ids", "all"})
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)[:200]}")
    if body.get("all") is True and "ids" not in body:
        return None
    if "all" in body:
        raise InvalidRequest("all must be true, and not sent with ids")
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or len(ids) > IDS_MAX or not all(
            isinstance(i, str) and 0 < len(i) <= ID_MAX for i in ids):
        raise InvalidRequest(f"ids must be a list of 1..{IDS_MAX} notification ids")
    return ids


def mark_read(ids: list[str] | None) -> tuple[int, int]:
    """Mark the signed-in user's ``ids`` (None: all) read; tell their other tabs. Returns
    (how many changed, unread left)."""
    store, user_id = services().store, current_user_id()
    changed = store.mark_notifications_read(user_id, ids)
    unread = store.count_unread_notifications(user_id)
    if changed:
        try:
            emitter(current_app.extensions["socketio"])(
                "notifications_read", {"ids": ids, "all": ids is None, "unread": unread},
                user_room(user_id))
        except Exception:           # the other tabs catch up at their next page
            log.exception("telling the user's tabs about read notifications failed")
    return changed, unread


# -- the API -----------------------------------------------------------------------------------

@bp.get("/api/notifications")
@login_required
def api_list() -> Response:
    unread_only = _flag("unread")
    limit = _whole("limit", PAGE_SIZE, 1, LIMIT_MAX)
    offset = _whole("offset", 0, 0)
    store, user_id = services().store, current_user_id()
    notes = store.list_notifications(user_id, unread_only=unread_only, limit=limit,
                                     offset=offset)
    return jsonify({"notifications": [notification_payload(n) for n in notes],
                    "unread": store.count_unread_notifications(user_id)})


@bp.post("/api/notifications/read")
@login_required
def api_read() -> Response:
    changed, unread = mark_read(_wanted(request.get_json(silent=True)))
    return jsonify({"marked": changed, "unread": unread})


# -- the page ----------------------------------------------------------------------------------

@bp.get("/notifications")
@login_required
def page() -> str:
    page_number = _whole("page", 1, 1)
    store, user_id = services().store, current_user_id()
    notes = store.list_notifications(user_id, limit=PAGE_SIZE + 1,
                                     offset=(page_number - 1) * PAGE_SIZE)
    return render_template("notifications/index.html", notifications=notes[:PAGE_SIZE],
                           page=page_number, more=len(notes) > PAGE_SIZE,
                           unread=store.count_unread_notifications(user_id))


@bp.post("/notifications/read")
@login_required
def page_read() -> Response:
    form = request.form
    if form.get("all") == "1":
        ids = None
    else:
        ids = [i for i in form.getlist("ids") if i and len(i) <= ID_MAX][:IDS_MAX]
        if not ids:
            raise InvalidRequest("choose a notification to mark read")
    mark_read(ids)
    page_number = form.get("page", "1")
    target = "/notifications" + (f"?page={page_number}" if page_number.isdigit()
                                 and page_number != "1" else "")
    return redirect(target, code=303)


@bp.app_context_processor
def bell() -> dict[str, Any]:
    """``notifications_unread`` for the navigation's bell (None when it cannot be read: the
    page still renders, the bell without a number)."""
    if not current_user.is_authenticated:
        return {}
    try:
        return {"notifications_unread":
                services().store.count_unread_notifications(current_user_id())}
    except Exception:
        log.warning("the unread count could not be read for the bell", exc_info=True)
        return {"notifications_unread": None}
