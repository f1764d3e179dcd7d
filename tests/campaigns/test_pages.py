"""The campaign pages, server-rendered: the list, the form with its schedule builder, the
detail page with queue and fires, the buttons; script comes from static/js, never inline."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.earnings.runs import Member

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)


@pytest.fixture
def alice(app: Flask) -> Member:
    return Member(app, "alice@example.com")


@pytest.fixture
def site_id(alice: Member) -> str:
    return alice.site(name="Archive", kind="local")


def post_form(member: Member, path: str, **fields: str):
    return member.client.post(path, data={"csrf_token": member.token, **fields})


def new_campaign(member: Member, site_id: str, **fields: str):
    form = {"name": "Weekday mornings", "kind": "stock", "site_id": site_id,
            "tickers": "AAPL, msft\nNVDA", "repeat": "on", "per_run": "2",
            "preset": "weekdays", "time": "07:00", "timezone": "America/New_York",
            "catch_up_minutes": "60", "data_source": "demo", "status": "publish",
            "tags": "daily, stocks"}
    form.update(fields)
    return post_form(member, "/campaigns/new", **form)


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_the_navigation_links_campaigns(alice: Member) -> None:
    page = text_of(alice.client.get("/"))
    assert '<a href="/campaigns"' in page
    empty = alice.client.get("/campaigns")
    assert empty.status_code == 200 and "No campaigns yet" in text_of(empty)


@pytest.mark.parametrize("kind", ["stock", "earnings", "sports"])
def test_the_form_for_each_kind(alice: Member, site_id: str, kind: str) -> None:
    page = alice.client.get(f"/campaigns/new?kind={kind}")
    html = text_of(page)
    assert page.status_code == 200
    assert 'id="schedule-builder"' in html and 'id="c-cron"' in html
    assert "js/campaign_form.js" in html and not INLINE_SCRIPT.search(html)
    assert ('id="c-tickers"' in html) == (kind == "stock")
    assert ('id="c-watchlist"' in html) == (kind == "earnings")


def test_a_weekday_campaign_from_the_form(alice: Member, site_id: str) -> None:
    saved = new_campaign(alice, site_id)
    assert saved.status_code == 302
    detail = alice.client.get(saved.headers["Location"])
    html = text_of(detail)
    assert "At 07:00, Monday through Friday, America/New_York" in html
    assert re.search(r"07:00 E[SD]T", html)                       # next fires, local time
    assert "0 of 3 taken" in html and "<code>AAPL</code>, <code>MSFT</code>" in html
    [campaign] = alice.client.get("/api/campaigns").get_json()["campaigns"]
    assert campaign["schedule"] == {"cron": "0 7 * * 1-5", "timezone": "America/New_York"}
    assert campaign["options"] == {"data_source": "demo", "status": "publish",
                                   "tags": ["daily", "stocks"]}
    listing = text_of(alice.client.get("/campaigns"))
    assert "Weekday mornings" in listing and "0 of 3" in listing and "not fired yet" in listing


@pytest.mark.parametrize(("fields", "says"), [
    ({"time": "7am"}, "HH:MM"),
    ({"tickers": ""}, "non-empty list"),
    ({"per_run": "0"}, "per_run"),
    ({"preset": "cron", "cron": "every day"}, "5 fields"),
    ({"timezone": "Moon/Base"}, "unknown time zone"),
    ({"preset": "interval", "minutes": "1"}, "at least 300"),
])
def test_form_errors_are_shown_with_the_values_kept(alice: Member, site_id: str,
                                                    fields: dict, says: str) -> None:
    page = new_campaign(alice, site_id, **fields)
    html = text_of(page)
    assert page.status_code == 400 and 'id="form-error"' in html and says in html
    assert 'value="Weekday mornings"' in html
    assert alice.client.get("/api/campaigns").get_json() == {"campaigns": []}


def test_run_now_pause_resume_edit_delete_from_the_pages(alice: Member, site_id: str) -> None:
    detail_url = new_campaign(alice, site_id).headers["Location"]
    campaign_id = detail_url.rsplit("/", 1)[1]
    ran = post_form(alice, f"/campaigns/{campaign_id}/run")
    assert ran.status_code == 302 and ran.headers["Location"].startswith("/runs/")
    run_id = ran.headers["Location"].rsplit("/", 1)[1]
    again = post_form(alice, f"/campaigns/{campaign_id}/run", back="list")
    assert again.headers["Location"] == "/campaigns"
    listing = text_of(alice.client.get("/campaigns"))
    assert "previous run still active" in listing                 # the flash
    assert f"/runs/{run_id}" in listing and "2 of 3" in listing
    detail = text_of(alice.client.get(detail_url))
    assert "run now" in detail and f"/runs/{run_id}" in detail

    post_form(alice, f"/campaigns/{campaign_id}/pause")
    assert "none while paused" in text_of(alice.client.get(detail_url))
    post_form(alice, f"/campaigns/{campaign_id}/resume")
    assert "js-pause" in text_of(alice.client.get(detail_url))

    edit = alice.client.get(f"/campaigns/{campaign_id}/edit")
    assert edit.status_code == 200 and 'value="0 7 * * 1-5"' in text_of(edit)
    saved = post_form(alice, f"/campaigns/{campaign_id}/edit", name="Renamed",
                      site_id=site_id, tickers="AAPL\nMSFT\nNVDA", repeat="on", per_run="3",
                      preset="cron", cron="30 6 * * 1-5", timezone="Europe/Berlin",
                      catch_up_minutes="30")
    assert saved.status_code == 302
    campaign = alice.client.get(f"/api/campaigns/{campaign_id}").get_json()
    assert (campaign["name"], campaign["per_run"], campaign["catch_up_seconds"]) == (
        "Renamed", 3, 1800)
    assert campaign["schedule_text"] == "At 06:30, Monday through Friday, Europe/Berlin"

    deleted = post_form(alice, f"/campaigns/{campaign_id}/delete")
    assert deleted.headers["Location"] == "/campaigns"
    assert alice.client.get(detail_url).status_code == 404
    assert alice.client.get(f"/api/runs/{run_id}").get_json()["campaign_id"] == campaign_id


def test_another_users_campaign_pages_are_404(app: Flask, alice: Member, site_id: str) -> None:
    detail_url = new_campaign(alice, site_id).headers["Location"]
    campaign_id = detail_url.rsplit("/", 1)[1]
    bob = Member(app, "bob@example.com")
    assert bob.client.get(detail_url).status_code == 404
    assert bob.client.get(f"/campaigns/{campaign_id}/edit").status_code == 404
    for action in ("run", "pause", "delete"):
        assert post_form(bob, f"/campaigns/{campaign_id}/{action}").status_code == 404
    assert alice.client.get(f"/api/campaigns/{campaign_id}").get_json()["status"] == "active"
    assert alice.client.get(f"/api/campaigns/{campaign_id}/fires").get_json() == {"fires": []}


def test_the_dashboard_and_history_name_the_campaign(alice: Member, site_id: str) -> None:
    detail_url = new_campaign(alice, site_id).headers["Location"]
    campaign_id = detail_url.rsplit("/", 1)[1]
    run_id = post_form(alice, f"/campaigns/{campaign_id}/run").headers["Location"].rsplit(
        "/", 1)[1]
    other = alice.start("stock", site_id, ["AAPL"], data_source="demo")
    dashboard = text_of(alice.client.get("/"))
    assert 'id="next-fires"' in dashboard and "Weekday mornings" in dashboard
    assert re.search(r"07:00 E[SD]T", dashboard)
    assert 'campaign-name">Weekday mornings' in dashboard
    everything = text_of(alice.client.get("/history"))
    assert run_id in everything and other in everything and 'id="f-campaign"' in everything
    filtered = text_of(alice.client.get(f"/history?campaign={campaign_id}"))
    assert run_id in filtered and other not in filtered
    assert other in text_of(alice.client.get("/history?campaign=someone-elses"))
