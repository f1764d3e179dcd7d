"""Playwright over Debian's Chromium (no browser download) and a watched page factory.

``browser`` (session): Chromium launched from /usr/bin/chromium with the flags of
../shared/notes/infra.md; skipped with a reason when Chromium or Playwright is missing, failed
under ``CI=true``. ``new_page`` (function): pages in fresh browser contexts (one per user) whose
console errors, page errors and dialogs are collected; the fixture asserts at teardown that
none happened, unless a test takes them over (``watch.allow_console(...)``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import ROOT, free_port, need, spawn, stop, wait_for_port

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


# ---------------------------------------------------------------------------------------------
# The real portal in a subprocess (until the engine's tests/support/live_server.py is shared).

_SERVE = """
import json, os
from main_portal_app import create_app, socketio
app = create_app(json.loads(os.environ["TICKZEN_TEST_OVERRIDES"]))
socketio.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), allow_unsafe_werkzeug=True,
             use_reloader=False, log_output=False)
"""


@dataclass
class PortalServer:
    base_url: str
    store_url: str
    folder: Path
    log: Path

    def open_store(self) -> Any:
        """The server's own store (SQLite is safe across processes), for arranging data."""
        from storage.base import open_store

        return open_store(self.store_url)


@pytest.fixture(scope="module")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalServer]:
    """``python main_portal_app``'s app on a free port, its own SQLite file, archive and
    workdirs, with the test-only kind ``test`` (tests/support/test_automations.py)."""
    folder = tmp_path_factory.mktemp("portal")
    port = free_port()
    store_url = f"sqlite:///{folder / 'tickzen.db'}"
    overrides = {"ENV_NAME": "testing", "TICKZEN_STORE": store_url,
                 "TICKZEN_START_RUNNER": True, "TICKZEN_ARCHIVE_DIR": str(folder / "archive"),
                 "TICKZEN_WORKDIR": str(folder / "runs"),
                 "TICKZEN_EXTRA_AUTOMATIONS": "tests.support.test_automations"}
    env = dict(os.environ, PORT=str(port), TICKZEN_TEST_OVERRIDES=json.dumps(overrides),
               PYTHONUNBUFFERED="1")
    log = folder / "server.log"
    proc = spawn([sys.executable, "-c", _SERVE], "browser-portal", log=log, cwd=ROOT, env=env)
    try:
        wait_for_port(port, timeout=60, proc=proc)
    except RuntimeError as exc:
        stop(proc)
        raise RuntimeError(f"{exc}; server log:\n{log.read_text()[-4000:]}") from exc
    try:
        yield PortalServer(base_url=f"http://127.0.0.1:{port}", store_url=store_url,
                           folder=folder, log=log)
    finally:
        stop(proc)
