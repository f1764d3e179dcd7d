"""Exactly-once with several workers on one slug, against the REAL WordPress.

A stalled-but-alive owner and the instance that took its run over both publish the same item:
the ledger names the reservation's holder, a second worker waits for a live holder and takes a
stale one over by compare-and-set, a holder that lost its claim creates nothing, and a duplicate
WordPress made anyway (``-2`` slug, or two drafts) is deleted right after creation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from automation_scripts.publishing import PublishResult
from automation_scripts.publishing.wordpress import WordPressPublisher
from automation_scripts.publishing.wordpress_client import RetryPolicy, WordPressClient
from storage.base import LedgerEntry
from storage.sqlite import SQLiteStore
from tests.publishing.conftest import make_article
from tests.support.fault_proxy import FaultProxy
from tests.support.procs import wait_until

pytestmark = pytest.mark.wordpress

POSTS = ("POST", "/wp-json/wp/v2/posts")
LOOKUPS = ("GET", "/wp-json/wp/v2/posts")


def _same_slug_family(wordpress: Any, slug: str) -> list[dict[str, Any]]:
    """Every post whose slug is ours or ours with WordPress's ``-N`` suffix."""
    return [p for p in wordpress.list_posts(search=slug.split("-")[-1], per_page=100)
            if p["slug"] == slug or p["slug"].startswith(slug + "-")]


class Worker(threading.Thread):
    """One publish call on its own thread; keeps its result or error."""

    def __init__(self, call: Callable[[], PublishResult]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.result: PublishResult | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc


def test_two_workers_racing_one_slug_make_exactly_one_post(
        wordpress, wp_site, make_service, user, store, tmp_path, make_fault_proxy):
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url, hold={POSTS: 1})
    site = wp_site(url=proxy.base_url)
    article = make_article()
    # Two instances: each its own connection to the same database.
    stores = [SQLiteStore(tmp_path / "publishing.db") for _ in range(2)]
    first, second = (make_service(s, poll_interval=0.05, sleep=time.sleep) for s in stores)

    def publish(service: Any, run: str) -> Callable[[], PublishResult]:
        return lambda: service.publish(user.id, site.id, article, run_id=run, kind="stock",
                                       options={"status": "publish"})

    owner = Worker(publish(first, "run-owner"))
    owner.start()
    assert proxy.arrived.wait(60), "the owner never sent its create request"
    # The owner is stalled inside its create request; the second worker starts now.
    lookups_before = proxy.seen.count(LOOKUPS)
    taker = Worker(publish(second, "run-taker"))
    taker.start()
    # Let the second worker do what it does with a live holder: it must not create a post
    # (the old code looked the slug up once, found nothing and created a second post).
    wait_until(lambda: not taker.is_alive() or proxy.seen.count(LOOKUPS) - lookups_before >= 3,
               "the second worker to finish or to keep watching")
    proxy.gate.set()
    owner.join(120)
    taker.join(120)
    for s in stores:
        s.close()

    assert owner.error is None and taker.error is None, (owner.error, taker.error)
    assert owner.result and taker.result
    assert owner.result.post_id == taker.result.post_id
    assert owner.result.existed is False and taker.result.existed is True
    assert proxy.seen.count(POSTS) == 1
    posts = _same_slug_family(wordpress, article.slug)
    assert [str(p["id"]) for p in posts] == [owner.result.post_id]
    entry = store.get_post(user.id, site.id, article.slug)
    assert entry.status == "published" and entry.post_id == owner.result.post_id


def _reserve_as(store: SQLiteStore, user_id: str, site_id: str, slug: str, attempt: str,
                at: datetime) -> None:
    """A reservation some other (dead or alive) worker holds since ``at``."""
    store.reserve_post(LedgerEntry(user_id, site_id, slug, slug, "stock", "old-run",
                                   day=at.date().isoformat(), created_at=at, attempt=attempt,
                                   reserved_at=at))


def test_a_stale_reservation_is_taken_over_at_once(wordpress, wp_site, make_service, user,
                                                   store):
    site = wp_site()
    article = make_article()
    _reserve_as(store, user.id, site.id, article.slug, "dead", datetime.now(UTC)
                - timedelta(hours=1))
    waits: list[float] = []
    service = make_service(sleep=waits.append)

    result = service.publish(user.id, site.id, article, run_id="new", kind="stock",
                             options={"status": "publish"})

    assert waits == [] and result.existed is False
    assert [str(p["id"]) for p in _same_slug_family(wordpress, article.slug)] == [
        result.post_id]
    entry = store.get_post(user.id, site.id, article.slug)
    assert entry.status == "published" and entry.attempt != "dead"


