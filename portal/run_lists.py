"""Which runs a listing shows: the filters and keyset pages of /history and GET /api/runs.

Filters go into the store's query (kind, site, status, campaign, a range of days: the viewer's
days on the page, UTC days at the API), so
a filter that matches nothing costs one index probe. Pages are keyset pages: a page ends at a
``storage.paging.Cursor`` whose text the links (and the API's ``next_cursor``) carry, so the
oldest page costs what the newest does. ``page=N`` (an offset) still works for old links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Generic, TypeVar

from portal.errors import InvalidRequest
from storage.base import RUN_STATES
from storage.paging import BadCursor, Cursor

T = TypeVar("T")

MAX_OLD_PAGE = 10_000           # page=N links from before keyset paging (an offset)
FIELD_MAX = 100


@dataclass(frozen=True)
class RunFilters:
    """What a listing keeps: each field empty means "any"."""

    kind: str = ""
    status: str = ""
    site: str = ""
    campaign: str = ""
    date_from: date | None = None         # first day shown
    date_to: date | None = None           # last day shown (inclusive)

    @property
    def active(self) -> bool:
        return any((self.kind, self.status, self.site, self.campaign, self.date_from,
                    self.date_to))

    def store_query(self, zone: tzinfo = UTC) -> dict[str, Any]:
        """The keyword arguments of ``Store.list_runs`` for these filters, the days being
        days in ``zone`` (the page reads them in the viewer's zone, the API in UTC)."""
        return {"kind": self.kind or None, "site_id": self.site or None,
                "campaign_id": self.campaign or None,
                "statuses": [self.status] if self.status else None,
                "created_from": _day_start(self.date_from, zone) if self.date_from else None,
                "created_to": _day_start(self.date_to + timedelta(days=1), zone)
                if self.date_to else None}


def _day_start(day: date, zone: tzinfo) -> datetime:
    """The instant ``day`` begins in ``zone``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _day(value: str) -> date:
    return date.fromisoformat(value)


def parse_filters(args: Mapping[str, str], kinds: Any, *, strict: bool,
                  site_key: str = "site", campaign_key: str = "campaign") -> RunFilters:
    """Read the filters from a query string. ``strict`` (the API): a bad value is a 400;
    otherwise (a page) it is dropped, so a stale or hand-edited link still shows a page."""
    found: dict[str, Any] = {}
    problems: list[str] = []
    kind, status = args.get("kind", ""), args.get("status", "")
    if kind and kind not in kinds:
        problems.append(f"unknown kind {kind[:FIELD_MAX]!r}")
    else:
        found["kind"] = kind
    if status and status not in RUN_STATES:
        problems.append(f"status must be one of {', '.join(RUN_STATES)}")
    else:
        found["status"] = status
    for name, key in (("site", site_key), ("campaign", campaign_key)):
        value = args.get(key, "")
        if len(value) > FIELD_MAX:
            problems.append(f"{key} is too long")
        else:
            found[name] = value
    for name, key in (("date_from", "from"), ("date_to", "to")):
        value = args.get(key, "")
        if value:
            try:
                found[name] = _day(value)
            except ValueError:
                problems.append(f"{key} must be a day, YYYY-MM-DD")
    if strict and problems:
        raise InvalidRequest("; ".join(problems))
    return RunFilters(**found)


def parse_cursor(text: str | None, key_length: int = 1, *, strict: bool) -> Cursor | None:
    """A cursor from a link or the API; a bad one is a 400 (``strict``) or ignored."""
    if not text:
        return None
    try:
        return Cursor.decode(text, key_length)
    except BadCursor:
        if strict:
            raise InvalidRequest("cursor is not valid: use a next_cursor this API "
                                 "returned") from None
        return None


def old_page_number(value: str | None) -> int:
    """``page=N`` of the links before keyset paging; 1 for anything else."""
    return max(1, min(int(value), MAX_OLD_PAGE)) if value and value.isdigit() else 1


@dataclass
class Page(Generic[T]):
    """One page of a newest-first list, and the cursors of the pages beside it (None at an
    end): ``newer`` goes with ``before=``, ``older`` with ``cursor=``."""

    rows: list[T]
    newer: str | None
    older: str | None

    @property
    def at_newest(self) -> bool:
        return self.newer is None

    @property
    def at_oldest(self) -> bool:
        return self.older is None


def keyset_page(fetch: Callable[..., list[T]], size: int, cursor_of: Callable[[T], Cursor], *,
                after: Cursor | None = None, before: Cursor | None = None,
                oldest: bool = False, offset: int = 0) -> Page[T]:
    """One page through ``fetch(limit=, after=, oldest_first=, offset=)`` (a store listing
    with its filters bound): the rows after ``after`` (older ones), the rows just before
    ``before`` (newer ones: read oldest first, shown newest first), or the oldest page."""
    if before is not None or oldest:
        rows = fetch(limit=size + 1, after=before, oldest_first=True, offset=0)
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        more_older = before is not None
    else:
        rows = fetch(limit=size + 1, after=after, oldest_first=False, offset=offset)
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = after is not None or offset > 0
    return Page(rows=rows,
                newer=cursor_of(rows[0]).encode() if rows and more_newer else None,
                older=cursor_of(rows[-1]).encode() if rows and more_older else None)
