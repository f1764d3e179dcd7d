"""Every page, and a live run, in Chromium under the Content-Security-Policy: no CSP
violation (they show as console errors, which the ``new_page`` watch fails on) and no page
error. The account page's flows are walked as a user would."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    PASSWORD,
    api_post,
    expect_connected,
    local_site_in_store,
    panel,
    register,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# /automation/sports is left out: its page fetches the user's sports feeds, hosts outside
# this machine (its own tests use a local feed server).
PAGES = ("/", "/sites", "/account", "/history", "/automation/stock", "/automation/earnings",
         "/campaigns", "/campaigns/new", "/api/docs")
ANONYMOUS = ("/login", "/register", "/forgot-password", "/api/docs")


def test_anonymous_pages_under_the_policy(live_server, new_page) -> None:
    page, _ = new_page(live_server.url)
    for path in ANONYMOUS:
        response = page.goto(path)
        assert response is not None and response.ok, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")


def test_every_page_and_a_live_run_under_the_policy(live_server, new_page, tmp_path) -> None:
    page, _ = new_page(live_server.url)
    email = register(page, "csp")
    site = local_site_in_store(live_server, email)
    for path in PAGES + (f"/sites/{site.id}/edit",):
        response = page.goto(path)
        assert response is not None and response.ok, path
        page.wait_for_load_state("networkidle")
        if path == "/api/docs":
            expect(page.locator("#api-reference .api-op").first).to_be_visible()

    answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                          "items": ["alpha", "beta"], "options": {}})
    assert answer.status == 202, answer.text()
    run_id = answer.json()["run_id"]
    page.goto(f"/runs/{run_id}")
    expect_connected(page)
    expect(panel(page, run_id).locator(".tz-run-status")).to_have_text("Completed",
                                                                        timeout=30_000)
    bar = panel(page, run_id).get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100")


def test_account_page_flows_in_the_browser(live_server, new_page) -> None:
    page, _ = new_page(live_server.url)
    register(page, "account")
    page.goto("/account")
    page.get_by_label("Display name").fill("Ann")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Profile saved.")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")

    page.get_by_label("New token's name").fill("browser script")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").text_content() or ""
    assert token.startswith("tz_")
    expect(page.locator("#tokens-table")).to_contain_text("browser script")

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("battery-horse-staple-9")
    page.get_by_label("Confirm new password").fill("battery-horse-staple-9")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed.")).to_be_visible()

    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
