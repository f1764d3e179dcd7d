"""Runs with several items in flight against the REAL WordPress (tests/support/wordpress.py):
a site at concurrency 4, the real PublishingService and ledger, articles made in the
generation processes. Every item exactly once in the ledger and on WordPress (posts listed by
slug), the stored events sound, pause with four items inside WordPress, 429 + Retry-After, and
``kill -9`` of the live portal with items in flight (the kill harness of tests/engine/test_live.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runner.manager import RunManager
from tests.support.cpu_automation import CpuTestAutomation
from tests.support.fault_proxy import FaultProxy, Injected
from tests.support.live_server import unique_email
from tests.support.procs import wait_until
from tests.support.test_automations import TestAutomation, read_record

pytestmark = pytest.mark.wordpress

POSTS = ("POST", "/wp-json/wp/v2/posts")
MEDIA = ("POST", "/wp-json/wp/v2/media")


def names_for(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"cc{tag}-{n}" for n in range(count)]


def slug_of(name: str) -> str:
    return f"{name}-test"


def assert_each_once(wordpress: Any, store: Any, user_id: str, site_id: str,
                     names: list[str]) -> None:
    """One post per item on WordPress (by slug, any status), published in the ledger with
    that post's id."""
    ledger = {p.slug: p for p in store.list_posts(user_id, site_id, limit=500)}
    family: dict[str, list[dict[str, Any]]] = {}
    for post in wordpress.list_posts(search=names[0].split("-")[0], per_page=100):
        family.setdefault(post["slug"], []).append(post)
    for name in names:
        slug = slug_of(name)
        assert len(family.get(slug, [])) == 1, (slug, family.get(slug))
        assert not any(s.startswith(slug + "-") for s in family), f"a duplicate of {slug}"
        assert ledger[slug].status == "published"
        assert ledger[slug].post_id == str(family[slug][0]["id"])


def assert_sound(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents)


@pytest.fixture
def make_runner(store, make_service, tmp_path) -> Iterator[Callable[..., RunManager]]:
    made: list[RunManager] = []

    def factory(service: Any = None, **kwargs: Any) -> RunManager:
        options: dict[str, Any] = {"workdir_root": tmp_path / "work", "lease_seconds": 5.0,
                                   "progress_max_per_second": 0, "generation_processes": 2}
        options.update(kwargs)
        manager = RunManager(store, lambda *a: None,
                             {"test": TestAutomation(), "test_cpu": CpuTestAutomation()},
                             service or make_service(), **options)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        manager.shutdown(timeout=20)


def finish(store: Any, manager: RunManager, run_id: str, statuses: tuple[str, ...]) -> str:
    status = wait_until(lambda: (s := store.get_run(run_id).status) in statuses and s,
                        f"the run to become one of {statuses}", timeout=120)
    assert manager.join(run_id, timeout=60)
    return status


def test_a_run_at_concurrency_4_publishes_every_item_once(
        wordpress, wp_site, make_runner, make_fault_proxy, store, user, tmp_path):
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url)
    site = wp_site(url=proxy.base_url, defaults={"concurrency": 4})
    manager = make_runner()
    names = names_for(12)
    record = tmp_path / "calls.log"
    run, _ = manager.submit(user.id, "test_cpu", site.id, names,
                            {"status": "publish", "steps": 2, "record": str(record)})
    assert finish(store, manager, run.id, ("completed", "failed")) == "completed"

    assert [i.status for i in store.list_items(run.id)] == ["published"] * 12
    assert_each_once(wordpress, store, user.id, site.id, names)
    assert proxy.seen.count(POSTS) == 12                  # one create per item, no retry
    assert proxy.most_in_flight <= 4                      # the site's concurrency
    assert sorted(read_record(record)) == sorted(f"process {slug_of(n)}" for n in names)
    assert_sound(store.list_events(run.id))
    assert store.get_run(run.id).percent == 100


def test_pause_with_four_items_inside_wordpress_then_resume_publishes_each_once(
        wordpress, wp_site, make_runner, make_fault_proxy, store, user, tmp_path):
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url, hold={POSTS: 4})
    site = wp_site(url=proxy.base_url, defaults={"concurrency": 4})
    manager = make_runner()
    names = names_for(10)
    run, _ = manager.submit(user.id, "test_cpu", site.id, names,
                            {"status": "publish", "steps": 2})
    wait_until(lambda: proxy.seen.count(POSTS) == 4, "four create requests held at once")
    assert manager.pause(run.id, user.id).status == "pausing"
    time.sleep(0.3)                     # the four are inside WordPress: the run waits
    assert store.get_run(run.id).status == "pausing"
    # two generation processes: the four first made (not always items 1-4) are the ones held
    held = {i.position for i in store.list_items(run.id) if i.status == "publishing"}
    assert len(held) == 4
    proxy.gate.set()
    assert finish(store, manager, run.id, ("paused",)) == "paused"
    statuses = {i.position: i.status for i in store.list_items(run.id)}
    assert {statuses[p] for p in held} == {"published"}
    assert {s for p, s in statuses.items() if p not in held} == {"pending"}
    assert store.list_events(run.id)[-1]["stage"] == "paused"

    manager.resume(run.id, user.id)
    assert finish(store, manager, run.id, ("completed", "failed")) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 10
    assert_each_once(wordpress, store, user.id, site.id, names)
    assert proxy.seen.count(POSTS) == 10
    assert_sound(store.list_events(run.id))


