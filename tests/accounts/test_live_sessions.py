"""Against real servers over real sockets: a password change closes the Socket.IO connections
of the user's other sessions, on this instance and on another one sharing Redis, and those
sessions cannot connect again; the changing session reconnects."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import socketio

from tests.support.live_server import PASSWORD, unique_email

pytestmark = pytest.mark.slow
NEW_PASSWORD = "battery-staple-horse-2"


def _wait_disconnected(sock: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while sock.client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sock.client.connected, "the socket stayed connected"


def _cannot_connect(server: Any, session: requests.Session) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        server.socket(session)


def test_password_change_closes_other_sessions_sockets_on_every_instance(
        live_server_factory, redis_url: str, tmp_path) -> None:
    shared = {"TICKZEN_STORE": f"sqlite:///{tmp_path / 'shared.db'}",
              "SOCKETIO_MESSAGE_QUEUE": redis_url}
    first = live_server_factory(**shared).start()
    second = live_server_factory(**shared).start()
    email = unique_email("sessions")
    mine = first.register(email)
    other_here = first.login(email)
    other_there = second.login(email)
    stranger = first.register(unique_email("stranger"))

    my_socket = first.socket(mine)
    here = first.socket(other_here)
    there = second.socket(other_there)
    theirs = first.socket(stranger)
    for sock in (my_socket, here, there, theirs):
        sock.wait_for(lambda got: any(e == "connection_status" for e, _ in got),
                      what="connection_status")

    changed = mine.post(f"{first.url}/api/account/password", timeout=10, json={
        "current_password": PASSWORD, "password": NEW_PASSWORD})
    assert changed.status_code == 200, changed.text

    _wait_disconnected(here)
    _wait_disconnected(there)                 # the other instance, through Redis
    _cannot_connect(first, other_here)
    _cannot_connect(second, other_there)
    assert other_there.get(f"{second.url}/api/runs", timeout=10).status_code == 401
    assert theirs.client.connected            # another user's socket is untouched
    # The session that changed the password goes on and may connect again.
    assert mine.get(f"{first.url}/api/runs", timeout=10).status_code == 200
    again = first.socket(mine)
    again.wait_for(lambda got: any(e == "connection_status" for e, _ in got),
                   what="connection_status")


def test_sign_out_everywhere_closes_sockets_on_one_instance(live_server) -> None:
    email = unique_email("everywhere")
    browser = live_server.register(email)
    other = live_server.login(email)
    sock = live_server.socket(other)
    sock.wait_for(lambda got: any(e == "connection_status" for e, _ in got),
                  what="connection_status")
    response = browser.post(f"{live_server.url}/account/sessions", timeout=10,
                            data={"csrf_token": browser.headers["X-CSRFToken"]},
                            allow_redirects=False)
    assert response.status_code == 302
    _wait_disconnected(sock)
    _cannot_connect(live_server, other)
    assert browser.get(f"{live_server.url}/api/runs", timeout=10).status_code == 401
