"""Schedule arithmetic: cron in IANA zones across daylight-saving changes, intervals, words,
validation, and how a tick sorts due times into run / coalesced / missed. Every "now" is given,
never read from the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runner.schedules import (
    LISTED,
    Schedule,
    ScheduleError,
    parse_schedule,
    plan_due,
    stored_schedule,
)

MIN = 300


def cron(expression: str, timezone: str = "UTC", now: datetime | None = None) -> Schedule:
    return parse_schedule({"cron": expression, "timezone": timezone}, min_interval_seconds=MIN,
                          now=now or datetime(2026, 1, 1, tzinfo=UTC))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(schedule: Schedule, now: datetime, n: int) -> list[datetime]:
    return schedule.next_fires(schedule.first_fire(now), n)


def local(schedule: Schedule, instants: list[datetime]) -> list[str]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(schedule.timezone)
    return [i.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") for i in instants]


# daylight saving ------------------------------------------------------------------------------

def test_new_york_07_00_stays_07_00_across_spring_forward() -> None:
    schedule = cron("0 7 * * *", "America/New_York")
    got = fires(schedule, utc(2026, 3, 6, 13), 3)           # the change is on Sunday 8 March
    assert got == [utc(2026, 3, 7, 12), utc(2026, 3, 8, 11), utc(2026, 3, 9, 11)]
    assert local(schedule, got) == ["2026-03-07 07:00 EST", "2026-03-08 07:00 EDT",
                                    "2026-03-09 07:00 EDT"]


def test_new_york_07_00_stays_07_00_across_fall_back() -> None:
    schedule = cron("0 7 * * 1-5", "America/New_York")
    got = fires(schedule, utc(2026, 10, 30, 12), 3)         # Fri, then the change on Sun 1 Nov
    assert got == [utc(2026, 11, 2, 12), utc(2026, 11, 3, 12), utc(2026, 11, 4, 12)]
    assert local(schedule, got)[0] == "2026-11-02 07:00 EST"
    before = fires(schedule, utc(2026, 10, 29, 12), 1)
    assert local(schedule, before) == ["2026-10-30 07:00 EDT"]


def test_berlin_across_both_changes() -> None:
    schedule = cron("15 6 * * *", "Europe/Berlin")
    spring = fires(schedule, utc(2026, 3, 28, 6), 2)       # clocks go forward on 29 March
    assert spring == [utc(2026, 3, 29, 4, 15), utc(2026, 3, 30, 4, 15)]
    assert local(schedule, spring) == ["2026-03-29 06:15 CEST", "2026-03-30 06:15 CEST"]
    autumn = fires(schedule, utc(2026, 10, 24, 6), 2)      # and back on 25 October
    assert autumn == [utc(2026, 10, 25, 5, 15), utc(2026, 10, 26, 5, 15)]
    assert local(schedule, autumn) == ["2026-10-25 06:15 CET", "2026-10-26 06:15 CET"]


def test_a_time_inside_the_spring_gap_fires_when_the_gap_ends() -> None:
    schedule = cron("30 2 * * *", "America/New_York")
    got = fires(schedule, utc(2026, 3, 7, 12), 2)
    assert local(schedule, got) == ["2026-03-08 03:30 EDT", "2026-03-09 02:30 EDT"]


def test_a_time_in_the_repeated_hour_fires_once() -> None:
    schedule = cron("30 1 * * *", "America/New_York")
    got = fires(schedule, utc(2026, 10, 31, 12), 2)
    assert got == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert local(schedule, got) == ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]


def test_every_half_hour_keeps_going_through_the_repeated_hour() -> None:
    schedule = cron("*/30 * * * *", "America/New_York")
    got = fires(schedule, utc(2026, 11, 1, 4, 10), 6)
    assert got == [utc(2026, 11, 1, 4, 30) + timedelta(minutes=30 * i) for i in range(6)]


def test_kolkata_23_30_is_18_00_utc() -> None:
    schedule = cron("30 23 * * *", "Asia/Kolkata")
    assert fires(schedule, utc(2026, 6, 1, 17), 2) == [utc(2026, 6, 1, 18), utc(2026, 6, 2, 18)]
    assert fires(schedule, utc(2026, 6, 1, 18, 0, 1), 1) == [utc(2026, 6, 2, 18)]


# calendar corners ------------------------------------------------------------------------------

def test_29_february_waits_for_a_leap_year() -> None:
    schedule = cron("0 9 29 2 *")
    assert fires(schedule, utc(2026, 3, 1), 2) == [utc(2028, 2, 29, 9), utc(2032, 2, 29, 9)]


def test_the_31st_skips_30_day_months() -> None:
    schedule = cron("0 9 31 * *")
    assert fires(schedule, utc(2026, 4, 1), 3) == [utc(2026, 5, 31, 9), utc(2026, 7, 31, 9),
                                                   utc(2026, 8, 31, 9)]


def test_intervals_count_from_the_previous_time() -> None:
    schedule = parse_schedule({"interval_seconds": 900}, min_interval_seconds=MIN)
    now = datetime(2026, 5, 1, 10, 0, 0, 750_000, tzinfo=UTC)
    first = schedule.first_fire(now)
    assert first == utc(2026, 5, 1, 10, 15)                 # whole seconds
    assert schedule.next_fires(first, 3) == [first, utc(2026, 5, 1, 10, 30),
                                             utc(2026, 5, 1, 10, 45)]
    assert schedule.next_after(utc(2026, 5, 1, 10, 30)) == utc(2026, 5, 1, 10, 45)


# words -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "text"), [
    ({"cron": "0 7 * * 1-5", "timezone": "America/New_York"},
     "At 07:00, Monday through Friday, America/New_York"),
    ({"cron": "30 23 * * *", "timezone": "Asia/Kolkata"}, "At 23:30, Asia/Kolkata"),
    ({"cron": "0 */6 * * *"}, "Every 6 hours, UTC"),
    ({"interval_seconds": 300}, "Every 5 minutes"),
    ({"interval_seconds": 3600}, "Every hour"),
    ({"interval_seconds": 5400}, "Every 1 hour 30 minutes"),
])
def test_schedule_in_words(raw: dict, text: str) -> None:
    assert parse_schedule(raw, min_interval_seconds=MIN).text == text


def test_a_stored_schedule_reads_back() -> None:
    raw = {"cron": "0 7 * * 1-5", "timezone": "America/New_York"}
    assert stored_schedule(parse_schedule(raw, min_interval_seconds=MIN).as_dict()) == Schedule(
        cron="0 7 * * 1-5", timezone="America/New_York")
    assert stored_schedule({"interval_seconds": 600}).interval_seconds == 600


# validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "says"), [
    ("daily", "must be an object"),
    ({}, "either cron"),
    ({"cron": "0 7 * * *", "interval_seconds": 600}, "either cron"),
    ({"cron": "0 7 * *"}, "5 fields"),
    ({"cron": "0 0 7 * * *"}, "5 fields"),
    ({"cron": "@daily"}, "5 fields"),
    ({"cron": "61 7 * * *"}, "not a valid cron"),
    ({"cron": "0 7 * * 1-5", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"cron": "0 7 * * *", "timezone": "../../etc/passwd"}, "unknown time zone"),
    ({"cron": "0 7 * * *", "timezone": 5}, "unknown time zone"),
    ({"cron": "0 0 30 2 *"}, "never fires"),
    ({"cron": "* * * * *"}, "at least 300 s apart"),
    ({"cron": 7}, "must be text"),
    ({"interval_seconds": 299}, "at least 300"),
    ({"interval_seconds": "600"}, "whole number"),
    ({"interval_seconds": True}, "whole number"),
    ({"interval_seconds": 10**9}, "at most"),
    ({"interval_seconds": 600, "timezone": "UTC"}, "goes with cron"),
    ({"interval_seconds": 600, "every": "day"}, "unknown schedule field"),
])
def test_bad_schedules_say_why(raw: object, says: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(raw, min_interval_seconds=MIN)
    assert says in str(caught.value)
    assert caught.value.http_status == 400


def test_the_minimum_interval_is_configurable() -> None:
    assert parse_schedule({"interval_seconds": 1}, min_interval_seconds=1).interval_seconds == 1
    assert parse_schedule({"cron": "* * * * *"}, min_interval_seconds=60).cron == "* * * * *"


# what a tick owes ------------------------------------------------------------------------------

def test_nothing_due_before_the_time() -> None:
    schedule = parse_schedule({"interval_seconds": 600}, min_interval_seconds=MIN)
    plan = plan_due(schedule, utc(2026, 5, 1, 12), utc(2026, 5, 1, 11, 59, 59), 3600)
    assert plan.run_at is None and plan.next_fire_at == utc(2026, 5, 1, 12)


def test_one_due_time_runs() -> None:
    schedule = parse_schedule({"interval_seconds": 600}, min_interval_seconds=MIN)
    plan = plan_due(schedule, utc(2026, 5, 1, 12), utc(2026, 5, 1, 12, 0, 1), 3600)
    assert (plan.run_at, plan.coalesced, plan.late) == (utc(2026, 5, 1, 12), [], [])
    assert plan.next_fire_at == utc(2026, 5, 1, 12, 10)


@pytest.mark.parametrize("raw", [{"interval_seconds": 600}, {"cron": "*/10 * * * *"}])
def test_an_outage_gives_late_coalesced_and_one_run(raw: dict) -> None:
    schedule = parse_schedule(raw, min_interval_seconds=MIN)
    now = utc(2026, 5, 1, 15, 0, 5)
    plan = plan_due(schedule, utc(2026, 5, 1, 12), now, 3600)     # three hours down
    assert plan.run_at == utc(2026, 5, 1, 15)
    assert plan.coalesced == [utc(2026, 5, 1, 14, 10) + timedelta(minutes=10 * i)
                              for i in range(5)]
    assert plan.late == [utc(2026, 5, 1, 12) + timedelta(minutes=10 * i) for i in range(13)]
    assert (plan.late_older, plan.coalesced_older) == (0, 0)
    assert plan.next_fire_at == utc(2026, 5, 1, 15, 10)


@pytest.mark.parametrize("raw", [{"interval_seconds": 300}, {"cron": "*/5 * * * *"}])
def test_a_long_outage_lists_the_newest_and_counts_the_rest(raw: dict) -> None:
    schedule = parse_schedule(raw, min_interval_seconds=MIN)
    first, now = utc(2026, 5, 1), utc(2026, 5, 3, 0, 0, 30)        # two days: 577 due times
    plan = plan_due(schedule, first, now, 7200)
    assert plan.run_at == utc(2026, 5, 3)
    assert len(plan.coalesced) == 23 and plan.coalesced_older == 0    # 22:05 .. 23:55
    assert len(plan.late) == LISTED and plan.late[-1] == utc(2026, 5, 2, 22)
    assert plan.late_older == 577 - 24 - LISTED and plan.late_oldest == first
    assert plan.next_fire_at == utc(2026, 5, 3, 0, 5)


def test_a_wide_window_coalesces_many_into_one_run() -> None:
    schedule = parse_schedule({"interval_seconds": 1}, min_interval_seconds=1)
    plan = plan_due(schedule, utc(2026, 5, 1), utc(2026, 5, 1, 0, 10), 3600)
    assert plan.run_at == utc(2026, 5, 1, 0, 10) and plan.late == []
    assert len(plan.coalesced) == LISTED and plan.coalesced_older == 600 - LISTED
    assert plan.coalesced_oldest == utc(2026, 5, 1)
