"""Run records as both backends store them (the writes stay in each backend)."""

from __future__ import annotations

from collections.abc import Sequence

from storage._common import aware_utc, check_run_status, initial_counts, jsonable, new_id
from storage.base import Item, NewItem, Run, utcnow


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
