"""In Chromium, for an account in Asia/Kolkata: the times the page renders live (a new
notification, the run log) are Kolkata wall times named IST, as the server renders the same
notification after a reload, whatever zone the browser itself is in (here UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from portal.local_time import user_time
from tests.browser.helpers import api_post, expect_connected, local_site_in_store, panel, register

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ZONE = "Asia/Kolkata"


def _time_of(locator: Any) -> tuple[str, str]:
    return locator.get_attribute("datetime") or "", locator.text_content() or ""


def test_live_times_are_in_the_accounts_zone(live_server: Any, new_page: Any) -> None:
    page, _ = new_page(live_server.url)
    email = register(page, "kolkata")
    site = local_site_in_store(live_server, email)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    changed = page.context.request.patch("/api/account", data={"timezone": ZONE},
                                         headers={"X-CSRFToken": token})
    assert changed.status == 200, changed.text()
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") != ZONE

    page.goto("/notifications")
    expect(page.locator("html")).to_have_attribute("data-time-zone", ZONE)
    page.wait_for_load_state("networkidle")                 # the list's socket is up
    answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                          "items": ["alpha", "beta"], "options": {"steps": 2}})
    assert answer.status == 202, answer.text()
    run_id = answer.json()["run_id"]
    live = page.locator("#tz-notification-list [data-notification-id]").first
    expect(live).to_contain_text("Run completed", timeout=30_000)
    stamp, text = _time_of(live.locator("time"))
    assert stamp and text == user_time(stamp, ZONE) and text.endswith(" IST")

    page.reload()
    again = page.locator("#tz-notification-list [data-notification-id]").first
    assert _time_of(again.locator("time"))[1] == text        # the server prints it alike

    page.goto(f"/runs/{run_id}")
    expect_connected(page)
    entries = panel(page, run_id).locator(".tz-log time")
    expect(panel(page, run_id).locator(".tz-log")).to_contain_text("Run complete")
    assert entries.count() > 2
    for entry in entries.all():
        stamp, shown = _time_of(entry)
        local = datetime.fromisoformat(stamp).astimezone(ZoneInfo(ZONE))
        assert shown == local.strftime("%H:%M:%S IST"), (stamp, shown)
