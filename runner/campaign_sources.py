"""Where a campaign's fire gets its items: a queue of tickers, the earnings calendar, the feeds.

Each source turns a campaign (and the run its previous fire started) into the raw items of the
next run, exactly as a user would submit them to ``POST /api/runs``; the run manager then
prepares them the same way. Nothing here writes: the new queue state goes back to the caller,
who stores it in the same transaction as the fire, so a lost race takes nothing from the queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from automation_scripts.publishing.safety import url_problem
from automation_scripts.sports.feeds import (
    MAX_FEED_BYTES,
    FeedCache,
    FeedFetcher,
    cluster_entries,
    default_sources,
    rank_stories,
    validate_sources,
)
from storage.base import ITEM_DONE, RUN_FINAL, Campaign, Run, Store

MAX_QUEUE = 10_000
QUEUE_KEYS = {"stock": "tickers"}         # the list's name in ``source``; other kinds: items
EARNINGS_MODES = ("preview", "recap")
MAX_DAYS_AHEAD = 14
SPORTS_FEEDS_SETTING = "sports_feeds"     # where portal/sources.py keeps a user's feeds


class SourceError(Exception):
    """The source has nothing to give this fire; the message is the failed fire's reason."""


@dataclass
class Batch:
    """The next run's raw items and, for a queue, the queue state after taking them.

    ``exhausted``: a queue without ``repeat`` has nothing left (the campaign is completed).
    """

    items: list[Any]
    queue: dict[str, Any] | None = None
    exhausted: bool = False


@dataclass
class SourceContext:
    """What the sources need from the outside, handed in by the campaign service."""

    store: Store
    automations: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)
    fetcher_factory: Callable[[str], Any] | None = None    # user id -> a FeedFetcher


def queue_key(kind: str) -> str:
    return QUEUE_KEYS.get(kind, "items")


def uses_queue(kind: str) -> bool:
    return kind not in ("earnings", "sports")


# ---------------------------------------------------------------------------------------------
# The queue (stock tickers, and any kind but earnings and sports).


@dataclass
class QueueView:
    total: int
    done: int
    cycle: int
    next: list[Any]


def _queue_parts(campaign: Campaign) -> tuple[list[Any], int, int, list[Any]]:
    items = list(campaign.source.get(queue_key(campaign.kind)) or [])
    queue = campaign.queue or {}
    return items, int(queue.get("cursor", 0)), int(queue.get("cycle", 0)), \
        list(queue.get("retry") or [])


def _take(items: Sequence[Any], cursor: int, cycle: int, retry: list[Any], per_run: int,
          repeat: bool) -> tuple[list[Any], int, int, list[Any]]:
    """The next ``per_run`` items: the ones to retry first, then from the cursor on (from the
    top again when ``repeat``), never one item twice in a run."""
    batch: list[Any] = []
    seen: set[str] = set()

    def add(item: Any) -> None:
        mark = repr(item)
        if mark not in seen:
            seen.add(mark)
            batch.append(item)

    while retry and len(batch) < per_run:
        add(retry.pop(0))
    steps = 0                              # at most one pass over the list per run
    while len(batch) < per_run and items and steps < len(items):
        if cursor >= len(items):
            if not repeat:
                break
            cursor, cycle = 0, cycle + 1
        add(items[cursor])
        cursor += 1
        steps += 1
    return batch, cursor, cycle, retry


def queue_view(campaign: Campaign) -> QueueView:
    items, cursor, cycle, retry = _queue_parts(campaign)
    repeat = bool(campaign.source.get("repeat", True))
    upcoming, *_ = _take(items, cursor, cycle, list(retry), campaign.per_run, repeat)
    return QueueView(total=len(items), done=min(cursor, len(items)), cycle=cycle,
                     next=upcoming)


def unfinished_inputs(store: Store, run: Run | None) -> list[Any]:
    """What a finished run leaves for the queue's front: its failed items and, when it was
    cancelled or failed as a whole, the ones it never finished."""
    if run is None or run.status not in RUN_FINAL:
        return []
    return [item.input for item in store.list_items(run.id) if item.status not in ITEM_DONE]


