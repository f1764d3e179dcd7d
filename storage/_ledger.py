"""Ledger records as both backends store them (the reservation's checks stay in each)."""

from __future__ import annotations

from storage._common import aware_utc, day_of
from storage.base import LedgerEntry


def new_post_entry(entry: LedgerEntry) -> LedgerEntry:
    """The entry ``reserve_post`` stores: a slug is required; the day defaults to the UTC day
    of its creation, which counts against the site's daily limit."""
    if not entry.slug:
        raise ValueError("slug is required")
    created = aware_utc(entry.created_at)
    return LedgerEntry(**{**entry.__dict__, "day": entry.day or day_of(created),
                          "created_at": created})
