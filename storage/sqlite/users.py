"""SQLite users: accounts, unique by (already normalised) email."""

from __future__ import annotations

from typing import Any

from storage._common import aware_utc, jsonable, new_id
from storage.base import DuplicateError, NotFoundError, User, utcnow
from storage.sqlite.connection import SQLiteConnection, decode, insert, set_columns


class UsersMixin(SQLiteConnection):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS users (
        id            TEXT PRIMARY KEY,
        email         TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        display_name  TEXT NOT NULL DEFAULT '',
        settings      TEXT NOT NULL DEFAULT '{}',
        created_at    TEXT NOT NULL
    );
    """

    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        if not email:
            raise ValueError("email is required")
        user = User(id=new_id(), email=email, password_hash=password_hash,
                    display_name=display_name, created_at=aware_utc(utcnow()))
        with self._tx() as db:
            if db.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
                raise DuplicateError(f"email already registered: {email}")
            insert(db, "users", User, user)
        return user

    def get_user(self, user_id: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return decode(User, row) if row else None

    def get_user_by_email(self, email: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE email = ?", (email,))
        return decode(User, row) if row else None

    def update_user_settings(self, user_id: str, settings: dict[str, Any]) -> User:
        with self._tx() as db:
            row = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no user {user_id}")
            user = decode(User, row)
            user.settings = jsonable({**user.settings, **settings})
            set_columns(db, "users", User, {"settings": user.settings}, "id = ?", (user_id,))
        return user
