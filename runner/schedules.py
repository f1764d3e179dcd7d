"""Campaign schedules: when a campaign is due, in words, and what a tick owes it.

A schedule is ``{cron, timezone}`` (5 fields, in an IANA zone) or ``{interval_seconds}``.
Cron times are wall-clock times in the zone, so a 07:00 fire stays at 07:00 local time across
daylight-saving changes. The two days a year that have no such hour or have it twice follow
what cron itself does: a fixed time that falls into the spring-forward gap fires when the gap
ends (02:30 becomes 03:30), a fixed time in the repeated autumn hour fires once (its first
occurrence), and a schedule with every hour (``*`` in the hour field) keeps firing through both.
Intervals count from the previous scheduled time, so they do not drift with the ticks.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from cron_descriptor import ExpressionDescriptor, Options
from croniter import CroniterError, croniter

MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_CRON_LENGTH = 120
# Offsets of one zone differ by less than this, so a wall time this much past another maps to
# a later instant: the bound that lets the cron stream yield instants in order.
OFFSET_SLACK = timedelta(hours=3)
GAP_CHECK_FIRES = 20           # the minimum interval is checked over this many coming fires
NEVER_AFTER = timedelta(days=5 * 366)
MAX_SCANNED = 100_000          # due times one tick looks at (cron) before it stops counting
LISTED = 50                    # late or coalesced fires recorded one by one; older: summed up


class ScheduleError(ValueError):
    """The schedule is unusable; the message says why (the API answers 400 with it)."""

    http_status = 400


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: Any) -> ZoneInfo:
    """The IANA zone ``name`` (tzdata ships with the app, so every host knows the same)."""
    if not isinstance(name, str) or name not in _zone_names():
        shown = name[:60] if isinstance(name, str) else type(name).__name__
        raise ScheduleError(f"unknown time zone {shown!r}: use an IANA name such as "
                            "America/New_York or UTC")
    return ZoneInfo(name)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: schedules work on aware datetimes")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """A parsed, valid schedule; ``parse_schedule`` builds it."""

    cron: str | None = None
    timezone: str = "UTC"
    interval_seconds: int | None = None

    # -- what the API shows ---------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        if self.cron is not None:
            return {"cron": self.cron, "timezone": self.timezone}
        return {"interval_seconds": self.interval_seconds}

    @property
    def text(self) -> str:
        """In words: "At 07:00, Monday through Friday, America/New_York", "Every 5 minutes"."""
        if self.cron is None:
            return "Every " + _duration(int(self.interval_seconds or 0))
        options = Options()
        options.use_24hour_time_format = True
        try:
            words = ExpressionDescriptor(self.cron, options).get_description()
        except Exception:   # a valid croniter extension the describer does not know
            words = f"Cron {self.cron}"
        return f"{words}, {self.timezone}"

    # -- arithmetic -----------------------------------------------------------------------------
    def next_after(self, after: datetime) -> datetime:
        """The first scheduled instant strictly after ``after`` (aware UTC)."""
        return next(self.instants_after(after))

    def first_fire(self, now: datetime) -> datetime:
        """When a campaign saved (or resumed) at ``now`` first fires: the next cron time, or
        one interval from now (whole seconds)."""
        if self.cron is None:
            return _utc(now).replace(microsecond=0) + timedelta(seconds=self.interval_seconds
                                                                or 0)
        return self.next_after(now)

    def next_fires(self, start: datetime, n: int = 3) -> list[datetime]:
        """``start`` (a stored next fire) and the ``n - 1`` scheduled after it."""
        fires = [_utc(start)]
        stream = self.instants_after(fires[0])
        while len(fires) < n:
            fires.append(next(stream))
        return fires

    def local_date(self, instant: datetime) -> date:
        """The calendar day ``instant`` falls on in the schedule's zone."""
        return _utc(instant).astimezone(ZoneInfo(self.timezone)).date()

    def instants_after(self, after: datetime) -> Iterator[datetime]:
        """Every scheduled instant strictly after ``after``, in order (endless)."""
        after = _utc(after)
        if self.cron is None:
            step = timedelta(seconds=int(self.interval_seconds or 0))
            current = after
            while True:
                current = current + step
                yield current
        yield from self._cron_instants(after)

    def _cron_instants(self, after: datetime) -> Iterator[datetime]:
        tz = ZoneInfo(self.timezone)
        every_hour = self.cron is not None and self.cron.split()[1] == "*"
        start = after.astimezone(tz).replace(tzinfo=None) - OFFSET_SLACK
        walk = croniter(self.cron, start)
        pending: list[datetime] = []
        last: datetime | None = None
        while True:
            wall = walk.get_next(datetime)
            bound = wall.replace(tzinfo=tz, fold=0).astimezone(UTC) - OFFSET_SLACK
            while pending and pending[0] < bound:
                instant = heapq.heappop(pending)
                if instant != last:
                    last = instant
                    yield instant
            for instant in _instants_of(wall, tz, every_hour):
                if instant > after:
                    heapq.heappush(pending, instant)


