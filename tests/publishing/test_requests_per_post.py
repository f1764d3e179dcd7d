"""What one publish asks a REAL WordPress, and the nets under the requests it leaves out.

A fresh reservation (no earlier attempt ever held the slug) creates without looking the slug
up first, and a new tag is created without searching for it first. Each saving has its net,
tested here: a post with our slug made outside the ledger is still used, never duplicated
(WordPress gives ours ``-2`` and it is deleted; a draft is looked for after the create), and
an existing tag (in any case) comes back from the create as ``term_exists`` with its id.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import requests

from tests.publishing.conftest import Image, make_article, png_bytes
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.wordpress

POSTS = ("POST", "/wp-json/wp/v2/posts")
LOOKUPS = ("GET", "/wp-json/wp/v2/posts")
TAG_SEARCH = ("GET", "/wp-json/wp/v2/tags")
TAG_CREATE = ("POST", "/wp-json/wp/v2/tags")


def _family(wordpress: Any, slug: str) -> list[dict[str, Any]]:
    """Our slug's posts, and any with WordPress's ``-N`` suffix (any status but trash)."""
    return [p for p in wordpress.list_posts(search=slug.split("-")[-1], per_page=100)
            if p["slug"] == slug or p["slug"].startswith(slug + "-")]


def _publish(service: Any, user: Any, site: Any, article: Any, status: str) -> Any:
    return service.publish(user.id, site.id, article, run_id="run", kind="stock",
                           options={"status": status})


def test_a_fresh_publish_creates_without_looking_the_slug_up(
        wordpress, wp_site, service, user, store, make_fault_proxy):
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url)
    site = wp_site(url=proxy.base_url)
    article = make_article(tags=["Fresh Tag " + make_article().slug[-8:]])

    result = _publish(service, user, site, article, "publish")

    assert result.existed is False
    assert proxy.seen.count(POSTS) == 1
    assert LOOKUPS not in proxy.seen                    # neither before nor after the create
    assert TAG_SEARCH not in proxy.seen and proxy.seen.count(TAG_CREATE) == 1
    assert [str(p["id"]) for p in _family(wordpress, article.slug)] == [result.post_id]
    assert store.get_post(user.id, site.id, article.slug).post_id == result.post_id


@pytest.mark.parametrize("status", ["publish", "draft"])
def test_a_post_made_outside_the_ledger_is_used_not_duplicated(
        wordpress, wp_site, service, user, store, status):
    # The ledger has no entry (a wiped database, a post made by hand): the reservation is
    # fresh, so the create goes out; the duplicate it makes is deleted at once.
    site = wp_site()
    article = make_article()
    older = requests.post(wordpress.api("posts"), auth=wordpress.admin_auth, timeout=30,
                          json={"title": article.title, "slug": article.slug,
                                "status": status, "content": "made by hand"}).json()

    media_before = {m["id"] for m in wordpress.get("media", per_page=100)}
    article = replace(article, images=[Image("chart.png", png_bytes(), "a chart", "featured")])

    result = _publish(service, user, site, article, status)

    assert result.post_id == str(older["id"]) and result.existed is True
    assert [p["id"] for p in _family(wordpress, article.slug)] == [older["id"]]
    # The duplicate's upload went with it.
    assert {m["id"] for m in wordpress.get("media", per_page=100)} == media_before
    entry = store.get_post(user.id, site.id, article.slug)
    assert entry.status == "published" and entry.post_id == str(older["id"])


def test_an_earlier_attempt_of_the_slug_is_looked_up_before_creating(
        wordpress, wp_site, service, user, store, make_fault_proxy):
    # A released attempt (it failed) left the ledger clean, but an attempt still holding the
    # slug (a crash) means the site may have the post: the look-up comes first.
    from datetime import UTC, datetime

    from storage.base import LedgerEntry
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url)
    site = wp_site(url=proxy.base_url)
    article = make_article()
    store.reserve_post(LedgerEntry(user.id, site.id, article.slug, article.slug, "stock",
                                   "run", day=datetime.now(UTC).date().isoformat(),
                                   attempt="crashed"))

    result = _publish(service, user, site, article, "publish")

    assert proxy.seen.index(LOOKUPS) < proxy.seen.index(POSTS)
    assert [str(p["id"]) for p in _family(wordpress, article.slug)] == [result.post_id]


def test_an_existing_tag_comes_back_from_the_create_in_any_case(
        wordpress, wp_site, service, user, make_fault_proxy):
    name = "Kept Tag " + make_article().slug[-8:]
    made = requests.post(wordpress.api("tags"), json={"name": name},
                         auth=wordpress.admin_auth, timeout=30).json()
    proxy: FaultProxy = make_fault_proxy(wordpress.base_url)
    site = wp_site(url=proxy.base_url)
    article = make_article(tags=[name.upper()])

    result = _publish(service, user, site, article, "publish")

    post = wordpress.get(f"posts/{result.post_id}", context="edit")
    assert post["tags"] == [made["id"]]
    assert TAG_SEARCH not in proxy.seen and proxy.seen.count(TAG_CREATE) == 1
    assert [t["id"] for t in wordpress.get("tags", search=name, per_page=100)
            if t["name"].lower() == name.lower()] == [made["id"]]
