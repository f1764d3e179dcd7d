"""Notifications and webhooks in the portal: the JSON API, /notifications, the bell, the
Socket.IO ``notification`` event, the webhooks section of /account; bad input is a 400 with a
reason, and another user's notifications, webhooks and secrets are never seen (404)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from standardwebhooks import Webhook as Verifier

from main_portal_app import socketio_of
from portal.services import services
from storage.base import NewItem, Run, Site
from storage.notification_records import NewDelivery, OutboxEvent
from tests.conftest import AuthActions
from tests.notifications.receivers import Answer


def signed_in(make_app_client: Callable[[], FlaskClient], email: str
              ) -> tuple[FlaskClient, AuthActions, str]:
    client = make_app_client()
    auth = AuthActions(client)
    return client, auth, auth.signed_in(email)


@pytest.fixture
def two_users(app: Flask) -> tuple[Any, Any]:
    """Alice and Bob, each signed in on their own client of one app."""
    alice = signed_in(app.test_client, "alice@example.com")
    bob = signed_in(app.test_client, "bob@example.com")
    return alice, bob


def finished_run(app: Flask, user_id: str, status: str = "completed",
                 campaign_id: str | None = None) -> Run:
    """A run of ``user_id`` that just reached ``status``, with its event (as the runner
    writes it)."""
    with app.app_context():
        store = services().store
        site = store.create_site(user_id, Site(id="", user_id=user_id, name="Blog",
                                               kind="local"))
        run = store.create_run(Run(id="", user_id=user_id, kind="test", site_id=site.id,
                                   status="running", campaign_id=campaign_id),
                               [NewItem("a-test", {"name": "a"}, "a")])
        return store.transition_run(run.id, ["running"], status,
                                    outbox=services().runs.notices.run_finished(run.id, status))


def deliver(app: Flask) -> int:
    with app.app_context():
        return services().delivery.run_once()


# -- the JSON API --------------------------------------------------------------------------------

def test_the_list_its_unread_filter_and_mark_read(app: Flask, two_users: Any) -> None:
    (alice, auth, alice_id), (bob, _, bob_id) = two_users
    first = finished_run(app, alice_id)
    second = finished_run(app, alice_id, "cancelled")
    finished_run(app, bob_id)

    body = alice.get("/api/notifications").get_json()
    assert body["unread"] == 2
    assert [n["run_id"] for n in body["notifications"]] == [second.id, first.id]
    note = body["notifications"][1]
    assert set(note) >= {"id", "type", "title", "message", "run_id", "campaign_id",
                         "created_at", "read"}
    assert (note["type"], note["read"], note["link"]) == ("run.completed", False,
                                                          f"/runs/{first.id}")

    answer = alice.post("/api/notifications/read", json={"ids": [note["id"]]},
                        headers=auth.headers())
    assert answer.status_code == 200 and answer.get_json() == {"marked": 1, "unread": 1}
    unread = alice.get("/api/notifications?unread=1").get_json()
    assert [n["run_id"] for n in unread["notifications"]] == [second.id]
    assert alice.get("/api/notifications?limit=1&offset=1").get_json()[
        "notifications"][0]["read"] is True
    answer = alice.post("/api/notifications/read", json={"all": True}, headers=auth.headers())
    assert answer.get_json() == {"marked": 1, "unread": 0}
    assert bob.get("/api/notifications").get_json()["unread"] == 1     # bob's untouched


def test_nobody_sees_or_marks_another_users_notifications(app: Flask, two_users: Any) -> None:
    (alice, _, alice_id), (bob, bob_auth, _) = two_users
    finished_run(app, alice_id)
    [note] = alice.get("/api/notifications").get_json()["notifications"]
    assert bob.get("/api/notifications").get_json() == {"notifications": [], "unread": 0}
    answer = bob.post("/api/notifications/read", json={"ids": [note["id"]]},
                      headers=bob_auth.headers())
    assert answer.get_json() == {"marked": 0, "unread": 0}
    assert "alice" not in bob.get("/notifications").get_data(as_text=True)
    assert alice.get("/api/notifications").get_json()["unread"] == 1


@pytest.mark.parametrize("query", ["unread=yes", "limit=0", "limit=201", "limit=x",
                                   "offset=-1"])
def test_bad_list_queries_are_400(client: FlaskClient, auth: AuthActions, query: str) -> None:
    auth.signed_in()
    answer = client.get(f"/api/notifications?{query}")
    assert answer.status_code == 400 and answer.get_json()["error"]


@pytest.mark.parametrize("body", [None, [], {"ids": []}, {"ids": "abc"}, {"ids": [1]},
                                  {"all": False}, {"all": "yes"}, {"ids": ["a"], "all": True},
                                  {"every": True}, {"ids": ["x"] * 501}])
def test_bad_mark_read_bodies_are_400(client: FlaskClient, auth: AuthActions, body: Any
                                      ) -> None:
    auth.signed_in()
    answer = client.post("/api/notifications/read", json=body, headers=auth.headers())
    assert answer.status_code == 400 and answer.get_json()["error"]


def test_the_api_needs_a_signed_in_user_and_csrf(client: FlaskClient, auth: AuthActions
                                                 ) -> None:
    assert client.get("/api/notifications").status_code == 401
    auth.signed_in()
    answer = client.post("/api/notifications/read", json={"all": True})
    assert answer.status_code == 400 and "CSRF" in answer.get_json()["error"]


# -- the page and the bell ---------------------------------------------------------------------

def test_the_page_lists_newest_first_with_links_and_marks_read(app: Flask, two_users: Any
                                                                ) -> None:
    (alice, auth, alice_id), _ = two_users
    older = finished_run(app, alice_id)
    newer = finished_run(app, alice_id, "failed")
    html = alice.get("/notifications").get_data(as_text=True)
    assert html.index(f'href="/runs/{newer.id}"') < html.index(f'href="/runs/{older.id}"')
    assert "Run failed: Test run on Blog" in html and "Mark all read" in html
    assert 'id="tz-bell-number">2<' in html

    [_, old_note] = alice.get("/api/notifications").get_json()["notifications"]
    answer = alice.post("/notifications/read", data={"ids": old_note["id"],
                                                     "csrf_token": auth.csrf_token()})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/notifications")
    assert alice.get("/api/notifications").get_json()["unread"] == 1
    alice.post("/notifications/read", data={"all": "1", "csrf_token": auth.csrf_token()})
    html = alice.get("/notifications").get_data(as_text=True)
    assert "Mark all read" not in html and 'id="tz-bell-count" aria-live="polite" hidden' in html
    answer = alice.post("/notifications/read", data={"csrf_token": auth.csrf_token()})
    assert answer.status_code == 400


def test_a_campaign_notification_links_to_its_campaign(app: Flask, two_users: Any) -> None:
    (alice, _, alice_id), _ = two_users
    campaign_link = "/campaigns/c1"
    with app.app_context():
        services().store.add_outbox([OutboxEvent(
            id="", user_id=alice_id, type="campaign.missed",
            title="Campaign fires missed: Mornings", message="2 fires did not run",
            campaign_id="c1", link=campaign_link, deliveries=[NewDelivery("portal")])])
    html = alice.get("/notifications").get_data(as_text=True)
    assert f'href="{campaign_link}"' in html and "Campaign fires missed: Mornings" in html


def test_every_signed_in_page_has_the_bell_and_its_script(client: FlaskClient,
                                                          auth: AuthActions) -> None:
    assert "tz-bell" not in client.get("/login").get_data(as_text=True)
    auth.signed_in()
    html = client.get("/").get_data(as_text=True)
    assert 'href="/notifications" id="tz-bell"' in html
    assert 'id="tz-bell-count" aria-live="polite" hidden' in html     # nothing unread
    assert "/static/js/notifications.js" in html
    assert "vendor/socket.io/socket.io.min.js" in html                # the bell's own source


# -- the live event -----------------------------------------------------------------------------

def test_the_notification_event_reaches_its_user_only(app: Flask, two_users: Any) -> None:
    (alice, auth, alice_id), (bob, _, _) = two_users
    alice_socket = socketio_of(app).test_client(app, flask_test_client=alice)
    bob_socket = socketio_of(app).test_client(app, flask_test_client=bob)
    alice_socket.get_received()
    bob_socket.get_received()
    run = finished_run(app, alice_id)
    assert deliver(app) == 1
    [event] = [e for e in alice_socket.get_received() if e["name"] == "notification"]
    payload = event["args"][0]
    assert payload["run_id"] == run.id and payload["unread"] == 1 and payload["read"] is False
    assert [e for e in bob_socket.get_received() if e["name"] == "notification"] == []

    alice.post("/api/notifications/read", json={"all": True}, headers=auth.headers())
    [read] = [e for e in alice_socket.get_received() if e["name"] == "notifications_read"]
    assert read["args"][0] == {"ids": None, "all": True, "unread": 0}
    assert bob_socket.get_received() == []


# -- webhooks ---------------------------------------------------------------------------------

def test_a_webhook_is_created_with_its_secret_shown_once(app: Flask, two_users: Any) -> None:
    (alice, auth, alice_id), _ = two_users
    answer = alice.post("/api/webhooks", json={"url": "https://hooks.example/t",
                                               "events": ["run.failed", "run.completed"]},
                        headers=auth.headers())
    assert answer.status_code == 201
    made = answer.get_json()
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["run.completed", "run.failed"] and made["failing"] is False
    with app.app_context():
        stored = services().store.get_webhook(alice_id, made["id"])
        assert made["secret"] not in stored.secret_enc
        assert services().secrets.decrypt(stored.secret_enc) == made["secret"]
    listed = alice.get("/api/webhooks").get_json()["webhooks"]
    assert [h["id"] for h in listed] == [made["id"]] and "secret" not in listed[0]
    one = alice.get(f"/api/webhooks/{made['id']}").get_json()
    assert "secret" not in one and one["url"] == "https://hooks.example/t"
    assert made["secret"] not in alice.get("/account").get_data(as_text=True)


@pytest.mark.parametrize("body, reason", [
    (None, "JSON object"), ({"events": ["run.failed"]}, "url is required"),
    ({"url": "ftp://x.example/h", "events": ["run.failed"]}, "http"),
    ({"url": "https://u:p@x.example/h", "events": ["run.failed"]}, "credentials"),
    ({"url": "https://x.example/" + "a" * 2100, "events": ["run.failed"]}, "longer"),
    ({"url": "https://x.example/h"}, "events"), ({"url": "https://x.example/h", "events": []},
                                                 "events"),
    ({"url": "https://x.example/h", "events": ["run.exploded"]}, "unknown event"),
    ({"url": "https://x.example/h", "events": ["run.failed"], "secret": "mine"}, "unknown"),
])
def test_bad_webhooks_are_400_with_a_reason(client: FlaskClient, auth: AuthActions, body: Any,
                                            reason: str) -> None:
    auth.signed_in()
    answer = client.post("/api/webhooks", json=body, headers=auth.headers())
    assert answer.status_code == 400 and reason in answer.get_json()["error"]


@pytest.mark.app_config(TICKZEN_ALLOW_PRIVATE_URLS=False)
def test_a_webhook_to_a_private_address_is_refused(client: FlaskClient, auth: AuthActions
                                                   ) -> None:
    auth.signed_in()
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/h"):
        answer = client.post("/api/webhooks", json={"url": url, "events": ["run.failed"]},
                             headers=auth.headers())
        assert answer.status_code == 400, url
        assert "private or local" in answer.get_json()["error"]


def test_another_users_webhook_is_not_found(app: Flask, two_users: Any) -> None:
    (alice, auth, _), (bob, bob_auth, _) = two_users
    made = alice.post("/api/webhooks", json={"url": "https://hooks.example/a",
                                             "events": ["run.failed"]},
                      headers=auth.headers()).get_json()
    hook = made["id"]
    assert bob.get("/api/webhooks").get_json() == {"webhooks": []}
    for method, path in (("get", f"/api/webhooks/{hook}"), ("delete", f"/api/webhooks/{hook}"),
                         ("post", f"/api/webhooks/{hook}/test"),
                         ("get", f"/api/webhooks/{hook}/deliveries"),
                         ("get", f"/webhooks/{hook}"), ("post", f"/webhooks/{hook}/delete")):
        answer = getattr(bob, method)(path, headers=bob_auth.headers(),
                                      data={"csrf_token": bob_auth.csrf_token()}
                                      if path.startswith("/webhooks") else None)
        assert answer.status_code == 404, (method, path)
        assert made["secret"] not in answer.get_data(as_text=True)
    assert alice.get(f"/api/webhooks/{hook}").status_code == 200
    assert alice.delete(f"/api/webhooks/{hook}", headers=auth.headers()).get_json() == {
        "deleted": hook}
    assert alice.get(f"/api/webhooks/{hook}").status_code == 404


def test_test_sends_a_signed_ping_and_the_log_shows_it(app: Flask, two_users: Any,
                                                        endpoint: Any) -> None:
    (alice, auth, _), _ = two_users
    made = alice.post("/api/webhooks", json={"url": endpoint.url, "events": ["run.failed"]},
                      headers=auth.headers()).get_json()
    endpoint.answer(Answer(500))
    queued = alice.post(f"/api/webhooks/{made['id']}/test", headers=auth.headers())
    assert queued.status_code == 202 and endpoint.requests() == []   # not in the request
    assert deliver(app) == 1
    [request] = endpoint.requests()
    body = Verifier(made["secret"]).verify(request.body, request.headers)
    assert body["type"] == "ping" and body["data"]["webhook_id"] == made["id"]
    assert request.headers["webhook-id"] == queued.get_json()["delivery_id"]
    log = alice.get(f"/api/webhooks/{made['id']}/deliveries").get_json()["deliveries"]
    assert [(d["type"], d["attempt"], d["status_code"]) for d in log] == [("ping", 1, 500)]
    assert set(log[0]) >= {"id", "type", "attempt", "status_code", "duration_ms", "error",
                           "created_at"}
    page = alice.get(f"/webhooks/{made['id']}").get_data(as_text=True)
    assert "HTTP 500" in page and endpoint.url in page
    assert alice.get(f"/api/webhooks/{made['id']}/deliveries?limit=0").status_code == 400


def test_the_account_section_adds_pings_and_deletes(app: Flask, two_users: Any,
                                                     endpoint: Any) -> None:
    (alice, auth, _), _ = two_users
    page = alice.get("/account").get_data(as_text=True)
    assert 'id="webhooks"' in page and "No webhooks yet." in page
    answer = alice.post("/webhooks", data={"url": endpoint.url, "events": ["run.failed"],
                                           "csrf_token": auth.csrf_token()})
    assert answer.status_code == 200
    shown = answer.get_data(as_text=True)
    assert 'id="webhook-secret">whsec_' in shown
    [hook] = alice.get("/api/webhooks").get_json()["webhooks"]
    page = alice.get("/account").get_data(as_text=True)
    assert endpoint.url in page and "whsec_" not in page
    answer = alice.post(f"/webhooks/{hook['id']}/test", data={"csrf_token": auth.csrf_token()})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("#webhooks")
    deliver(app)
    assert [r.path for r in endpoint.requests()] == ["/hook"]
    bad = alice.post("/webhooks", data={"url": "nope", "events": ["run.failed"],
                                        "csrf_token": auth.csrf_token()})
    assert bad.status_code == 400 and 'id="webhook-error"' in bad.get_data(as_text=True)
    alice.post(f"/webhooks/{hook['id']}/delete", data={"csrf_token": auth.csrf_token()})
    assert alice.get("/api/webhooks").get_json() == {"webhooks": []}


def test_a_run_event_reaches_the_subscribed_webhook_through_the_app(
        app: Flask, two_users: Any, endpoint: Any) -> None:
    (alice, auth, alice_id), _ = two_users
    made = alice.post("/api/webhooks", json={"url": endpoint.url, "events": ["run.failed"]},
                      headers=auth.headers()).get_json()
    finished_run(app, alice_id)                 # completed: not subscribed
    failed = finished_run(app, alice_id, "failed")
    deliver(app)
    [request] = endpoint.requests()
    body = Verifier(made["secret"]).verify(request.body, request.headers)
    assert body["type"] == "run.failed" and body["data"]["run_id"] == failed.id


def test_a_connection_brings_its_own_users_unread_count(app: Flask, two_users: Any) -> None:
    """The bell's count comes with connection_status: no HTTP call races a sign-out."""
    (alice, _, alice_id), (bob, _, _) = two_users
    finished_run(app, alice_id)
    assert deliver(app) == 1

    def status_of(client: FlaskClient) -> dict[str, Any]:
        sock = socketio_of(app).test_client(app, flask_test_client=client)
        [status] = [e["args"][0] for e in sock.get_received() if e["name"] == "connection_status"]
        sock.disconnect()
        return status

    assert status_of(alice)["unread"] == 1
    assert status_of(bob)["unread"] == 0
