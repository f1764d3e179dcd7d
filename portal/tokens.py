"""Personal API tokens, and who a request is: a bearer token on ``/api/*`` or the session.

A token is ``tz_`` + 32 random bytes (URL-safe base64), shown once when it is made; the store
keeps only its SHA-256. ``Authorization: Bearer tz_...`` on an ``/api/`` call authenticates as
the token's user with no cookie and no CSRF token, and counts against a rate limit of that
token (``TICKZEN_TOKEN_RATE_LIMIT``); a wrong or revoked token is a 401 whatever cookie comes
with it. Every other request is checked for its CSRF token here: CSRFProtect's own check is
switched off (``WTF_CSRF_CHECK_DEFAULT``) so that this one guard decides, before any view runs.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, g, request
from flask_login import login_required
from limits import parse as parse_limit
from werkzeug.exceptions import TooManyRequests

from portal.access import current_user_id
from portal.auth import User
from portal.errors import InvalidRequest, NotFound, PortalError
from portal.extensions import csrf, limiter
from portal.quotas import TOKENS
from portal.services import services
from storage.base import ApiToken, NotFoundError, utcnow

bp = Blueprint("tokens", __name__)

TOKEN_PREFIX = "tz_"
TOKEN_BYTES = 32
NAME_MAX = 100
LAST_USED_EVERY = timedelta(minutes=1)   # last use is written at most this often per token


class InvalidToken(PortalError):
    """The bearer token is unknown, revoked or malformed (401)."""

    http_status = 401


def new_token() -> str:
    """A fresh secret: ``tz_`` + 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the store keeps of a token (hex SHA-256): enough to find it, useless to steal."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def bearer_token() -> str | None:
    """The token of ``Authorization: Bearer <token>`` on an /api/ call, else None ("" when
    the header names Bearer but carries nothing usable)."""
    if not request.path.startswith("/api/"):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value if value.startswith(TOKEN_PREFIX) and len(value) <= 200 else ""


def authenticate_request() -> None:
    """Before every view: a bearer token sets ``g.api_user`` (no CSRF check: a token is not
    sent by a browser on its own); everything else passes the CSRF check of its method."""
    token = bearer_token()
    if token is None:
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect(apply_exemptions=True)
        return
    record = services().store.get_token_by_hash(token_hash(token)) if token else None
    user = services().store.get_user(record.user_id) if record else None
    if record is None or user is None:
        raise InvalidToken("invalid or revoked API token")
    _count_against_limit(record)
    g.api_user = User(user)
    g.api_token = record
    now = utcnow()
    if record.last_used_at is None or now - record.last_used_at >= LAST_USED_EVERY:
        services().store.touch_token(record.user_id, record.id, now)


def _count_against_limit(record: ApiToken) -> None:
    """One hit on the token's own limit (in the limiter's storage: shared by instances)."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    item = parse_limit(current_app.config["TICKZEN_TOKEN_RATE_LIMIT"])
    if not limiter.limiter.hit(item, "api-token", record.token_sha256):
        raise TooManyRequests()


def via_token() -> bool:
    """Whether this request was authenticated by an API token (not a session)."""
    return g.get("api_user") is not None


def init_app(app: Flask) -> None:
    """Install the guard in front of every view (CSRFProtect's own check is switched off)."""
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(authenticate_request)


# ---------------------------------------------------------------------------------------------
# Making, listing and revoking tokens (the API; /account's forms call the same functions).


def token_json(token: ApiToken) -> dict[str, Any]:
    """What a token's owner may see again: never the secret, which exists only at creation."""
    return {"id": token.id, "name": token.name,
            "created_at": token.created_at.isoformat(),
            "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None}


def parse_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("name is required (what the token is for)")
    name = value.strip()
    if len(name) > NAME_MAX:
        raise InvalidRequest(f"name must be at most {NAME_MAX} characters")
    return name


def create_token(user_id: str, name: Any) -> tuple[ApiToken, str]:
    """Store a new token for the user; returns it and the secret (shown once). 409 past
    TICKZEN_MAX_TOKENS (a list one can still read and revoke)."""
    clean = parse_name(name)
    TOKENS.check(user_id)
    store = services().store
    secret = new_token()
    token = store.create_token(ApiToken(id="", user_id=user_id, name=clean,
                                        token_sha256=token_hash(secret)))
    return token, secret


def revoke_token(user_id: str, token_id: str) -> None:
    try:
        services().store.delete_token(user_id, token_id)
    except NotFoundError:
        raise NotFound("token not found") from None


@bp.get("/api/tokens")
@login_required
def api_list() -> dict[str, Any]:
    return {"tokens": [token_json(t) for t in services().store.list_tokens(current_user_id())]}


@bp.post("/api/tokens")
@login_required
def api_create() -> tuple[dict[str, Any], int]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object with a name")
    token, secret = create_token(current_user_id(), body.get("name"))
    return {**token_json(token), "token": secret}, 201


@bp.delete("/api/tokens/<token_id>")
@login_required
def api_revoke(token_id: str) -> dict[str, Any]:
    revoke_token(current_user_id(), token_id)
    return {"deleted": token_id}
