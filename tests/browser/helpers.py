"""The user's steps in the browser, shared by the browser tests."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import Page, expect

from storage.base import Site

PASSWORD = "correct-horse-battery-1"


def register(page: Page, prefix: str = "user") -> str:
    """Register a new account through the form (which signs in); returns its email."""
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return email


def local_site_in_store(server: Any, email: str, name: str = "Archive") -> Site:
    """Arrange a local-archive site straight in the server's store (for tests about runs,
    not about the sites page)."""
    store = server.open_store()
    try:
        user = store.get_user_by_email(email)
        assert user is not None, email
        return store.create_site(user.id, Site(id="", user_id=user.id, name=name, kind="local"))
    finally:
        store.close()


def api_post(page: Page, path: str, body: dict[str, Any]) -> Any:
    """A JSON write with the page's session cookie and CSRF token (outside the page's
    console, so an expected 4xx is not a console error)."""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    return page.context.request.post(path, data=body, headers={"X-CSRFToken": token or ""})


def panel(page: Page, run_id: str) -> Any:
    return page.locator(f'article.tz-run[data-run-id="{run_id}"]')


def card_states(page: Page, run_id: str) -> list[tuple[str, str]]:
    cards = panel(page, run_id).locator(".tz-card")
    return [(c.get_attribute("data-key") or "", c.get_attribute("data-status") or "")
            for c in cards.all()]


def log_lines(page: Page, run_id: str) -> list[str]:
    return panel(page, run_id).locator(".tz-log .tz-log-message").all_text_contents()


def expect_connected(page: Page) -> None:
    expect(page.locator("#tz-connection")).to_have_attribute("data-state", "connected")


def start_gated_run(page: Page, site_id: str, gate: Any, items: Any = ("one", "two")) -> str:
    """A test run whose first item waits at the closed ``gate`` folder (no events meanwhile)."""
    answer = api_post(page, "/api/runs", {"kind": "test", "site_id": site_id,
                                          "items": list(items),
                                          "options": {"gate": str(gate), "steps": 1}})
    assert answer.status == 202, answer.text()
    return answer.json()["run_id"]


def open_gated_run(page: Page, server: Any, tmp_path: Any, prefix: str) -> tuple[str, Any]:
    """A new user's gated run, open on its run page with its first item processing:
    (run id, its panel)."""
    site = local_site_in_store(server, register(page, prefix))
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = start_gated_run(page, site.id, gate)
    page.goto(f"/runs/{run_id}")
    expect_connected(page)
    run = panel(page, run_id)
    expect(run.locator('.tz-card[data-key="one-test"]')).to_have_attribute(
        "data-status", "processing")
    return run_id, run
