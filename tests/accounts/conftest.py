"""Helpers for the account tests: a second signed-in client, API tokens, the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import AuthActions

PASSWORD = "correct-horse-1"


@pytest.fixture
def other_client(app: Flask) -> Callable[[], tuple[FlaskClient, AuthActions]]:
    """``other_client()`` -> a new browser (client + its AuthActions) on the same app."""

    def make() -> tuple[FlaskClient, AuthActions]:
        client = app.test_client()
        return client, AuthActions(client)

    return make


def make_token(client: FlaskClient, auth: AuthActions, name: str = "script") -> dict[str, Any]:
    """A token created through the API by a signed-in client (cookie + CSRF)."""
    response = client.post("/api/tokens", json={"name": name}, headers=auth.headers())
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def store_of(app: Flask) -> Any:
    return app.extensions["tickzen"].store


class Mailbox:
    """What a real SMTP server (aiosmtpd, in a thread of the test) received."""

    def __init__(self) -> None:
        import threading

        self.messages: list[Any] = []
        self._cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        from email import message_from_bytes, policy

        with self._cond:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            self._cond.notify_all()
        return "250 OK"

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Any]:
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.messages)} message(s) arrived, "
                                         f"wanted {count}")
                self._cond.wait(left)
            return list(self.messages)


@pytest.fixture
def mailbox() -> Any:
    """A real SMTP server on a free loopback port; ``mailbox.url`` is its smtp:// URL."""
    from aiosmtpd.controller import Controller

    from tests.support.procs import free_port

    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.url = f"smtp://127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        controller.stop()
