"""Firestore personal API tokens: ``users/{uid}/tokens/{id}``, found by hash through the index
``api_tokens/{sha256} -> {user_id, token_id}`` (written in the token's own transaction)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from google.cloud import firestore

from storage._common import aware_utc, new_id
from storage.base import ApiToken, DuplicateError, NotFoundError
from storage.firestore.connection import DOC_ID, FirestoreConnection, from_doc, to_doc


class TokensMixin(FirestoreConnection):
    def create_token(self, token: ApiToken) -> ApiToken:
        stored = ApiToken(**{**token.__dict__, "id": token.id or new_id(),
                             "created_at": aware_utc(token.created_at)})
        ref = self._token(stored.user_id, stored.id)
        index = self._token_index(stored.token_sha256)

        def body(t: firestore.Transaction) -> None:
            if not self._user(stored.user_id).get(transaction=t).exists:
                raise NotFoundError(f"no user {stored.user_id}")
            if index.get(transaction=t).exists or ref.get(transaction=t).exists:
                raise DuplicateError("token already stored")
            t.create(index, {"user_id": stored.user_id, "token_id": stored.id})
            t.create(ref, to_doc(ApiToken, asdict(stored), skip=("id", "user_id")))

        self._tx(f"token:{stored.token_sha256}", body)
        return stored

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        query = self._user(user_id).collection("tokens").order_by("created_at").order_by(DOC_ID)
        return [from_doc(ApiToken, s.to_dict(), id=s.id, user_id=user_id)
                for s in query.stream()]

    def get_token_by_hash(self, token_sha256: str) -> ApiToken | None:
        index = self._token_index(token_sha256).get()
        if not index.exists:
            return None
        user_id, token_id = index.get("user_id"), index.get("token_id")
        snap = self._token(user_id, token_id).get()
        if not snap.exists:
            return None
        token = from_doc(ApiToken, snap.to_dict(), id=snap.id, user_id=user_id)
        return token if token.token_sha256 == token_sha256 else None

    def touch_token(self, user_id: str, token_id: str, when: datetime) -> None:
        ref = self._token(user_id, token_id)

        def body(t: firestore.Transaction) -> None:
            if ref.get(transaction=t).exists:
                t.update(ref, {"last_used_at": aware_utc(when)})

        self._tx(f"token-use:{user_id}/{token_id}", body)

    def delete_token(self, user_id: str, token_id: str) -> None:
        ref = self._token(user_id, token_id)

        def body(t: firestore.Transaction) -> None:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no token {token_id}")
            t.delete(self._token_index(snap.get("token_sha256")))
            t.delete(ref)

        self._tx(f"token-use:{user_id}/{token_id}", body)
