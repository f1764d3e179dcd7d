"""Accessibility in Chromium: axe-core's WCAG 2.0/2.1 A and AA rules on every page (anonymous,
signed in with data on every list, form errors shown, a live run mid-flight, a finished stock
run's report and archived post), under the Content-Security-Policy as users get it; and the
run log, a scrolling region, reached and scrolled from the keyboard.

Any violation fails with the list of rules and elements (tests/support/axe.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import (
    api_post,
    expect_connected,
    local_site_in_store,
    panel,
    register,
)
from tests.support.axe import Violation, audit, report

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _visit(page: Page, path: str, found: list[Violation], status: int = 200) -> None:
    """Load ``path``, wait until its scripts have settled, and audit it."""
    response = page.goto(path)
    assert response is not None and response.status == status, (path, response and
                                                                response.status)
    page.wait_for_load_state("networkidle")
    found.extend(audit(page, path))


def _assert_none(found: list[Violation]) -> None:
    assert not found, "axe found WCAG 2 A/AA violations:\n" + report(found)


def test_anonymous_pages(live_server, new_page) -> None:
    page, watch = new_page(live_server.url)
    found: list[Violation] = []
    for path in ("/login", "/register", "/forgot-password", "/api/docs"):
        _visit(page, path, found)
    expect(page.locator("#api-reference .api-op").first).to_be_visible()
    watch.allow_console("status of 400")               # the error pages' own statuses
    watch.allow_console("status of 404")
    _visit(page, "/reset-password/not-a-token", found, status=400)
    _visit(page, "/no-such-page", found, status=404)

    page.goto("/register")                             # a form with its errors shown
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirm password").fill("other")
    page.get_by_role("button", name="Register").click()
    page.wait_for_load_state("networkidle")
    found.extend(audit(page, "/register (errors)"))
    page.goto("/login")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    found.extend(audit(page, "/login (errors)"))
    _assert_none(found)


def _arrange_account(page: Page, server: Any, email: str, feed_server: Any) -> dict[str, str]:
    """Something on every list: a WordPress site with writers, a campaign, a webhook, a token,
    a finished run with a published and a failed item (and so a notification), local feeds."""
    site = local_site_in_store(server, email)
    wordpress = api_post(page, "/api/sites", {
        "name": "Blog", "kind": "wordpress", "url": "http://127.0.0.1:9/",
        "username": "editor", "app_password": "abcd efgh ijkl mnop", "daily_limit": 5,
        "authors": [{"username": "writer", "app_password": "wxyz wxyz wxyz wxyz"}]})
    assert wordpress.status == 201, wordpress.text()
    campaign = api_post(page, "/api/campaigns", {
        "name": "Weekday tickers", "kind": "stock", "site_id": site.id,
        "source": {"tickers": ["AAPL", "MSFT", "KO"]}, "per_run": 2,
        "schedule": {"cron": "0 7 * * 1-5", "timezone": "America/New_York"},
        "options": {"data_source": "demo", "status": "publish"}})
    assert campaign.status == 201, campaign.text()
    hook = api_post(page, "/api/webhooks", {"url": "http://127.0.0.1:9/hook",
                                            "events": ["run.completed", "run.failed"]})
    assert hook.status == 201, hook.text()
    token = api_post(page, "/api/tokens", {"name": "script"})
    assert token.status == 201, token.text()
    run = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                       "items": ["alpha", "fail-beta"], "options": {}})
    assert run.status == 202, run.text()
    run_id = run.json()["run_id"]
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    feeds = [{"name": "BBC football", "url": feed_server.url("/feeds/bbc-sport-football.xml")}]
    answer = page.request.put("/api/sports/feeds", data={"feeds": feeds},
                              headers={"X-CSRFToken": csrf})
    assert answer.status == 200, answer.text()
    page.goto(f"/runs/{run_id}")
    expect(panel(page, run_id).locator(".tz-run-status")).to_have_text("Completed",
                                                                        timeout=30_000)
    return {"site": site.id, "wordpress": wordpress.json()["id"],
            "campaign": campaign.json()["id"], "webhook": hook.json()["id"], "run": run_id}


def test_signed_in_pages_with_data(live_server, new_page, feed_server) -> None:
    page, watch = new_page(live_server.url)
    watch.allow_console("status of 400")               # the forms answered with their errors
    email = register(page, "axe")
    ids = _arrange_account(page, live_server, email, feed_server)
    found: list[Violation] = []
    for path in ("/", "/sites", f"/sites/{ids['site']}/edit", f"/sites/{ids['wordpress']}/edit",
                 "/automation/stock", "/automation/earnings", "/automation/sports",
                 f"/runs/{ids['run']}", "/history", "/campaigns", "/campaigns/new",
                 f"/campaigns/{ids['campaign']}", f"/campaigns/{ids['campaign']}/edit",
                 "/account", "/notifications", f"/webhooks/{ids['webhook']}", "/api/docs"):
        _visit(page, path, found)

    page.goto("/sites")                                # the add form with an error shown
    form = page.locator("#site-form")
    form.get_by_label("Kind").select_option("wordpress")
    form.get_by_role("button", name="Add site").click()
    page.wait_for_load_state("networkidle")
    found.extend(audit(page, "/sites (form error)"))
    page.goto("/account")
    page.get_by_label("Current password").fill("not-the-password")
    page.get_by_label("New password", exact=True).fill("battery-horse-staple-9")
    page.get_by_label("Confirm new password").fill("battery-horse-staple-9")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state("networkidle")
    found.extend(audit(page, "/account (form error)"))

    phone, _ = new_page(live_server.url, context=page.context)   # same user, 375 px wide
    phone.set_viewport_size({"width": 375, "height": 800})
    for path in ("/", "/sites", "/history", f"/runs/{ids['run']}", "/campaigns"):
        _visit(phone, path, found)
    phone.get_by_text("Menu").click()                   # the collapsed navigation, opened
    expect(phone.get_by_role("navigation", name="Main")).to_be_visible()
    found.extend(audit(phone, "/campaigns (375 px, menu open)"))
    _assert_none(found)


def test_sports_stories_listed(live_server, new_page, feed_server, shared_data) -> None:
    page, _ = new_page(live_server.url)
    local_site_in_store(live_server, register(page, "axe-sports"))
    page.goto("/automation/sports")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    feeds = [{"name": "BBC football", "url": feed_server.url("/feeds/bbc-sport-football.xml")}]
    answer = page.request.put("/api/sports/feeds", data={"feeds": feeds},
                              headers={"X-CSRFToken": csrf})
    assert answer.status == 200, answer.text()
    page.get_by_role("button", name="Load stories").click()
    expect(page.locator("#stories-status")).to_contain_text("Pick the stories")
    _assert_none(audit(page, "/automation/sports (stories listed)"))


def _hold_run(page: Page, site_id: str, gate: Any) -> str:
    """A run mid-flight: one item published, one failed, the last held at the gate."""
    answer = api_post(page, "/api/runs", {
        "kind": "test", "site_id": site_id, "items": ["alpha", "fail-beta", "gamma"],
        "options": {"gate": str(gate), "gate_items": ["gamma"], "steps": 2}})
    assert answer.status == 202, answer.text()
    return answer.json()["run_id"]


def test_a_live_run_and_its_log_from_the_keyboard(live_server, new_page, tmp_path) -> None:
    page, _ = new_page(live_server.url)
    email = register(page, "axe-live")
    site = local_site_in_store(live_server, email)
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = _hold_run(page, site.id, gate)
    found: list[Violation] = []
    page.goto(f"/runs/{run_id}")
    expect_connected(page)
    run = panel(page, run_id)
    expect(run.locator('.tz-card[data-status="published"]')).to_have_count(1)
    expect(run.locator('.tz-card[data-status="failed"]')).to_have_count(1)
    expect(run.locator(".tz-run-status")).to_have_text("Running")
    found.extend(audit(page, f"/runs/{run_id} (live)"))
    page.goto("/")
    expect(panel(page, run_id)).to_be_visible()
    found.extend(audit(page, "/ (a live run)"))

    page.goto(f"/runs/{run_id}")
    expect_connected(page)
    log = panel(page, run_id).get_by_role("log")
    expect(log).to_have_attribute("tabindex", "0")
    expect(log).to_have_accessible_name("Run log")
    for _ in range(60):                               # Tab through the page to the log
        page.keyboard.press("Tab")
        if log.evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the run log")
    (gate / "open").touch()
    expect(panel(page, run_id).locator(".tz-run-status")).to_have_text("Completed",
                                                                        timeout=30_000)
    found.extend(audit(page, f"/runs/{run_id} (finished)"))
    _assert_none(found)


def test_the_log_scrolls_from_the_keyboard(live_server, new_page) -> None:
    """A log longer than its box: focused by Tab, End scrolls it to the bottom."""
    page, _ = new_page(live_server.url)
    email = register(page, "axe-scroll")
    site = local_site_in_store(live_server, email)
    answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                          "items": [f"item{n}" for n in range(12)],
                                          "options": {"steps": 3}})
    assert answer.status == 202, answer.text()
    run_id = answer.json()["run_id"]
    page.goto(f"/runs/{run_id}")
    expect(panel(page, run_id).locator(".tz-run-status")).to_have_text("Completed",
                                                                        timeout=30_000)
    log = panel(page, run_id).get_by_role("log")
    page.wait_for_function("el => el.scrollHeight > el.clientHeight + 20",
                           arg=log.element_handle())
    log.evaluate("el => { el.scrollTop = 0; }")
    log.focus()
    page.keyboard.press("End")
    page.wait_for_function("el => el.scrollTop > 0", arg=log.element_handle())


def test_a_stock_report_and_its_archived_post(live_server, new_page) -> None:
    page, _ = new_page(live_server.url)
    email = register(page, "axe-stock")
    site = local_site_in_store(live_server, email)
    answer = api_post(page, "/api/runs", {"kind": "stock", "site_id": site.id,
                                          "items": ["AAPL"],
                                          "options": {"data_source": "demo",
                                                      "status": "publish"}})
    assert answer.status == 202, answer.text()
    run_id = answer.json()["run_id"]
    page.goto(f"/runs/{run_id}")
    run = panel(page, run_id)
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=90_000)
    report, post = run.locator(".tz-card-report").first, run.locator(".tz-card-link").first
    expect(report).to_have_attribute("href", re.compile(r"^/runs/.+/report$"))   # fetched after
    expect(post).to_have_attribute("href", re.compile(r"/sites/.+/posts/"))     # the finish
    found: list[Violation] = list(audit(page, f"/runs/{run_id} (stock)"))
    report_href = report.get_attribute("href") or ""
    post_href = post.get_attribute("href") or ""
    _visit(page, report_href, found)
    _visit(page, post_href, found)
    _assert_none(found)
