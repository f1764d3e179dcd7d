"""The real portal in a subprocess, and clients that talk to it over real sockets.

Fixtures:
- ``live_server_factory``: ``make(**config) -> LiveServer`` (stopped at the end of the test);
- ``live_server``: one started LiveServer for the session (the test automation kind loaded);
  tests sharing it register users with ``unique_email()``.

``LiveServer`` starts ``create_app(config)`` + ``socketio.run`` (what ``python
main_portal_app.py`` does) on a free 127.0.0.1 port, in its own process group, with a temp SQLite
store, archive and work folder. ``kill()`` is ``kill -9`` of the group; ``start()`` again serves
the same SQLite file (a new process, a new instance id). Helpers:

- ``server.register(email) -> requests.Session`` (signed in; ``X-CSRFToken`` header set);
- ``server.login(email, password) -> requests.Session``;
- ``server.add_local_site(session) -> site_id``;
- ``server.socket(session) -> LiveSocket``: a python-socketio client over websocket carrying the
  session's cookie; it records every event (``events(name)``, ``wait_for(predicate)``).

Run as a module (``python -m tests.support.live_server``) it is the server itself: the config
comes as JSON in ``TICKZEN_LIVE_CONFIG``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.procs import ROOT, free_port, spawn, stop, wait_for_port

PASSWORD = "correct-horse-battery-1"
_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
TEST_AUTOMATIONS = "tests.support.test_automations"


def _csrf(session: requests.Session, url: str) -> str:
    response = session.get(url, timeout=10)
    match = _META_RE.search(response.text)
    if not match:
        raise AssertionError(f"no csrf-token meta on {url} ({response.status_code})")
    return match.group(1)


class LiveSocket:
    """A python-socketio client that records everything the server sends it."""

    def __init__(self, url: str, session: requests.Session, *, connect: bool = True) -> None:
        import socketio

        self.url = url
        self.session = session
        self.client = socketio.Client(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self._cond = threading.Condition()
        self.client.on("*", self._record)
        if connect:
            self.connect()

    def _record(self, event: str, *args: Any) -> None:
        with self._cond:
            self.received.append((event, args[0] if args else None))
            self._cond.notify_all()

    def connect(self) -> None:
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)
        self.client.connect(self.url, headers={"Cookie": cookie}, transports=["websocket"],
                            wait_timeout=10)

    def disconnect(self) -> None:
        if self.client.connected:
            self.client.disconnect()

    def emit(self, event: str, data: Any) -> None:
        self.client.emit(event, data)

    def events(self, name: str) -> list[Any]:
        with self._cond:
            return [payload for event, payload in self.received if event == name]

    def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], Any],
                 timeout: float = 30.0, what: str = "an event") -> Any:
        """Block until ``predicate(received)`` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate(list(self.received))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what}; got "
                                         f"{[e for e, _ in self.received][-20:]}")
                self._cond.wait(min(left, 0.2))


