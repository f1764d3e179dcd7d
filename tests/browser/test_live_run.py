"""The live run view in a real Chromium against the real portal in a subprocess.

Uses the test-only kind ``test`` (tests/support/test_automations.py): its items wait on a gate
file, so "mid-run" is a state the test holds, not a moment it hopes to catch.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    api_post,
    card_states,
    expect_connected,
    local_site_in_store,
    log_lines,
    panel,
    register,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_pause_reload_resume_retry_in_two_tabs(live_server, new_page, artifacts, tmp_path):
    page, _ = new_page(live_server.url)
    email = register(page, "owner")
    site = local_site_in_store(live_server, email)
    gate = tmp_path / "gate"
    gate.mkdir()
    answer = api_post(page, "/api/runs", {
        "kind": "test", "site_id": site.id, "items": ["alpha", "flaky-beta", "gamma"],
        "options": {"gate": str(gate), "steps": 2}})
    assert answer.status == 202, answer.text()
    run_id = answer.json()["run_id"]

    page.goto(f"/runs/{run_id}")
    expect_connected(page)
    run = panel(page, run_id)
    bar = run.get_by_role("progressbar")
    status = run.locator(".tz-run-status")
    alpha = run.locator('.tz-card[data-key="alpha-test"]')
    expect(alpha).to_have_attribute("data-status", "processing")     # held at the gate
    expect(status).to_have_text("Running")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(bar).to_have_class("tz-progress-bar bg-primary")          # processing: primary
    assert [s for _, s in card_states(page, run_id)] == ["processing", "pending", "pending"]
    page.screenshot(path=str(artifacts / "run-page-mid-run.png"), full_page=True)

    # Pause: the buttons follow the server.
    run.get_by_role("button", name="Pause").click()
    expect(status).to_have_text("Paused")
    expect(alpha).to_have_attribute("data-status", "pending")
    expect(run.get_by_role("button", name="Resume")).to_be_enabled()
    expect(run.get_by_role("button", name="Pause")).to_be_hidden()
    expect(run.get_by_role("button", name="Cancel")).to_be_enabled()
    before = (card_states(page, run_id), bar.get_attribute("aria-valuenow"),
              log_lines(page, run_id))
    assert before[2][-1].startswith("Paused"), before[2]

    # A reload mid-run rebuilds the same state from the snapshot and the replayed events.
    page.reload()
    expect_connected(page)
    run = panel(page, run_id)
    expect(run.locator(".tz-run-status")).to_have_text("Paused")
    expect(run.locator(".tz-log .tz-log-message")).to_have_count(len(before[2]))
    after = (card_states(page, run_id), run.get_by_role("progressbar").get_attribute(
        "aria-valuenow"), log_lines(page, run_id))
    assert after == before

    # A second tab of the same user follows the same run; resuming there updates both.
    tab2, _ = new_page(live_server.url, context=page.context)
    tab2.goto(f"/runs/{run_id}")
    expect_connected(tab2)
    run2 = panel(tab2, run_id)
    expect(run2.locator(".tz-run-status")).to_have_text("Paused")
    run2.get_by_role("button", name="Resume").click()
    for p in (run, run2):
        expect(p.locator(".tz-run-status")).to_have_text("Running")
        expect(p.locator('.tz-card[data-key="alpha-test"]')).to_have_attribute(
            "data-status", "processing")

    # Open the gate: alpha and gamma publish, flaky-beta fails with its reason and a retry.
    (gate / "open").touch()
    for p in (run, run2):
        expect(p.locator(".tz-run-status")).to_have_text("Completed")
        expect(p.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    beta = run.locator('.tz-card[data-key="flaky-beta-test"]')
    expect(beta).to_have_attribute("data-status", "failed")
    expect(beta.locator(".tz-card-icon")).to_have_text("✗")
    expect(beta.locator(".tz-card-error")).to_contain_text("flaky")
    for key in ("alpha-test", "gamma-test"):
        card = run.locator(f'.tz-card[data-key="{key}"]')
        expect(card).to_have_attribute("data-status", "published")
        expect(card.locator(".tz-card-icon")).to_have_text("✓")
        expect(card.get_by_role("link")).to_be_visible()
    expect(run.get_by_role("button", name="Pause")).to_be_disabled()

    # Heal it and retry from the card: only the failed item runs again.
    (gate / "heal").touch()
    beta.get_by_role("button", name="Retry flaky-beta").click()
    for p in (run, run2):
        expect(p.locator('.tz-card[data-key="flaky-beta-test"]')).to_have_attribute(
            "data-status", "published")
        expect(p.locator(".tz-run-status")).to_have_text("Completed")
    assert [s for _, s in card_states(page, run_id)] == ["published"] * 3
    assert [s for _, s in card_states(tab2, run_id)] == ["published"] * 3
    expect(run.get_by_role("progressbar")).to_have_class("tz-progress-bar bg-success")
    page.screenshot(path=str(artifacts / "run-page-end.png"), full_page=True)

    # Another user sees none of it: not the page, not the API, not the history.
    other, _ = new_page(live_server.url)
    register(other, "other")
    assert other.request.get(f"/runs/{run_id}").status == 404
    assert other.request.get(f"/api/runs/{run_id}").status == 404
    other.goto("/history")
    expect(other.locator(f'[data-run-id="{run_id}"]')).to_have_count(0)
