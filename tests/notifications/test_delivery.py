"""The delivery thread against real receivers: the portal push, email through a real SMTP server
(aiosmtpd) and Standard Webhooks to a real HTTP endpoint, retries on a clock the test moves,
and crashes between the commit and the delivery on both backends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook as Verifier

from runner.delivery import DeliveryWorker, parse_retry_seconds
from runner.mailer import Mailer
from runner.notifications import Notices
from runner.webhook_sender import WebhookSender, new_secret
from storage.base import NewItem, Run, Store, utcnow
from storage.notification_records import Webhook
from storage.secrets import SecretBox
from tests.notifications.conftest import Clock, Emitted, Owner, make_owner, make_run
from tests.notifications.receivers import Answer
from tests.support.procs import free_port, wait_until

PUBLIC = "https://portal.example"
BOX = SecretBox(SecretBox.generate_key())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_worker(clock: Clock) -> Iterator[Callable[..., DeliveryWorker]]:
    made: list[DeliveryWorker] = []

    def factory(store: Store, *, owner: str = "instance-a", emit: Any = None,
                mailer: Mailer | None = None, allow_private_urls: bool = True,
                webhook_retry: str = "5,30", email_retry: str = "10,60",
                timeout: tuple[float, float] = (2.0, 5.0)) -> DeliveryWorker:
        worker = DeliveryWorker(
            store, owner=owner, emit=emit or Emitted(),
            notices=Notices(store, email_enabled=mailer is not None, public_url=PUBLIC),
            webhooks=WebhookSender(allow_private_urls=allow_private_urls, timeout=timeout),
            secrets=BOX, mailer=mailer, public_url=PUBLIC,
            webhook_retry=parse_retry_seconds(webhook_retry),
            email_retry=parse_retry_seconds(email_retry), lease_seconds=60, clock=clock)
        made.append(worker)
        return worker

    yield factory
    for worker in made:
        worker.stop()


def finish(store: Store, owner: Owner, notices: Notices, items: tuple[str, ...] = ("a",),
           failed: dict[int, str] | None = None) -> Run:
    """A run whose items ended (some failed), then its completion with its events."""
    run = make_run(store, owner, items)
    for position in range(len(items)):
        error = (failed or {}).get(position)
        store.transition_item(run.id, position, ["pending"], "failed" if error else "published",
                              error=error)
    return store.transition_run(run.id, ["running"], "completed",
                                outbox=notices.run_finished(run.id, "completed"))


def work(worker: DeliveryWorker, clock: Clock) -> int:
    clock.catch_up()
    return worker.run_once()


def hook_for(store: Store, owner: Owner, url: str, events: tuple[str, ...] = ("run.completed",)
             ) -> tuple[Webhook, str]:
    secret = new_secret()
    hook = store.create_webhook(Webhook(id="", user_id=owner.user_id, url=url,
                                        events=list(events), secret_enc=BOX.encrypt(secret)))
    return hook, secret


# -- the portal push, and crashes --------------------------------------------------------------

def test_the_portal_push_is_the_notification_with_the_unread_count(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock) -> None:
    ann = make_owner(store)
    emitted = Emitted()
    worker = make_worker(store, emit=emitted)
    run = finish(store, ann, worker.notices, ("a", "b"), failed={1: "boom"})
    assert work(worker, clock) == 1
    [(body, room)] = emitted.of("notification")
    assert room == f"user_{ann.user_id}"
    [note] = store.list_notifications(ann.user_id)
    assert body == {"id": note.id, "type": "run.completed", "title": note.title,
                    "message": note.message, "run_id": run.id, "campaign_id": None,
                    "link": f"/runs/{run.id}", "created_at": note.created_at.isoformat(),
                    "read": False, "unread": 1}
    assert work(worker, clock) == 0 and len(emitted.of("notification")) == 1
    [delivery] = store.list_deliveries(note.id)
    assert delivery.state == "delivered" and delivery.attempts == 1


def test_a_crash_between_the_commit_and_the_delivery_loses_and_repeats_nothing(
        open_handle: Callable[[], Store], make_worker: Callable[..., DeliveryWorker],
        clock: Clock) -> None:
    first = open_handle()
    ann = make_owner(first)
    finish(first, ann, Notices(first))          # committed; the process dies before delivering
    first.close()

    restarted = open_handle()                   # a new process on the same data
    emitted = Emitted()
    worker = make_worker(restarted, owner="instance-b", emit=emitted)
    assert work(worker, clock) == 1
    assert work(worker, clock) == 0
    assert len(emitted.of("notification")) == 1
    assert len(restarted.list_notifications(ann.user_id)) == 1


def test_a_claimer_that_dies_mid_delivery_is_replaced_after_its_lease(
        open_handle: Callable[[], Store], make_worker: Callable[..., DeliveryWorker],
        clock: Clock, endpoint: Any) -> None:
    store = open_handle()
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    finish(store, ann, Notices(store))
    now = clock.catch_up()
    dead = store.claim_deliveries("dead-instance", now, now + timedelta(seconds=60))
    assert {d.channel for d in dead} == {"portal", "webhook"}     # then it was killed

    emitted = Emitted()
    survivor = make_worker(open_handle(), owner="instance-b", emit=emitted)
    assert work(survivor, clock) == 0                  # the dead one's lease still runs
    clock.advance(61)
    assert work(survivor, clock) == 2
    assert len(emitted.of("notification")) == 1 and len(endpoint.requests()) == 1
    assert work(survivor, clock) == 0
    [request] = endpoint.requests()
    assert request.headers["webhook-id"] == next(d.id for d in dead if d.channel == "webhook")


# -- email --------------------------------------------------------------------------------------

def mailer_for(server: Any) -> Mailer:
    return Mailer.from_url(server.url, "TickZen <alerts@tickzen.example>", timeout=5)


def test_one_email_per_event_with_counts_failed_items_and_absolute_links(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        mail_server: Any) -> None:
    ann = make_owner(store)
    store.update_user_settings(ann.user_id, {"email_events": ["run.completed"]})
    worker = make_worker(store, mailer=mailer_for(mail_server))
    run = finish(store, ann, worker.notices, ("alpha", "beta", "gamma"),
                 failed={1: "the chart <broke>", 2: "no data"})
    assert work(worker, clock) == 2                             # portal + email
    [(to, message)] = mail_server.messages()
    assert to == [ann.email]
    assert message["Subject"] == "[TickZen] Run completed: Test run on Archive"
    assert message["From"] == "TickZen <alerts@tickzen.example>"
    assert message["X-TickZen-Event"] == "run.completed"
    [note] = store.list_notifications(ann.user_id)
    assert message["Message-ID"] == f"<{note.id}@tickzen.example>"
    text = message.get_body(("plain",)).get_content()
    page = message.get_body(("html",)).get_content()
    for expected in ("Run: Test run on Archive", "Items: 3 — 1 published, 0 skipped, 2 failed",
                     "beta: the chart <broke>", "gamma: no data",
                     f"{PUBLIC}/runs/{run.id}", f"{PUBLIC}/account"):
        assert expected in text, expected
    assert "the chart &lt;broke&gt;" in page and "<broke>" not in page
    assert f'href="{PUBLIC}/runs/{run.id}"' in page
    assert work(worker, clock) == 0 and len(mail_server.messages()) == 1


def test_only_the_chosen_event_types_email(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        mail_server: Any) -> None:
    ann = make_owner(store)
    store.update_user_settings(ann.user_id, {"email_events": ["run.failed"]})
    worker = make_worker(store, mailer=mailer_for(mail_server))
    finish(store, ann, worker.notices)                           # completed: not chosen
    failing = make_run(store, ann)
    store.transition_run(failing.id, ["running"], "failed", error="the store went away",
                         outbox=worker.notices.run_finished(failing.id, "failed",
                                                            error="the store went away"))
    work(worker, clock)
    [(_, message)] = mail_server.messages()
    assert message["Subject"].startswith("[TickZen] Run failed:")
    assert "the store went away" in message.get_body(("plain",)).get_content()


def test_a_failing_smtp_server_is_retried_with_backoff_and_recorded(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        mail_server: Any) -> None:
    ann = make_owner(store)
    store.update_user_settings(ann.user_id, {"email_events": ["run.completed"]})
    mail_server.stop()                                            # down
    worker = make_worker(store, mailer=mailer_for(mail_server), email_retry="10,60")
    finish(store, ann, worker.notices)
    work(worker, clock)
    [note] = store.list_notifications(ann.user_id)
    email = next(d for d in store.list_deliveries(note.id) if d.channel == "email")
    assert email.state == "pending" and "unreachable" in email.last_error
    assert email.next_attempt_at == clock.now + timedelta(seconds=10)
    assert work(worker, clock) == 0                               # not due yet
    clock.advance(10)
    work(worker, clock)                                           # still down: 60 s next
    email = next(d for d in store.list_deliveries(note.id) if d.channel == "email")
    assert (email.state, email.attempts) == ("pending", 2)
    assert email.next_attempt_at == clock.now + timedelta(seconds=60)
    mail_server.start()
    clock.advance(60)
    work(worker, clock)
    email = next(d for d in store.list_deliveries(note.id) if d.channel == "email")
    assert (email.state, email.attempts) == ("delivered", 3)
    assert len(mail_server.messages()) == 1


def test_an_smtp_server_down_past_the_last_attempt_fails_the_email_only(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock) -> None:
    ann = make_owner(store)
    store.update_user_settings(ann.user_id, {"email_events": ["run.completed"]})
    nowhere = Mailer.from_url(f"smtp://127.0.0.1:{free_port()}", "a@tickzen.example",
                              timeout=2)
    worker = make_worker(store, mailer=nowhere, email_retry="1")
    finish(store, ann, worker.notices)
    work(worker, clock)
    clock.advance(1)
    work(worker, clock)
    [note] = store.list_notifications(ann.user_id)
    states = {d.channel: d.state for d in store.list_deliveries(note.id)}
    assert states == {"portal": "delivered", "email": "failed"}


# -- webhooks -----------------------------------------------------------------------------------

def test_a_webhook_delivery_is_signed_per_standard_webhooks(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, secret = hook_for(store, ann, endpoint.url)
    worker = make_worker(store)
    run = finish(store, ann, worker.notices, ("a", "b"), failed={0: "boom"})
    work(worker, clock)
    [request] = endpoint.requests()
    body = Verifier(secret).verify(request.body, request.headers)
    assert body["type"] == "run.completed"
    assert body["data"]["run_id"] == run.id and body["data"]["url"] == f"{PUBLIC}/runs/{run.id}"
    assert body["data"]["failed_items"] == [{"key": "a-test", "label": "a", "error": "boom"}]
    assert request.headers["webhook-id"].endswith(f".webhook.{hook.id}")
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(Exception, match="signature"):
        Verifier(new_secret()).verify(request.body, request.headers)
    [row] = store.list_webhook_attempts(ann.user_id, hook.id)
    assert (row.attempt, row.status_code, row.error, row.type) == (1, 200, None,
                                                                   "run.completed")


def test_500_then_503_then_200_is_three_attempts_of_one_delivery(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, secret = hook_for(store, ann, endpoint.url)
    endpoint.answer(Answer(500, body=b"database down"), Answer(503))
    worker = make_worker(store, webhook_retry="5,30,120")
    finish(store, ann, worker.notices)
    work(worker, clock)
    clock.advance(5)
    work(worker, clock)
    assert work(worker, clock) == 0                        # the second wait is 30 s
    clock.advance(30)
    work(worker, clock)
    requests = endpoint.requests()
    assert [r.status for r in requests] == [500, 503, 200]
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert all(Verifier(secret).verify(r.body, r.headers) for r in requests)
    log = store.list_webhook_attempts(ann.user_id, hook.id)
    assert [(a.attempt, a.status_code) for a in log] == [(3, 200), (2, 503), (1, 500)]
    assert log[2].error == "HTTP 500: database down"
    assert not store.get_webhook(ann.user_id, hook.id).failing


def test_429_waits_as_long_as_retry_after_says(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    endpoint.answer(Answer(429, {"Retry-After": "120"}))
    worker = make_worker(store, webhook_retry="5,30")
    finish(store, ann, worker.notices)
    work(worker, clock)
    webhook = next(d for n in store.list_notifications(ann.user_id)
                   for d in store.list_deliveries(n.id) if d.channel == "webhook")
    assert webhook.next_attempt_at == clock.now + timedelta(seconds=120)
    clock.advance(30)
    assert work(worker, clock) == 0                        # the schedule alone said 5 s
    clock.advance(90)
    work(worker, clock)
    assert [r.status for r in endpoint.requests()] == [429, 200]


def test_a_400_is_not_retried_and_marks_the_webhook_failing(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    endpoint.answer(Answer(400, body=b"unknown event"))
    worker = make_worker(store)
    finish(store, ann, worker.notices)
    work(worker, clock)
    clock.advance(3600)
    work(worker, clock)
    assert [r.status for r in endpoint.requests()] == [400]
    flagged = store.get_webhook(ann.user_id, hook.id)
    assert flagged.failing and flagged.last_error == "HTTP 400: unknown event"
    notes = store.list_notifications(ann.user_id)
    assert [n.type for n in notes] == ["webhook.failing", "run.completed"]
    assert notes[0].link == "/account#webhooks" and endpoint.url in notes[0].message


def test_after_the_last_attempt_the_owner_is_told_once_and_a_success_heals(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    endpoint.default = Answer(502)
    worker = make_worker(store, webhook_retry="5")
    finish(store, ann, worker.notices)
    finish(store, ann, worker.notices)
    work(worker, clock)
    clock.advance(5)
    work(worker, clock)
    assert [r.status for r in endpoint.requests()] == [502] * 4    # 2 deliveries x 2 attempts
    assert store.get_webhook(ann.user_id, hook.id).failing
    kinds = [n.type for n in store.list_notifications(ann.user_id)]
    assert kinds.count("webhook.failing") == 1                     # one notice per spell
    endpoint.default = Answer(204)
    finish(store, ann, worker.notices)
    work(worker, clock)
    healed = store.get_webhook(ann.user_id, hook.id)
    assert not healed.failing and healed.last_success_at is not None


def test_redirects_are_not_followed(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    endpoint.answer(Answer(302, {"Location": endpoint.url + "/elsewhere"}))
    worker = make_worker(store)
    finish(store, ann, worker.notices)
    work(worker, clock)
    assert [r.path for r in endpoint.requests()] == ["/hook"]
    [row] = store.list_webhook_attempts(ann.user_id, hook.id)
    assert row.status_code == 302 and "redirects are not followed" in row.error


def test_a_private_address_is_refused_when_private_urls_are_not_allowed(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    worker = make_worker(store, allow_private_urls=False)
    finish(store, ann, worker.notices)
    work(worker, clock)
    assert endpoint.requests() == []
    [row] = store.list_webhook_attempts(ann.user_id, hook.id)
    assert row.status_code is None and "private or local address" in row.error


def test_a_timeout_is_retried(store: Store, make_worker: Callable[..., DeliveryWorker],
                              clock: Clock, endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    endpoint.answer(Answer(200, delay=3))
    worker = make_worker(store, timeout=(2.0, 0.5))
    finish(store, ann, worker.notices)
    work(worker, clock)
    clock.advance(5)
    work(worker, clock)
    log = store.list_webhook_attempts(ann.user_id, hook.id)
    assert [(a.attempt, a.status_code, a.error) for a in log] == [(2, 200, None),
                                                                  (1, None, "timed out")]


def test_a_deleted_webhook_gets_nothing(
        store: Store, make_worker: Callable[..., DeliveryWorker], clock: Clock,
        endpoint: Any) -> None:
    ann = make_owner(store)
    hook, _ = hook_for(store, ann, endpoint.url)
    worker = make_worker(store)
    finish(store, ann, worker.notices)
    store.delete_webhook(ann.user_id, hook.id)
    work(worker, clock)
    assert endpoint.requests() == []
    [note] = store.list_notifications(ann.user_id)
    webhook = next(d for d in store.list_deliveries(note.id) if d.channel == "webhook")
    assert (webhook.state, webhook.last_error) == ("failed", "the webhook was deleted")


def test_the_thread_delivers_on_its_own_and_stops(
        store: Store, make_worker: Callable[..., DeliveryWorker], endpoint: Any,
        tmp_path: Path) -> None:
    ann = make_owner(store)
    hook_for(store, ann, endpoint.url, events=("run.cancelled",))
    emitted = Emitted()
    worker = DeliveryWorker(store, owner="thread", emit=emitted, notices=Notices(store),
                            webhooks=WebhookSender(allow_private_urls=True), secrets=BOX,
                            poll_seconds=0.05)
    worker.start()
    try:
        assert worker.health()["status"] == "ok"
        run = store.create_run(Run(id="", user_id=ann.user_id, kind="test",
                                   site_id=ann.site_id, status="running"),
                               [NewItem("a", {"name": "a"})])
        store.transition_run(run.id, ["running"], "cancelled",
                             outbox=worker.notices.run_finished(run.id, "cancelled"))
        worker.wake()
        wait_until(lambda: endpoint.requests() and emitted.of("notification"),
                   "both deliveries", timeout=30)
    finally:
        worker.stop()
    assert worker.health()["status"] == "stopped"
    assert json.loads(endpoint.requests()[0].body)["type"] == "run.cancelled"


def test_retry_schedules_are_checked() -> None:
    assert parse_retry_seconds("5, 30,120,600") == (5.0, 30.0, 120.0, 600.0)
    for bad in ("", "5,soon", "-1", "nan"):
        with pytest.raises(ValueError):
            parse_retry_seconds(bad)
    assert utcnow()
