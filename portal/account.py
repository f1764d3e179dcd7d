"""The account: ``/account`` (profile, email choices, password, sessions, tokens, deletion)
and its JSON twin ``/api/account``.

Every change is validated completely before anything is stored; a bad value is a form error
(400) on the page and ``400 {error}`` in the API. A password change ends every other session
(the store bumps the user's session version; this session carries the new one) and closes the
user's sockets; deleting the account removes all the user owns from the store, their
local-archive files and run folders (posts on WordPress stay).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import shutil
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import login_required, logout_user
from werkzeug.security import generate_password_hash
from werkzeug.wrappers import Response

from automation_scripts.publishing.archive import archive_path
from portal.access import current_user_id
from portal.auth import check_new_password, password_matches, start_session
from portal.errors import InvalidRequest, NotFound
from portal.housekeeping import disk_usage
from portal.quotas import QuotaReached
from portal.services import services
from portal.socket_sessions import disconnect_user
from portal.tokens import create_token, revoke_token, token_json
from runner.errors import RunNotFound, TransitionNotAllowed
from runner.notifications import EMAIL_EVENTS_SETTING, EVENT_TYPES, email_events_of
from storage.base import RUN_FINAL, ConflictError
from storage.base import User as StoredUser

log = logging.getLogger(__name__)

bp = Blueprint("account", __name__)

DISPLAY_NAME_MAX = 100
TIMEZONE_MAX = 64


class AccountInputError(InvalidRequest):
    """A submitted account change is unusable (400); ``field`` names the form field."""

    def __init__(self, message: str, field: str = "form") -> None:
        super().__init__(message)
        self.field = field


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every IANA zone name this Python knows (tzdata is pinned), sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def parse_timezone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AccountInputError("timezone is required (an IANA zone such as Europe/Paris)",
                                "timezone")
    zone = value.strip()
    if len(zone) > TIMEZONE_MAX or zone not in time_zones():
        raise AccountInputError(f"unknown time zone {zone[:TIMEZONE_MAX]!r}: use an IANA "
                                "name such as America/New_York", "timezone")
    return zone


def parse_display_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise AccountInputError("display_name must be a string", "display_name")
    name = value.strip()
    if len(name) > DISPLAY_NAME_MAX:
        raise AccountInputError(f"display_name must be at most {DISPLAY_NAME_MAX} characters",
                                "display_name")
    return name


def parse_email_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AccountInputError("email_events must be a list of event types", "email_events")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise AccountInputError(f"unknown event type(s): {', '.join(unknown)[:200]}; use "
                                f"{', '.join(EVENT_TYPES)}", "email_events")
    return [t for t in EVENT_TYPES if t in value]


def account_json(record: StoredUser) -> dict[str, Any]:
    return {"email": record.email, "display_name": record.display_name,
            "timezone": record.timezone or "UTC", "email_events": email_events_of(record)}


def _me() -> StoredUser:
    record = services().store.get_user(current_user_id())
    if record is None:             # deleted while the request ran
        raise NotFound("account not found")
    return record


def update_profile(record: StoredUser, data: Mapping[str, Any]) -> StoredUser:
    """Apply the given fields of ``{display_name, timezone, email_events}``; all are checked
    first, so a bad one changes nothing. ``email`` may be sent back unchanged."""
    if "email" in data and data["email"] != record.email:
        raise AccountInputError("email cannot be changed here", "email")
    unknown = sorted(set(data) - {"email", "display_name", "timezone", "email_events"})
    if unknown:
        raise AccountInputError(f"unknown field(s): {', '.join(unknown)[:200]}")
    profile: dict[str, Any] = {}
    if "display_name" in data:
        profile["display_name"] = parse_display_name(data["display_name"])
    if "timezone" in data:
        profile["timezone"] = parse_timezone(data["timezone"])
    events = parse_email_events(data["email_events"]) if "email_events" in data else None
    store = services().store
    if profile:
        record = store.update_user(record.id, profile)
    if events is not None:
        record = store.update_user_settings(record.id, {EMAIL_EVENTS_SETTING: events})
    return record


def change_password(record: StoredUser, current: Any, new: Any,
                    confirm: Any = None) -> StoredUser:
    """Check the current password and the new one, store it; every other session ends, this
    one goes on under the new session version."""
    if not isinstance(current, str) or not current:
        raise AccountInputError("current_password is required", "current_password")
    if not isinstance(new, str) or (confirm is not None and not isinstance(confirm, str)):
        raise AccountInputError("password must be a string", "password")
    errors: dict[str, str] = {}
    check_new_password(new, confirm, errors)
    if errors:
        field, message = next(iter(errors.items()))
        raise AccountInputError(message.rstrip("."), field)
    if not password_matches(record, current):
        raise AccountInputError("the current password is wrong", "current_password")
    try:
        updated = services().store.change_password(record.id, generate_password_hash(new),
                                                   expected_hash=record.password_hash)
    except ConflictError:
        raise AccountInputError("the password was changed meanwhile; try again",
                                "current_password") from None
    start_session(updated)
    disconnect_user(record.id)
    return updated


def sign_out_everywhere(record: StoredUser) -> None:
    """End every session of the user, this one included, and close their sockets."""
    services().store.end_sessions(record.id)
    logout_user()
    session.clear()
    disconnect_user(record.id)


def delete_account(record: StoredUser, password: Any) -> None:
    """Password checked; runs stopped; store records, archive files and run folders gone."""
    if not isinstance(password, str) or not password:
        raise AccountInputError("password is required to delete the account", "password")
    if not password_matches(record, password):
        raise AccountInputError("the password is wrong", "password")
    svc = services()
    run_ids = _stop_runs(record.id)
    svc.store.delete_user(record.id)
    _remove_files(record.id, run_ids)
    logout_user()
    session.clear()
    disconnect_user(record.id)


def _stop_runs(user_id: str) -> list[str]:
    """Every run id of the user; the unfinished ones are cancelled first, so no worker goes on
    publishing for an account that is going away."""
    manager = services().runs
    ids: list[str] = []
    offset, page = 0, 200
    while True:
        runs = services().store.list_runs(user_id, limit=page, offset=offset)
        for run in runs:
            ids.append(run.id)
            if run.status not in RUN_FINAL:
                with contextlib.suppress(RunNotFound, TransitionNotAllowed):
                    manager.cancel(run.id, user_id)      # unless finished meanwhile
        if len(runs) < page:
            return ids
        offset += page


def _remove_files(user_id: str, run_ids: list[str]) -> None:
    """The user's local-archive folder and each run's work folder."""
    archive = getattr(services().publishing, "archive_dir", None)
    folders: list[Path] = []
    if archive:
        try:
            folders.append(archive_path(archive, user_id, "x").parent)
        except ValueError:
            log.warning("user id %r cannot name an archive folder", user_id)
    workdirs = services().runs.workdirs
    folders += [workdirs.for_run(run_id) for run_id in run_ids]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# JSON API


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


@bp.get("/api/account")
@login_required
def api_get() -> dict[str, Any]:
    return account_json(_me())


@bp.patch("/api/account")
@login_required
def api_update() -> dict[str, Any]:
    return account_json(update_profile(_me(), _json_body()))


@bp.post("/api/account/password")
@login_required
def api_password() -> dict[str, Any]:
    body = _json_body()
    change_password(_me(), body.get("current_password"), body.get("password"))
    return {"changed": True}


@bp.delete("/api/account")
@login_required
def api_delete() -> dict[str, Any]:
    record = _me()
    delete_account(record, _json_body().get("password"))
    return {"deleted": record.id}


# ---------------------------------------------------------------------------------------------
# Pages


def render_page(errors: dict[str, dict[str, str]] | None = None, status: int = 200,
                new_token: str | None = None, form: Mapping[str, Any] | None = None):
    record = _me()
    tokens = [token_json(t) for t in services().store.list_tokens(record.id)]
    return render_template("account/index.html", account=account_json(record),
                           zones=time_zones(), event_types=EVENT_TYPES, tokens=tokens,
                           errors=errors or {}, new_token=new_token, form=form or {},
                           disk=disk_usage(record.id)), status


@bp.get("/account")
@login_required
def page():
    return render_page()


@bp.post("/account/profile")
@login_required
def page_profile():
    form = request.form
    data = {"display_name": form.get("display_name", ""),
            "timezone": form.get("timezone", ""),
            "email_events": form.getlist("email_events")}
    try:
        update_profile(_me(), data)
    except AccountInputError as exc:
        return render_page({"profile": {exc.field: exc.message}}, 400, form=data)
    flash("Profile saved.", "success")
    return redirect(url_for("account.page"))


@bp.post("/account/password")
@login_required
def page_password():
    form = request.form
    try:
        change_password(_me(), form.get("current_password", ""), form.get("password", ""),
                        form.get("confirm_password", ""))
    except AccountInputError as exc:
        return render_page({"password": {exc.field: exc.message}}, 400)
    flash("Password changed. Every other session is signed out.", "success")
    return redirect(url_for("account.page"))


@bp.post("/account/sessions")
@login_required
def page_sessions() -> Response:
    sign_out_everywhere(_me())
    flash("Signed out everywhere, this browser too.", "info")
    return redirect(url_for("auth.login"))


@bp.post("/account/tokens")
@login_required
def page_token_create():
    """The new token is shown on this answer only (never stored, never in a cookie)."""
    try:
        _token, secret = create_token(current_user_id(), request.form.get("name"))
    except (InvalidRequest, QuotaReached) as exc:
        return render_page({"tokens": {"name": exc.message}}, exc.http_status)
    return render_page(new_token=secret, status=201)


@bp.post("/account/tokens/<token_id>/revoke")
@login_required
def page_token_revoke(token_id: str) -> Response:
    revoke_token(current_user_id(), token_id)
    flash("Token revoked: it no longer works.", "success")
    return redirect(url_for("account.page") + "#tokens")


@bp.post("/account/delete")
@login_required
def page_delete():
    try:
        delete_account(_me(), request.form.get("password", ""))
    except AccountInputError as exc:
        return render_page({"delete": {exc.field: exc.message}}, 400)
    flash("Your account and everything it held are deleted.", "info")
    return redirect(url_for("auth.login"))

