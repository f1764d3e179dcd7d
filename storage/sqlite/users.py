"""SQLite users: accounts, unique by (already normalised) email, and deleting one with all
it owns (every row of every table with its ``user_id``; child rows go by cascade)."""

from __future__ import annotations

import sqlite3
from typing import Any

from storage._common import jsonable
from storage._users import UserMutation, new_user, password_change, profile_update, sessions_end
from storage.base import DuplicateError, NotFoundError, User
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
    ADDED_COLUMNS = (
        ("users", "timezone", "TEXT NOT NULL DEFAULT ''"),
        ("users", "session_version", "INTEGER NOT NULL DEFAULT 0"),
    )

    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        user = new_user(email, password_hash, display_name)
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

    def _change_user(self, user_id: str, mutate: UserMutation) -> User:
        """Read the user, let ``mutate`` return the column changes, write them: one step."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no user {user_id}")
            user = decode(User, row)
            changes = mutate(user)
            set_columns(db, "users", User, changes, "id = ?", (user_id,))
        return User(**{**user.__dict__, **changes})

    def update_user(self, user_id: str, changes: dict[str, Any]) -> User:
        return self._change_user(user_id, profile_update(changes))

    def change_password(self, user_id: str, password_hash: str,
                        expected_hash: str | None = None) -> User:
        return self._change_user(user_id, password_change(password_hash, expected_hash))

    def end_sessions(self, user_id: str) -> User:
        return self._change_user(user_id, sessions_end)

    def delete_user(self, user_id: str) -> None:
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone():
                raise NotFoundError(f"no user {user_id}")
            db.execute("PRAGMA defer_foreign_keys = ON")     # any order; checked at commit
            for table in _tables_with_user_id(db):
                db.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
            db.execute("DELETE FROM users WHERE id = ?", (user_id,))


def _tables_with_user_id(db: sqlite3.Connection) -> list[str]:
    """Every table whose rows name their owner: what an account's deletion empties (a table a
    later aggregate adds is covered without listing it here)."""
    tables = [r["name"] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return [t for t in tables
            if any(c["name"] == "user_id" for c in db.execute(f"PRAGMA table_info({t})"))]
