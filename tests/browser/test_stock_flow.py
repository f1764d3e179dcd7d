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


def _hold_both_run_slots(page, site_id: str, gate) -> list[str]:
    """Two gated runs of the test kind take the user's two run slots (the portal's default
    per-user cap), so a stock run started next waits queued until the test opens the gate."""
    held = []
    for name in ("slot-one", "slot-two"):
        answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site_id,
                                              "items": [name],
                                              "options": {"gate": str(gate), "steps": 1}})
        assert answer.status == 202, answer.text()
        held.append(answer.json()["run_id"])
    return held


def _images_loaded(page, selector: str) -> list[int]:
    """naturalWidth of every image under ``selector`` once each has finished loading."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector)
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.naturalWidth)")


def _expect_report_page(page, ticker: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_contain_text(ticker)
    expect(page.locator(".report-meta .badge-demo")).to_have_text("demo data")
    expect(page.locator(".report-body")).to_contain_text("Key figures")
    widths = _images_loaded(page, "article.report img")
    assert len(widths) == 3 and all(w > 0 for w in widths), widths
    alts = page.eval_on_selector_all("article.report img", "imgs => imgs.map(i => i.alt)")
    assert all(ticker in alt and "demo data" in alt for alt in alts), alts


def test_five_ticker_demo_run_publishes_every_item(live_server, new_page, artifacts, tmp_path):
    page, _ = new_page(live_server.url)
    email = register(page, "stock")
    _add_local_site(page, "Demo archive")
    gate = tmp_path / "gate"
    gate.mkdir()
    store = live_server.open_store()
    try:
        site_id = store.list_sites(store.get_user_by_email(email).id)[0].id
    finally:
        store.close()

    page.goto("/automation/stock")
    expect_connected(page)
    held = _hold_both_run_slots(page, site_id, gate)
    page.get_by_label("Tickers").fill(", ".join(t.lower() for t in TICKERS))
    page.get_by_label("Site", exact=True).select_option(label="Demo archive (local)")
    page.get_by_label("Data source").select_option("demo")
    page.get_by_role("button", name="Start run").click()

    run = page.locator("article.tz-run").first
    expect(run).to_be_visible()
    expect(run.locator(".tz-run-title")).to_be_focused()     # brought into view for the user
    run_id = run.get_attribute("data-run-id")
    assert run_id not in held
    status = run.locator(".tz-run-status")
    expect(status).to_have_text("Queued")                    # both slots are taken

    # Pause and resume the real stock run from its buttons; a reload shows the same state.
    run.get_by_role("button", name="Pause").click()
    expect(status).to_have_text("Paused")
    expect(run.get_by_role("button", name="Resume")).to_be_enabled()
    page.screenshot(path=str(artifacts / "stock-run-started.png"), full_page=True)
    page.reload()
    expect_connected(page)
    run = panel(page, run_id)
    status = run.locator(".tz-run-status")
    expect(status).to_have_text("Paused")
    assert [s for _, s in card_states(page, run_id)] == ["pending"] * 5
    run.get_by_role("button", name="Resume").click()
    expect(status).to_have_text("Queued")
    assert page.request.get(f"/api/runs/{run_id}").json()["status"] == "queued"

    (gate / "open").touch()                                  # the slots free up
    bar = run.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=90_000)
    expect(status).to_have_text("Completed")
    expect(bar).to_have_class("tz-progress-bar bg-success")
    assert card_states(page, run_id) == [
        (key, "published") for key, _ in card_states(page, run_id)]
    labels = run.locator(".tz-card-label").all_text_contents()
    assert labels == TICKERS
    links = [run.locator(f'.tz-card[data-key="{k}"] .tz-card-link').get_attribute("href")
             for k, _ in card_states(page, run_id)]
    assert all(links) and len(set(links)) == 5
    expect(run.locator(".tz-log .tz-log-message").last).to_contain_text("Run complete")

    # Every finished card links its report page, without a reload.
    reports = run.locator(".tz-card-report")
    expect(reports).to_have_count(5)
    for i in range(5):
        expect(reports.nth(i)).to_be_visible()
        expect(reports.nth(i)).to_have_attribute("href", f"/runs/{run_id}/items/{i}/report")
    page.screenshot(path=str(artifacts / "stock-run-end.png"), full_page=True)

    # Every link works; the first one is followed by a click like a user would.
    for ticker, href in zip(TICKERS, links, strict=True):
        answer = page.request.get(href)
        assert answer.status == 200, href
        assert ticker in answer.text()
    run.locator(".tz-card-link").first.click()
    expect(page.get_by_text("AAPL").first).to_be_visible()
    expect(page.get_by_text("demo data", exact=False).first).to_be_visible()

    # The report from the run page: the article and its three charts, loaded.
    page.goto(f"/runs/{run_id}")
    panel(page, run_id).get_by_role("link", name="Report for MSFT").click()
    expect(page).to_have_url(f"{live_server.url}/runs/{run_id}/items/1/report")
    _expect_report_page(page, "MSFT")

    # The run and its posts are in the history, linked, with their reports.
    page.goto("/history")
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_contain_text("5 published")
    expect(page.locator("#history-posts tbody tr")).to_have_count(7)   # + the 2 slot runs
    expect(page.locator("#history-posts .tz-report-link")).to_have_count(5)
    page.locator("#history-posts tr", has_text="NVDA").locator(".tz-report-link").click()
    _expect_report_page(page, "NVDA")

    # The report reads on a phone: nothing scrolls sideways, the charts shrink to fit.
    page.set_viewport_size({"width": 375, "height": 740})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the report page scrolls sideways at 375px ({width}px)"
    page.screenshot(path=str(artifacts / "stock-report-375px.png"), full_page=True)


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


def _price_csv(rows: int = 300) -> bytes:
    """A year-plus of daily prices with one duplicated date and one unreadable row."""
    import datetime as dt

    day = dt.date(2024, 1, 1)
    lines = ["Date,Open,High,Low,Close,Volume"]
    for i in range(rows):
        close = 50 + (i % 40) * 0.5 + i * 0.05
        lines.append(f"{day + dt.timedelta(days=i)},{close - 0.3:.2f},{close + 0.6:.2f},"
                     f"{close - 0.8:.2f},{close:.2f},{1000 + 7 * i}")
    lines.insert(10, lines[9])
    lines.append("not-a-date,x,,,,")
    return "\n".join(lines).encode()


def test_csv_price_upload_from_the_run_page(live_server, new_page):
    page, watch = new_page(live_server.url)
    local_site_in_store(live_server, register(page, "csvprices"))
    page.goto("/automation/stock")
    expect_connected(page)
    prices = page.get_by_label("Price file (CSV with date, open, high, low, close, volume)")
    expect(prices).to_be_hidden()
    page.get_by_label("Data source").select_option("csv")
    expect(prices).to_be_visible()

    # A broken file is refused with the server's reason, shown on the page.
    prices.set_input_files({"name": "acme.csv", "mimeType": "text/csv",
                            "buffer": b"Day,Price\n2024-01-01,3\n"})
    expect(page.locator("#prices-status")).to_contain_text("Not uploaded")
    expect(page.locator("#prices-status")).to_contain_text("missing required column")
    watch.allow_console("status of 400")        # the browser's own note on the refused upload

    # A good one: named after its ticker, the tickers box is filled, repairs are reported.
    prices.set_input_files({"name": "acme.csv", "mimeType": "text/csv",
                            "buffer": _price_csv()})
    status = page.locator("#prices-status")
    expect(status).to_contain_text("Uploaded prices for ACME: 300 rows.")
    expect(status).to_contain_text("duplicate")
    expect(page.get_by_label("Tickers", exact=True)).to_have_value("ACME")
    page.get_by_role("button", name="Start run").click()

    run = page.locator("article.tz-run").first
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=60_000)
    card = run.locator('.tz-card[data-status="published"]')
    expect(card).to_have_count(1)
    card.get_by_role("link", name="Report for ACME").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ACME")
    expect(page.locator(".report-meta")).to_contain_text("uploaded CSV price file")
    expect(page.locator(".badge-demo")).to_have_count(0)
    widths = _images_loaded(page, "article.report img")
    assert len(widths) == 3 and all(w > 0 for w in widths), widths


def test_csv_source_without_a_price_file_is_refused_on_the_page(live_server, new_page):
    page, _ = new_page(live_server.url)
    local_site_in_store(live_server, register(page, "csvnone"))
    page.goto("/automation/stock")
    expect_connected(page)
    page.get_by_label("Tickers", exact=True).fill("AAPL")
    page.get_by_label("Data source").select_option("csv")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator("#form-error")).to_contain_text("Upload a price file")
    expect(page.locator("article.tz-run")).to_have_count(0)
