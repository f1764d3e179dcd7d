"""Playwright over Debian's Chromium (no browser download) and a watched page factory.

``browser`` (session): Chromium launched from /usr/bin/chromium with the flags of
../shared/notes/infra.md; skipped with a reason when Chromium or Playwright is missing, failed
under ``CI=true``. ``new_page`` (function): pages in fresh browser contexts (one per user) whose
console errors, page errors and dialogs are collected; the fixture asserts at teardown that
none happened, unless a test takes them over (``watch.allow_console(...)``). The portal under
test is tests/support/live_server.py's ``live_server``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ROOT, need

CHROMIUM = os.environ.get("TICKZEN_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass
class PageWatch:
    """What a page did that a user would notice as broken: console errors, uncaught
    exceptions, dialogs (alert/confirm), and failed requests to the portal."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow_console(self, fragment: str) -> None:
        """A console error containing ``fragment`` is expected by this test."""
        self.allowed.append(fragment)

    def problems(self) -> list[str]:
        errors = [e for e in self.console_errors if not any(a in e for a in self.allowed)]
        return ([f"console: {e}" for e in errors] + [f"pageerror: {e}" for e in self.page_errors]
                + [f"dialog: {d}" for d in self.dialogs])


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the dev requirements pin it
        need(False, "playwright is not installed (pip install -r requirements-dev.txt)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """One Chromium for the session (contexts isolate users)."""
    exe = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    need(bool(exe) and os.access(str(exe), os.X_OK),
         f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    browser = playwright_instance.chromium.launch(executable_path=str(exe), args=LAUNCH_ARGS,
                                                  headless=True)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., tuple[Any, PageWatch]]]:
    """``new_page(base_url, context=None, width=1280)`` -> (page, watch).

    Without ``context`` a new browser context is made (a separate user: own cookies).
    Every watch is checked after the test: no console error, page error or dialog.
    """
    contexts: list[Any] = []
    watches: list[PageWatch] = []

    def factory(base_url: str, context: Any = None, width: int = 1280,
                height: int = 900) -> tuple[Any, PageWatch]:
        if context is None:
            context = browser.new_context(base_url=base_url,
                                          viewport={"width": width, "height": height})
            context.set_default_timeout(20_000)
            contexts.append(context)
        page = context.new_page()
        watch = PageWatch()
        page.on("console", lambda m: watch.console_errors.append(
            f"{m.text} @ {m.location.get('url', '')}") if m.type == "error" else None)
        page.on("pageerror", lambda e: watch.page_errors.append(str(e)))

        def on_dialog(dialog: Any) -> None:
            watch.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        watches.append(watch)
        return page, watch

    yield factory
    problems = [p for w in watches for p in w.problems()]
    for context in contexts:
        context.close()
    assert problems == [], "the browser reported problems:\n" + "\n".join(problems)


@pytest.fixture
def artifacts() -> Path:
    """test-artifacts/ (git-ignored): screenshots a reviewer can look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

