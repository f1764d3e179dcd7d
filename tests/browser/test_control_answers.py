"""A run control's failure is never silent, in a real Chromium against the real portal: a
pause whose request is lost on the way says so and shows the stored state; a refused resume
shows the server's reason; a run the page cannot read is named on the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    api_post,
    expect_connected,
    local_site_in_store,
    open_gated_run,
    panel,
    register,
    start_gated_run,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The page's socket writes every packet through its engine: this drops the pause requests
# (the ack stays registered, as when the connection loses a packet), nothing else.
DROP_PAUSE_REQUESTS = """() => {
  const engine = window.tickzenView.socket.io.engine;
  const write = engine.write.bind(engine);
  engine.write = (packet, options, fn) =>
    typeof packet === "string" && packet.includes('"pause_automation"')
      ? engine : write(packet, options, fn);
  window.tickzenRestoreWrite = () => { engine.write = write; };
}"""


def test_a_lost_pause_request_is_said_and_the_stored_state_shown(live_server, new_page,
                                                                 tmp_path):
    page, _ = new_page(live_server.url)
    run_id, run = open_gated_run(page, live_server, tmp_path, "lostpause")
    page.evaluate(DROP_PAUSE_REQUESTS)
    pause = run.get_by_role("button", name="Pause")
    pause.click()
    # The page waits ~8 s for the answer; wait for the notice longer than expect's 5 s.
    expect(run.locator(".tz-run-error")).to_have_text(
        "The server did not answer the pause request; showing the stored state.",
        timeout=30_000)
    expect(run.locator(".tz-run-status")).to_have_text("Running")
    expect(pause).to_be_enabled()
    assert page.request.get(f"/api/runs/{run_id}").json()["status"] == "running"

    # The next pause reaches the server: its answer replaces the notice.
    page.evaluate("window.tickzenRestoreWrite()")
    pause.click()
    expect(run.locator(".tz-run-status")).to_have_text("Paused")
    expect(run.locator(".tz-run-error")).to_have_text("")
    assert api_post(page, f"/api/runs/{run_id}/cancel", {}).status == 200


def test_a_refused_resume_shows_the_servers_reason(live_server, new_page, tmp_path):
    page, _ = new_page(live_server.url)
    run_id, run = open_gated_run(page, live_server, tmp_path, "refused")
    # The page's view goes stale (as when another tab resumed it a moment ago): it shows the
    # run paused while the server has it running.
    page.evaluate("""id => {
      const view = window.tickzenView;
      view.models[id].status = "paused";
      view.refresh(id);
    }""", run_id)
    run.get_by_role("button", name="Resume").click()
    expect(run.locator(".tz-run-error")).to_have_text("a running run cannot be resumed")
    expect(run.locator(".tz-run-status")).to_have_text("Running")      # read again over HTTP
    expect(run.get_by_role("button", name="Resume")).to_be_hidden()
    assert api_post(page, f"/api/runs/{run_id}/cancel", {}).status == 200


def test_a_run_the_page_cannot_read_is_named_on_the_page(live_server, new_page, tmp_path):
    page, watch = new_page(live_server.url)
    site = local_site_in_store(live_server, register(page, "unreadable"))
    page.goto("/")
    expect_connected(page)
    page.route("**/api/runs/*", lambda route: route.abort())     # the page's reads fail
    watch.allow_console("net::ERR_FAILED")
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = start_gated_run(page, site.id, gate)      # announced to the page by its first event
    notice = page.locator("#tz-runs-error")
    expect(notice).to_have_text(
        f"Run {run_id} could not be loaded: Failed to fetch. Reload the page to try again.")
    expect(panel(page, run_id)).to_have_count(0)

    page.unroute("**/api/runs/*")
    assert api_post(page, f"/api/runs/{run_id}/pause", {}).status == 200
    # its next event (paused) brings it in, and the notice goes
    expect(panel(page, run_id).locator(".tz-run-status")).to_have_text("Paused")
    expect(notice).to_have_text("")
    assert api_post(page, f"/api/runs/{run_id}/cancel", {}).status == 200
