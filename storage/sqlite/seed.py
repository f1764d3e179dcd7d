"""Bulk seeding for benchmarks and tests only: many finished runs in one transaction.

Not part of the Store protocol and never called by the portal or the runner: it skips every
check the real writes make (states, daily limits, leases) to build 50,000 realistic runs in
seconds (``bench/history.py``). What it writes is exactly what the real writes leave behind,
so every read of the Store sees seeded runs like any others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from storage._common import dumps
from storage.base import Item, LedgerEntry, Run
from storage.housekeeping import SeededRun
from storage.sqlite.connection import SQLiteConnection, encode


def _rows(cls: type, records: Sequence[Any]) -> tuple[str, list[tuple[Any, ...]]]:
    names = [f.name for f in fields(cls)]
    rows = [tuple(encode(cls, n, getattr(r, n)) for n in names) for r in records]
    return f"({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})", rows


class SeedMixin(SQLiteConnection):
    def seed_runs(self, seeded: Sequence[SeededRun]) -> None:
        """Store the runs with their items, events and ledger entries in one transaction
        (executemany per table). Benchmarks and tests only."""
        runs = [Run(**{**s.run.__dict__, "last_seq": len(s.events)}) for s in seeded]
        items: list[Item] = [i for s in seeded for i in s.items]
        posts: list[LedgerEntry] = [p for s in seeded for p in s.posts]
        events = [(s.run.id, seq, dumps({**body, "seq": seq}))
                  for s in seeded for seq, body in enumerate(s.events, start=1)]
        with self._tx() as db:
            for table, cls, records in (("runs", Run, runs), ("items", Item, items),
                                        ("posts", LedgerEntry, posts)):
                if records:
                    columns, rows = _rows(cls, records)
                    db.executemany(f"INSERT INTO {table} {columns}", rows)
            db.executemany("INSERT INTO events (run_id, seq, body) VALUES (?, ?, ?)", events)