def test_a_fresh_reservation_of_an_earlier_attempt_of_the_same_run_is_taken_over_at_once(
        wordpress, wp_site, make_service, user, store):
    # kill -9 mid-publish, restart, resume: the run's lease already says the old attempt is
    # gone; the resumed run must not wait out the reservation's TTL for every such item.
    site = wp_site()
    article = make_article()
    _reserve_as(store, user.id, site.id, article.slug, "killed", datetime.now(UTC))
    waits: list[float] = []
    service = make_service(sleep=waits.append)

    result = service.publish(user.id, site.id, article, run_id="old-run", kind="stock",
                             options={"status": "publish"})

    assert waits == [] and result.existed is False
    assert [str(p["id"]) for p in _same_slug_family(wordpress, article.slug)] == [
        result.post_id]
    entry = store.get_post(user.id, site.id, article.slug)
    assert entry.status == "published" and entry.attempt != "killed"


def test_a_fresh_reservation_whose_holder_never_renews_is_taken_over_after_the_ttl(
        wordpress, wp_site, make_service, user, store):
    site = wp_site()
    article = make_article()
    _reserve_as(store, user.id, site.id, article.slug, "crashed", datetime.now(UTC))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    service = make_service(reservation_ttl=0.3, poll_interval=0.05, sleep=sleep)
    result = service.publish(user.id, site.id, article, run_id="new", kind="stock",
                             options={"status": "publish"})

    assert waits, "a fresh reservation must be waited for before it is taken over"
    assert [str(p["id"]) for p in _same_slug_family(wordpress, article.slug)] == [
        result.post_id]
    assert store.get_post(user.id, site.id, article.slug).status == "published"


def test_a_holder_that_lost_its_reservation_creates_nothing(
        wordpress, wp_site, make_service, user, store, make_fault_proxy):
    proxy = make_fault_proxy(wordpress.base_url,
                             hold={("GET", "/wp-json/wp/v2/categories"): 1})
    site = wp_site(url=proxy.base_url)
    article = make_article(categories=["Exactly Once"])
    service = make_service(poll_interval=0.05, sleep=time.sleep)
    holder = Worker(lambda: service.publish(user.id, site.id, article, run_id="slow",
                                            kind="stock", options={"status": "publish"}))
    holder.start()
    assert proxy.arrived.wait(60), "the holder never looked its category up"
    # While the holder is stalled, another worker takes the stale-looking reservation over
    # and publishes the post itself.
    mine = store.get_post(user.id, site.id, article.slug)
    store.claim_post(user.id, site.id, article.slug, expected_attempt=mine.attempt,
                     attempt="other", now=datetime.now(UTC))
    made = requests.post(wordpress.api("posts"), auth=wordpress.admin_auth, timeout=30,
                         json={"title": article.title, "slug": article.slug,
                               "status": "publish", "content": "by the other worker"}).json()
    proxy.gate.set()
    holder.join(120)

    assert holder.error is None, holder.error
    assert holder.result.post_id == str(made["id"]) and holder.result.existed is True
    assert POSTS not in proxy.seen                      # the fence stopped its create
    assert [p["id"] for p in _same_slug_family(wordpress, article.slug)] == [made["id"]]


@pytest.mark.parametrize("status", ["publish", "draft"])
def test_a_duplicate_made_anyway_is_deleted_and_the_older_post_used(wordpress, status):
    # WordPress gives a second published post "<slug>-2"; drafts it lets share the slug.
    article = make_article()
    older = requests.post(wordpress.api("posts"), auth=wordpress.admin_auth, timeout=30,
                          json={"title": article.title, "slug": article.slug,
                                "status": status, "content": "first"}).json()
    publisher = WordPressPublisher(WordPressClient(
        wordpress.base_url, *wordpress.admin_auth, policy=RetryPolicy(attempts=1)))

    result = publisher.create_post({"title": article.title, "slug": article.slug,
                                    "status": status, "content": "second"})

    assert result.post_id == str(older["id"])
    assert [p["id"] for p in _same_slug_family(wordpress, article.slug)] == [older["id"]]
    if status == "publish":
        assert wordpress.list_posts(slug=article.slug + "-2") == []


def test_a_new_post_with_its_own_slug_is_kept(wordpress):
    article = make_article()
    publisher = WordPressPublisher(WordPressClient(
        wordpress.base_url, *wordpress.admin_auth, policy=RetryPolicy(attempts=1)))
    result = publisher.create_post({"title": article.title, "slug": article.slug,
                                    "status": "draft", "content": "only"})
    assert [str(p["id"]) for p in _same_slug_family(wordpress, article.slug)] == [
        result.post_id]
