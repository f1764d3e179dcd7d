"""What both backends share when they list long histories: argument checks and the order key.

Lists are newest first by ``(created_at, *key)`` (a run's key is its id; a ledger entry's its
site and slug). ``after`` is a ``Cursor``: the rows that follow it in the list's order.
"""

from __future__ import annotations

from datetime import datetime

from storage._common import aware_utc, check_page, to_iso
from storage.paging import Cursor


def check_listing(limit: int | None, offset: int, after: Cursor | None, key_length: int,
                  created_from: datetime | None = None, created_to: datetime | None = None
                  ) -> None:
    """Programming errors (a naive time, a cursor of the wrong kind) fail loudly."""
    check_page(limit, offset)
    if after is not None:
        if not isinstance(after, Cursor) or len(after.key) != key_length:
            raise ValueError(f"after must be a Cursor with a key of {key_length}")
        aware_utc(after.created_at)
    for value in (created_from, created_to):
        if value is not None:
            aware_utc(value)


def cursor_values(after: Cursor) -> list[object]:
    """The cursor as the values of its order columns (times as SQLite keeps them)."""
    return [to_iso(after.created_at), *after.key]


def empty_range(created_from: datetime | None, created_to: datetime | None) -> bool:
    """``created_from <= created_at < created_to`` holds for no time at all."""
    return created_from is not None and created_to is not None and \
        aware_utc(created_from) >= aware_utc(created_to)
