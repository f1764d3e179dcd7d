"""Accounts: register, login, logout, and the Flask-Login user loader backed by the store.

Forms are plain HTML posting ``csrf_token`` (checked before any view runs, see
portal/tokens.py). Validation failures re-render the form with status 400 and store nothing.

A session carries the user's ``session_version`` from when it signed in; the loader refuses a
session whose number is older than the stored one, so a password change, a reset or "sign out
everywhere" ends every session issued before it. A request authenticated by an API token
(``g.api_user``, set by portal/tokens.py) is that token's user whatever cookie it carries.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from portal.errors import SignInRequired
from portal.extensions import limiter, login_manager
from portal.services import services
from storage.base import DuplicateError, Site, StoreError
from storage.base import User as StoredUser

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

STARTER_SITE_NAME = "Local archive"

EMAIL_MAX = 254
PASSWORD_MIN = 8
PASSWORD_MAX = 128
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# A real hash to check against when the email is unknown, so both paths cost the same.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0000")


class User(UserMixin):
    """The Flask-Login view of a stored user (``record`` is the storage.base.User)."""

    def __init__(self, record: StoredUser) -> None:
        self.record = record

    @property
    def id(self) -> str:  # noqa: A003 - Flask-Login's name
        return self.record.id

    @property
    def email(self) -> str:
        return self.record.email

    @property
    def display_name(self) -> str:
        return self.record.display_name or self.record.email

    @property
    def timezone(self) -> str:
        return self.record.timezone or "UTC"

    def get_id(self) -> str:
        return self.record.id


SESSION_VERSION_KEY = "session_version"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Flask-Login calls this per request with the id kept in the session; a session older
    than the user's last password change (or sign-out-everywhere) is not signed in."""
    api_user = g.get("api_user")
    if api_user is not None:
        return api_user
    record = services().store.get_user(user_id)
    if record is None or session.get(SESSION_VERSION_KEY, 0) != record.session_version:
        return None
    return User(record)


@login_manager.request_loader
def load_user_from_request(_request: object) -> User | None:
    """A request with no session: the API token's user when portal/tokens.py accepted one."""
    return g.get("api_user")


@login_manager.unauthorized_handler
def unauthorized() -> Response:
    """API calls get a 401 JSON; pages go to the login form and come back afterwards."""
    if request.path.startswith("/api/"):
        raise SignInRequired("login required")
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def normalise_email(email: str) -> str:
    """Emails are compared and stored stripped and lower-cased."""
    return (email or "").strip().lower()


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a local path on this site, else None (no open redirects)."""
    if not target or not isinstance(target, str):
        return None
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@dataclass
class FormResult:
    """Cleaned form values and the errors found (field -> message)."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_email(email: str, errors: dict[str, str]) -> None:
    if not email:
        errors["email"] = "Email is required."
    elif len(email) > EMAIL_MAX:
        errors["email"] = f"Email must be at most {EMAIL_MAX} characters."
    elif not _EMAIL_RE.match(email):
        errors["email"] = "Enter a valid email address."


def validate_registration(form: dict[str, str]) -> FormResult:
    """Required fields, email shape, length limits, matching confirmation."""
    email = normalise_email(form.get("email", ""))
    password = form.get("password", "") or ""
    confirm = form.get("confirm_password", "") or ""
    errors: dict[str, str] = {}
    check_email(email, errors)
    check_new_password(password, confirm, errors)
    return FormResult({"email": email, "password": password}, errors)


def validate_login(form: dict[str, str]) -> FormResult:
    """Both fields present and within limits; the credentials are checked afterwards."""
    email = normalise_email(form.get("email", ""))
    password = form.get("password", "") or ""
    errors: dict[str, str] = {}
    check_email(email, errors)
    if not password:
        errors["password"] = "Password is required."
    elif len(password) > PASSWORD_MAX:
        errors["password"] = f"Password must be at most {PASSWORD_MAX} characters."
    return FormResult({"email": email, "password": password}, errors)


def start_session(record: StoredUser) -> None:
    """A fresh session for the signed-in user (no fixation from a pre-login session)."""
    session.clear()
    login_user(User(record))
    session[SESSION_VERSION_KEY] = record.session_version


def check_new_password(password: str, confirm: str | None,
                       errors: dict[str, str], field_name: str = "password") -> None:
    """Length limits and (when ``confirm`` is given) a matching confirmation."""
    if not password:
        errors[field_name] = "Password is required."
    elif len(password) < PASSWORD_MIN:
        errors[field_name] = f"Password must be at least {PASSWORD_MIN} characters."
    elif len(password) > PASSWORD_MAX:
        errors[field_name] = f"Password must be at most {PASSWORD_MAX} characters."
    if confirm is None:
        return
    if not confirm:
        errors["confirm_password"] = "Confirm your password."
    elif password and confirm != password:
        errors["confirm_password"] = "The two passwords do not match."


def password_matches(record: StoredUser | None, password: str) -> bool:
    """Whether ``password`` is the account's; the same cost when there is no account."""
    if not isinstance(password, str) or len(password) > PASSWORD_MAX:
        return False
    hashed = record.password_hash if record else _DUMMY_HASH
    return check_password_hash(hashed, password) and record is not None


def login_limit() -> str:
    """How many sign-in-like attempts (login, forgotten password, reset) an address may make."""
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Create an account, sign it in, go to the dashboard."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("pages.dashboard"))
    if request.method == "GET":
        return render_template("auth/register.html", errors={}, email="")
    result = validate_registration(request.form)
    if result.ok:
        try:
            record = services().store.create_user(
                result.values["email"], generate_password_hash(result.values["password"]))
        except DuplicateError:
            result.errors["email"] = "An account with this email already exists."
        else:
            _create_starter_site(record)
            start_session(record)
            flash("Welcome to TickZen. Your account is ready.", "success")
            return redirect(url_for("pages.dashboard"))
    return render_template("auth/register.html", errors=result.errors,
                           email=result.values["email"]), 400


def _create_starter_site(record: StoredUser) -> None:
    """Give a new account a local-archive site, so a first run works at once and offline
    (demo data into the built-in archive) before any WordPress site is set up."""
    site = Site(id="", user_id=record.id, name=STARTER_SITE_NAME, kind="local",
                defaults={"default_status": "publish", "gap_minutes": [30, 90],
                          "category": "", "tags": []})
    try:
        services().store.create_site(record.id, site)
    except StoreError:      # the account stands; the user can add a site on /sites
        log.exception("could not create the starter site for user %s", record.id)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login():
    """Check the credentials; on success go to a local ``next`` or the dashboard."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url or url_for("pages.dashboard"))
        return render_template("auth/login.html", errors={}, email="", next=next_url or "")
    result = validate_login(request.form)
    if result.ok:
        record = services().store.get_user_by_email(result.values["email"])
        if password_matches(record, result.values["password"]) and record is not None:
            start_session(record)
            flash("Signed in.", "success")
            return redirect(next_url or url_for("pages.dashboard"))
        result.errors["form"] = "Wrong email or password."
    return render_template("auth/login.html", errors=result.errors,
                           email=result.values["email"], next=next_url or ""), 400


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST signs out (CSRF-checked); GET only shows a sign-out button, changing nothing."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        return render_template("auth/logout.html")
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))

