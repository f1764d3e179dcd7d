"""In Chromium under the portal's Content-Security-Policy: the dashboard's charts draw with no
console error (a blocked style or script would be one), their tables open, axe finds no WCAG
A/AA violation, and a run started by a campaign shows the campaign's name on its live card, on
the dashboard and its run page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from storage.base import Site
from tests.browser.helpers import api_post, expect_connected, panel, register
from tests.support.axe import audit, report
from tests.support.insight_history import PublishClock, publish, run_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]
NAME = "Weekday <i>movers</i>"


def test_the_dashboard_charts_and_a_campaign_runs_card(live_server, new_page, artifacts):
    page, _ = new_page(live_server.url)
    email = register(page, "insights")
    store = live_server.open_store()
    try:
        user = store.get_user_by_email(email)
        blog = store.create_site(user.id, Site(id="", user_id=user.id, name="Blog",
                                               kind="local", daily_limit=4))
        clock = PublishClock()
        run_of(store, user.id, blog.id, "stock", clock.now, {"AAPL": None, "MSFT": None,
                                                             "TSLA": "connection to x refused"})
        publish(store, clock, user.id, blog.id, "aapl-post", clock.now, title="AAPL today")
        publish(store, clock, user.id, blog.id, "msft-post", clock.now, title="MSFT today")
    finally:
        store.close()

    page.goto("/")
    insights = page.locator("#insights")
    expect(insights.get_by_role("heading", name="Last 30 days")).to_be_visible()
    for chart in ("#posts-by-site svg", "#posts-by-kind svg", "#success-rate svg",
                  "#failure-causes svg", "#top-tickers svg"):
        box = page.locator(chart).bounding_box()
        assert box and box["width"] > 50 and box["height"] > 20, chart
    expect(page.locator("#success-rate .ring-text")).to_have_text("66.7%")
    bar = page.locator("#posts-by-site rect.bar").first
    assert bar.evaluate("e => getComputedStyle(e).fill") == "rgb(0, 114, 178)"  # dashboard.css
    page.get_by_text("Failed items by cause, as a table").click()
    expect(page.locator('#causes-table tr[data-cause="network"] td').first).to_have_text("1")
    expect(page.locator("#sites-today")).to_contain_text("2 of 4")
    page.evaluate("document.querySelectorAll('#insights details').forEach(d => d.open = true)")
    violations = audit(page, "/ (charts, tables open)")
    assert not violations, report(violations)
    page.screenshot(path=str(artifacts / "dashboard-insights.png"), full_page=True)
    phone, _ = new_page(live_server.url, context=page.context)
    phone.set_viewport_size({"width": 375, "height": 800})
    phone.goto("/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375   # no sideways scroll
    phone.locator("#insights").screenshot(path=str(artifacts / "dashboard-insights-375.png"))
    phone.close()

    site_id = blog.id
    made = api_post(page, "/api/campaigns", {
        "name": NAME, "kind": "stock", "site_id": site_id, "source": {"tickers": ["NVDA"]},
        "per_run": 1, "schedule": {"cron": "0 7 * * 1-5", "timezone": "America/New_York"},
        "options": {"data_source": "demo"}})
    assert made.status == 201, made.text()
    page.goto("/")
    expect_connected(page)
    fired = api_post(page, f"/api/campaigns/{made.json()['id']}/run", {})
    assert fired.status == 202, fired.text()
    run_id = fired.json()["run_id"]
    card = panel(page, run_id)
    expect(card.locator(".tz-run-campaign")).to_have_text(f"Campaign: {NAME}")
    assert card.locator(".tz-run-campaign i").count() == 0          # text, never markup
    page.goto(f"/runs/{run_id}")
    expect(panel(page, run_id).locator(".tz-run-campaign")).to_have_text(f"Campaign: {NAME}")
    expect(panel(page, run_id).locator(".tz-run-status")).to_have_text("Completed",
                                                                     timeout=120_000)
