"""The product's own flow in a real Chromium: register, add a local site on the sites page,
run 5 tickers of demo data, follow every published link; and hostile input stays text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    api_post,
    card_states,
    expect_connected,
    local_site_in_store,
    panel,
    register,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TICKERS = ["AAPL", "MSFT", "GOOG", "KO", "NVDA"]
HOSTILE = "<img src=x onerror=alert(1)>"


def _add_local_site(page, name: str) -> None:
    page.goto("/sites")
    form = page.locator("#site-form")
    form.get_by_label("Name", exact=True).fill(name)
    form.get_by_label("Kind").select_option("local")
    form.get_by_role("button", name="Add site").click()
    expect(page.get_by_text(name).first).to_be_visible()


def test_five_ticker_demo_run_publishes_every_item(live_server, new_page, artifacts):
    page, _ = new_page(live_server.url)
    register(page, "stock")
    _add_local_site(page, "Demo archive")

    page.goto("/automation/stock")
    expect_connected(page)
    page.get_by_label("Tickers").fill(", ".join(t.lower() for t in TICKERS))
    page.get_by_label("Site", exact=True).select_option(label="Demo archive (local)")
    page.get_by_label("Data source").select_option("demo")
    page.get_by_role("button", name="Start run").click()

    run = page.locator("article.tz-run").first
    expect(run).to_be_visible()
    expect(run.locator(".tz-run-title")).to_be_focused()     # brought into view for the user
    page.screenshot(path=str(artifacts / "stock-run-started.png"), full_page=True)
    run_id = run.get_attribute("data-run-id")
    bar = run.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=90_000)
    expect(run.locator(".tz-run-status")).to_have_text("Completed")
    expect(bar).to_have_class("tz-progress-bar bg-success")
    assert card_states(page, run_id) == [
        (key, "published") for key, _ in card_states(page, run_id)]
    labels = run.locator(".tz-card-label").all_text_contents()
    assert labels == TICKERS
    links = [run.locator(f'.tz-card[data-key="{k}"] .tz-card-link').get_attribute("href")
             for k, _ in card_states(page, run_id)]
    assert all(links) and len(set(links)) == 5
    expect(run.locator(".tz-log .tz-log-message").last).to_contain_text("Run complete")
    page.screenshot(path=str(artifacts / "stock-run-end.png"), full_page=True)

    # Every link works; the first one is followed by a click like a user would.
    for ticker, href in zip(TICKERS, links, strict=True):
        answer = page.request.get(href)
        assert answer.status == 200, href
        assert ticker in answer.text()
    run.locator(".tz-card-link").first.click()
    expect(page.get_by_text("AAPL").first).to_be_visible()
    expect(page.get_by_text("demo data", exact=False).first).to_be_visible()

    # The run and its posts are in the history, linked.
    page.goto("/history")
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_contain_text("5 published")
    expect(page.locator("#history-posts tbody tr")).to_have_count(5)


def test_hostile_ticker_is_refused_and_shown_as_text(live_server, new_page):
    page, watch = new_page(live_server.url)
    email = register(page, "hostile")
    site = local_site_in_store(live_server, email)
    page.goto("/automation/stock")
    expect_connected(page)
    page.get_by_label("Tickers").fill(f"AAPL\n{HOSTILE}")
    page.get_by_role("button", name="Start run").click()
    error = page.locator("#form-error")
    expect(error).to_contain_text("Not a valid ticker")
    expect(error).to_contain_text("<img")                  # the characters, as text
    assert error.locator("img").count() == 0
    expect(page.locator("article.tz-run")).to_have_count(0)

    # Past the browser's check, the server refuses it too and stores nothing.
    answer = api_post(page, "/api/runs", {"kind": "stock", "site_id": site.id,
                                          "items": ["AAPL", HOSTILE],
                                          "options": {"data_source": "demo"}})
    assert answer.status == 400 and "error" in answer.json()
    assert page.request.get("/api/runs").json()["runs"] == []

    # An item label that does run (the test kind accepts free names) is shown as text only.
    answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                          "items": [HOSTILE], "options": {"steps": 1}})
    assert answer.status == 202, answer.text()
    run_id = answer.json()["run_id"]
    page.goto(f"/runs/{run_id}")
    run = panel(page, run_id)
    expect(run.locator(".tz-run-status")).to_have_text("Completed")
    expect(run.locator(".tz-card-label")).to_have_text(HOSTILE)
    expect(run.locator(".tz-log")).to_contain_text(HOSTILE)
    assert page.locator("img").count() == 0
    assert watch.dialogs == []
