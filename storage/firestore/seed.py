"""Bulk seeding for benchmarks and tests only: many finished runs in batched writes.

Not part of the Store protocol and never called by the portal or the runner: it skips the
checks the real writes make (states, daily limits, leases) and writes what they would have
left behind (the run, its items and events, the ledger entries and their day counters).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from google.cloud import firestore

from storage._common import dumps
from storage.base import Item, LedgerEntry, Run
from storage.firestore.connection import FirestoreConnection, to_doc
from storage.housekeeping import SeededRun

_BATCH = 400


class SeedMixin(FirestoreConnection):
    def seed_runs(self, seeded: Sequence[SeededRun]) -> None:
        """Store the runs with their items, events and ledger entries (batches of 400
        writes). Benchmarks and tests only."""
        writes: list[tuple[Any, dict[str, Any], bool]] = []   # (ref, data, merge)
        for s in seeded:
            run = Run(**{**s.run.__dict__, "last_seq": len(s.events)})
            writes.append((self._run(run.id), to_doc(Run, asdict(run), skip=("id",)), False))
            for item in s.items:
                writes.append((self._item(run.id, item.position),
                               to_doc(Item, asdict(item), skip=("run_id",)), False))
            for seq, body in enumerate(s.events, start=1):
                writes.append((self._run(run.id).collection("events").document(f"{seq:010d}"),
                               {"seq": seq, "body": dumps({**body, "seq": seq})}, False))
            for post in s.posts:
                writes.append((self._post(post.user_id, post.site_id, post.slug),
                               to_doc(LedgerEntry, asdict(post)), False))
                writes.append((self._post_day(post.user_id, post.site_id, post.day),
                               {"day": post.day, "count": firestore.Increment(1)}, True))
        for chunk in _chunks(writes, _BATCH):
            batch = self._client.batch()
            for ref, data, merge in chunk:
                batch.set(ref, data, merge=merge)
            batch.commit()


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
