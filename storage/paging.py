"""Keyset cursors: where a page of a long, newest-first history ends.

A ``Cursor`` is a position in a list ordered by a time and a unique key (``created_at`` and a
run's id, say), so the next page starts right after the last row seen however many rows came
before it, and rows that arrive meanwhile (always newer) never shift a page. Its text form
(``encode``/``decode``) is what the HTTP API hands out: opaque to clients, checked when it
comes back.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CURSOR_MAX_TEXT = 2000          # a longer text is not one of ours


class BadCursor(ValueError):
    """A cursor text that is not one this store handed out (a 400 at the API)."""

    http_status = 400


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the row's time and its unique key (a run: ``(id,)``; a ledger
    entry: ``(site_id, slug)``). Rows sort by ``(time, *key)``; the time is ``created_at``
    (retention's candidates: ``updated_at``)."""

    created_at: datetime
    key: tuple[str, ...]

    @classmethod
    def of_run(cls, run: Any) -> Cursor:
        return cls(run.created_at, (run.id,))

    @classmethod
    def of_post(cls, entry: Any) -> Cursor:
        return cls(entry.created_at, (entry.site_id, entry.slug))

    def encode(self) -> str:
        """URL-safe base64 of ``[created_at ISO, *key]`` (padding dropped)."""
        when = self.created_at.astimezone(UTC).isoformat(timespec="microseconds")
        raw = json.dumps([when, *self.key], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: Any, key_length: int = 1) -> Cursor:
        """The cursor ``encode`` made; BadCursor for anything else (never another error)."""
        if not isinstance(text, str) or not text or len(text) > CURSOR_MAX_TEXT:
            raise BadCursor("cursor is not valid")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            values = json.loads(raw.decode())
            if not isinstance(values, list) or len(values) != 1 + key_length or not all(
                    isinstance(v, str) and v for v in values):
                raise ValueError("wrong shape")
            when = datetime.fromisoformat(values[0])
            if when.tzinfo is None:
                raise ValueError("naive time")
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise BadCursor("cursor is not valid") from exc
        return cls(when.astimezone(UTC), tuple(values[1:]))
