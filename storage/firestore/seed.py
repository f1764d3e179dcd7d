"""Bulk seeding for benchmarks and tests only: many finished runs in batched writes.

Not part of the Store protocol and never called by the portal or the runner: it skips the
checks the real writes make (states, daily limits, leases) and writes what they would have
left behind (the run, its items and events, the ledger entries and their day counters, the
day totals the insights read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from google.cloud import firestore

from storage._common import dumps
from storage._day_totals import RunFigures
from storage.base import Item, LedgerEntry, Run
from storage.firestore.connection import to_doc
from storage.firestore.day_totals import IN_TOTALS, DayTotalsMixin, post_share, run_share
from storage.housekeeping import SeededRun

_BATCH = 400


class _Writes(list[tuple[Any, dict[str, Any], bool]]):
    """Collects ``set`` calls as (ref, data, merge), for the batches."""

    def set(self, ref: Any, data: dict[str, Any], merge: bool = False) -> None:
        self.append((ref, data, merge))


class SeedMixin(DayTotalsMixin):
    def seed_runs(self, seeded: Sequence[SeededRun]) -> None:
        """Store the runs with their items, events and ledger entries (batches of 400
        writes). Benchmarks and tests only."""
        writes = _Writes()
        run_days: dict[tuple[str, str], RunFigures] = {}
        post_days: dict[tuple[str, str], Counter[tuple[str, str]]] = {}
        for s in seeded:
            run = Run(**{**s.run.__dict__, "last_seq": len(s.events)})
            doc = {**to_doc(Run, asdict(run), skip=("id",)), IN_TOTALS: True}
            writes.append((self._run(run.id), doc, False))
            day, figures = run_share(doc)
            run_days.setdefault((run.user_id, day), RunFigures()).add(figures)
            for item in s.items:
                writes.append((self._item(run.id, item.position),
                               to_doc(Item, asdict(item), skip=("run_id",)), False))
            for seq, body in enumerate(s.events, start=1):
                writes.append((self._run(run.id).collection("events").document(f"{seq:010d}"),
                               {"seq": seq, "body": dumps({**body, "seq": seq})}, False))
            for post in s.posts:
                doc = {**to_doc(LedgerEntry, asdict(post)), IN_TOTALS: True}
                writes.append((self._post(post.user_id, post.site_id, post.slug), doc, False))
                if (share := post_share(doc)) is not None:
                    post_days.setdefault((post.user_id, post.site_id), Counter())[share] += 1
                writes.append((self._post_day(post.user_id, post.site_id, post.day),
                               {"day": post.day, "count": firestore.Increment(1)}, True))
        for (user_id, day), figures in run_days.items():
            self._add_runs(writes, user_id, day, figures)
        for (user_id, site_id), counts in post_days.items():
            self._add_posts(writes, user_id, site_id, counts)
        for chunk in _chunks(writes, _BATCH):
            batch = self._client.batch()
            for ref, data, merge in chunk:
                batch.set(ref, data, merge=merge)
            batch.commit()


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
