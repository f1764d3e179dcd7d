"""Building a known history for the insights through the Store's own writes: runs whose items
go through the real transitions, ledger entries reserved and completed at chosen times.

The ledger stamps ``published_at`` with the store's clock; ``PublishClock`` replaces that
clock in both backends' ledger modules for a test, so posts land on chosen days.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest

import storage.firestore.ledger
import storage.sqlite.ledger
from storage.base import LedgerEntry, NewItem, Run, Store
from storage.clock import utcnow


@dataclass
class PublishClock:
    """What ``complete_post`` records as ``published_at``: ``now`` until the test sets it."""

    now: datetime = field(default_factory=utcnow)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> PublishClock:
        for module in (storage.sqlite.ledger, storage.firestore.ledger):
            monkeypatch.setattr(module, "utcnow", lambda: self.now)
        return self


def finish(store: Store, run: Run, outcomes: list[str | None]) -> None:
    """Drive each item through the real transitions: None published, "skip" skipped,
    "pending" left alone, any other text failed with that error."""
    for position, outcome in enumerate(outcomes):
        if outcome == "pending":
            continue
        if outcome == "skip":
            store.transition_item(run.id, position, ["pending"], "skipped")
            continue
        store.transition_item(run.id, position, ["pending"], "processing")
        if outcome is None:
            store.transition_item(run.id, position, ["processing"], "publishing")
            store.transition_item(run.id, position, ["publishing"], "published",
                                  post_id=str(position), post_url=f"/p/{run.id}/{position}")
        else:
            store.transition_item(run.id, position, ["processing"], "failed", error=outcome)


def run_of(store: Store, user_id: str, site_id: str, kind: str, created: datetime,
           items: dict[str, str | None]) -> Run:
    """A run created at ``created`` whose items (label -> outcome, see ``finish``) are done;
    the run is ``completed`` unless an item was left pending (then ``running``)."""
    run = store.create_run(Run(id="", user_id=user_id, kind=kind, site_id=site_id,
                               created_at=created),
                           [NewItem(key=label.lower().replace(" ", "-"), input=label,
                                    label=label) for label in items])
    store.transition_run(run.id, ["queued"], "running")
    finish(store, run, list(items.values()))
    if "pending" not in items.values():
        run = store.transition_run(run.id, ["running"], "completed", percent=100)
    return run


def ledger_entry(user_id: str, site_id: str, slug: str, kind: str, created: datetime
                 ) -> LedgerEntry:
    return LedgerEntry(user_id=user_id, site_id=site_id, slug=slug, item_key=slug, kind=kind,
                       run_id="r1", day=created.date().isoformat(), created_at=created)


def publish(store: Store, clock: PublishClock, user_id: str, site_id: str, slug: str,
            when: datetime, kind: str = "stock", title: str = "") -> None:
    """Reserve the slug a minute before ``when`` and complete it at ``when``."""
    store.reserve_post(replace(ledger_entry(user_id, site_id, slug, kind,
                                            when - timedelta(minutes=1)),
                               day=when.date().isoformat()))
    clock.now = when
    store.complete_post(user_id, site_id, slug, post_id=slug, post_url=f"/p/{slug}",
                        title=title or slug.upper())
