"""What retention and periodic jobs keep in the store, and the Store methods they use.

``Job`` is the lease of a periodic job that one instance of several does (retention, daily):
claimed by compare-and-set when due, finished by its holder with the next due time.
``HousekeepingStore`` is the Store protocol plus the methods retention and the jobs use (both
backends implement it). ``SeededRun`` is what the benchmarks' bulk seeding (``seed_runs``,
not part of any protocol) takes. ``pruned_seq``, ``item_files_pruned`` and
``run_files_pruned`` read a run's prune marks the one way every page and count should, also
for a run retried after retention pruned it. ``walk_webhook_attempts`` is the batch of
``prune_webhook_attempts`` both backends share: they differ only in how they count and delete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from storage.base import Item, Run, Store
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


@dataclass(frozen=True)
class OutboxPruned:
    """One batch of ``prune_outbox``: the events (and their deliveries) that went, or in a dry
    run would go, and where the next batch starts (None: the scan reached the end)."""

    events: int
    deliveries: int
    after: Cursor | None


@dataclass(frozen=True)
class WebhookAttemptsPruned:
    """One batch of ``prune_webhook_attempts``: the attempts that went (or in a dry run would
    go), and the webhook the next batch starts at (None: the walk reached the end)."""

    attempts: int
    start: str | None


def walk_webhook_attempts(limit: int, keep: int, start: str | None, *,
                          webhooks: Callable[[str | None, int], Sequence[str]],
                          prunable: Callable[[str], int],
                          delete: Callable[[str, int], int] | None) -> WebhookAttemptsPruned:
    """One batch of ``prune_webhook_attempts``: the store's ``webhooks(start, limit + 1)`` (keys
    in its walk order, from ``start`` on) each have their ``prunable`` attempts (old, beyond the
    newest ``keep``) counted and, unless ``delete`` is None (a dry run), up to that many deleted,
    at most ``limit`` in all. A webhook the batch could not finish is where the next one
    starts, so one with years of hourly attempts is pruned over several batches, each under a
    renewed lease."""
    if limit < 0 or keep < 0:
        raise ValueError("limit and keep must be >= 0")
    if limit == 0:
        return WebhookAttemptsPruned(0, start)
    hooks = webhooks(start, limit + 1)
    removed = 0
    for position, webhook in enumerate(hooks[:limit]):
        found = prunable(webhook)
        if found <= 0:
            continue
        if delete is None:
            removed += found
            continue
        gone = delete(webhook, min(found, limit - removed))
        removed += gone
        if removed >= limit:
            rest = hooks[position:] if gone < found else hooks[position + 1:]
            return WebhookAttemptsPruned(removed, rest[0] if rest else None)
    return WebhookAttemptsPruned(removed, hooks[limit] if len(hooks) > limit else None)


def pruned_seq(run: Run) -> int:
    """The seq up to which retention removed the run's events (0: none); a retry's events
    follow it. A run pruned before the store kept the seq lost everything up to ``last_seq``."""
    if run.events_pruned_seq:
        return run.events_pruned_seq
    return run.last_seq if run.events_pruned_at is not None else 0


def item_files_pruned(run: Run, item: Item) -> bool:
    """Whether retention removed ``item``'s files: the run's workdir went after the item last
    changed (an item a retry redid since has new ones)."""
    return run.files_pruned_at is not None and item.updated_at <= run.files_pruned_at


def run_files_pruned(run: Run) -> bool:
    """Whether the run's workdir went and nothing has been written since (no retry after it)."""
    return run.files_pruned_at is not None and run.updated_at <= run.files_pruned_at


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
        ledger stay; ``events_pruned_seq`` becomes ``last_seq``. Only while the run is finished
        and unchanged since ``finished_before`` (ConflictError otherwise: it was retried
        meanwhile). NotFoundError. A transition out of a finished state (a retry) clears
        ``events_pruned_at`` again and keeps ``events_pruned_seq`` and ``files_pruned_at``, so
        the run is a candidate again once it has finished anew."""

    def backfill_runs(self, after: str | None = None, limit: int = 500
                      ) -> tuple[int, str | None]:
        """Give run records written before the prune fields existed the fields
        ``list_prunable_runs`` selects on (Firestore matches ``== null`` only where the field
        is stored). Scans ``limit`` runs from the resume token ``after``; returns how many it
        gave the fields and the token to go on from (None: every run is done). Idempotent."""

    def count_prunable_notifications(self, *, read_before: datetime,
                                     unread_before: datetime) -> int:
        """How many notifications ``prune_notifications`` would delete in all."""

    def prune_notifications(self, *, read_before: datetime, unread_before: datetime,
                            limit: int = 200) -> int:
        """Delete up to ``limit`` of every user's notifications: read ones created before
        ``read_before``, unread ones created before ``unread_before``. Returns how many."""

    def prune_outbox(self, created_before: datetime, *, limit: int = 200,
                     after: Cursor | None = None, dry_run: bool = False) -> OutboxPruned:
        """Scan ``limit`` outbox events created before ``created_before`` (oldest first, from
        the Cursor ``after`` on ``(created_at, id)``) and delete each with its deliveries when
        none of them is pending (delivered or finally failed; a leased delivery is pending).
        Notifications are not touched (``prune_notifications``). ``dry_run``: count only."""

    def prune_webhook_attempts(self, created_before: datetime, *, keep: int = 50,
                               limit: int = 200, start: str | None = None,
                               dry_run: bool = False) -> WebhookAttemptsPruned:
        """Walk every user's webhooks from ``start`` (a key a batch returned; None: the first),
        ``limit`` of them, and delete each one's delivery attempts created before
        ``created_before`` except its newest ``keep`` (newest first as
        ``list_webhook_attempts`` lists them), at most ``limit`` attempts in all. ``dry_run``:
        count only."""

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
