"""Fixtures for the notification tests: a real store on both backends (SQLite and the Firestore
emulator), a second handle on the same data (another process or instance), users, runs and a
recording ``emit``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.base import NewItem, Run, Site, Store


@pytest.fixture(params=["sqlite", "firestore"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_handle(backend: str, tmp_path: Path, request: pytest.FixtureRequest
                ) -> Iterator[Callable[[], Store]]:
    """``open_handle()`` -> a new store handle on this test's data (closed at the end)."""
    opened: list[Store] = []
    if backend == "firestore":
        emulator = request.getfixturevalue("firestore_emulator")
        emulator.reset("demo-test")

    def open_one() -> Store:
        if backend == "sqlite":
            from storage.sqlite import SQLiteStore

            handle: Store = SQLiteStore(tmp_path / "db" / "tickzen.db")
        else:
            from storage.firestore import FirestoreStore

            handle = FirestoreStore(project="demo-test")
        opened.append(handle)
        return handle

    yield open_one
    for handle in opened:
        handle.close()


@pytest.fixture
def store(open_handle: Callable[[], Store]) -> Store:
    return open_handle()


@dataclass
class Owner:
    user_id: str
    site_id: str
    email: str


def make_owner(store: Store, email: str = "ann@example.com") -> Owner:
    user = store.create_user(email, "not-a-real-hash")
    site = store.create_site(user.id, Site(id="", user_id=user.id, name="Archive",
                                           kind="local"))
    return Owner(user.id, site.id, email)


def make_run(store: Store, owner: Owner, names: tuple[str, ...] = ("a", "b"),
             status: str = "running") -> Run:
    return store.create_run(Run(id="", user_id=owner.user_id, kind="test",
                                site_id=owner.site_id, status=status),
                            [NewItem(key=f"{n}-test", input={"name": n}, label=n)
                             for n in names])


@dataclass
class Emitted:
    """A real ``emit(event, payload, room)`` callable that keeps what it was given."""

    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    def __call__(self, event: str, payload: dict[str, Any], room: str) -> None:
        self.calls.append((event, payload, room))

    def of(self, event: str) -> list[tuple[dict[str, Any], str]]:
        return [(p, r) for e, p, r in self.calls if e == event]


@dataclass
class Clock:
    """``now`` stands still until the test moves it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def catch_up(self) -> datetime:
        """Never behind the real time (records stamped by the store use it)."""
        self.now = max(self.now, datetime.now(UTC))
        return self.now


@pytest.fixture
def endpoint() -> Iterator[Any]:
    """A real HTTP webhook receiver on 127.0.0.1 (see receivers.Endpoint)."""
    from tests.notifications.receivers import Endpoint

    receiver = Endpoint()
    yield receiver
    receiver.close()


@pytest.fixture
def mail_server() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on a free 127.0.0.1 port, started."""
    from tests.notifications.receivers import MailServer
    from tests.support.procs import free_port

    server = MailServer(free_port()).start()
    yield server
    server.stop()
