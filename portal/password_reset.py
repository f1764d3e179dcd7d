"""Password reset by email: ``/forgot-password`` and ``/reset-password/<token>``.

The forgotten-password form answers the same for every well-formed address, known or not, and
sends the email from a background thread, so neither the words nor the time tell whether an
account exists. The link's token is signed (itsdangerous, the app's SECRET_KEY and a salt of
its own), expires after ``TICKZEN_RESET_TOKEN_MINUTES``, and is bound to a fingerprint of the
account's password hash and session version: once the password changed (by this link or any
other way) or the user signed out everywhere, the link is dead. The change itself is a
compare-and-set on the old hash, so two tabs racing with one link cannot both use it. Both
forms are rate limited like the login. Without ``TICKZEN_SMTP_URL`` the page says reset by
email is not set up.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import generate_password_hash

from portal.auth import check_email, check_new_password, login_limit, normalise_email
from portal.extensions import limiter
from portal.services import services
from portal.socket_sessions import disconnect_user
from runner.mailer import Mailer, MailError
from storage.base import ConflictError, NotFoundError
from storage.base import User as StoredUser

log = logging.getLogger(__name__)

bp = Blueprint("password_reset", __name__)

SALT = "tickzen-password-reset"
SENT_MESSAGE = ("If an account exists for that address, an email with a link to choose a new "
                "password is on its way. The link works once, for a limited time.")


def email_configured() -> bool:
    return bool(current_app.config.get("TICKZEN_SMTP_URL"))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def fingerprint(record: StoredUser) -> str:
    """Changes whenever the password or the session version does (never reveals either)."""
    text = f"{record.password_hash}|{record.session_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_token(record: StoredUser) -> str:
    return _serializer().dumps({"u": record.id, "f": fingerprint(record)})


def _max_age() -> int:
    return int(current_app.config["TICKZEN_RESET_TOKEN_MINUTES"]) * 60


def user_for_token(token: str) -> StoredUser | None:
    """The account a still-valid link belongs to; None when forged, expired or used."""
    if not isinstance(token, str) or len(token) > 1000:
        return None
    try:
        data = _serializer().loads(token, max_age=_max_age())
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str):
        return None
    record = services().store.get_user(data["u"])
    if record is None or data.get("f") != fingerprint(record):
        return None
    return record


def _reset_email(record: StoredUser, link: str) -> EmailMessage:
    config = current_app.config
    minutes = int(config["TICKZEN_RESET_TOKEN_MINUTES"])
    message = EmailMessage()
    message["Subject"] = "[TickZen] Choose a new password"
    message["From"] = config["TICKZEN_MAIL_FROM"]
    message["To"] = record.email
    message["Date"] = formatdate(localtime=False)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Someone (hopefully you) asked to reset the password of your TickZen account.\n\n"
        f"Choose a new password here (the link works once, for {minutes} minutes):\n"
        f"{link}\n\n"
        "If you did not ask for this, ignore this email: your password stays as it is.\n")
    return message


def _send_in_background(mailer: Mailer, message: EmailMessage) -> None:
    def send() -> None:
        try:
            mailer.send(message)
        except MailError:
            log.exception("the password reset email could not be sent")

    threading.Thread(target=send, name="reset-mail", daemon=True).start()


def _mailer() -> Mailer:
    config = current_app.config
    return Mailer.from_url(config["TICKZEN_SMTP_URL"], config["TICKZEN_MAIL_FROM"])


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def forgot():
    if not email_configured():
        return render_template("auth/forgot.html", configured=False, errors={}, email="",
                               sent=False), (200 if request.method == "GET" else 400)
    if request.method == "GET":
        return render_template("auth/forgot.html", configured=True, errors={}, email="",
                               sent=False)
    email = normalise_email(request.form.get("email", ""))
    errors: dict[str, str] = {}
    check_email(email, errors)
    if errors:
        return render_template("auth/forgot.html", configured=True, errors=errors,
                               email=email, sent=False), 400
    record = services().store.get_user_by_email(email)
    if record is not None:
        link = url_for("password_reset.reset", token=make_token(record), _external=True)
        try:
            _send_in_background(_mailer(), _reset_email(record, link))
        except ValueError:             # TICKZEN_SMTP_URL / MAIL_FROM unusable: say so in logs
            log.exception("password reset email is misconfigured")
    return render_template("auth/forgot.html", configured=True, errors={}, email="",
                           sent=True)


def _dead_link() -> Any:
    return render_template("auth/reset.html", valid=False, errors={}), 400


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def reset(token: str):
    record = user_for_token(token)
    if record is None:
        return _dead_link()
    if request.method == "GET":
        return render_template("auth/reset.html", valid=True, errors={})
    password = request.form.get("password", "") or ""
    errors: dict[str, str] = {}
    check_new_password(password, request.form.get("confirm_password", "") or "", errors)
    if errors:
        return render_template("auth/reset.html", valid=True, errors=errors), 400
    try:
        services().store.change_password(record.id, generate_password_hash(password),
                                         expected_hash=record.password_hash)
    except (ConflictError, NotFoundError):      # used by a racing request, or account gone
        return _dead_link()
    disconnect_user(record.id)
    flash("Password changed. Every session was signed out: sign in with the new password.",
          "success")
    return redirect(url_for("auth.login"))
