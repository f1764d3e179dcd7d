"""Firestore backend (google-cloud-firestore): what several instances share in production.

Collections follow DESIGN.md's storage model::

    users/{uid}                                   user_emails/{email} -> {user_id} (uniqueness)
    users/{uid}/sites/{sid}                       users/{uid}/sites/{sid}/post_days/{day} -> count
    users/{uid}/sites/{sid}/posts/{slug}          the publish ledger
    runs/{rid}   runs/{rid}/items/{000042}   runs/{rid}/events/{0000000007}

Every compare-and-set is a Firestore transaction: the documents it decides on are read inside
it, so a concurrent writer makes one side retry and see the new state. Free-form payloads the
automations produce (an item's ``input`` and ``result``, an event body) are stored as JSON text,
because Firestore refuses arrays of arrays; records the store owns are native fields.
``FIRESTORE_EMULATOR_HOST`` is honoured by the client library itself.

Indexes production needs beyond the automatic single-field ones: runs (user_id, created_at desc)
and runs (user_id, status, created_at desc), runs (status, created_at desc) -- see
``storage/firestore.indexes.json``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from storage._common import (
    ITEM_FIXED,
    RUN_FIXED,
    SITE_FIXED,
    aware_utc,
    check_changes,
    check_item_status,
    check_page,
    check_run_status,
    day_of,
    dumps,
    expected_set,
    initial_counts,
    jsonable,
    new_id,
)
from storage.base import (
    ConflictError,
    DailyLimitReached,
    DuplicateError,
    Item,
    LedgerEntry,
    NewItem,
    NotFoundError,
    Run,
    Site,
    StoreError,
    User,
    utcnow,
)

T = TypeVar("T")

TX_ATTEMPTS = 40             # a transaction that keeps losing to other instances gives up
LOCK_STRIPES = 64
DOC_ID = FieldPath.document_id()

# Ledger fields keep the names the old system's documents use (DESIGN.md's storage model).
_LEDGER_NAMES = {"post_id": "wordpressPostId", "published_at": "publishedDate"}
_JSON_TEXT = {Item: ("input", "result")}
_TIMES = {
    User: ("created_at",),
    Site: ("created_at", "updated_at"),
    Run: ("lease_until", "created_at", "updated_at"),
    Item: ("updated_at",),
    LedgerEntry: ("published_at", "created_at", "reserved_at"),
}


def _key(value: str) -> str:
    """Any string -> a valid document id, one-to-one: ``/`` and the reserved forms are
    percent-encoded, so an odd slug or id can never address another document."""
    key = quote(str(value), safe="@+-_~")
    if key in ("", ".", "..") or (key.startswith("__") and key.endswith("__")):
        key = key.replace(".", "%2E").replace("_", "%5F") or "%00"
    return key


def _encode(cls: type, name: str, value: Any) -> Any:
    if name in _JSON_TEXT.get(cls, ()):
        return dumps(value)
    if name in _TIMES[cls] and value is not None:
        return aware_utc(value)
    return value


def _field(cls: type, name: str) -> str:
    return _LEDGER_NAMES.get(name, name) if cls is LedgerEntry else name


def _to_doc(cls: type, values: dict[str, Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    skipped = set(skip)
    return {_field(cls, n): _encode(cls, n, v) for n, v in values.items() if n not in skipped}


def _from_doc(cls: type, data: dict[str, Any], **ids: Any) -> Any:
    values: dict[str, Any] = dict(ids)
    for f in fields(cls):
        if f.name in ids:
            continue
        stored = _field(cls, f.name)
        if stored not in data:
            continue
        value = data[stored]
        if f.name in _JSON_TEXT.get(cls, ()):
            value = json.loads(value)
        elif f.name in _TIMES[cls] and value is not None:
            value = aware_utc(value)
        values[f.name] = value
    return cls(**values)


class FirestoreStore:
    """Store on Cloud Firestore (or its emulator); see the module docstring."""

    def __init__(self, project: str, client: firestore.Client | None = None) -> None:
        self.project = project
        self._owns_client = client is None
        self._client = client if client is not None else firestore.Client(project=project)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    # plumbing ----------------------------------------------------------------------------------
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

    def _user(self, user_id: str) -> firestore.DocumentReference:
        return self._client.collection("users").document(_key(user_id))

    def _site(self, user_id: str, site_id: str) -> firestore.DocumentReference:
        return self._user(user_id).collection("sites").document(_key(site_id))

    def _post(self, user_id: str, site_id: str, slug: str) -> firestore.DocumentReference:
        return self._site(user_id, site_id).collection("posts").document(_key(slug))

    def _post_day(self, user_id: str, site_id: str, day: str) -> firestore.DocumentReference:
        return self._site(user_id, site_id).collection("post_days").document(_key(day))

    def _run(self, run_id: str) -> firestore.DocumentReference:
        return self._client.collection("runs").document(_key(run_id))

    def _item(self, run_id: str, position: int) -> firestore.DocumentReference:
        return self._run(run_id).collection("items").document(f"{int(position):06d}")

    @staticmethod
    def _site_from(snap: Any, user_id: str) -> Site:
        return _from_doc(Site, snap.to_dict(), id=snap.id, user_id=user_id)

    @staticmethod
    def _run_from(snap: Any) -> Run:
        return _from_doc(Run, snap.to_dict(), id=snap.id)

    @staticmethod
    def _item_from(snap: Any, run_id: str) -> Item:
        return _from_doc(Item, snap.to_dict(), run_id=run_id)

    @staticmethod
    def _post_from(snap: Any) -> LedgerEntry:
        return _from_doc(LedgerEntry, snap.to_dict())

    # users -------------------------------------------------------------------------------------
    def create_user(self, email: str, password_hash: str, display_name: str = "") -> User:
        if not email:
            raise ValueError("email is required")
        user = User(id=new_id(), email=email, password_hash=password_hash,
                    display_name=display_name, created_at=aware_utc(utcnow()))
        index = self._client.collection("user_emails").document(_key(email))

        def body(t: firestore.Transaction) -> None:
            if index.get(transaction=t).exists:
                raise DuplicateError(f"email already registered: {email}")
            t.create(index, {"user_id": user.id})
            t.create(self._user(user.id), _to_doc(User, asdict(user), skip=("id",)))

        try:
            self._tx(f"email:{email}", body)
        except gexc.AlreadyExists as exc:
            raise DuplicateError(f"email already registered: {email}") from exc
        return user

    def get_user(self, user_id: str) -> User | None:
        snap = self._user(user_id).get()
        return _from_doc(User, snap.to_dict(), id=snap.id) if snap.exists else None

    def get_user_by_email(self, email: str) -> User | None:
        index = self._client.collection("user_emails").document(_key(email)).get()
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
            user = _from_doc(User, snap.to_dict(), id=snap.id)
            user.settings = jsonable({**user.settings, **settings})
            t.update(ref, {"settings": user.settings})
            return user

        return self._tx(f"user:{user_id}", body)

    # sites -------------------------------------------------------------------------------------
    def create_site(self, user_id: str, site: Site) -> Site:
        stored = Site(**{**site.__dict__, "id": site.id or new_id(), "user_id": user_id,
                         "defaults": jsonable(site.defaults), "authors": jsonable(site.authors),
                         "state": jsonable(site.state), "created_at": aware_utc(site.created_at),
                         "updated_at": aware_utc(utcnow())})
        ref = self._site(user_id, stored.id)

        def body(t: firestore.Transaction) -> None:
            if not self._user(user_id).get(transaction=t).exists:
                raise NotFoundError(f"no user {user_id}")
            if ref.get(transaction=t).exists:
                raise DuplicateError(f"site id already used: {stored.id}")
            t.create(ref, _to_doc(Site, asdict(stored), skip=("id",)))

        self._tx(f"site:{user_id}/{stored.id}", body)
        return stored

    def get_site(self, user_id: str, site_id: str) -> Site | None:
        snap = self._site(user_id, site_id).get()
        return self._site_from(snap, user_id) if snap.exists else None

    def list_sites(self, user_id: str) -> list[Site]:
        query = self._user(user_id).collection("sites").order_by("created_at").order_by(DOC_ID)
        return [self._site_from(s, user_id) for s in query.stream()]

    def update_site(self, user_id: str, site_id: str, changes: dict[str, Any]) -> Site:
        check_changes(Site, changes, SITE_FIXED)
        changes = {**changes, "updated_at": aware_utc(changes.get("updated_at") or utcnow())}
        for name in ("defaults", "authors"):
            if name in changes:
                changes[name] = jsonable(changes[name])
        ref = self._site(user_id, site_id)

        def body(t: firestore.Transaction) -> Site:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no site {site_id}")
            t.update(ref, _to_doc(Site, changes))
            site = self._site_from(snap, user_id)
            return Site(**{**site.__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def delete_site(self, user_id: str, site_id: str) -> None:
        ref = self._site(user_id, site_id)
        if not ref.get().exists:
            raise NotFoundError(f"no site {site_id}")
        # The document and its ledger (posts, post_days) go together, as SQLite's cascade does.
        self._client.recursive_delete(ref)

    def update_site_state(self, user_id: str, site_id: str,
                          mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        ref = self._site(user_id, site_id)

        def body(t: firestore.Transaction) -> dict[str, Any]:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no site {site_id}")
            state = jsonable(mutate(dict(snap.to_dict().get("state") or {})))
            t.update(ref, {"state": state, "updated_at": aware_utc(utcnow())})
            return state

        return self._tx(f"site:{user_id}/{site_id}", body)

    # runs --------------------------------------------------------------------------------------
    def create_run(self, run: Run, items: Sequence[NewItem]) -> Run:
        check_run_status(run.status)
        now = aware_utc(utcnow())
        stored = Run(**{**run.__dict__, "id": run.id or new_id(), "total": len(items),
                        "counts": initial_counts(len(items)), "options": jsonable(run.options),
                        "created_at": aware_utc(run.created_at),
                        "updated_at": aware_utc(run.updated_at)})
        ref = self._run(stored.id)
        batch = self._client.batch()            # one atomic commit: the run and all its items
        batch.create(ref, _to_doc(Run, asdict(stored), skip=("id",)))
        for position, new in enumerate(items):
            item = Item(run_id=stored.id, position=position, key=new.key,
                        input=jsonable(new.input), label=new.label, updated_at=now)
            batch.set(self._item(stored.id, position),
                      _to_doc(Item, asdict(item), skip=("run_id",)))
        try:
            batch.commit()
        except (gexc.AlreadyExists, gexc.Conflict) as exc:
            raise DuplicateError(f"run id already used: {stored.id}") from exc
        return stored

    def get_run(self, run_id: str) -> Run | None:
        snap = self._run(run_id).get()
        return self._run_from(snap) if snap.exists else None

    def list_runs(self, user_id: str | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 50, offset: int = 0) -> list[Run]:
        check_page(limit, offset)
        query: Any = self._client.collection("runs")
        if user_id is not None:
            query = query.where(filter=FieldFilter("user_id", "==", user_id))
        if statuses is not None:
            wanted = sorted(expected_set(statuses))
            if not wanted:
                return []
            query = query.where(filter=FieldFilter("status", "in", wanted))
        if limit == 0:
            return []
        query = (query.order_by("created_at", direction=firestore.Query.DESCENDING)
                 .order_by(DOC_ID, direction=firestore.Query.DESCENDING))
        if offset:
            query = query.offset(offset)
        return [self._run_from(s) for s in query.limit(limit).stream()]

    def _change_run(self, run_id: str, changes: dict[str, Any],
                    check: Callable[[str], None] | None = None) -> Run:
        if "options" in changes:
            changes["options"] = jsonable(changes["options"])
        changes["updated_at"] = aware_utc(changes.get("updated_at") or utcnow())
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> Run:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            run = self._run_from(snap)
            if check is not None:
                check(run.status)
            t.update(ref, _to_doc(Run, changes))
            return Run(**{**run.__dict__, **{n: _encode(Run, n, v) for n, v in changes.items()}})

        return self._tx(f"run:{run_id}", body)

    def transition_run(self, run_id: str, expected: Iterable[str], new_status: str,
                       **changes: Any) -> Run:
        check_run_status(new_status)
        check_changes(Run, changes, RUN_FIXED)
        allowed = expected_set(expected)

        def check(current: str) -> None:
            if current not in allowed:
                raise ConflictError(
                    f"run {run_id} is {current}, not {'/'.join(sorted(allowed))}",
                    current=current)

        return self._change_run(run_id, {**changes, "status": new_status}, check)

    def update_run(self, run_id: str, **changes: Any) -> Run:
        check_changes(Run, changes, RUN_FIXED)
        return self._change_run(run_id, dict(changes))

    # items -------------------------------------------------------------------------------------
    def list_items(self, run_id: str) -> list[Item]:
        query = self._run(run_id).collection("items").order_by("position")
        return [self._item_from(s, run_id) for s in query.stream()]

    def get_item(self, run_id: str, position: int) -> Item | None:
        snap = self._item(run_id, position).get()
        return self._item_from(snap, run_id) if snap.exists else None

    def _change_item(self, run_id: str, position: int, changes: dict[str, Any],
                     expected: frozenset[str] | None = None) -> Item:
        for name in ("input", "result"):
            if name in changes:
                changes[name] = jsonable(changes[name])
        changes["updated_at"] = aware_utc(changes.get("updated_at") or utcnow())
        ref = self._item(run_id, position)

        def body(t: firestore.Transaction) -> Item:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no item {position} in run {run_id}")
            item = self._item_from(snap, run_id)
            old = item.status
            if expected is not None and old not in expected:
                raise ConflictError(
                    f"item {position} of run {run_id} is {old}, "
                    f"not {'/'.join(sorted(expected))}", current=old)
            t.update(ref, _to_doc(Item, changes))
            new = changes.get("status", old)
            if new != old:
                # Increments need no read of the run, so items of one run do not contend on it.
                t.update(self._run(run_id), {f"counts.{old}": firestore.Increment(-1),
                                             f"counts.{new}": firestore.Increment(1)})
            return Item(**{**item.__dict__, **changes})

        return self._tx(f"run:{run_id}", body)

    def transition_item(self, run_id: str, position: int, expected: Iterable[str],
                        new_status: str, **changes: Any) -> Item:
        check_item_status(new_status)
        check_changes(Item, changes, ITEM_FIXED)
        return self._change_item(run_id, position, {**changes, "status": new_status},
                                 expected_set(expected))

    def update_item(self, run_id: str, position: int, **changes: Any) -> Item:
        check_changes(Item, changes, ITEM_FIXED)
        return self._change_item(run_id, position, dict(changes))

    # events ------------------------------------------------------------------------------------
    def append_event(self, run_id: str, event: dict[str, Any]) -> int:
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> int:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            seq = int(snap.get("last_seq") or 0) + 1
            t.update(ref, {"last_seq": seq})
            t.create(ref.collection("events").document(f"{seq:010d}"),
                     {"seq": seq, "body": dumps({**event, "seq": seq})})
            return seq

        return self._tx(f"run:{run_id}", body)

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        check_page(limit)
        if limit == 0:
            return []
        query = (self._run(run_id).collection("events")
                 .where(filter=FieldFilter("seq", ">", after_seq)).order_by("seq"))
        if limit is not None:
            query = query.limit(limit)
        return [json.loads(s.get("body")) for s in query.stream()]

    # publish ledger ----------------------------------------------------------------------------
    def reserve_post(self, entry: LedgerEntry, daily_limit: int | None = None
                     ) -> tuple[LedgerEntry, bool]:
        if not entry.slug:
            raise ValueError("slug is required")
        created = aware_utc(entry.created_at)
        stored = LedgerEntry(**{**entry.__dict__, "day": entry.day or day_of(created),
                                "created_at": created})
        site = self._site(entry.user_id, entry.site_id)
        post = self._post(entry.user_id, entry.site_id, entry.slug)
        counter = self._post_day(entry.user_id, entry.site_id, stored.day)

        def body(t: firestore.Transaction) -> tuple[LedgerEntry, bool]:
            if not site.get(transaction=t).exists:
                raise NotFoundError(f"no site {entry.site_id}")
            existing = post.get(transaction=t)
            if existing.exists:
                return self._post_from(existing), False
            counted = counter.get(transaction=t)
            used = int(counted.get("count") or 0) if counted.exists else 0
            if daily_limit is not None and used >= daily_limit:
                raise DailyLimitReached(
                    f"site {entry.site_id} has {used} of {daily_limit} posts on {stored.day}")
            t.create(post, _to_doc(LedgerEntry, asdict(stored)))
            t.set(counter, {"day": stored.day, "count": used + 1})
            return stored, True

        return self._tx(f"site:{entry.user_id}/{entry.site_id}", body)

    def complete_post(self, user_id: str, site_id: str, slug: str, *, post_id: str,
                      post_url: str, title: str = "") -> LedgerEntry:
        ref = self._post(user_id, site_id, slug)
        changes = {"status": "published", "post_id": str(post_id), "post_url": post_url,
                   "title": title, "published_at": aware_utc(utcnow())}

        def body(t: firestore.Transaction) -> LedgerEntry:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            t.update(ref, _to_doc(LedgerEntry, changes))
            return LedgerEntry(**{**self._post_from(snap).__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def release_post(self, user_id: str, site_id: str, slug: str,
                     attempt: str | None = None) -> None:
        ref = self._post(user_id, site_id, slug)

        def body(t: firestore.Transaction) -> None:
            snap = ref.get(transaction=t)
            if not snap.exists or snap.get("status") != "reserved":
                return
            if attempt is not None and (snap.to_dict().get("attempt") or "") != attempt:
                return
            t.delete(ref)
            t.set(self._post_day(user_id, site_id, snap.get("day")),
                  {"count": firestore.Increment(-1)}, merge=True)

        self._tx(f"site:{user_id}/{site_id}", body)

    def claim_post(self, user_id: str, site_id: str, slug: str, *, expected_attempt: str,
                   attempt: str, now: datetime) -> LedgerEntry:
        ref = self._post(user_id, site_id, slug)
        changes = {"attempt": attempt, "reserved_at": aware_utc(now)}

        def body(t: firestore.Transaction) -> LedgerEntry:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no ledger entry {slug} on site {site_id}")
            current = self._post_from(snap)
            if current.status != "reserved" or current.attempt != expected_attempt:
                raise ConflictError(f"ledger entry {slug} is {current.status} by another "
                                    "attempt", current=current.status)
            t.update(ref, _to_doc(LedgerEntry, changes))
            return LedgerEntry(**{**current.__dict__, **changes})

        return self._tx(f"site:{user_id}/{site_id}", body)

    def get_post(self, user_id: str, site_id: str, slug: str) -> LedgerEntry | None:
        snap = self._post(user_id, site_id, slug).get()
        return self._post_from(snap) if snap.exists else None

    def list_posts(self, user_id: str, site_id: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[LedgerEntry]:
        check_page(limit, offset)
        if limit == 0:
            return []
        site_ids = [site_id] if site_id is not None else [
            s.id for s in self._user(user_id).collection("sites").select([]).stream()]
        # Newest first per site, then merged: no collection-group index is needed.
        found: list[LedgerEntry] = []
        for sid in site_ids:
            query = (self._site(user_id, sid).collection("posts")
                     .order_by("created_at", direction=firestore.Query.DESCENDING)
                     .order_by(DOC_ID, direction=firestore.Query.DESCENDING)
                     .limit(offset + limit))
            found.extend(self._post_from(s) for s in query.stream())
        found.sort(key=lambda p: (p.created_at, p.slug), reverse=True)
        return found[offset:offset + limit]

    # leases ------------------------------------------------------------------------------------
    def acquire_lease(self, run_id: str, owner: str, until: datetime, now: datetime) -> bool:
        until, now = aware_utc(until), aware_utc(now)
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> bool:
            snap = ref.get(transaction=t)
            if not snap.exists:
                raise NotFoundError(f"no run {run_id}")
            run = self._run_from(snap)
            free = run.owner is None or run.lease_until is None or run.lease_until <= now
            if not (free or run.owner == owner):
                return False
            t.update(ref, {"owner": owner, "lease_until": until})
            return True

        return self._tx(f"run:{run_id}", body)

    def release_lease(self, run_id: str, owner: str) -> None:
        ref = self._run(run_id)

        def body(t: firestore.Transaction) -> None:
            snap = ref.get(transaction=t)
            if snap.exists and snap.get("owner") == owner:
                t.update(ref, {"owner": None, "lease_until": None})

        self._tx(f"run:{run_id}", body)

    # housekeeping ------------------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_client:
            self._client.close()
