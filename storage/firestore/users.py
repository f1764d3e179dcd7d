"""Firestore users: ``users/{uid}``, unique emails through ``user_emails/{email}``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from storage._common import aware_utc, jsonable, new_id
from storage.base import DuplicateError, NotFoundError, User, utcnow
from storage.firestore.connection import FirestoreConnection, doc_key, from_doc, to_doc


class UsersMixin(FirestoreConnection):
    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        if not email:
            raise ValueError("email is required")
        user = User(id=new_id(), email=email, password_hash=password_hash,
                    display_name=display_name, created_at=aware_utc(utcnow()))
        index = self._client.collection("user_emails").document(doc_key(email))

        def body(t: firestore.Transaction) -> None:
            if index.get(transaction=t).exists:
                raise DuplicateError(f"email already registered: {email}")
            t.create(index, {"user_id": user.id})
            t.create(self._user(user.id), to_doc(User, asdict(user), skip=("id",)))

        try:
            self._tx(f"email:{email}", body)
        except gexc.AlreadyExists as exc:
            raise DuplicateError(f"email already registered: {email}") from exc
        return user

    def get_user(self, user_id: str) -> User | None:
        snap = self._user(user_id).get()
        return from_doc(User, snap.to_dict(), id=snap.id) if snap.exists else None

    def get_user_by_email(self, email: str) -> User | None:
        index = self._client.collection("user_emails").document(doc_key(email)).get()
        if not index.exists:
            return None
        user = self.get_user(index.get("user_id"))
        return user if user is not None and user.email == email else None

    def update_user_settings(self, user_id: str, settings: dict[str, Any]) -> User:
        ref = self._user(user_id)

        def body(t: firestore.Transaction) -> User:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no user {user_id}")
            user = from_doc(User, snap.to_dict(), id=snap.id)
            user.settings = jsonable({**user.settings, **settings})
            t.update(ref, {"settings": user.settings})
            return user

        return self._tx(f"user:{user_id}", body)
