"""Fixtures for the engine tests: a real SQLite store, a user with a site, a manager factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest

from runner.manager import RunManager
from storage.base import Site, Store
from storage.sqlite import SQLiteStore
from tests.support.test_automations import RecordingPublisher, TestAutomation


@dataclass
class Owner:
    user_id: str
    site_id: str


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(str(tmp_path / "engine.db"))
    yield store
    store.close()


def make_owner(store: Store, email: str) -> Owner:
    user = store.create_user(email, "not-a-real-hash")
    site = store.create_site(user.id, Site(id="", user_id=user.id, name="Archive",
                                           kind="local"))
    return Owner(user.id, site.id)


@pytest.fixture
def owner(store: Store) -> Owner:
    return make_owner(store, "alice@example.com")


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "calls.log"


@pytest.fixture
def publisher(store: Store, record: Path) -> RecordingPublisher:
    return RecordingPublisher(store, record)


@pytest.fixture
def make_manager(store: Store, publisher: RecordingPublisher, tmp_path: Path
                 ) -> Iterator[Callable[..., RunManager]]:
    """RunManager with a Mock emit (``manager.emit``), the ``test`` kind and no throttle."""
    made: list[RunManager] = []

    def factory(**kwargs: Any) -> RunManager:
        options: dict[str, Any] = {"workdir_root": tmp_path / "work",
                                   "progress_max_per_second": 0, "lease_seconds": 5.0}
        options.update(kwargs)
        manager = RunManager(store, Mock(name="emit"), {"test": TestAutomation()}, publisher,
                             **options)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        manager.shutdown(timeout=10)


def emitted(manager: RunManager, event: str | None = None) -> list[tuple[str, dict, str]]:
    """Every (event, payload, room) the manager emitted, optionally of one event name."""
    calls = [tuple(c.args) for c in manager.emit.call_args_list]
    return [c for c in calls if event is None or c[0] == event]


def progress(manager: RunManager, run_id: str) -> list[dict]:
    return [p for e, p, _ in emitted(manager, "automation_progress") if p["run_id"] == run_id]


def wait_status(store: Store, run_id: str, statuses: tuple[str, ...], timeout: float = 20.0
                ) -> str:
    """Poll the store until the run reaches one of ``statuses`` (no timing is asserted)."""
    import time

    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        run = store.get_run(run_id)
        status = run.status if run else None
        if status in statuses:
            return status
        time.sleep(0.01)
    raise AssertionError(f"run {run_id} stayed {status}, expected one of {statuses}")


def wait_record(path: Path, timeout: float = 20.0) -> list[str]:
    """Wait until the test automation recorded a call (i.e. a worker is inside an item)."""
    import time

    from tests.support.test_automations import read_record

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = read_record(path)
        if lines:
            return lines
        time.sleep(0.005)
    raise AssertionError(f"nothing was recorded in {path}")
