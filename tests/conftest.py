"""Shared fixtures in the flaskr style: ``app``, ``client``, ``auth``.

CSRF stays ON in tests (real behaviour): ``auth`` and ``csrf_token(client)`` read the token from
the ``<meta name="csrf-token">`` every page carries. Service fixtures (emulator, WordPress, Redis,
live servers) live in tests/support/<name>.py; append the module to ``pytest_plugins``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from main_portal_app import create_app

pytest_plugins = [
    "tests.support.procs",
    "tests.support.redis_server",
    "tests.support.feed_server",
    "tests.support.firestore_emulator",
    "tests.support.wordpress",
    "tests.support.fault_proxy",
    "tests.support.browser",
    "tests.support.live_server",
    "tests.support.portal_instances",
]

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT / ".." / "shared" / "data"
_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _close_services(app: Flask) -> None:
    """Stop what create_app started (the run manager if any, then the store)."""
    services = app.extensions.get("tickzen")
    if services is None:
        return
    scheduler = getattr(services, "scheduler", None)
    if scheduler is not None:
        scheduler.stop()
    delivery = getattr(services, "delivery", None)
    if delivery is not None:
        delivery.stop()
    runs = getattr(services, "runs", None)
    for name in ("shutdown", "stop", "close"):
        method = getattr(runs, name, None)
        if callable(method):
            method()
            break
    services.store.close()


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build testing apps with overrides; each gets a fresh SQLite store and instance folder
    under ``tmp_path``."""
    built: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "ENV_NAME": "testing",
            "INSTANCE_PATH": str(tmp_path / f"instance-{len(built)}"),   # never ./instance
            "TICKZEN_STORE": f"sqlite:///{tmp_path / f'tickzen-{len(built)}.db'}",
            "TICKZEN_START_RUNNER": False,
        }
        config.update(overrides)
        app = create_app(config)
        built.append(app)
        return app

    yield factory
    for app in built:
        _close_services(app)


@pytest.fixture
def app(make_app: Callable[..., Flask], request: pytest.FixtureRequest) -> Flask:
    """The testing app; ``@pytest.mark.app_config(KEY=value)`` adds config overrides."""
    marker = request.node.get_closest_marker("app_config")
    return make_app(**(marker.kwargs if marker else {}))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of ``client``'s session, read from a page's meta tag."""
    response = client.get(path, follow_redirects=True)
    match = _META_RE.search(response.get_data(as_text=True))
    assert match, f"no csrf-token meta on {path} (status {response.status_code})"
    return match.group(1)


class AuthActions:
    """The user's steps: register, log in, log out (posting the real CSRF token)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf_token(self) -> str:
        return csrf_token(self.client)

    def headers(self) -> dict[str, str]:
        """Headers for a JSON write: ``X-CSRFToken``."""
        return {"X-CSRFToken": self.csrf_token()}

    def register(self, email: str = "user@example.com", password: str = "correct-horse-1",
                 confirm_password: str | None = None, **kwargs: Any):
        data = {"email": email, "password": password,
                "confirm_password": password if confirm_password is None else confirm_password,
                "csrf_token": self.csrf_token()}
        return self.client.post("/register", data=data, **kwargs)

    def login(self, email: str = "user@example.com", password: str = "correct-horse-1",
              next: str | None = None, **kwargs: Any):  # noqa: A002 - the form field's name
        data = {"email": email, "password": password, "csrf_token": self.csrf_token()}
        if next is not None:
            data["next"] = next
        return self.client.post("/login", data=data, **kwargs)

    def logout(self, **kwargs: Any):
        return self.client.post("/logout", data={"csrf_token": self.csrf_token()}, **kwargs)

    def signed_in(self, email: str = "user@example.com",
                  password: str = "correct-horse-1") -> str:
        """Register (which signs in) and return the new user's id."""
        response = self.register(email, password)
        assert response.status_code == 302, response.get_data(as_text=True)
        with self.client.session_transaction() as session:
            return session["_user_id"]


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip saying it is absent (it is never copied into the repo)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA.resolve()} is absent")
    return SHARED_DATA.resolve()
