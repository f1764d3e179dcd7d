"""Campaign records: a saved automation with a schedule, and each of its fires (re-exported by
``storage.base`` with the other records; kept apart so the protocol module stays small)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.clock import utcnow

CAMPAIGN_STATES = ("active", "paused", "completed")
FIRE_OUTCOMES = ("started", "skipped", "missed", "failed")


@dataclass
class Campaign:
    """A saved automation with a schedule (DESIGN.md "Campaigns").

    ``source`` says where each fire's items come from (stock ``{tickers, repeat}``, earnings
    ``{days_ahead, mode, watchlist?}``, sports ``{}``); ``schedule`` is ``{cron, timezone}`` or
    ``{interval_seconds}``; ``queue`` is the stock queue's state (``cursor``, ``cycle``,
    ``retry``). ``revision`` grows with every write: a fire is a compare-and-set on it.
    """

    id: str
    user_id: str
    name: str
    kind: str
    site_id: str
    options: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    per_run: int = 1
    schedule: dict[str, Any] = field(default_factory=dict)
    status: str = "active"
    next_fire_at: datetime | None = None
    catch_up_seconds: int = 3600
    queue: dict[str, Any] = field(default_factory=dict)
    last_run_id: str | None = None      # the newest run its fires started (overlap rule)
    revision: int = 0
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass
class Fire:
    """One due time of a campaign and what came of it. ``id`` is
    ``<campaign_id>:<scheduled_for>``; a ``started`` fire names its run."""

    id: str
    campaign_id: str
    user_id: str
    scheduled_for: datetime
    outcome: str                        # started | skipped | missed | failed
    reason: str = ""
    run_id: str | None = None
    fired_at: datetime = field(default_factory=utcnow)
