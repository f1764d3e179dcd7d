"""The real portal in a subprocess: a run's notification arrives live on its owner's socket
only, and a webhook delivery pending at ``kill -9`` of the portal is delivered once after the
restart (the same ``webhook-id``, verified with ``standardwebhooks``)."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from tests.notifications.receivers import Answer
from tests.support.live_server import unique_email
from tests.support.procs import wait_until

pytestmark = pytest.mark.slow


def test_the_notification_reaches_its_owner_live_and_only_them(live_server: Any) -> None:
    alice = live_server.register(unique_email("alice"))
    bob = live_server.register(unique_email("bob"))
    site = live_server.add_local_site(alice)
    alice_socket, bob_socket = live_server.socket(alice), live_server.socket(bob)
    run_id = live_server.start_run(alice, site, ["one", "fail-two"], steps=1)
    alice_socket.wait_for(lambda _: any(n["run_id"] == run_id for n in
                                        alice_socket.events("notification")),
                          what="alice's notification")
    [note] = [n for n in alice_socket.events("notification") if n["run_id"] == run_id]
    assert note["type"] == "run.completed" and note["unread"] >= 1
    assert "Failed: fail-two" in note["message"]
    listed = alice.get(f"{live_server.url}/api/notifications", timeout=10).json()
    assert note["id"] in [n["id"] for n in listed["notifications"]]
    assert bob_socket.events("notification") == []
    assert bob.get(f"{live_server.url}/api/notifications", timeout=10).json() == {
        "notifications": [], "unread": 0}


def test_a_delivery_pending_at_kill_9_is_delivered_once_after_the_restart(
        live_server_factory: Any, endpoint: Any) -> None:
    server = live_server_factory(TICKZEN_WEBHOOK_RETRY_SECONDS="5").start()
    alice = server.register(unique_email("alice"))
    site = server.add_local_site(alice)
    made = alice.post(f"{server.url}/api/webhooks", timeout=10,
                      json={"url": endpoint.url, "events": ["run.completed"]})
    assert made.status_code == 201, made.text
    hook = made.json()
    endpoint.answer(Answer(503))
    run_id = server.start_run(alice, site, ["alpha"], steps=1)
    server.wait_run(alice, run_id)

    def pending_retry() -> Any:
        store = server.open_store()
        try:
            rows = store.list_webhook_attempts(server.user_id(alice.tickzen_email), hook["id"])
            return rows and [d for n in store.list_notifications(rows[0].user_id)
                             for d in store.list_deliveries(n.id)
                             if d.channel == "webhook" and d.state == "pending"
                             and d.lease_owner is None]
        finally:
            store.close()

    wait_until(pending_retry, "the first attempt's 503 recorded, the retry pending")
    server.kill()                                  # kill -9: the retry is only in the store
    assert [r.status for r in endpoint.requests()] == [503]

    server.start()
    wait_until(lambda: len(endpoint.requests()) >= 2, "the retry after the restart")
    alice = server.login(alice.tickzen_email)
    wait_until(lambda: alice.get(f"{server.url}/api/webhooks/{hook['id']}/deliveries",
                                 timeout=10).json()["deliveries"][0]["status_code"] == 200,
               "the delivery log to show the success")
    requests = endpoint.requests()
    assert [r.status for r in requests] == [503, 200]
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"]
    body = Verifier(hook["secret"]).verify(requests[1].body, requests[1].headers)
    assert body["type"] == "run.completed" and body["data"]["run_id"] == run_id
    log = alice.get(f"{server.url}/api/webhooks/{hook['id']}/deliveries", timeout=10).json()
    assert [(d["attempt"], d["status_code"]) for d in log["deliveries"]] == [(2, 200),
                                                                             (1, 503)]
