"""User records and the account mutations both backends apply: each mutation reads the current
user and returns the fields to write, so the backend runs it inside its own transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from storage._common import USER_PROFILE_FIELDS, aware_utc, check_profile, new_id
from storage.base import ConflictError, User, utcnow

UserMutation = Callable[[User], dict[str, Any]]


def new_user(email: str, password_hash: str, display_name: str = "") -> User:
    """The record ``create_user`` stores; an email is required."""
    if not email:
        raise ValueError("email is required")
    return User(id=new_id(), email=email, password_hash=password_hash,
                display_name=display_name, created_at=aware_utc(utcnow()))


def profile_update(changes: dict[str, Any]) -> UserMutation:
    """``update_user``: the profile fields given (checked now, before any read)."""
    check_profile(changes)
    return lambda _user: {name: changes[name] for name in USER_PROFILE_FIELDS if name in changes}


def password_change(password_hash: str, expected_hash: str | None = None) -> UserMutation:
    """``change_password``: the new hash and a new session version, refused with a conflict
    when the hash is no longer the one the caller checked."""
    def mutate(user: User) -> dict[str, Any]:
        if expected_hash is not None and user.password_hash != expected_hash:
            raise ConflictError("the password changed meanwhile")
        return {"password_hash": password_hash, "session_version": user.session_version + 1}

    return mutate


def sessions_end(user: User) -> dict[str, Any]:
    """``end_sessions``: a new session version, so every earlier session is stale."""
    return {"session_version": user.session_version + 1}
