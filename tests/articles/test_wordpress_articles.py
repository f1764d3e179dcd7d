"""Articles on the real WordPress of tests/support/wordpress.py: internal links found through
the REST API (published posts of the site only), the excerpt, structured data, and update in
place applied once per run, also when a crash fell between WordPress's answer and the ledger."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from automation_scripts.base import Article, FaqEntry, Image
from automation_scripts.publishing.safety import media_of
from automation_scripts.publishing.wordpress_client import RetryPolicy
from runner.publishing import PublishingService
from storage.base import Site
from storage.secrets import SecretBox
from storage.sqlite import SQLiteStore
from tests.earnings.runs import Member
from tests.publishing.conftest import png_bytes

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def engine_app(make_app, tmp_path: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


@pytest.fixture
def clean_wordpress(wordpress):
    wordpress.delete_all_posts()
    yield wordpress
    wordpress.delete_all_posts()


def wp_post(wordpress, **fields: Any) -> dict[str, Any]:
    response = requests.post(wordpress.api("posts"), json=fields, auth=wordpress.admin_auth,
                             timeout=30)
    response.raise_for_status()
    return response.json()


def revisions(wordpress, post_id: int) -> int:
    return len(wordpress.get(f"posts/{post_id}/revisions", per_page=100))


def wp_member(engine_app, wordpress, **options: Any) -> tuple[Member, str]:
    alice = Member(engine_app)
    site = alice.site(name="WP", kind="wordpress", url=wordpress.base_url,
                      username=wordpress.admin_user, app_password=wordpress.admin_app_password,
                      **options)
    return alice, site


def test_internal_links_come_from_the_sites_published_posts(engine_app, clean_wordpress):
    wordpress = clean_wordpress
    older = wp_post(wordpress, title="AAPL in January", slug="aapl-stock-analysis-2026-01-02",
                    status="publish", content="<p>Older analysis.</p>")
    draft = wp_post(wordpress, title="AAPL draft", slug="aapl-stock-analysis-2026-01-03",
                    status="draft", content="<p>Not public.</p>")
    other = wp_post(wordpress, title="Garden notes", slug="garden-notes", status="publish",
                    content="<p>Tomatoes.</p>")
    alice, site = wp_member(engine_app, wordpress,
                            internal_links={"enabled": True, "max": 5, "same_category": False})
    run = alice.wait(alice.start("stock", site, ["AAPL"], data_source="demo", status="publish",
                                 mode="update"))
    assert run["status"] == "completed", run
    [post] = wordpress.list_posts(slug="aapl-stock-analysis")
    content = post["content"]["raw"]
    hrefs = re.findall(r'href="([^"]+)"', content)
    assert older["link"] in hrefs and other["link"] in hrefs
    assert post["link"] not in hrefs and not any(f"p={draft['id']}" in h or
                                                 "aapl-stock-analysis-2026-01-03" in h
                                                 for h in hrefs)
    assert "<h2>Related analysis</h2>" in content
    assert hrefs.count(older["link"]) == 2           # inline at "AAPL" + the block
    # links to the site itself are followed; the excerpt is the meta description
    assert f'<a href="{older["link"]}" rel=' not in content
    assert post["excerpt"]["raw"] and len(post["excerpt"]["raw"]) <= 160
    assert '<script type="application/ld+json">' not in content   # structured_data off


def test_structured_data_on_wordpress_when_the_site_asks(engine_app, clean_wordpress):
    alice, site = wp_member(engine_app, clean_wordpress, structured_data=True)
    run = alice.wait(alice.start("earnings", site, ["NFLX"], data_source="demo",
                                 status="publish"))
    assert run["status"] == "completed", run
    [post] = clean_wordpress.list_posts(slug=run["items"][0]["key"])
    content = post["content"]["raw"]
    assert content.count('<script type="application/ld+json">') == 2
    assert '"@type":"FAQPage"' in content and '"@type":"Article"' in content
    rendered = requests.get(post["link"], timeout=30).text
    assert '"@type":"FAQPage"' in rendered


def test_update_in_place_keeps_one_post_with_new_content_and_image(engine_app,
                                                                   clean_wordpress):
    wordpress = clean_wordpress
    alice, site = wp_member(engine_app, wordpress)
    first = alice.wait(alice.start("stock", site, ["KO"], data_source="demo", status="publish",
                                   mode="update"))
    [before] = wordpress.list_posts(slug="ko-stock-analysis")
    assert "Updated on" not in before["content"]["raw"]
    second = alice.wait(alice.start("stock", site, ["KO"], data_source="demo",
                                    status="publish", mode="update"))
    assert second["status"] == "completed" and second["items"][0]["status"] == "published"
    [after] = wordpress.list_posts(slug="ko-stock-analysis")
    assert after["id"] == before["id"] == int(first["items"][0]["post_id"])
    assert after["content"]["raw"].startswith("<p><em>Updated on ")
    assert after["featured_media"] and after["featured_media"] != before["featured_media"]
    assert f"tickzen-run:{second['id']}" in after["content"]["raw"]
    # The first version's three charts left the media library with it; the new ones are in.
    old_media, new_media = media_of(before["content"]["raw"]), media_of(after["content"]["raw"])
    assert len(old_media) == 3 and before["featured_media"] in old_media
    assert len(new_media) == 3 and after["featured_media"] in new_media
    library = {m["id"] for m in wordpress.get("media", per_page=100)}
    assert not set(old_media) & library and set(new_media) <= library


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[PublishingService, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "t.db")
    box = SecretBox(SecretBox.generate_key())
    yield PublishingService(store, box, tmp_path / "archive",
                            policy=RetryPolicy(attempts=2, backoff=0.01)), store
    store.close()


def article(n: int) -> Article:
    return Article(slug="xom-stock-analysis", title=f"XOM, version {n}",
                   html=f"<p>XOM text, version {n}.</p>", excerpt=f"XOM version {n}.",
                   images=[Image(f"xom-price-{n}.png", png_bytes((n * 40 % 255, 90, 30)),
                                 f"XOM chart {n}", "featured")],
                   categories=["Stock Analysis"], focus_keyword="XOM stock analysis",
                   faq=[FaqEntry("What is XOM?", "A ticker.")], about={"ticker": "XOM"})


def test_an_update_is_applied_once_per_run_even_across_a_crash(service, clean_wordpress):
    publishing, store = service
    wordpress = clean_wordpress
    user = store.create_user("wp@example.com", "x")
    site = store.create_site(user.id, Site(
        id="", user_id=user.id, name="WP", kind="wordpress", url=wordpress.base_url,
        username=wordpress.admin_user,
        app_password_enc=publishing.secrets.encrypt(wordpress.admin_app_password)))
    update = {"status": "publish", "mode": "update"}

    def publish(n: int, run_id: str):
        return publishing.publish(user.id, site.id, article(n), run_id=run_id, kind="stock",
                                  options=update)

    created = publish(1, "run-1")
    assert not created.existed
    updated = publish(2, "run-2")
    assert updated.updated and updated.post_id == created.post_id
    post_id = int(created.post_id)
    seen = wordpress.get(f"posts/{post_id}")
    count = revisions(wordpress, post_id)
    # a retry (or a resume) of run-2: nothing is sent again
    again = publish(3, "run-2")
    assert again.updated and again.post_id == created.post_id
    now = wordpress.get(f"posts/{post_id}")
    assert now["featured_media"] == seen["featured_media"] and "version 2" in \
        now["content"]["raw"] and revisions(wordpress, post_id) == count

    # a crash: WordPress applied run-3's update, the ledger never heard of it
    publisher = publishing.lookup_publisher(site)
    publisher.update(str(post_id), article(4), status="publish", run_id="run-3")
    crashed = wordpress.get(f"posts/{post_id}")
    assert store.get_post(user.id, site.id, "xom-stock-analysis").last_updated_run == "run-2"
    count = revisions(wordpress, post_id)
    resumed = publish(5, "run-3")                    # the same run, after the restart
    assert resumed.updated
    final = wordpress.get(f"posts/{post_id}")
    assert "version 4" in final["content"]["raw"] and "version 5" not in final["content"]["raw"]
    assert final["featured_media"] == crashed["featured_media"]
    assert revisions(wordpress, post_id) == count
    assert store.get_post(user.id, site.id, "xom-stock-analysis").last_updated_run == "run-3"
    assert len(wordpress.list_posts(slug="xom-stock-analysis")) == 1
