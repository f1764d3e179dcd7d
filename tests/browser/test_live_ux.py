"""Reconnects, the connection indicator, small screens, the keyboard, uploads and the
earnings calendar, in a real Chromium against the real portal."""

from __future__ import annotations

import io
import time

import pytest
from openpyxl import Workbook
from playwright.sync_api import expect

from tests.browser.helpers import (
    card_states,
    expect_connected,
    local_site_in_store,
    log_lines,
    open_gated_run,
    panel,
    register,
    start_gated_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _wait_for_status(page, run_id: str, status: str, limit: float = 60) -> None:
    """Poll the API (not the page) until the run reaches ``status``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if page.request.get(f"/api/runs/{run_id}").json()["status"] == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never became {status}")


def test_reconnect_catches_up_with_nothing_lost_or_doubled(live_server, new_page, tmp_path):
    page, _ = new_page(live_server.url)
    run_id, run = open_gated_run(page, live_server, tmp_path, "reconnect")
    gate = tmp_path / "gate"

    # The browser loses the socket; the run finishes meanwhile.
    page.evaluate("window.tickzenView.socket.disconnect()")
    expect(page.locator("#tz-connection")).not_to_have_attribute("data-state", "connected")
    (gate / "open").touch()
    _wait_for_status(page, run_id, "completed")
    expect(run.locator(".tz-run-status")).to_have_text("Running")     # it missed the end

    page.evaluate("window.tickzenView.socket.connect()")
    expect_connected(page)
    expect(run.locator(".tz-run-status")).to_have_text("Completed")
    expect(run.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    assert [s for _, s in card_states(page, run_id)] == ["published", "published"]

    # The log equals a fresh page's: every stored event once, in order.
    fresh, _ = new_page(live_server.url, context=page.context)
    fresh.goto(f"/runs/{run_id}")
    expect(panel(fresh, run_id).locator(".tz-log .tz-log-message").last).to_contain_text(
        "Run complete")
    expected = log_lines(fresh, run_id)
    expect(run.locator(".tz-log .tz-log-message")).to_have_count(len(expected))
    assert log_lines(page, run_id) == expected
    assert len(set(expected)) == len(expected)


def test_connection_indicator_follows_the_network(live_server, new_page):
    page, watch = new_page(live_server.url)
    register(page, "offline")
    page.goto("/automation/stock")
    expect_connected(page)
    page.context.set_offline(True)
    expect(page.locator("#tz-connection")).to_have_attribute("data-state", "offline")
    expect(page.locator("#tz-connection")).to_contain_text("Offline")
    page.context.set_offline(False)
    expect_connected(page)
    watch.allow_console("ERR_INTERNET_DISCONNECTED")    # the browser's own note while offline


def test_small_screen_and_keyboard(live_server, new_page, tmp_path, artifacts):
    page, _ = new_page(live_server.url, width=375, height=740)
    site = local_site_in_store(live_server, register(page, "mobile"))
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = start_gated_run(page, site.id, gate, items=("a-very-long-item-name-" * 4, "two"))
    for path in ("/automation/stock", "/automation/earnings", "/history", f"/runs/{run_id}"):
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways at 375px ({width}px)"
    expect_connected(page)
    page.screenshot(path=str(artifacts / "run-page-375px.png"), full_page=True)

    # Every control is a real button reachable and usable from the keyboard.
    run = panel(page, run_id)
    pause = run.get_by_role("button", name="Pause")
    pause.focus()
    expect(pause).to_be_focused()
    page.keyboard.press("Enter")
    expect(run.locator(".tz-run-status")).to_have_text("Paused")
    resume = run.get_by_role("button", name="Resume")
    resume.focus()
    page.keyboard.press("Space")
    expect(run.locator(".tz-run-status")).to_have_text("Running")
    (gate / "open").touch()
    expect(run.locator(".tz-run-status")).to_have_text("Completed")

    # The form: every input has a label; Tab moves through them in order.
    page.goto("/automation/stock")
    for label in ("Tickers", "Site", "Data source", "Post status"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    page.get_by_label("Tickers", exact=True).focus()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Or upload a ticker list (CSV or XLSX)")).to_be_focused()


def _xlsx_bytes() -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in (["Company", "Symbol"], ["Apple", "AAPL"], ["Coca-Cola", "ko"]):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_ticker_uploads_preview_and_fill_the_items(live_server, new_page):
    page, _ = new_page(live_server.url)
    local_site_in_store(live_server, register(page, "upload"))
    page.goto("/automation/stock")
    upload = page.get_by_label("Or upload a ticker list (CSV or XLSX)")

    upload.set_input_files({"name": "list.csv", "mimeType": "text/csv",
                            "buffer": b"name,ticker\n\"Alphabet, Inc\",goog\nKenvue,KVUE\n"})
    expect(page.locator("#upload-summary")).to_have_text(
        "2 tickers found in column \u201cticker\u201d.")
    expect(page.locator("#upload-table tr")).to_have_count(3)
    expect(page.locator("#upload-table")).to_contain_text("Alphabet, Inc")
    page.get_by_role("button", name="Use these tickers").click()
    expect(page.get_by_label("Tickers", exact=True)).to_have_value("GOOG\nKVUE")

    upload.set_input_files({"name": "list.xlsx", "buffer": _xlsx_bytes(),
                            "mimeType": "application/vnd.openxmlformats-officedocument"
                                        ".spreadsheetml.sheet"})
    expect(page.locator("#upload-summary")).to_have_text(
        "2 tickers found in column \u201cSymbol\u201d.")
    page.get_by_role("button", name="Use these tickers").click()
    expect(page.get_by_label("Tickers", exact=True)).to_have_value("AAPL\nKO")

    upload.set_input_files({"name": "words.csv", "mimeType": "text/csv",
                            "buffer": b"hello world,this is prose\nnot a list,at all\n"})
    expect(page.locator("#form-error")).to_contain_text("no column of tickers")
    expect(page.locator("#upload-preview")).to_be_hidden()


def test_earnings_calendar_by_day_pick_and_run(live_server, new_page):
    page, _ = new_page(live_server.url)
    local_site_in_store(live_server, register(page, "earnings"))
    page.goto("/automation/earnings")
    expect_connected(page)
    page.get_by_label("Calendar provider").select_option("demo")
    page.get_by_role("button", name="Load calendar").click()
    days = page.locator("#calendar-days fieldset.tz-day")
    expect(days.first).to_be_visible()
    assert days.count() >= 1
    picks = page.locator('#calendar-days input[name="calendar_ticker"]')
    chosen = [picks.nth(0).get_attribute("value"), picks.nth(1).get_attribute("value")]
    picks.nth(0).check()
    picks.nth(1).check()
    page.get_by_role("button", name="Start run").click()
    run = page.locator("article.tz-run").first
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=90_000)
    labels = run.locator(".tz-card-label").all_text_contents()
    assert len(labels) == 2
    assert all(label.startswith(ticker) for label, ticker in zip(labels, chosen, strict=True))
    expect(run.locator('.tz-card[data-status="published"]')).to_have_count(2)


def test_dashboard_shows_a_run_started_elsewhere_live(live_server, new_page, tmp_path):
    page, _ = new_page(live_server.url)
    site = local_site_in_store(live_server, register(page, "dash"))
    page.goto("/")
    expect_connected(page)
    expect(page.locator("#tz-runs-empty")).to_be_visible()
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = start_gated_run(page, site.id, gate)          # as if from another tab
    run = panel(page, run_id)
    expect(run.locator(".tz-run-status")).to_have_text("Running")
    expect(page.locator("#tz-runs-empty")).to_be_hidden()
    expect(run.locator(".tz-run-open")).to_have_attribute("href", f"/runs/{run_id}")
    (gate / "open").touch()
    expect(run.locator(".tz-run-status")).to_have_text("Completed")
    page.reload()                                       # finished runs are no longer "active"
    expect_connected(page)
    expect(page.locator("article.tz-run")).to_have_count(0)
    expect(page.locator("#recent-posts li")).to_have_count(2)


def test_sports_stories_listed_picked_and_run(live_server, new_page, feed_server, shared_data):
    page, _ = new_page(live_server.url)
    local_site_in_store(live_server, register(page, "sports"))
    page.goto("/automation/sports")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    feeds = [{"name": "BBC football", "url": feed_server.url("/feeds/bbc-sport-football.xml")},
             {"name": "Mail football", "url": feed_server.url("/feeds/daily-mail-football.xml")},
             {"name": "Broken", "url": feed_server.url("/bad/error.xml")}]
    answer = page.request.put("/api/sports/feeds", data={"feeds": feeds},
                              headers={"X-CSRFToken": token})
    assert answer.status == 200, answer.text()
    expect_connected(page)
    page.get_by_role("button", name="Load stories").click()
    status = page.locator("#stories-status")
    expect(status).to_contain_text("Pick the stories")
    expect(status).to_contain_text("Broken:")            # the bad feed is named, not fatal
    stories = page.locator('#stories-list input[name="story"]')
    assert stories.count() >= 2
    title = page.locator("#stories-list label").first.text_content() or ""
    stories.first.check()
    page.get_by_role("button", name="Start run").click()
    run = page.locator("article.tz-run").first
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=60_000)
    expect(run.locator('.tz-card[data-status="published"]')).to_have_count(1)
    label = run.locator(".tz-card-label").first.text_content() or ""
    assert label and label in title
