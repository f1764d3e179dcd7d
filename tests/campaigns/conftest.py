"""Fixtures for the campaign tests: a real store (SQLite, or the Firestore emulator where a test
asks for both), run managers without threads unless a test wants them, and a clock the test
moves by hand, so no test waits for a schedule."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runner.campaigns import CampaignService
from runner.manager import RunManager
from runner.scheduler import Scheduler
from storage.base import Site, Store
from storage.sqlite import SQLiteStore
from tests.support.test_automations import RecordingPublisher, TestAutomation

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


@dataclass
class Clock:
    """``now`` stands still until the test moves it."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Owner:
    user_id: str
    site_id: str


@dataclass
class Events:
    """What the run managers emitted (a real callable, not a mock)."""

    calls: list[tuple[str, dict, str]] = field(default_factory=list)

    def __call__(self, event: str, payload: dict, room: str) -> None:
        self.calls.append((event, payload, room))


def make_owner(store: Store, email: str = "ann@example.com") -> Owner:
    user = store.create_user(email, "not-a-real-hash")
    site = store.create_site(user.id, Site(id="", user_id=user.id, name="Archive",
                                           kind="local"))
    return Owner(user.id, site.id)


@pytest.fixture(params=["sqlite", "firestore"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Both backends, for the promises that must hold on either."""
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "campaigns.db")
        yield store
        store.close()
    else:
        yield request.getfixturevalue("firestore_store")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = SQLiteStore(tmp_path / "campaigns.db")
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_service(tmp_path: Path, clock: Clock
                 ) -> Iterator[Callable[..., tuple[CampaignService, RunManager]]]:
    """A CampaignService over ``store`` with its own RunManager (no threads unless
    ``autostart=True``), the ``test`` kind, and ``clock`` for time."""
    managers: list[RunManager] = []

    def factory(store: Store, *, autostart: bool = False, min_interval_seconds: int = 60,
                automations: dict[str, Any] | None = None, publishing: Any = None,
                **manager_options: Any) -> tuple[CampaignService, RunManager]:
        options: dict[str, Any] = {"workdir_root": tmp_path / "work",
                                   "progress_max_per_second": 0, "lease_seconds": 5.0,
                                   "autostart": autostart}
        options.update(manager_options)
        manager = RunManager(store, Events(), automations or {"test": TestAutomation()},
                             RecordingPublisher(store), **options)
        managers.append(manager)
        service = CampaignService(store, manager, publishing,
                                  settings={"INSTANCE_PATH": str(tmp_path / "instance")},
                                  min_interval_seconds=min_interval_seconds, clock=clock)
        return service, manager

    yield factory
    for manager in managers:
        manager.shutdown(timeout=10)


@pytest.fixture
def service(store: Store, make_service: Callable[..., tuple[CampaignService, RunManager]]
            ) -> CampaignService:
    return make_service(store)[0]


@pytest.fixture
def owner(store: Store) -> Owner:
    return make_owner(store)


def campaign_body(owner: Owner, names: list[str] | None = None, **fields: Any
                  ) -> dict[str, Any]:
    """A valid ``test``-kind campaign body: 5 names, 2 per run, every 10 minutes."""
    body: dict[str, Any] = {
        "name": "Every ten minutes", "kind": "test", "site_id": owner.site_id,
        "source": {"items": names or ["alpha", "bravo", "charlie", "delta", "echo"]},
        "per_run": 2, "schedule": {"interval_seconds": 600}, "options": {"steps": 1}}
    body.update(fields)
    return body


@pytest.fixture
def scheduler(service: CampaignService, clock: Clock) -> Scheduler:
    return Scheduler(service, tick_seconds=1, clock=clock)
