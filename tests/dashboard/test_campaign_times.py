"""Next fires in the signed-in user's time zone (``User.timezone``, UTC when unset or unknown)
on /campaigns, the campaign page and the dashboard, with the campaign's own wall-clock time
beside it when its cron zone reads otherwise."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from tests.earnings.runs import Member

WEEKDAYS_7AM_NY = {"cron": "0 7 * * 1-5", "timezone": "America/New_York"}


@pytest.fixture
def alice(app: Flask) -> Member:
    return Member(app, "alice@example.com")


def campaign(member: Member, schedule: dict, name: str = "Weekday mornings") -> dict:
    site = member.site(name="Archive", kind="local")
    made = member.send("POST", "/api/campaigns", {
        "name": name, "kind": "stock", "site_id": site, "source": {"tickers": ["AAPL"]},
        "per_run": 1, "schedule": schedule, "options": {"data_source": "demo"}})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def expected(instant: str, mine: str, theirs: str | None) -> str:
    when = datetime.fromisoformat(instant)
    text = when.astimezone(ZoneInfo(mine)).strftime("%a %d %b %Y, %H:%M %Z")
    if theirs:
        text += when.astimezone(ZoneInfo(theirs)).strftime(" (%a %H:%M %Z)")
    return text


def times(html: str, container: str) -> list[str]:
    """The <time> texts of the list's next-fire cells, or of the element with that id."""
    if container == "campaigns-table":
        cells = re.findall(r'<td class="next-fire">(.*?)</td>', html, re.S)
    else:
        cells = re.findall(rf'id="{container}"[^>]*>(.*?)</td>', html, re.S)
    assert cells, container
    return [unescape(t) for cell in cells
            for t in re.findall(r"<time[^>]*>([^<]+)</time>", cell)]


def set_zone(member: Member, zone: str) -> None:
    answer = member.send("PATCH", "/api/account", {"timezone": zone})
    assert answer.status_code == 200, answer.get_json()


def test_next_fires_in_the_users_zone_everywhere(alice: Member) -> None:
    set_zone(alice, "Asia/Kolkata")
    made = campaign(alice, WEEKDAYS_7AM_NY)
    first = made["next_fires"][0]
    want = expected(first, "Asia/Kolkata", "America/New_York")
    assert re.fullmatch(r"\w{3} \d\d \w{3} \d{4}, 1[67]:30 IST \(\w{3} 07:00 E[SD]T\)", want)
    listing = alice.client.get("/campaigns").get_data(as_text=True)
    assert times(listing, "campaigns-table")[0] == want
    detail = alice.client.get(f"/campaigns/{made['id']}").get_data(as_text=True)
    assert times(detail, "next-fires") == [expected(t, "Asia/Kolkata", "America/New_York")
                                           for t in made["next_fires"]]
    dashboard = alice.client.get("/").get_data(as_text=True)
    section = dashboard.split('id="next-fires"')[1].split("</section>")[0]
    assert want in unescape(section) and f'datetime="{first}"' in section


def test_without_a_zone_times_are_utc(alice: Member) -> None:
    made = campaign(alice, WEEKDAYS_7AM_NY)
    want = expected(made["next_fires"][0], "UTC", "America/New_York")
    assert re.search(r", 1[12]:00 UTC \(\w{3} 07:00 E[SD]T\)$", want)
    assert times(alice.client.get("/campaigns").get_data(as_text=True),
                 "campaigns-table")[0] == want


def test_a_zone_the_host_does_not_know_falls_back_to_utc(app: Flask, alice: Member) -> None:
    made = campaign(alice, WEEKDAYS_7AM_NY)
    app.extensions["tickzen"].store.update_user(alice.user_id, {"timezone": "Mars/Olympus"})
    assert times(alice.client.get("/campaigns").get_data(as_text=True),
                 "campaigns-table")[0] == expected(made["next_fires"][0], "UTC",
                                                   "America/New_York")


def test_same_zone_and_interval_campaigns_show_one_time(alice: Member) -> None:
    set_zone(alice, "America/New_York")
    cron = campaign(alice, WEEKDAYS_7AM_NY, "Cron")
    set_zone(alice, "Europe/Berlin")
    interval = campaign(alice, {"interval_seconds": 3600}, "Hourly")
    listing = alice.client.get("/campaigns").get_data(as_text=True)
    shown = dict(zip(["Cron", "Hourly"], times(listing, "campaigns-table"), strict=True))
    assert shown["Hourly"] == expected(interval["next_fires"][0], "Europe/Berlin", None)
    assert shown["Cron"] == expected(cron["next_fires"][0], "Europe/Berlin", "America/New_York")
    set_zone(alice, "America/New_York")
    again = times(alice.client.get("/campaigns").get_data(as_text=True), "campaigns-table")
    assert again[0] == expected(cron["next_fires"][0], "America/New_York", None)
    assert "(" not in again[0]
