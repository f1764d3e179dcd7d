"""The acknowledgement of pause/resume/cancel over Socket.IO, in-process: the app's own
Socket.IO test client asks for the ack (``callback=True``) and gets the run's status after the
request, or the refusal; ``automation_error`` still reaches the asking socket. The real runner
and the real SQLite store (a failure of the store is made with a real SQLite trigger)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from flask import Flask

from tests.engine.conftest import wait_status
from tests.engine.test_api_socket import Member, engine_settings, events

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def runner_app(make_app, tmp_path: Path) -> Flask:
    return make_app(**engine_settings(tmp_path, TICKZEN_MAX_RUNS_PER_USER=1))


def held_run(member: Member, tmp_path: Path) -> str:
    """A running run whose item waits at a closed gate (checkpointing while it waits)."""
    gate = tmp_path / f"gate-{member.user_id}"
    gate.mkdir()
    run_id = member.start(["one"], gate=str(gate))
    wait_status(member.app.extensions["tickzen"].store, run_id, ("running",))
    return run_id


def status_of(app: Flask, run_id: str) -> str:
    return app.extensions["tickzen"].store.get_run(run_id).status


def test_each_action_is_acknowledged_with_the_runs_new_status(runner_app, tmp_path):
    alice = Member(runner_app, "alice@example.com")
    run_id = held_run(alice, tmp_path)
    waiting = alice.start(["two"], steps=1)      # the one slot is taken: it stays queued
    assert status_of(runner_app, waiting) == "queued"
    sock = alice.socket()
    sock.get_received()

    answer = sock.emit("pause_automation", {"automation_id": waiting}, callback=True)
    assert answer == {"ok": True, "run_id": waiting, "status": "paused"}   # at once
    answer = sock.emit("pause_automation", {"automation_id": run_id}, callback=True)
    assert answer == {"ok": True, "run_id": run_id, "status": "pausing"}
    alice.wait(run_id, ("paused",))
    answer = sock.emit("resume_automation", {"automation_id": run_id}, callback=True)
    assert answer["ok"] is True and answer["run_id"] == run_id
    assert answer["status"] in ("queued", "running")
    wait_status(runner_app.extensions["tickzen"].store, run_id, ("running",))
    for cancelled in (run_id, waiting):
        answer = sock.emit("cancel_automation", {"automation_id": cancelled}, callback=True)
        assert answer == {"ok": True, "run_id": cancelled, "status": "cancelled"}
        alice.wait(cancelled, ("cancelled",))
    assert not events(sock.get_received(), "automation_error")


def test_every_refusal_is_acknowledged_and_still_emitted(runner_app, tmp_path):
    alice = Member(runner_app, "alice@example.com")
    run_id = held_run(alice, tmp_path)
    sock = alice.socket()
    sock.get_received()

    cases = [
        ("pause_automation", {"nothing": 1},
         {"ok": False, "error_type": "bad_request", "message": "automation_id is required"}),
        ("cancel_automation", "not a dict",
         {"ok": False, "error_type": "bad_request", "message": "automation_id is required"}),
        ("pause_automation", {"automation_id": "no-such-run"},
         {"ok": False, "run_id": "no-such-run", "error_type": "not_found",
          "message": "run not found"}),
        ("resume_automation", {"automation_id": run_id},
         {"ok": False, "run_id": run_id, "error_type": "invalid_state",
          "message": "a running run cannot be resumed"}),
    ]
    for event, data, expected in cases:
        assert sock.emit(event, data, callback=True) == expected, (event, data)
        [error] = events(sock.get_received(), "automation_error")
        assert error["error_type"] == expected["error_type"]
        assert error["message"] == expected["message"]
        assert error.get("run_id") == expected.get("run_id")
    assert status_of(runner_app, run_id) == "running"

    sock.emit("cancel_automation", {"automation_id": run_id}, callback=True)
    alice.wait(run_id, ("cancelled",))
    answer = sock.emit("cancel_automation", {"automation_id": run_id}, callback=True)
    assert answer == {"ok": False, "run_id": run_id, "error_type": "invalid_state",
                      "message": "a cancelled run cannot be cancelled"}


def test_another_users_run_is_not_found_and_unchanged(runner_app, tmp_path):
    alice = Member(runner_app, "alice@example.com")
    bob = Member(runner_app, "bob@example.com")
    run_id = held_run(alice, tmp_path)
    a_sock, b_sock = alice.socket(), bob.socket()
    a_sock.get_received(), b_sock.get_received()

    for event in ("pause_automation", "resume_automation", "cancel_automation"):
        answer = b_sock.emit(event, {"automation_id": run_id}, callback=True)
        assert answer == {"ok": False, "run_id": run_id, "error_type": "not_found",
                          "message": "run not found"}, event
    assert [e["error_type"] for e in events(b_sock.get_received(), "automation_error")] == [
        "not_found"] * 3
    assert status_of(runner_app, run_id) == "running"
    assert not events(a_sock.get_received(), "automation_error")
    a_sock.emit("cancel_automation", {"automation_id": run_id}, callback=True)
    alice.wait(run_id, ("cancelled",))


def test_a_socket_whose_session_ended_is_refused_unauthorized(runner_app, tmp_path):
    alice = Member(runner_app, "alice@example.com")
    run_id = held_run(alice, tmp_path)
    sock = alice.socket()
    sock.get_received()
    runner_app.extensions["tickzen"].store.end_sessions(alice.user_id)   # "sign out everywhere"

    answer = sock.emit("pause_automation", {"automation_id": run_id}, callback=True)
    assert answer == {"ok": False, "error_type": "unauthorized",
                      "message": "login required: sign in again"}
    [error] = events(sock.get_received(), "automation_error")
    assert error["error_type"] == "unauthorized"
    assert status_of(runner_app, run_id) == "running"
    runs = runner_app.extensions["tickzen"].runs
    runs.cancel(run_id, alice.user_id)
    runs.join(run_id)


def test_a_failing_store_is_refused_as_server_error(runner_app, tmp_path):
    alice = Member(runner_app, "alice@example.com")
    run_id = held_run(alice, tmp_path)
    sock = alice.socket()
    sock.get_received()
    path = runner_app.config["TICKZEN_STORE"].removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TRIGGER refuse_cancel BEFORE UPDATE OF status ON runs "
                  "WHEN NEW.status = 'cancelled' BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    try:
        answer = sock.emit("cancel_automation", {"automation_id": run_id}, callback=True)
        assert answer == {"ok": False, "run_id": run_id, "error_type": "server_error",
                          "message": "the server could not handle that request"}
        [error] = events(sock.get_received(), "automation_error")
        assert error["error_type"] == "server_error" and error["recoverable"] is True
        assert status_of(runner_app, run_id) == "running"
    finally:
        other.execute("DROP TRIGGER refuse_cancel")
        other.close()
    answer = sock.emit("cancel_automation", {"automation_id": run_id}, callback=True)
    assert answer == {"ok": True, "run_id": run_id, "status": "cancelled"}
    alice.wait(run_id, ("cancelled",))
