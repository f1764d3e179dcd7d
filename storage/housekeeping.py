"""What retention and periodic jobs keep in the store, and the Store methods they use.

``Job`` is the lease of a periodic job that one instance of several does (retention, daily):
claimed by compare-and-set when due, finished by its holder with the next due time.
``HousekeepingStore`` is the Store protocol plus the methods retention and the jobs use (both
backends implement it). ``SeededRun`` is what the benchmarks' bulk seeding (``seed_runs``,
not part of any protocol) takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from storage.base import Run, Store
from storage.paging import Cursor


@dataclass
class Job:
    """``jobs/{name}``: who runs the job now (``owner`` until ``lease_until``), when it last
    ran and what it did, and when it is next due."""

    name: str
    owner: str | None = None
    lease_until: datetime | None = None
    next_run_at: datetime | None = None
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_result: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeededRun:
    """A finished run as ``seed_runs`` stores it: the run (its ``counts``, ``total`` and
    ``last_seq`` as given), its items, its events (numbered 1..n) and its ledger entries."""

    run: Run
    items: list[Any]                    # storage.base.Item
    events: list[dict[str, Any]]
    posts: list[Any] = field(default_factory=list)     # storage.base.LedgerEntry


@runtime_checkable
class HousekeepingStore(Store, Protocol):
    # retention -----------------------------------------------------------------------------
    def list_prunable_runs(self, finished_before: datetime, limit: int = 100,
                           after: Cursor | None = None) -> list[Run]:
        """Every user's finished runs (completed, cancelled, failed) last changed before
        ``finished_before`` whose events are still stored, least recently changed first
        (``updated_at``, then ``id``); ``after`` is a Cursor on ``(updated_at, id)``."""

    def prune_run(self, run_id: str, *, finished_before: datetime, when: datetime,
                  files_pruned: bool) -> Run:
        """Delete the run's stored events and record ``events_pruned_at=when`` (and
        ``files_pruned_at`` when its workdir went too); the run, its items, ``last_seq`` and the
        ledger stay. Only while the run is finished and unchanged since ``finished_before``
        (ConflictError otherwise: it was retried meanwhile). NotFoundError."""

    # periodic jobs -------------------------------------------------------------------------
    def get_job(self, name: str) -> Job | None: ...

    def claim_job(self, name: str, owner: str, now: datetime, lease_until: datetime
                  ) -> Job | None:
        """Compare-and-set: lease the job to ``owner`` until ``lease_until`` when it is due
        (``next_run_at`` unset or <= ``now``) and nobody else holds a live lease; the job
        record, or None when it is not ``owner``'s to run now."""

    def finish_job(self, name: str, owner: str, *, now: datetime, next_run_at: datetime,
                   result: dict[str, Any]) -> Job:
        """Release ``owner``'s lease, recording ``result`` and the next due time.
        ConflictError when another owner holds the job now (this one's lease ran out)."""
