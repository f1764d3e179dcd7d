"""Firestore users: ``users/{uid}``, unique emails through ``user_emails/{email}``.

Deleting a user removes ``users/{uid}`` with every subcollection (sites, ledgers, tokens ...)
and every top-level document whose ``user_id`` is theirs (runs and campaigns with their
subcollections, the email and token indexes), so a collection a later aggregate adds is
covered without listing it here.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from storage._common import jsonable
from storage._users import UserMutation, new_user, password_change, profile_update, sessions_end
from storage.base import DuplicateError, NotFoundError, User
from storage.firestore.connection import FirestoreConnection, doc_key, from_doc, to_doc


class UsersMixin(FirestoreConnection):
    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        user = new_user(email, password_hash, display_name)
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

    def _change_user(self, user_id: str, mutate: UserMutation) -> User:
        ref = self._user(user_id)

        def body(t: firestore.Transaction) -> User:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no user {user_id}")
            user = from_doc(User, snap.to_dict(), id=snap.id)
            changes = mutate(user)
            t.update(ref, changes)
            return User(**{**user.__dict__, **changes})

        return self._tx(f"user:{user_id}", body)

    def update_user(self, user_id: str, changes: dict[str, Any]) -> User:
        return self._change_user(user_id, profile_update(changes))

    def change_password(self, user_id: str, password_hash: str,
                        expected_hash: str | None = None) -> User:
        return self._change_user(user_id, password_change(password_hash, expected_hash))

    def end_sessions(self, user_id: str) -> User:
        return self._change_user(user_id, sessions_end)

    def delete_user(self, user_id: str) -> None:
        ref = self._user(user_id)
        if not ref.get().exists:
            raise NotFoundError(f"no user {user_id}")
        for collection in self._client.collections():
            if collection.id == "users":
                continue
            for snap in collection.where(filter=FieldFilter("user_id", "==", user_id)).stream():
                self._client.recursive_delete(snap.reference)
        self._client.recursive_delete(ref)      # last: a failure part-way can be retried