def _instants_of(wall: datetime, tz: ZoneInfo, every_hour: bool) -> list[datetime]:
    """The instants a naive wall time names in ``tz``: one; two in the repeated autumn hour
    when the schedule fires every hour; the gap's end for a time in the spring gap."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    repeated = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall
    if repeated and every_hour:
        return [first.astimezone(UTC), second.astimezone(UTC)]
    return [first.astimezone(UTC)]      # repeated: its first time; in the gap: where it ends


def _duration(seconds: int) -> str:
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    if len(parts) == 1 and parts[0].startswith("1 "):
        return parts[0][2:]                     # "Every hour", not "Every 1 hour"
    return " ".join(parts) or "0 seconds"


def parse_schedule(raw: Any, *, min_interval_seconds: int,
                   now: datetime | None = None) -> Schedule:
    """Validate ``raw`` (``{cron, timezone}`` or ``{interval_seconds}``) into a Schedule.

    Raises ScheduleError naming the problem: a cron that is not 5 valid fields or never fires,
    an unknown zone, an interval (or cron spacing) shorter than ``min_interval_seconds``.
    """
    if not isinstance(raw, Mapping):
        raise ScheduleError("schedule must be an object: {cron, timezone} or "
                            "{interval_seconds}")
    unknown = sorted(set(raw) - {"cron", "timezone", "interval_seconds"})
    if unknown:
        raise ScheduleError(f"unknown schedule field(s): {', '.join(unknown)[:80]}")
    has_cron, has_interval = raw.get("cron") is not None, raw.get("interval_seconds") is not None
    if has_cron == has_interval:
        raise ScheduleError("schedule needs either cron (with timezone) or interval_seconds")
    if has_interval:
        return _interval(raw, min_interval_seconds)
    return _cron(raw, min_interval_seconds, now or datetime.now(UTC))


def _interval(raw: Mapping[str, Any], min_interval_seconds: int) -> Schedule:
    if "timezone" in raw:
        raise ScheduleError("timezone goes with cron; an interval counts seconds")
    seconds = raw["interval_seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ScheduleError("interval_seconds must be a whole number of seconds")
    if seconds < min_interval_seconds:
        raise ScheduleError(f"interval_seconds must be at least {min_interval_seconds} "
                            f"(got {seconds})")
    if seconds > MAX_INTERVAL_SECONDS:
        raise ScheduleError(f"interval_seconds must be at most {MAX_INTERVAL_SECONDS} (a year)")
    return Schedule(interval_seconds=seconds)


def _cron(raw: Mapping[str, Any], min_interval_seconds: int, now: datetime) -> Schedule:
    expression = raw["cron"]
    if not isinstance(expression, str) or not expression.strip():
        raise ScheduleError("cron must be text such as \"0 7 * * 1-5\"")
    expression = " ".join(expression.split())
    if len(expression) > MAX_CRON_LENGTH:
        raise ScheduleError(f"cron is too long (at most {MAX_CRON_LENGTH} characters)")
    fields = expression.split(" ")
    if len(fields) != 5:
        raise ScheduleError(f"cron must have 5 fields (minute hour day month weekday), "
                            f"not {len(fields)}: {expression[:60]!r}")
    if not croniter.is_valid(expression):
        raise ScheduleError(f"{expression[:60]!r} is not a valid cron expression")
    schedule = Schedule(cron=expression, timezone=_zone_name(raw.get("timezone", "UTC")))
    try:
        coming = list(_take(schedule.instants_after(now), GAP_CHECK_FIRES, now + NEVER_AFTER))
    except (CroniterError, ValueError):
        raise ScheduleError(f"{expression[:60]!r} never fires (no such date)") from None
    if not coming:
        raise ScheduleError(f"{expression[:60]!r} never fires (no such date in five years)")
    gaps = [(b - a).total_seconds() for a, b in zip(coming, coming[1:], strict=False)]
    if gaps and min(gaps) < min_interval_seconds:
        raise ScheduleError(f"{expression[:60]!r} fires {int(min(gaps))} s apart; fires must "
                            f"be at least {min_interval_seconds} s apart")
    return schedule


def _zone_name(name: Any) -> str:
    zone(name)
    return str(name)


def _take(stream: Iterator[datetime], n: int, until: datetime) -> Iterator[datetime]:
    for _ in range(n):
        instant = next(stream)
        if instant > until:
            return
        yield instant


def stored_schedule(raw: Mapping[str, Any]) -> Schedule:
    """A schedule as a campaign stored it (validated when it was saved)."""
    if raw.get("interval_seconds") is not None:
        return Schedule(interval_seconds=int(raw["interval_seconds"]))
    return Schedule(cron=str(raw["cron"]), timezone=str(raw.get("timezone") or "UTC"))


# ---------------------------------------------------------------------------------------------
# What a tick owes a due campaign.


@dataclass
class DuePlan:
    """The due times at a tick, sorted into what happens to each.

    ``run_at``: the latest due time within the catch-up window (it fires); ``coalesced``: the
    other due times within the window (recorded missed, reason coalesced); ``late``: due times
    more than ``catch_up_seconds`` late (recorded missed). Only the newest ``LISTED`` of each
    are listed; ``*_older`` counts the rest and ``*_oldest`` is the earliest of them.
    """

    next_fire_at: datetime
    run_at: datetime | None = None
    coalesced: list[datetime] = field(default_factory=list)
    late: list[datetime] = field(default_factory=list)
    coalesced_older: int = 0
    coalesced_oldest: datetime | None = None
    late_older: int = 0
    late_oldest: datetime | None = None


class _Bucket:
    """The newest ``limit`` times of a kind, with a count and the oldest of the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: list[datetime] = []
        self.older = 0
        self.oldest: datetime | None = None

    def add(self, instant: datetime) -> None:
        self.times.append(instant)
        if len(self.times) > self.limit:
            dropped = self.times.pop(0)
            self.older += 1
            if self.oldest is None:
                self.oldest = dropped