def test_429_with_retry_after_is_waited_out_at_concurrency_4(
        wordpress, wp_site, make_runner, make_fault_proxy, make_service, store, user, sleeps):
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url, inject={
        MEDIA: Injected(429, times=2, headers={"Retry-After": "3"}),
        POSTS: Injected(429, times=1, headers={"Retry-After": "2"})})
    site = wp_site(url=proxy.base_url, defaults={"concurrency": 4})
    manager = make_runner()
    names = names_for(6)

    class WithImage(TestAutomation):
        __test__ = False
        kind = "test_image"

        def process(self, item, ctx):
            from automation_scripts.base import Image
            from tests.publishing.conftest import png_bytes

            article = super().process(item, ctx)
            article.images = [Image(f"{item.key}.png", png_bytes(), "chart", "featured")]
            return article

    manager.automations["test_image"] = WithImage()
    run, _ = manager.submit(user.id, "test_image", site.id, names, {"status": "publish"})
    assert finish(store, manager, run.id, ("completed", "failed")) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 6
    assert_each_once(wordpress, store, user.id, site.id, names)
    # every 429 was answered by waiting what WordPress asked for, then trying again; the
    # site's other slots waited with it (the rest of the wait), never longer than asked
    waits = [s for s in sleeps if s > 0]
    assert max(waits) <= 3.0 and sum(s > 2.5 for s in waits) >= 2
    assert len(waits) > 3
    assert proxy.seen.count(MEDIA) == 6 + 2


# ---------------------------------------------------------------------------------------------
# kill -9 of the live portal with items in flight.


def test_kill_9_with_items_in_flight_then_resume_publishes_each_once(
        live_server_factory, wordpress, make_fault_proxy, tmp_path):
    # The first four create requests are held in the proxy: four items are inside WordPress
    # when the portal dies, and their posts are made after it died (the answers are lost).
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url, hold={POSTS: 4})
    server = live_server_factory(
        TICKZEN_AUTOMATION_MODULES="", TICKZEN_GENERATION_PROCESSES=2,
        TICKZEN_EXTRA_AUTOMATIONS="tests.support.test_automations,"
                                  "tests.support.cpu_automation").start()
    email = unique_email("kill")
    alice = server.register(email)
    response = alice.post(f"{server.url}/api/sites", timeout=30, json={
        "name": "WP", "kind": "wordpress", "url": proxy.base_url,
        "username": wordpress.admin_user, "app_password": wordpress.admin_app_password,
        "default_status": "publish", "concurrency": 4})
    assert response.status_code == 201, response.text
    site_id = response.json()["id"]
    assert response.json()["concurrency"] == 4
    names = names_for(10)
    record = tmp_path / "calls.log"
    run_id = server.start_run(alice, site_id, names, kind="test_cpu", steps=3, delay=0.02,
                              record=str(record))
    wait_until(lambda: proxy.seen.count(POSTS) == 4, "four create requests inside WordPress")
    wait_until(lambda: len(read_record(record)) >= 6, "the next items being generated")
    server.kill()

    store = server.open_store()
    try:
        before = [i.status for i in store.list_items(run_id)]
    finally:
        store.close()
    assert before.count("publishing") == 4 and "pending" in before
    proxy.gate.set()                    # WordPress makes the four posts nobody hears about
    held = [slug_of(n) for n in names]
    wait_until(lambda: sum(len(wordpress.list_posts(slug=s)) for s in held) == 4,
               "the four held posts to be made on WordPress")

    server.start()
    alice = server.login(email)
    assert server.run(alice, run_id)["status"] == "interrupted"
    assert alice.post(f"{server.url}/api/runs/{run_id}/resume", timeout=30).status_code == 200
    run = server.wait_run(alice, run_id, timeout=120)
    assert [i["status"] for i in run["items"]] == ["published"] * 10

    store = server.open_store()
    try:
        user_id = store.get_user_by_email(email).id
        assert_each_once(wordpress, store, user_id, site_id, names)
        events = store.list_events(run_id)
        found = [i for i in store.list_items(run_id) if (i.result or {}).get("existed")]
    finally:
        store.close()
    assert len(found) == 4              # the four made while the portal was dead were found
    assert proxy.seen.count(POSTS) == 10       # the four held ones were not made again
    assert_sound(events)

