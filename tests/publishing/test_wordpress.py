"""Publishing to a REAL WordPress (Debian packages, started by tests/support/wordpress.py)."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from automation_scripts.publishing import (
    AuthError,
    LimitReached,
    PermissionDenied,
    PublishError,
    TransientError,
)
from automation_scripts.publishing.wordpress import WordPressPublisher
from automation_scripts.publishing.wordpress_client import (
    RetryPolicy,
    WordPressClient,
    check_wordpress,
)
from storage.base import LedgerEntry
from storage.sqlite import SQLiteStore
from tests.publishing.conftest import Image, make_article, png_bytes
from tests.support.fault_proxy import Injected

pytestmark = pytest.mark.wordpress


def _posts(wordpress: Any, slug: str) -> list[dict[str, Any]]:
    return wordpress.list_posts(slug=slug)


def _wp_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def test_post_with_featured_image_category_and_tags(wordpress, wp_site, service, store, user):
    site = wp_site()
    article = make_article(
        html=("<h2>Price</h2><p>See {{image:aapl-chart.png}} below.</p>"
              "<figure><img src=\"{{image:aapl-chart.png}}\" alt=\"chart\"></figure>"
              "<p>AAPL &lt;b&gt; &amp; co</p><script>alert(1)</script>"
              "<p onclick=\"x()\"><a href=\"javascript:alert(1)\">bad</a>"
              "<a href=\"https://example.com/\">ok</a></p>"),
        images=[Image("aapl-featured.png", png_bytes(), "AAPL featured chart", role="featured"),
                Image("aapl-chart.png", png_bytes((20, 90, 200)), "AAPL price chart")],
        categories=["Stock Analysis"], tags=["AAPL", "Technology"])

    result = service.publish(user.id, site.id, article, run_id="run-1", kind="stock",
                             options={"status": "publish"})

    [post] = _posts(wordpress, article.slug)
    assert str(post["id"]) == result.post_id and result.existed is False
    assert post["status"] == "publish" and post["title"]["raw"] == article.title
    assert wordpress.term_names("categories", post["categories"]) == ["Stock Analysis"]
    assert wordpress.term_names("tags", post["tags"]) == ["AAPL", "Technology"]
    media = wordpress.get(f"media/{post['featured_media']}")
    assert media["alt_text"] == "AAPL featured chart"
    assert media["media_type"] == "image"
    content = post["content"]["raw"]
    assert "{{image:" not in content
    inline = [m for m in wordpress.get("media", parent=0, per_page=100, search="aapl-chart")
              if m["alt_text"] == "AAPL price chart"]
    assert inline and inline[0]["source_url"] in content
    assert requests.get(inline[0]["source_url"], timeout=10).content[:4] == b"\x89PNG"
    assert "<script" not in content and "onclick" not in content
    assert "javascript:" not in content
    assert 'rel="noopener noreferrer nofollow"' in content
    assert "&lt;b&gt;" in content
    entry = store.get_post(user.id, site.id, article.slug)
    assert entry.status == "published" and entry.post_id == result.post_id
    assert service.already_published(user.id, site.id, article.slug) is not None

    again = service.publish(user.id, site.id, article, run_id="run-2", kind="stock", options={})
    assert again.existed is True and again.post_id == result.post_id
    assert len(_posts(wordpress, article.slug)) == 1


def test_draft_publish_and_future_spread_by_gap(wordpress, wp_site, service, user, store):
    site = wp_site(defaults={"default_status": "draft", "gap_minutes": [60, 60]})
    draft, live = make_article(), make_article()
    future1, future2 = make_article(), make_article()
    before = datetime.now(UTC)

    service.publish(user.id, site.id, draft, run_id="r", kind="stock", options={})
    service.publish(user.id, site.id, live, run_id="r", kind="stock",
                    options={"status": "publish"})
    service.publish(user.id, site.id, future1, run_id="r", kind="stock",
                    options={"status": "future"})
    service.publish(user.id, site.id, future2, run_id="r", kind="stock",
                    options={"status": "future"})

    assert _posts(wordpress, draft.slug)[0]["status"] == "draft"
    assert _posts(wordpress, live.slug)[0]["status"] == "publish"
    [p1], [p2] = _posts(wordpress, future1.slug), _posts(wordpress, future2.slug)
    assert p1["status"] == p2["status"] == "future"
    d1, d2 = _wp_time(p1["date_gmt"]), _wp_time(p2["date_gmt"])
    assert d1 >= before + timedelta(minutes=59)
    assert d2 - d1 == timedelta(minutes=60)
    state = store.get_site(user.id, site.id).state
    assert _wp_time(state["last_scheduled"][:19]) == d2


def test_wrong_password_is_an_auth_error_and_nothing_is_kept(wordpress, wp_site, service,
                                                             user, store):
    site = wp_site(password="abcd efgh ijkl mnop qrst uvwx")
    article = make_article()
    with pytest.raises(AuthError) as caught:
        service.publish(user.id, site.id, article, run_id="r", kind="stock", options={})
    message = str(caught.value)
    assert "application password" in message
    assert "abcd" not in message
    assert store.get_post(user.id, site.id, article.slug) is None
    assert _posts(wordpress, article.slug) == []
    check = service.check_connection(site)
    assert check.ok is False and check.code in ("bad_credentials", "not_authenticated")


def test_authorization_header_stripped_gives_the_server_hint(wordpress, wp_site, service,
                                                             user, make_fault_proxy):
    proxy = make_fault_proxy(wordpress.base_url, strip_authorization=True)
    site = wp_site(url=proxy.base_url)
    check = service.check_connection(site)
    assert check.ok is False and check.code == "not_authenticated"
    assert "SetEnvIf Authorization" in check.message
    assert "fastcgi_param HTTP_AUTHORIZATION" in check.message
    with pytest.raises(AuthError, match="SetEnvIf Authorization"):
        service.publish(user.id, site.id, make_article(), run_id="r", kind="stock", options={})


def test_existing_terms_are_reused_including_term_exists(wordpress, make_fault_proxy):
    admin = (wordpress.admin_user, wordpress.admin_app_password)
    created = requests.post(wordpress.api("tags"), json={"name": "Dividend Watch"}, auth=admin,
                            timeout=10).json()
    # A racing creator: our search sees nothing, the create answers 400 term_exists.
    proxy = make_fault_proxy(wordpress.base_url, inject={
        ("GET", "/wp-json/wp/v2/tags"): Injected(200, body=b"[]")})
    client = WordPressClient(proxy.base_url, *admin, policy=RetryPolicy(attempts=1))
    publisher = WordPressPublisher(client)
    assert publisher.term_id("tags", "Dividend Watch") == created["id"]
    assert ("POST", "/wp-json/wp/v2/tags") in proxy.seen
    # The plain path: found by search, not created again.
    again = WordPressPublisher(WordPressClient(wordpress.base_url, *admin))
    assert again.term_id("tags", "dividend watch") == created["id"]
    matching = [t for t in wordpress.get("tags", search="Dividend Watch")
                if t["name"] == "Dividend Watch"]
    assert len(matching) == 1


def test_dropped_response_after_wordpress_created_the_post_makes_exactly_one(
        wordpress, wp_site, service, user, store, make_fault_proxy):
    proxy = make_fault_proxy(wordpress.base_url,
                             drop_responses={("POST", "/wp-json/wp/v2/posts"): 1})
    site = wp_site(url=proxy.base_url)
    article = make_article()

    result = service.publish(user.id, site.id, article, run_id="r", kind="stock",
                             options={"status": "publish"})

    assert proxy.dropped == [("POST", "/wp-json/wp/v2/posts", 201)]
    posts = _posts(wordpress, article.slug)
    assert len(posts) == 1
    assert str(posts[0]["id"]) == result.post_id
    entry = store.get_post(user.id, site.id, article.slug)
    assert entry.status == "published" and entry.post_id == result.post_id
    assert proxy.seen.count(("POST", "/wp-json/wp/v2/posts")) == 1


def test_crash_between_create_and_record_is_completed_not_duplicated(wordpress, wp_site,
                                                                     service, user, store):
    site = wp_site()
    article = make_article()
    # A previous process reserved the slug, WordPress created the post, then it died.
    store.reserve_post(LedgerEntry(user.id, site.id, article.slug, article.slug, "stock", "old",
                                   day=datetime.now(UTC).date().isoformat()))
    made = requests.post(wordpress.api("posts"), auth=wordpress.admin_auth, timeout=10,
                         json={"title": article.title, "slug": article.slug,
                               "status": "draft", "content": "x"}).json()

    result = service.publish(user.id, site.id, article, run_id="new", kind="stock", options={})

    assert result.post_id == str(made["id"]) and result.existed is True
    assert len(_posts(wordpress, article.slug)) == 1
    assert store.get_post(user.id, site.id, article.slug).status == "published"


def test_concurrent_runs_never_exceed_the_daily_limit(wordpress, wp_site, make_service, user,
                                                      tmp_path):
    limit = 3
    site = wp_site(daily_limit=limit)
    # Two services, each with its own connection to the same database (like two instances).
    stores = [SQLiteStore(tmp_path / "publishing.db") for _ in range(2)]
    services = [make_service(s) for s in stores]
    prefix = make_article().slug
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2)

    def worker(index: int) -> None:
        barrier.wait()
        for n in range(4):
            article = make_article(f"{prefix}-w{index}-{n}")
            try:
                services[index].publish(user.id, site.id, article, run_id=f"run{index}",
                                        kind="stock", options={"status": "publish"})
                result = "ok"
            except LimitReached:
                result = "limit"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for s in stores:
        s.close()

    assert sorted(outcomes) == ["limit"] * (8 - limit) + ["ok"] * limit
    made = [p for p in wordpress.list_posts(search=prefix) if p["slug"].startswith(prefix)]
    assert len(made) == limit


def test_contributor_may_not_publish(wordpress, make_site, service, user):
    site = make_site(wordpress.base_url, wordpress.contributor_user,
                     wordpress.contributor_app_password)
    check = service.check_connection(site)
    assert check.ok is False and check.code == "cannot_publish"
    assert "publish_posts" in check.message
    with pytest.raises(PermissionDenied):
        service.publish(user.id, site.id, make_article(), run_id="r", kind="stock",
                        options={"status": "publish"})


def test_author_rotation_persists_across_runs(wordpress, wp_site, box, service, user, store):
    site = wp_site(authors=[
        {"username": wordpress.admin_user, "app_password_enc": box.encrypt(
            wordpress.admin_app_password)},
        {"username": wordpress.contributor_user, "app_password_enc": box.encrypt(
            wordpress.contributor_app_password)}])
    first, second = make_article(), make_article()
    service.publish(user.id, site.id, first, run_id="a", kind="stock", options={})
    service.publish(user.id, site.id, second, run_id="b", kind="stock", options={})
    authors = [_posts(wordpress, a.slug)[0]["author"] for a in (first, second)]
    assert authors[0] != authors[1]
    assert store.get_site(user.id, site.id).state["author_cursor"] == 0


def test_transient_answers_are_retried_and_retry_after_honoured(wordpress, make_fault_proxy,
                                                                sleeps):
    proxy = make_fault_proxy(wordpress.base_url, inject={
        ("GET", "/wp-json/wp/v2/users/me"): Injected(503, times=1),
        ("GET", "/wp-json/wp/v2/categories"): Injected(429, times=1,
                                                        headers={"Retry-After": "7"}),
        ("GET", "/wp-json/wp/v2/tags"): Injected(400, times=1)})
    client = WordPressClient(proxy.base_url, wordpress.admin_user, wordpress.admin_app_password,
                             policy=RetryPolicy(attempts=3, backoff=0.01, sleep=sleeps))
    assert client.json("GET", "users/me")["id"] == 1
    assert proxy.seen.count(("GET", "/wp-json/wp/v2/users/me")) == 2
    client.json("GET", "categories")
    assert max(sleeps) == pytest.approx(7, abs=0.5)
    with pytest.raises(PublishError) as caught:
        client.json("GET", "tags")
    assert not isinstance(caught.value, TransientError)
    assert proxy.seen.count(("GET", "/wp-json/wp/v2/tags")) == 1


def test_connection_failures_each_have_their_message(wordpress, make_fault_proxy):
    def check(url: str, timeout: float = 5.0) -> Any:
        return check_wordpress(WordPressClient(
            url, wordpress.admin_user, wordpress.admin_app_password, timeout=(timeout, timeout),
            policy=RetryPolicy(attempts=1)))

    ok = check(wordpress.base_url)
    assert ok.ok and ok.code == "ok" and "publish_posts" in ok.capabilities
    assert check(wordpress.base_url + "/not-wordpress").code in ("rest_not_found", "not_json")
    html = make_fault_proxy(wordpress.base_url, inject={("GET", "/"): Injected(
        200, times=5, headers={"Content-Type": "text/html"}, body=b"<html>hi</html>")})
    not_json = check(html.base_url)
    assert not_json.code == "not_json" and "REST API" in not_json.message
    tls = check(wordpress.base_url.replace("http://", "https://"))
    assert tls.code == "tls_error" and "TLS" in tls.message
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = check(f"http://127.0.0.1:{port}")
    assert refused.code == "connection_refused"
    with socket.socket() as silent:           # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        slow = check(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
    assert slow.code == "timeout" and "time" in slow.message


def test_a_redirecting_site_is_refused_not_followed(wordpress, wp_site, service, user, store,
                                                    make_fault_proxy):
    # A redirect's target never went through the URL check (SSRF), and a redirected POST
    # would silently become a GET: neither the check nor a publish follows it.
    with socket.socket() as trap:               # where the redirect points: must stay unvisited
        trap.bind(("127.0.0.1", 0))
        trap.listen(5)
        trap.settimeout(0.5)
        target = f"http://127.0.0.1:{trap.getsockname()[1]}"
        moved = {"Location": target + "/wp-json/"}
        proxy = make_fault_proxy(wordpress.base_url, inject={
            ("GET", "/wp-json/wp/v2/"): Injected(301, times=10, headers=moved),
            ("POST", "/wp-json/wp/v2/"): Injected(301, times=10, headers=moved)})
        site = wp_site(url=proxy.base_url)
        check = service.check_connection(site)
        article = make_article()
        with pytest.raises(PublishError, match="redirects to"):
            service.publish(user.id, site.id, article, run_id="r", kind="stock", options={})
        with pytest.raises(socket.timeout):
            trap.accept()
    assert check.ok is False and check.code == "redirect"
    assert target in check.message and "site URL" in check.message
    assert store.get_post(user.id, site.id, article.slug) is None
    assert _posts(wordpress, article.slug) == []


def test_application_passwords_never_reach_the_logs(wordpress, wp_site, make_service, user,
                                                    make_fault_proxy, caplog, sleeps):
    import base64
    import logging

    wrong = "wxyz abcd efgh ijkl mnop qrst"
    proxy = make_fault_proxy(wordpress.base_url, inject={
        ("GET", "/wp-json/wp/v2/posts"): Injected(503, times=2),
        ("POST", "/wp-json/wp/v2/posts"): Injected(500, times=1)})
    service = make_service(policy=RetryPolicy(attempts=3, backoff=0.01, sleep=sleeps))
    good, bad = wp_site(url=proxy.base_url), wp_site(password=wrong)
    with caplog.at_level(logging.DEBUG):            # every logger, urllib3's included
        assert service.check_connection(bad).ok is False
        assert service.check_connection(good).ok is True
        with pytest.raises(AuthError):
            service.publish(user.id, bad.id, make_article(), run_id="r", kind="stock",
                            options={})
        service.publish(user.id, good.id, make_article(), run_id="r", kind="stock",
                        options={"status": "publish"})
    assert "retrying" in caplog.text                 # the retries were logged ...
    for secret in (wordpress.admin_app_password, wrong):
        basic = base64.b64encode(f"{wordpress.admin_user}:{secret}".encode()).decode()
        for form in (secret, secret.replace(" ", ""), basic):
            assert form not in caplog.text           # ... without the password in any form


def test_a_retry_after_holds_every_request_to_the_site(wordpress, make_fault_proxy):
    # Two publishing slots of one site share its gate: WordPress's "wait 7 s" told to one of
    # them holds the other's next request too; another site's client does not wait.
    from automation_scripts.publishing.site_gate import SiteGate
    proxy = make_fault_proxy(wordpress.base_url, inject={
        ("GET", "/wp-json/wp/v2/categories"): Injected(429, times=1,
                                                        headers={"Retry-After": "7"})})
    now = [100.0]
    gate = SiteGate(clock=lambda: now[0])
    told_sleeps: list[float] = []
    other_sleeps: list[float] = []
    admin = (wordpress.admin_user, wordpress.admin_app_password)
    told = WordPressClient(proxy.base_url, *admin, gate=gate,
                           policy=RetryPolicy(attempts=1, sleep=told_sleeps.append))
    other_slot = WordPressClient(proxy.base_url, *admin, gate=gate,
                                 policy=RetryPolicy(attempts=1, sleep=other_sleeps.append))
    other_site = WordPressClient(wordpress.base_url, *admin,
                                 policy=RetryPolicy(attempts=1, sleep=other_sleeps.append))

    with pytest.raises(TransientError):
        told.json("GET", "categories")
    assert other_site.json("GET", "users/me")["id"] == 1 and other_sleeps == []
    now[0] += 2.0                                       # two of the seven seconds went by
    assert other_slot.json("GET", "users/me")["id"] == 1
    assert other_sleeps == [5.0]
    assert told_sleeps == []


def test_the_service_gives_the_clients_of_one_site_one_gate(wp_site, service, user):
    first, second = wp_site(), wp_site()
    gates = [service.lookup_publisher(site).client.gate for site in (first, first, second)]
    assert gates[0] is gates[1] and gates[0] is not gates[2]
