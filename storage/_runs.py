"""Run records as both backends store them (the writes stay in each backend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage._common import aware_utc, check_run_status, initial_counts, jsonable, new_id
from storage.base import RUN_FINAL, Item, NewItem, Run, utcnow


def new_run_records(run: Run, items: Sequence[NewItem]) -> tuple[Run, list[Item]]:
    """The run and item records ``create_run`` stores (also written inside other
    transactions: a campaign's fire)."""
    check_run_status(run.status)
    now = aware_utc(utcnow())
    stored = Run(**{**run.__dict__, "id": run.id or new_id(), "total": len(items),
                    "counts": initial_counts(len(items)), "options": jsonable(run.options),
                    "created_at": aware_utc(run.created_at),
                    "updated_at": aware_utc(run.updated_at)})
    rows = [Item(run_id=stored.id, position=position, key=new.key,
                 input=jsonable(new.input), label=new.label, updated_at=now)
            for position, new in enumerate(items)]
    return stored, rows


def reopened_run_changes(run: Run, new_status: str) -> dict[str, Any]:
    """What a transition out of a finished state (a retry) also writes when retention pruned
    the run: ``events_pruned_at`` clears, so the run is retention's again once it finishes, and
    ``events_pruned_seq`` keeps how far its events went (its new ones follow). ``files_pruned_at``
    stays: the files of items the retry does not redo are gone; an item changed after it has
    new ones (``storage.housekeeping.item_files_pruned``)."""
    if run.status not in RUN_FINAL or new_status in RUN_FINAL or run.events_pruned_at is None:
        return {}
    return {"events_pruned_at": None,
            "events_pruned_seq": run.events_pruned_seq or run.last_seq}
