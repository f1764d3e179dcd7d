"""SQLite personal API tokens: only each token's SHA-256 is kept, unique across users."""

from __future__ import annotations

from datetime import datetime

from storage._common import aware_utc, new_id, to_iso
from storage.base import ApiToken, DuplicateError, NotFoundError
from storage.sqlite.connection import SQLiteConnection, decode, insert


class TokensMixin(SQLiteConnection):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS api_tokens (
        id           TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name         TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at   TEXT NOT NULL,
        last_used_at TEXT
    );
    CREATE INDEX IF NOT EXISTS api_tokens_by_user ON api_tokens(user_id, created_at);
    """

    def create_token(self, token: ApiToken) -> ApiToken:
        stored = ApiToken(**{**token.__dict__, "id": token.id or new_id(),
                             "created_at": aware_utc(token.created_at)})
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM users WHERE id = ?", (token.user_id,)).fetchone():
                raise NotFoundError(f"no user {token.user_id}")
            if db.execute("SELECT 1 FROM api_tokens WHERE token_sha256 = ? OR id = ?",
                          (token.token_sha256, stored.id)).fetchone():
                raise DuplicateError("token already stored")
            insert(db, "api_tokens", ApiToken, stored)
        return stored

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        rows = self._all("SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, id",
                         (user_id,))
        return [decode(ApiToken, r) for r in rows]

    def get_token_by_hash(self, token_sha256: str) -> ApiToken | None:
        row = self._one("SELECT * FROM api_tokens WHERE token_sha256 = ?", (token_sha256,))
        return decode(ApiToken, row) if row else None

    def touch_token(self, user_id: str, token_id: str, when: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND user_id = ?",
                       (to_iso(when), token_id, user_id))

    def delete_token(self, user_id: str, token_id: str) -> None:
        with self._tx() as db:
            cur = db.execute("DELETE FROM api_tokens WHERE id = ? AND user_id = ?",
                             (token_id, user_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no token {token_id}")