def queue_batch(campaign: Campaign, previous: Run | None, store: Store) -> Batch:
    items, cursor, cycle, retry = _queue_parts(campaign)
    queue = dict(campaign.queue or {})
    if previous is not None and queue.get("harvested") != previous.id:
        back = unfinished_inputs(store, previous)
        retry = back + [r for r in retry if r not in back]
        queue["harvested"] = previous.id
    repeat = bool(campaign.source.get("repeat", True))
    batch, cursor, cycle, retry = _take(items, cursor, cycle, retry, campaign.per_run, repeat)
    if not batch:
        return Batch(items=[], exhausted=True)
    queue.update(cursor=cursor, cycle=cycle, retry=retry)
    return Batch(items=batch, queue=queue)


# ---------------------------------------------------------------------------------------------
# Earnings: the calendar's tickers for one day.


def earnings_day(source: Mapping[str, Any], today: date) -> date:
    """``preview``: ``days_ahead`` days from today; ``recap``: that many days back."""
    days = int(source.get("days_ahead", 1))
    return today - timedelta(days=days) if source.get("mode") == "recap" else \
        today + timedelta(days=days)


def earnings_batch(campaign: Campaign, today: date, context: SourceContext) -> Batch:
    automation = context.automations.get("earnings")
    if automation is None or not hasattr(automation, "provider_for"):
        raise SourceError("the earnings automation is not available on this server")
    day = earnings_day(campaign.source, today)
    try:
        provider = automation.provider_for(campaign.options)
        entries = provider.calendar(day, day)
    except Exception as exc:       # InvalidItems, EarningsDataError, a provider outage
        raise SourceError(f"the earnings calendar could not be read: {exc}") from None
    watchlist = {str(t).upper() for t in campaign.source.get("watchlist") or []}
    chosen = [e for e in entries if not watchlist or e.ticker.upper() in watchlist]
    if not chosen:
        where = " for the watchlist" if watchlist else ""
        raise SourceError(f"no earnings reports on {day.isoformat()}{where}")
    return Batch(items=[{"ticker": e.ticker, "report_date": e.date, "hour": e.hour}
                        for e in chosen[:campaign.per_run]])


# ---------------------------------------------------------------------------------------------
# Sports: the top stories of the user's feeds not yet on the site.


def _feed_fetcher(user_id: str, settings: Mapping[str, Any]) -> FeedFetcher:
    allow = bool(settings.get("TICKZEN_ALLOW_PRIVATE_URLS", True))
    root = Path(str(settings.get("INSTANCE_PATH") or "instance"))
    return FeedFetcher(FeedCache(root / "feed_cache" / str(user_id)),
                       url_check=lambda url: url_problem(url, allow_private=allow),
                       timeout=float(settings.get("TICKZEN_FEED_TIMEOUT") or 10),
                       max_bytes=int(settings.get("TICKZEN_FEED_MAX_BYTES") or MAX_FEED_BYTES))


def sports_batch(campaign: Campaign, now: datetime, context: SourceContext) -> Batch:
    user = context.store.get_user(campaign.user_id)
    saved = (user.settings or {}).get(SPORTS_FEEDS_SETTING) if user else None
    try:
        sources = validate_sources(saved) if saved else default_sources()
    except ValueError:
        sources = default_sources()
    allow = bool(context.settings.get("TICKZEN_ALLOW_PRIVATE_URLS", True))
    allowed = [s for s in sources if url_problem(s.url, allow_private=allow) is None]
    make = context.fetcher_factory or (lambda uid: _feed_fetcher(uid, context.settings))
    report = make(campaign.user_id).fetch_all(allowed)
    stories = rank_stories(cluster_entries(report.entries), now.astimezone(UTC))
    fresh = []
    for story in stories:
        entry = context.store.get_post(campaign.user_id, campaign.site_id, story.id)
        if entry is None:
            fresh.append(story.to_dict())
        if len(fresh) >= campaign.per_run:
            break
    if not fresh:
        failing = [r.name for r in report.sources if r.status == "error"]
        why = f" ({len(failing)} feed(s) failed: {', '.join(failing)[:120]})" if failing else ""
        raise SourceError(f"no new stories in the feeds{why}")
    return Batch(items=fresh)


# ---------------------------------------------------------------------------------------------


def next_batch(campaign: Campaign, previous: Run | None, *, today: date, now: datetime,
               context: SourceContext) -> Batch:
    """The raw items of the campaign's next run (SourceError when there are none)."""
    if campaign.kind == "earnings":
        return earnings_batch(campaign, today, context)
    if campaign.kind == "sports":
        return sports_batch(campaign, now, context)
    return queue_batch(campaign, previous, context.store)
