"""A new user with no network, in a real Chromium: the sports page loads the demo stories
(labelled), a run of three publishes them, and every run card says who wrote its item (the
stock run's LLM endpoint is unreachable, so the template wrote it, and the card says why); the
stock run's benchmark typed on the form reaches the article.

"No network": the portal's process sends every HTTP(S) request to a proxy address where nothing
listens (set only for the server, after the browser has started).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import card_states, expect_connected, local_site_in_store, register
from tests.support import procs

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def offline_server(live_server_factory, new_page, monkeypatch):
    dead = f"http://127.0.0.1:{procs.free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = live_server_factory(TICKZEN_LLM_BASE_URL=f"{dead}/v1",
                                 TICKZEN_LLM_MODEL="offline-model", TICKZEN_LLM_TIMEOUT=2,
                                 PROGRESS_MAX_PER_SECOND=50).start()
    monkeypatch.undo()                  # the browser and this process stay as they were
    return server


def test_offline_sports_demo_run_and_writers_on_the_cards(offline_server, new_page,
                                                          artifacts):
    page, _ = new_page(offline_server.url)
    email = register(page, "offline")
    local_site_in_store(offline_server, email, "Demo archive")

    page.goto("/automation/sports")
    expect_connected(page)
    expect(page.get_by_label("Stories from")).to_have_value("auto")
    page.get_by_role("button", name="Load stories").click()
    status = page.locator("#stories-status")
    expect(status).to_contain_text("Demo stories (synthetic, made by TickZen")
    expect(status).to_contain_text("none of your feeds answered")
    boxes = page.locator('#stories-list input[name="story"]')
    expect(boxes).to_have_count(12)
    labels = page.locator("#stories-list label").all_text_contents()
    assert all(label.strip().startswith("[Demo] ") for label in labels), labels
    for i in range(3):
        boxes.nth(i).check()
    page.get_by_label("Site", exact=True).select_option(label="Demo archive (local)")
    page.get_by_label("Post status").select_option("publish")
    page.get_by_role("button", name="Start run").click()
    run = page.locator("article.tz-run").first
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=60_000)
    run_id = run.get_attribute("data-run-id")
    assert [s for _, s in card_states(page, run_id)] == ["published"] * 3
    writers = run.locator(".tz-card-writer")
    expect(writers).to_have_text(["Written by template"] * 3)
    href = run.locator(".tz-card-link").first.get_attribute("href")
    page.screenshot(path=str(artifacts / "sports-demo-run.png"), full_page=True)
    page.goto(href)
    expect(page.get_by_role("heading", level=1)).to_contain_text("[Demo]")
    expect(page.get_by_text("Demo story:").first).to_be_visible()

    # A stock run whose LLM cannot be reached: the template writes, and the card says why.
    page.goto("/automation/stock")
    expect_connected(page)
    page.get_by_label("Tickers").fill("AAPL")
    page.get_by_label("Site", exact=True).select_option(label="Demo archive (local)")
    page.get_by_label("Data source").select_option("demo")
    page.get_by_label("Benchmark").fill("^gspc")
    page.get_by_role("button", name="Start run").click()
    run = page.locator("article.tz-run").first
    expect(run.locator(".tz-run-status")).to_have_text("Completed", timeout=90_000)
    card = run.locator(".tz-card").first
    expect(card).to_have_attribute("data-status", "published")
    expect(card.locator(".tz-card-writer")).to_have_text("Written by template")
    expect(card.locator(".tz-card-writer-note")).to_contain_text(
        "llm:offline-model could not be reached; written by the template writer")
    page.screenshot(path=str(artifacts / "stock-run-writer-note.png"), full_page=True)
    post = page.request.get(card.locator(".tz-card-link").get_attribute("href")).text()
    assert "^GSPC" in post and "demo data (synthetic)" in post     # the benchmark, labelled

    # A reload rebuilds the cards from the run's view: the writer and the reason stay.
    page.goto(f"/runs/{run.get_attribute('data-run-id')}")
    expect_connected(page)
    expect(page.locator(".tz-card-writer-note")).to_contain_text("could not be reached")
