"""The run JSON API and the Socket.IO handlers in-process: Flask's test client and the app's
own Socket.IO test client sharing its session; the real runner, the real local-archive
publisher."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask

from main_portal_app import socketio_of
from storage.base import Site
from tests.conftest import AuthActions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def engine_settings(tmp_path: Path, **changes: object) -> dict[str, object]:
    """An app with its runner started and the test automations, its files under tmp_path."""
    return {"TICKZEN_START_RUNNER": True,
            "TICKZEN_EXTRA_AUTOMATIONS": "tests.support.test_automations",
            "TICKZEN_ARCHIVE_DIR": str(tmp_path / "archive"),
            "TICKZEN_WORKDIR": str(tmp_path / "work"), "TICKZEN_MAX_ITEMS": 5,
            "PROGRESS_MAX_PER_SECOND": 50, **changes}


@pytest.fixture
def engine_app(make_app, tmp_path: Path) -> Flask:
    return make_app(**engine_settings(tmp_path))


class Member:
    """A signed-in user: Flask test client, auth helper, a local site, a socket."""

    def __init__(self, app: Flask, email: str) -> None:
        self.app = app
        self.client = app.test_client()
        self.auth = AuthActions(self.client)
        self.user_id = self.auth.signed_in(email)
        store = app.extensions["tickzen"].store
        self.site_id = store.create_site(self.user_id, Site(
            id="", user_id=self.user_id, name="Archive", kind="local")).id
        self.token = self.auth.csrf_token()

    def post(self, path: str, body=None, **kw):
        headers = {"X-CSRFToken": self.token, **kw.pop("headers", {})}
        return self.client.post(path, json=body, headers=headers, **kw)

    def socket(self):
        return socketio_of(self.app).test_client(self.app, flask_test_client=self.client)

    def start(self, items, **options):
        response = self.post("/api/runs", {"kind": "test", "site_id": self.site_id,
                                           "items": items, "options": options})
        assert response.status_code == 202, response.get_json()
        return response.get_json()["run_id"]

    def wait(self, run_id, statuses=("completed",), timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.client.get(f"/api/runs/{run_id}").get_json()
            if run["status"] in statuses:
                self.app.extensions["tickzen"].runs.join(run_id)
                return run
            time.sleep(0.02)
        raise AssertionError(f"run stayed {run['status']}")


def events(received, name):
    return [r["args"][0] for r in received if r["name"] == name]


def test_anonymous_socket_is_refused(engine_app):
    client = socketio_of(engine_app).test_client(engine_app,
                                                 flask_test_client=engine_app.test_client())
    assert not client.is_connected()


def test_connect_sends_status_then_snapshot_and_progress_reaches_the_owner(engine_app):
    alice = Member(engine_app, "alice@example.com")
    old = alice.start(["early"])
    alice.wait(old)
    sock = alice.socket()
    assert sock.is_connected()
    received = sock.get_received()
    assert [r["name"] for r in received[:2]] == ["connection_status", "automation_snapshot"]
    assert received[0]["args"][0]["status"] == "connected"
    [snap] = received[1]["args"][0]["runs"]
    assert snap["run_id"] == old and snap["status"] == "completed"
    assert snap["items"][0]["key"] == "early-test" and snap["items"][0]["status"] == "published"
    assert snap["last_seq"] >= 3

    run_id = alice.start(["one", "two"], steps=2)
    alice.wait(run_id)
    live = [e for e in events(sock.get_received(), "automation_progress")
            if e["run_id"] == run_id]
    assert live[-1]["stage"] == "complete" and live[-1]["percent"] == 100
    assert [e["seq"] for e in live] == list(range(1, len(live) + 1))
    run = alice.client.get(f"/api/runs/{run_id}").get_json()
    assert [(i["key"], i["status"]) for i in run["items"]] == [("one-test", "published"),
                                                               ("two-test", "published")]
    assert run["items"][0]["post_url"].endswith("/one-test")
    assert set(run["items"][0]) >= {"key", "label", "status", "post_id", "post_url", "error"}
    archive = Path(engine_app.config["TICKZEN_ARCHIVE_DIR"])
    assert len(list(archive.rglob("article.json"))) == 3


def test_socket_handlers_check_ownership_and_replay_to_the_asker_only(engine_app, tmp_path):
    alice = Member(engine_app, "alice@example.com")
    bob = Member(engine_app, "bob@example.com")
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = alice.start(["one"], gate=str(gate))
    a_sock, b_sock = alice.socket(), bob.socket()
    a_sock.get_received(), b_sock.get_received()

    for event in ("pause_automation", "resume_automation", "cancel_automation"):
        b_sock.emit(event, {"automation_id": run_id})
    b_sock.emit("replay", {"automation_id": run_id, "after_seq": 0})
    errors = events(b_sock.get_received(), "automation_error")
    assert [e["error_type"] for e in errors] == ["not_found"] * 4
    assert all(e["recoverable"] is False and "timestamp" in e for e in errors)
    assert engine_app.extensions["tickzen"].store.get_run(run_id).status == "running"
    assert not events(a_sock.get_received(), "automation_error")

    b_sock.emit("pause_automation", {"nothing": 1})
    b_sock.emit("replay", {"automation_id": run_id, "after_seq": "x"})
    b_sock.emit("pause_automation", "not a dict")
    assert [e["error_type"] for e in events(b_sock.get_received(), "automation_error")] == [
        "bad_request"] * 3

    a_sock.emit("pause_automation", {"automation_id": run_id})
    (gate / "open").touch()
    alice.wait(run_id, ("paused",))
    paused = events(a_sock.get_received(), "automation_paused")
    assert paused == [{"automation_id": run_id, "message": "Paused: 1 items left",
                       "remaining_count": 1}]
    assert not events(b_sock.get_received(), "automation_paused")
    a_sock.emit("pause_automation", {"automation_id": run_id})        # already paused
    [err] = events(a_sock.get_received(), "automation_error")
    assert err["error_type"] == "invalid_state" and err["run_id"] == run_id

    a_sock.emit("resume_automation", {"automation_id": run_id})
    alice.wait(run_id)
    a_sock.get_received()
    stored = engine_app.extensions["tickzen"].store.list_events(run_id)
    a_sock.emit("replay", {"automation_id": run_id, "after_seq": 2})
    replayed = events(a_sock.get_received(), "automation_progress")
    assert [e["seq"] for e in replayed] == list(range(3, len(stored) + 1))
    assert replayed == stored[2:]
    assert not events(b_sock.get_received(), "automation_progress")


def test_post_runs_rejects_bad_input_and_stores_nothing(engine_app):
    alice = Member(engine_app, "alice@example.com")
    bob = Member(engine_app, "bob@example.com")
    good = {"kind": "test", "site_id": alice.site_id, "items": ["a"]}
    cases = [
        ({"data": "{not json", "content_type": "application/json"}, 400,
         "the body must be a JSON object"),
        ({"json": ["a"]}, 400, "the body must be a JSON object"),
        ({"json": {**good, "kind": None}}, 400, "kind is required"),
        ({"json": {**good, "kind": "nope"}}, 400, "unknown kind 'nope'"),
        ({"json": {**good, "site_id": None}}, 400, "site_id is required"),
        ({"json": {**good, "site_id": "missing"}}, 404, "site not found"),
        ({"json": {**good, "site_id": bob.site_id}}, 404, "site not found"),
        ({"json": {**good, "items": []}}, 400, "items must be a non-empty list"),
        ({"json": {**good, "items": "a"}}, 400, "items must be a list"),
        ({"json": {**good, "items": list("abcdef")}}, 400, "too many items: 6 (at most 5)"),
        ({"json": {**good, "options": [1]}}, 400, "options must be an object"),
    ]
    for kwargs, status, message in cases:
        response = alice.client.post("/api/runs", headers={"X-CSRFToken": alice.token},
                                     **kwargs)
        assert response.status_code == status, (kwargs, response.get_json())
        assert response.get_json()["error"].startswith(message), response.get_json()
    bad = alice.post("/api/runs", {**good, "items": ["ok", "bad!"]})
    assert bad.status_code == 400
    assert bad.get_json() == {"error": "some items are invalid",
                              "details": ["item 2: 'bad!' is not a valid name"]}
    no_csrf = alice.client.post("/api/runs", json=good)
    assert no_csrf.status_code == 400 and "CSRF" in no_csrf.get_json()["error"]
    anonymous = engine_app.test_client().get("/api/runs")
    assert anonymous.status_code == 401
    assert alice.client.get("/api/runs").get_json() == {"runs": [], "next_cursor": None}
    assert engine_app.extensions["tickzen"].store.list_runs() == []


def test_post_runs_refuses_an_unknown_post_status_and_stores_nothing(engine_app):
    alice = Member(engine_app, "alice@example.com")
    response = alice.post("/api/runs", {"kind": "test", "site_id": alice.site_id,
                                        "items": ["a", "b"], "options": {"status": "live"}})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "options.status must be one of draft, publish, future, not 'live'"}
    assert alice.client.get("/api/runs").get_json() == {"runs": [], "next_cursor": None}
    assert engine_app.extensions["tickzen"].store.list_runs() == []


def test_duplicates_reported_foreign_runs_404_and_forbidden_transitions_409(engine_app):
    alice = Member(engine_app, "alice@example.com")
    bob = Member(engine_app, "bob@example.com")
    response = alice.post("/api/runs", {"kind": "test", "site_id": alice.site_id,
                                        "items": ["a", "b", "a"]})
    assert response.status_code == 202
    body = response.get_json()
    assert body["notes"] == ["duplicate removed: a"]
    assert body["status"] in ("queued", "running")
    run_id = body["run_id"]
    alice.wait(run_id)
    assert bob.client.get(f"/api/runs/{run_id}").status_code == 404
    assert bob.client.get("/api/runs").get_json() == {"runs": [], "next_cursor": None}
    for action in ("pause", "resume", "cancel", "retry"):
        foreign = bob.post(f"/api/runs/{run_id}/{action}")
        assert foreign.status_code == 404 and foreign.get_json() == {"error": "run not found"}
        conflict = alice.post(f"/api/runs/{run_id}/{action}")
        assert conflict.status_code == 409, action
        assert "error" in conflict.get_json()
    assert alice.post(f"/api/runs/{run_id}/explode").status_code == 404
    assert alice.client.get("/api/runs/nope").status_code == 404
    runs = alice.client.get("/api/runs").get_json()["runs"]
    assert [r["run_id"] for r in runs] == [run_id]
    assert runs[0]["status"] == "completed" and len(runs[0]["items"]) == 2
    assert alice.client.get("/api/runs?limit=0").status_code == 400


def test_http_pause_resume_cancel_retry(engine_app, tmp_path):
    alice = Member(engine_app, "alice@example.com")
    gate = tmp_path / "gate"
    gate.mkdir()
    run_id = alice.start(["one", "fail-two", "three"], gate=str(gate))
    paused = alice.post(f"/api/runs/{run_id}/pause")
    assert paused.status_code == 200 and paused.get_json()["status"] in ("pausing", "paused")
    (gate / "open").touch()
    alice.wait(run_id, ("paused",))
    assert alice.post(f"/api/runs/{run_id}/resume").get_json()["status"] in ("queued",
                                                                            "running")
    run = alice.wait(run_id)
    assert run["counts"]["failed"] == 1 and run["items"][1]["error"].startswith("synthetic")
    retried = alice.post(f"/api/runs/{run_id}/retry")
    assert retried.status_code == 200
    alice.wait(run_id)
    second = alice.start(["x"], gate=str(tmp_path / "closed"))
    assert alice.post(f"/api/runs/{second}/cancel").get_json()["status"] == "cancelled"
    alice.wait(second, ("cancelled",))