def plan_due(schedule: Schedule, next_fire_at: datetime, now: datetime,
             catch_up_seconds: int) -> DuePlan:
    """Sort the due times from ``next_fire_at`` up to ``now`` (DESIGN.md's late-fire rules)."""
    first, now = _utc(next_fire_at), _utc(now)
    if first > now:
        return DuePlan(next_fire_at=first)
    window_start = now - timedelta(seconds=catch_up_seconds)
    late, window = _Bucket(LISTED), _Bucket(LISTED + 1)      # the window's newest one runs
    if schedule.cron is None:
        following = _interval_due(schedule, first, now, window_start, late, window)
    else:
        following = _cron_due(schedule, first, now, window_start, late, window)
    plan = DuePlan(next_fire_at=following, late=late.times, late_older=late.older,
                   late_oldest=late.oldest)
    if window.times:
        plan.run_at = window.times[-1]
        plan.coalesced = window.times[:-1]
        plan.coalesced_older, plan.coalesced_oldest = window.older, window.oldest
    return plan


def _interval_due(schedule: Schedule, first: datetime, now: datetime, window_start: datetime,
                  late: _Bucket, window: _Bucket) -> datetime:
    """Intervals are counted, not walked: a long outage costs nothing."""
    step = timedelta(seconds=int(schedule.interval_seconds or 0))
    due = (now - first) // step + 1                      # the times first + i*step <= now
    late_count = 0 if first >= window_start else min(due, -((first - window_start) // step))
    for bucket, begin, end in ((late, 0, late_count), (window, late_count, due)):
        listed_from = max(begin, end - bucket.limit)
        if listed_from > begin:
            bucket.older, bucket.oldest = listed_from - begin, first + begin * step
        bucket.times = [first + i * step for i in range(listed_from, end)]
    return first + due * step


def _cron_due(schedule: Schedule, first: datetime, now: datetime, window_start: datetime,
              late: _Bucket, window: _Bucket) -> datetime:
    instant = first
    stream = schedule.instants_after(first)
    scanned = 0
    while instant <= now:
        scanned += 1
        if scanned > MAX_SCANNED and instant < window_start:
            # Years of a per-minute schedule: count no further, go on from the window.
            late.older += 1
            late.oldest = late.oldest or instant
            stream = schedule.instants_after(window_start - timedelta(microseconds=1))
            instant = next(stream)
            continue
        (late if instant < window_start else window).add(instant)
        instant = next(stream)
    return instant
