"""Firestore plumbing every aggregate shares: the client, retried transactions, document codecs.

Collections follow DESIGN.md's storage model::

    users/{uid}                                   user_emails/{email} -> {user_id} (uniqueness)
    users/{uid}/sites/{sid}                       users/{uid}/sites/{sid}/post_days/{day} -> count
    users/{uid}/sites/{sid}/posts/{slug}          the publish ledger
    users/{uid}/run_days/{day}   users/{uid}/sites/{sid}/published_days/{day}   (day_totals)
    runs/{rid}   runs/{rid}/items/{000042}   runs/{rid}/events/{0000000007}
    campaigns/{cid}   campaigns/{cid}/fires/{fire_id}   (a fire's run: runs/{rid}.fire_id)

Every compare-and-set is a Firestore transaction: the documents it decides on are read inside
it, so a concurrent writer makes one side retry and see the new state. Free-form payloads the
automations produce (an item's ``input`` and ``result``, an event body) are stored as JSON text,
because Firestore refuses arrays of arrays; records the store owns are native fields.
``FIRESTORE_EMULATOR_HOST`` is honoured by the client library itself.

Indexes production needs beyond the automatic single-field ones are listed in
``storage/firestore.indexes.json``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any, TypeVar
from urllib.parse import quote

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from storage._common import TIME_FIELDS, aware_utc, dumps
from storage.base import Item, LedgerEntry, StoreError
from storage.notification_records import OutboxEvent

T = TypeVar("T")

TX_ATTEMPTS = 40             # a transaction that keeps losing to other instances gives up
LOCK_STRIPES = 64
DOC_ID = FieldPath.document_id()

# Ledger fields keep the names the old system's documents use (DESIGN.md's storage model).
_LEDGER_NAMES = {"post_id": "wordpressPostId", "published_at": "publishedDate"}
JSON_TEXT: dict[type, tuple[str, ...]] = {Item: ("input", "result"), OutboxEvent: ("data",)}


def doc_key(value: str) -> str:
    """Any string -> a valid document id, one-to-one: ``/`` and the reserved forms are
    percent-encoded, so an odd slug or id can never address another document."""
    key = quote(str(value), safe="@+-_~")
    if key in ("", ".", "..") or (key.startswith("__") and key.endswith("__")):
        key = key.replace(".", "%2E").replace("_", "%5F") or "%00"
    return key


def encode(cls: type, name: str, value: Any) -> Any:
    if name in JSON_TEXT.get(cls, ()):
        return dumps(value)
    if name in TIME_FIELDS[cls] and value is not None:
        return aware_utc(value)
    return value


def _field(cls: type, name: str) -> str:
    return _LEDGER_NAMES.get(name, name) if cls is LedgerEntry else name


def to_doc(cls: type, values: dict[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    skipped = set(skip)
    return {_field(cls, n): encode(cls, n, v) for n, v in values.items() if n not in skipped}


def from_doc(cls: type, data: dict[str, Any], **ids: Any) -> Any:
    values: dict[str, Any] = dict(ids)
    for f in fields(cls):
        if f.name in ids:
            continue
        stored = _field(cls, f.name)
        if stored not in data:
            continue
        value = data[stored]
        if f.name in JSON_TEXT.get(cls, ()):
            value = json.loads(value)
        elif f.name in TIME_FIELDS[cls] and value is not None:
            value = aware_utc(value)
        values[f.name] = value
    return cls(**values)


class FirestoreConnection:
    """The client, its transactions and document references; aggregates are mixed in on top."""

    def __init__(self, project: str, client: firestore.Client | None = None) -> None:
        self.project = project
        self._owns_client = client is None
        self._client = client if client is not None else firestore.Client(project=project)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    def _tx(self, lock_key: str, body: Callable[[firestore.Transaction], T]) -> T:
        """Run ``body`` in a transaction that retries, with jittered backoff, when it loses.

        Threads of this process that touch the same document queue on a local lock first:
        contended Firestore transactions cost seconds each (locks, aborts, retries), a local
        queue costs nothing. Other instances still contend through Firestore itself, which
        keeps the compare-and-set correct across processes.
        """
        lock = self._locks[hash(lock_key) % len(self._locks)]
        with lock:
            for attempt in range(TX_ATTEMPTS):
                try:
                    return firestore.transactional(body)(self._client.transaction(max_attempts=1))
                except (gexc.Aborted, ValueError) as exc:
                    aborted = isinstance(exc, gexc.Aborted) or isinstance(exc.__cause__,
                                                                          gexc.Aborted)
                    if not aborted:
                        raise
                    last = exc
                time.sleep(random.uniform(0, min(1.0, 0.02 * 2 ** attempt)))
        raise StoreError(f"transaction on {lock_key} kept conflicting") from last

    # document references ---------------------------------------------------------------------
    def _user(self, user_id: str) -> firestore.DocumentReference:
        return self._client.collection("users").document(doc_key(user_id))

    def _site(self, user_id: str, site_id: str) -> firestore.DocumentReference:
        return self._user(user_id).collection("sites").document(doc_key(site_id))

    def _post(self, user_id: str, site_id: str, slug: str) -> firestore.DocumentReference:
        return self._site(user_id, site_id).collection("posts").document(doc_key(slug))

    def _post_day(self, user_id: str, site_id: str, day: str) -> firestore.DocumentReference:
        return self._site(user_id, site_id).collection("post_days").document(doc_key(day))

    def _run(self, run_id: str) -> firestore.DocumentReference:
        return self._client.collection("runs").document(doc_key(run_id))

    def _item(self, run_id: str, position: int) -> firestore.DocumentReference:
        return self._run(run_id).collection("items").document(f"{int(position):06d}")

    def _campaign(self, campaign_id: str) -> firestore.DocumentReference:
        return self._client.collection("campaigns").document(doc_key(campaign_id))

    def _token(self, user_id: str, token_id: str) -> firestore.DocumentReference:
        return self._user(user_id).collection("tokens").document(doc_key(token_id))

    def _token_index(self, token_sha256: str) -> firestore.DocumentReference:
        return self._client.collection("api_tokens").document(doc_key(token_sha256))

    def _fire(self, campaign_id: str, fire_id: str) -> firestore.DocumentReference:
        return self._campaign(campaign_id).collection("fires").document(doc_key(fire_id))

    # housekeeping ----------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_client:
            self._client.close()
