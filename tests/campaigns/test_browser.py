"""In Chromium against the live portal: a weekday 07:00 campaign made from the form previews its
next fires as it is typed, saves, shows them on its page, runs now, and the run is watched
live to the end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import expect_connected, panel, register

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_weekday_campaign_from_the_form_runs_now_and_is_watched_live(
        live_server, new_page, artifacts, tmp_path: Path) -> None:
    page, watch = new_page(live_server.url)
    watch.allow_console("status of 400")           # the preview of a half-typed cron
    register(page, "campaigns")
    page.goto("/")
    page.get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    page.get_by_role("link", name="New stock campaign").click()

    page.get_by_label("Name").fill("Weekday mornings")
    tickers = tmp_path / "tickers.csv"
    tickers.write_text("Symbol,Name\nAAPL,Apple\nMSFT,Microsoft\n")
    page.locator("#c-file").set_input_files(str(tickers))
    expect(page.locator("#c-file-status")).to_contain_text("2 tickers added")
    expect(page.locator("#c-tickers")).to_have_value("AAPL\nMSFT")
    page.get_by_label("Items per run").fill("2")
    page.get_by_label("Runs").select_option("weekdays")
    page.get_by_label("Time (24 h)").fill("07:00")
    page.get_by_label("Time zone").fill("America/New_York")
    text = page.locator("#schedule-text")
    expect(text).to_have_text("At 07:00, Monday through Friday, America/New_York. Next fires:")
    fires = page.locator("#schedule-next li")
    expect(fires).to_have_count(3)
    for i in range(3):
        expect(fires.nth(i)).to_contain_text(re.compile(r"(Mon|Tue|Wed|Thu|Fri) .* 07:00 E[SD]T"))

    page.get_by_label("Runs").select_option("cron")      # the builder follows the preset
    expect(page.get_by_label("Cron (minute hour day month weekday)")).to_be_visible()
    page.get_by_label("Cron (minute hour day month weekday)").fill("0 7 * *")
    expect(text).to_contain_text("5 fields")
    page.get_by_label("Cron (minute hour day month weekday)").fill("0 7 * * 1-5")
    expect(text).to_have_text("At 07:00, Monday through Friday, America/New_York. Next fires:")
    page.get_by_label("Data source").select_option("demo")
    page.get_by_label("Post status").select_option("publish")
    page.screenshot(path=str(artifacts / "campaign-form.png"), full_page=True)
    page.get_by_role("button", name="Save campaign").click()

    expect(page.get_by_role("heading", name=re.compile("Weekday mornings"))).to_be_visible()
    next_fires = page.locator("#next-fires time")
    expect(next_fires).to_have_count(3)
    expect(next_fires.first).to_contain_text(re.compile(r"07:00 E[SD]T"))
    expect(page.locator("#campaign-queue")).to_contain_text("0 of 2 taken")
    page.screenshot(path=str(artifacts / "campaign-detail.png"), full_page=True)

    page.get_by_role("button", name="Run now").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect_connected(page)
    run = panel(page, run_id)
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=120_000)
    cards = run.locator(".tz-card")
    expect(cards).to_have_count(2)
    for i in range(2):
        expect(cards.nth(i)).to_have_attribute("data-status", "published")

    page.goto("/campaigns")
    row = page.locator("#campaigns-table tbody tr")
    expect(row.locator(".last-outcome")).to_contain_text("started")
    expect(row.locator(".queue")).to_have_text("2 of 2")
