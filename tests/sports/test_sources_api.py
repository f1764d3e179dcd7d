"""GET/PUT/DELETE /api/sports/feeds and GET /api/sports/stories through the real app."""

from __future__ import annotations

import pytest

from automation_scripts.sports.feeds import DEFAULT_SOURCES
from tests.support import procs


def put_feeds(client, auth, feeds):
    return client.put("/api/sports/feeds", json={"feeds": feeds}, headers=auth.headers())


def test_feeds_need_a_signed_in_user(client):
    assert client.get("/api/sports/feeds").status_code in (302, 401)
    assert client.get("/api/sports/stories").status_code in (302, 401)


def test_default_feeds_then_custom_then_reset(client, auth):
    auth.signed_in()
    body = client.get("/api/sports/feeds").get_json()
    assert body["custom"] is False
    assert [(f["name"], f["url"]) for f in body["feeds"]] == list(DEFAULT_SOURCES)
    response = put_feeds(client, auth, [{"name": "Mine", "url": "https://example.com/rss"}])
    assert response.status_code == 200
    assert client.get("/api/sports/feeds").get_json() == {
        "feeds": [{"name": "Mine", "url": "https://example.com/rss"}], "custom": True}
    assert client.delete("/api/sports/feeds", headers=auth.headers()).status_code == 200
    assert client.get("/api/sports/feeds").get_json()["custom"] is False


@pytest.mark.parametrize("body, message", [
    ({"feeds": []}, "feeds must be a non-empty list"),
    ({"feeds": "https://example.com/rss"}, "feeds must be a non-empty list"),
    ({"feeds": [{"url": "ftp://example.com/rss"}]}, "feed 1: 'ftp://example.com/rss' is not"),
    ({"feeds": [{"url": "https://example.com/rss", "name": 5}]}, "feed 1: name must be text"),
    ({"feeds": [{"url": f"https://e.com/{n}"} for n in range(51)]}, "at most 50 feeds"),
    ({"nope": 1}, "the body must be a JSON object with a feeds list"),
    ([1, 2], "the body must be a JSON object with a feeds list"),
])
def test_bad_feed_lists_are_refused_and_nothing_is_stored(client, auth, body, message):
    auth.signed_in()
    response = client.put("/api/sports/feeds", json=body, headers=auth.headers())
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert client.get("/api/sports/feeds").get_json()["custom"] is False


def test_put_without_csrf_is_refused(client, auth):
    auth.signed_in()
    response = client.put("/api/sports/feeds", json={"feeds": ["https://example.com/rss"]})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]


@pytest.mark.app_config(TICKZEN_ALLOW_PRIVATE_URLS=False)
def test_private_feed_addresses_are_refused_when_configured(client, auth):
    auth.signed_in()
    response = put_feeds(client, auth, [{"url": "http://127.0.0.1:8080/rss"}])
    assert response.status_code == 400
    assert "private or local address" in response.get_json()["error"]


def test_stories_from_the_users_feeds_with_one_bad_source(client, auth, shared_data,
                                                          feed_server):
    auth.signed_in()
    names = ["the-athletic-nba", "cbs-sports-nba", "espn-nba", "yahoo-sports-nba", "deadspin"]
    feeds = [{"name": n, "url": feed_server.url(f"feeds/{n}.xml")} for n in names]
    feeds.append({"name": "Down", "url": f"http://127.0.0.1:{procs.free_port()}/rss"})
    feeds.append({"name": "Broken", "url": feed_server.url("bad/malformed.xml")})
    assert put_feeds(client, auth, feeds).status_code == 200
    body = client.get("/api/sports/stories?limit=5").get_json()
    status = {s["name"]: s["status"] for s in body["sources"]}
    assert status == {**{n: "ok" for n in names}, "Down": "error", "Broken": "error"}
    assert len(body["stories"]) == 5
    top = body["stories"][0]
    assert top["source_count"] == 4 and "Hall of Fame" in top["title"]
    assert {"id", "title", "entries", "sources", "categories", "published"} <= set(top)
    again = client.get("/api/sports/stories?limit=5").get_json()
    assert [s["id"] for s in again["stories"]] == [s["id"] for s in body["stories"]]
    assert {s["name"]: s["status"] for s in again["sources"]}["espn-nba"] == "not_modified"


@pytest.mark.parametrize("query, status, message", [
    ("limit=0", 400, "limit must be a whole number from 1 to 200"),
    ("limit=abc", 400, "limit must be a whole number from 1 to 200"),
    ("site_id=not-mine", 404, "site not found"),
])
def test_bad_story_queries(client, auth, query, status, message):
    auth.signed_in()
    response = client.get(f"/api/sports/stories?{query}")
    assert response.status_code == status
    assert response.get_json() == {"error": message}
