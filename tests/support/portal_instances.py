"""Portal instances started exactly as Azure starts them: ``bash startup.sh`` with PORT set.

Fixture ``portal_instances``: ``start(name, **env) -> PortalInstance`` launches startup.sh (its
own gunicorn command: one gthread worker) on a free 127.0.0.1 port in a new process group, and
stops every instance it started at the end of the test, by process group id. Several can be
started at once (``launch`` then ``wait``), e.g. two instances sharing Redis and Firestore.

``PortalInstance.kill()`` is ``kill -9`` of the whole group (the gunicorn master and worker):
no clean-up of any kind runs, as when a VM dies. ``sign_up`` registers an account over HTTP and
returns a ``requests.Session`` that carries the session cookie by hand (production cookies are
``Secure``, which requests keeps off plain http) and the ``X-CSRFToken`` header.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.procs import ROOT, free_port, spawn, stop, wait_for_port

META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
PASSWORD = "correct-horse-battery-1"


@dataclass
class PortalInstance:
    """One ``startup.sh`` process group."""

    name: str
    root: Path
    env: dict[str, str]
    port: int = 0
    proc: Any = None
    sockets: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "gunicorn.log"

    def launch(self) -> PortalInstance:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {**os.environ, "TICKZEN_INSTANCE_PATH": str(self.root / "instance"),
               **self.env, "PORT": str(self.port),
               "GUNICORN_BIND_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1",
               "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.proc = spawn(["bash", str(ROOT / "startup.sh")], f"portal-{self.name}",
                          log=self.log_path, env=env, cwd=str(self.root))
        return self

    def wait(self, timeout: float = 90.0) -> PortalInstance:
        try:
            wait_for_port(self.port, timeout=timeout, proc=self.proc)
            health = requests.get(f"{self.url}/healthz", timeout=30)
            assert health.status_code == 200, health.text
        except (RuntimeError, AssertionError, requests.RequestException) as exc:
            raise RuntimeError(f"instance {self.name} did not start: {exc}\n"
                               f"{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close_sockets(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(Exception):     # the server may be gone already
                sock.disconnect()
        self.sockets.clear()

    def kill(self) -> None:
        """``kill -9`` of the process group: the master, the worker, every thread at once."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            stop(self.proc)                 # drops the pid file
            self.proc = None

    def stop(self) -> None:
        self.close_sockets()
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def sign_up(base_url: str, email: str, password: str = PASSWORD) -> requests.Session:
    """Register ``email`` over HTTP; a session that works against every instance sharing the
    store and SECRET_KEY (cookie carried by hand, ``X-CSRFToken`` set)."""
    first = requests.get(f"{base_url}/register", timeout=30)
    match = META.search(first.text)
    assert match, f"no csrf-token on /register ({first.status_code})"
    response = requests.post(
        f"{base_url}/register", timeout=30, allow_redirects=False,
        headers={"Cookie": f"session={first.cookies['session']}"},
        data={"email": email, "password": password, "confirm_password": password,
              "csrf_token": match.group(1)})
    assert response.status_code == 302, response.text[:500]
    cookie = response.cookies.get("session") or first.cookies["session"]
    session = requests.Session()
    session.headers["Cookie"] = f"session={cookie}"
    page = session.get(f"{base_url}/", timeout=30)
    token = META.search(page.text)
    assert page.status_code == 200 and token, f"not signed in: {page.status_code}"
    cookie = page.cookies.get("session") or cookie     # the page stored its CSRF token
    session.headers["Cookie"] = f"session={cookie}"
    session.headers["X-CSRFToken"] = token.group(1)
    session.tickzen_cookie = cookie            # type: ignore[attr-defined]
    return session


@pytest.fixture
def portal_instances(tmp_path: Path) -> Iterator[Callable[..., PortalInstance]]:
    """``start(name, **env)``: launch startup.sh (not yet waited for; call ``.wait()``)."""
    made: list[PortalInstance] = []

    def start(name: str, **env: str) -> PortalInstance:
        instance = PortalInstance(name, tmp_path / f"instance-{name}", dict(env))
        made.append(instance)
        return instance.launch()

    yield start
    for instance in made:
        instance.stop()


def watch(instance: PortalInstance, session: requests.Session) -> Any:
    """A recording python-socketio client (websocket) on ``instance`` as ``session``'s user."""
    from tests.support.live_server import LiveSocket

    class CookieSocket(LiveSocket):
        def connect(self) -> None:
            self.client.connect(self.url, headers={"Cookie": self.session.headers["Cookie"]},
                                transports=["websocket"], wait_timeout=10)

    sock = CookieSocket(instance.url, session)
    instance.sockets.append(sock)
    return sock