@dataclass
class LiveServer:
    """One portal process (restartable on the same files)."""

    root: Path
    config: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    proc: Any = None
    sockets: list[LiveSocket] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.root / "tickzen.db"

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    def full_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(self.root / "instance"),
            "SECRET_KEY": "live-server-secret",
            "TICKZEN_SECRETS_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
            "TICKZEN_STORE": f"sqlite:///{self.db_path}",
            "TICKZEN_ARCHIVE_DIR": str(self.archive_dir),
            "TICKZEN_WORKDIR": str(self.root / "work"),
            "TICKZEN_EXTRA_AUTOMATIONS": TEST_AUTOMATIONS,
            "TICKZEN_START_RUNNER": True,
        }
        config.update(self.config)
        return config

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {**os.environ, "TICKZEN_LIVE_CONFIG": json.dumps(self.full_config()),
               "HOST": "127.0.0.1", "PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        env.pop("TICKZEN_EXTRA_AUTOMATIONS", None)
        env.pop("FLASK_RUN_FROM_CLI", None)     # left by a CLI test: socketio.run would not serve
        self.proc = spawn([sys.executable, "-m", "tests.support.live_server"], "live-portal",
                          log=self.root / "server.log", cwd=str(ROOT), env=env)
        try:
            wait_for_port(self.port, timeout=timeout, proc=self.proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 40) -> str:
        path = self.root / "server.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def close_sockets(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(Exception):     # the server may be gone already
                sock.disconnect()
        self.sockets.clear()

    def stop(self) -> None:
        self.close_sockets()
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        """``kill -9`` of the server's process group: no clean-up of any kind runs."""
        import signal

        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            stop(self.proc)               # drops the pid file
            self.proc = None
        self.close_sockets()

    # -- users -------------------------------------------------------------------------------

    def register(self, email: str, password: str = PASSWORD) -> requests.Session:
        session = requests.Session()
        token = _csrf(session, f"{self.url}/register")
        response = session.post(f"{self.url}/register", timeout=10, allow_redirects=False,
                                data={"email": email, "password": password,
                                      "confirm_password": password, "csrf_token": token})
        if response.status_code != 302:
            raise AssertionError(f"register {email}: {response.status_code}")
        session.headers["X-CSRFToken"] = _csrf(session, f"{self.url}/")
        session.tickzen_email = email.strip().lower()   # type: ignore[attr-defined]
        return session

    def login(self, email: str, password: str = PASSWORD) -> requests.Session:
        session = requests.Session()
        token = _csrf(session, f"{self.url}/login")
        response = session.post(f"{self.url}/login", timeout=10, allow_redirects=False,
                                data={"email": email, "password": password,
                                      "csrf_token": token})
        if response.status_code != 302:
            raise AssertionError(f"login {email}: {response.status_code}")
        session.headers["X-CSRFToken"] = _csrf(session, f"{self.url}/")
        session.tickzen_email = email.strip().lower()   # type: ignore[attr-defined]
        return session

    def user_id(self, email: str) -> str:
        store = self.open_store()
        try:
            user = store.get_user_by_email(email.lower())
            assert user is not None, email
            return user.id
        finally:
            store.close()

    def add_local_site(self, session: requests.Session, name: str = "Archive") -> str:
        """A local-archive site: through POST /api/sites when it exists, else in the store."""
        response = session.post(f"{self.url}/api/sites", json={"name": name, "kind": "local"},
                                timeout=10)
        if response.status_code == 201:
            return response.json()["id"]
        from storage.base import Site

        whoami = session.get(f"{self.url}/api/runs", timeout=10)
        assert whoami.status_code == 200, "the session is not signed in"
        store = self.open_store()
        try:
            user_id = _session_user(self, store, session)
            return store.create_site(user_id, Site(id="", user_id=user_id, name=name,
                                                   kind="local")).id
        finally:
            store.close()

    def open_store(self) -> Any:
        """A second handle on the server's SQLite file (read state, count the ledger)."""
        from storage.sqlite import SQLiteStore

        return SQLiteStore(str(self.db_path))

    def socket(self, session: requests.Session, *, connect: bool = True) -> LiveSocket:
        sock = LiveSocket(self.url, session, connect=connect)
        self.sockets.append(sock)
        return sock

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, session: requests.Session, site_id: str, items: list[Any],
                  kind: str = "test", **options: Any) -> str:
        response = session.post(f"{self.url}/api/runs", timeout=10, json={
            "kind": kind, "site_id": site_id, "items": items, "options": options})
        assert response.status_code == 202, response.text
        return response.json()["run_id"]

    def run(self, session: requests.Session, run_id: str) -> dict[str, Any]:
        response = session.get(f"{self.url}/api/runs/{run_id}", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_run(self, session: requests.Session, run_id: str,
                 statuses: tuple[str, ...] = ("completed",), timeout: float = 60.0
                 ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.run(session, run_id)
            if run["status"] in statuses:
                return run
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} stayed {run.get('status')}, wanted {statuses}")


def _session_user(server: LiveServer, store: Any, session: requests.Session) -> str:
    email = getattr(session, "tickzen_email", None)
    if email:
        user = store.get_user_by_email(email)
        if user:
            return user.id
    raise AssertionError("POST /api/sites is unavailable and the session has no known email;"
                         " use server.register(), which records it")


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    made: list[LiveServer] = []

    def make(**config: Any) -> LiveServer:
        server = LiveServer(tmp_path / f"live-{len(made)}", dict(config))
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One portal for the whole session (register users with ``unique_email``)."""
    server = LiveServer(tmp_path_factory.mktemp("live-portal")).start()
    yield server
    server.stop()


def unique_email(prefix: str = "user") -> str:
    """A fresh address, so tests sharing the session's server never collide."""
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def _serve() -> None:   # pragma: no cover - runs in the subprocess
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from main_portal_app import create_app, socketio_of

    app = create_app(json.loads(os.environ["TICKZEN_LIVE_CONFIG"]))
    socketio_of(app).run(app, host=os.environ.get("HOST", "127.0.0.1"),
                         port=int(os.environ["PORT"]), allow_unsafe_werkzeug=True,
                         use_reloader=False, log_output=False)


if __name__ == "__main__":  # pragma: no cover
    _serve()
