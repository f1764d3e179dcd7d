"""The bell in Chromium: its count follows new notifications live (on a page with no run view,
and on a run page sharing the run view's socket), /notifications shows them, marking read
clears the count; all under the Content-Security-Policy (a violation fails the watch)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import api_post, expect_connected, local_site_in_store, register

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_bell_counts_live_and_the_page_marks_read(live_server: Any, new_page: Any) -> None:
    page, _ = new_page(live_server.url)
    email = register(page, "bell")
    site = local_site_in_store(live_server, email)
    page.goto("/sites")
    bell = page.locator("#tz-bell-count")
    expect(bell).to_be_hidden()
    page.wait_for_load_state("networkidle")           # the bell's socket is up

    first = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                         "items": ["alpha", "fail-beta"],
                                         "options": {"steps": 1}})
    assert first.status == 202, first.text()
    expect(page.locator("#tz-bell-number")).to_have_text("1", timeout=30_000)
    expect(bell).to_be_visible()

    run = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id, "items": ["gamma"],
                                       "options": {"steps": 1, "delay": 0.5}})
    run_id = run.json()["run_id"]
    page.goto(f"/runs/{run_id}")                      # the run view's own socket
    expect_connected(page)
    expect(page.locator("#tz-bell-number")).to_have_text("2", timeout=30_000)

    page.goto("/notifications")
    items = page.locator("#tz-notification-list .notification")
    expect(items).to_have_count(2)
    expect(items.first.get_by_role("link")).to_have_attribute("href", f"/runs/{run_id}")
    expect(items.nth(1)).to_contain_text("Failed: fail-beta")
    items.first.get_by_role("button", name="Mark read").click()
    expect(page.locator("#tz-bell-number")).to_have_text("1")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#tz-bell-count")).to_be_hidden()
    expect(page.locator("#tz-notification-list .notification.unread")).to_have_count(0)


def test_a_new_notification_appears_on_the_open_page_as_text(live_server: Any,
                                                              new_page: Any) -> None:
    page, watch = new_page(live_server.url)
    email = register(page, "list")
    site = local_site_in_store(live_server, email, name='<img src=x onerror="alert(1)">')
    page.goto("/notifications")
    expect(page.locator("#tz-notifications-empty")).to_be_visible()
    page.wait_for_load_state("networkidle")
    answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site.id,
                                          "items": ["delta"], "options": {"steps": 1}})
    run_id = answer.json()["run_id"]
    item = page.locator("#tz-notification-list [data-notification-id]").first
    expect(item).to_contain_text('Run completed: Test run on <img src=x onerror="alert(1)">',
                                 timeout=30_000)
    expect(page.locator("#tz-notification-list img")).to_have_count(0)   # text, never HTML
    expect(item.get_by_role("link")).to_have_attribute("href", f"/runs/{run_id}")
    expect(page.locator("#tz-notifications-empty")).to_be_hidden()
    expect(page.locator("#tz-notifications-unread")).to_have_text("1")
    item.get_by_role("button", name="Mark read").click()
    expect(page.locator("#tz-bell-count")).to_be_hidden()
    assert watch.dialogs == []
