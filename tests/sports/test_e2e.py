"""Sports runs end to end: the user's feeds (served by tests/support/feed_server.py) ->
GET /api/sports/stories -> POST /api/runs -> RunManager -> SportsAutomation ->
PublishingService -> the local archive and the real WordPress."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from tests.earnings.runs import Member

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FEEDS = ["the-athletic-nba", "cbs-sports-nba", "espn-nba", "yahoo-sports-nba", "deadspin",
         "independent-football", "espn-fc", "guardian-football"]


@pytest.fixture
def engine_app(make_app, tmp_path: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


@pytest.fixture
def member(engine_app, shared_data, feed_server) -> Member:
    alice = Member(engine_app)
    feeds = [{"name": n, "url": feed_server.url(f"feeds/{n}.xml")} for n in FEEDS]
    assert alice.send("PUT", "/api/sports/feeds", {"feeds": feeds}).status_code == 200
    return alice


def stories(member: Member, site_id: str | None = None) -> list[dict]:
    query = f"?limit=10&site_id={site_id}" if site_id else "?limit=10"
    body = member.client.get(f"/api/sports/stories{query}").get_json()
    assert all(s["status"] in ("ok", "not_modified") for s in body["sources"]), body["sources"]
    return body["stories"]


def test_sports_roundups_into_the_local_archive_and_skipped_when_published(member):
    site_id = member.site(name="Archive", kind="local")
    picked = stories(member, site_id)[:2]
    assert not any(s["published_on_site"] for s in picked)
    run = member.wait(member.start("sports", site_id, picked, status="publish"))
    assert run["status"] == "completed", run
    assert [i["key"] for i in run["items"]] == [s["id"] for s in picked]
    assert [i["status"] for i in run["items"]] == ["published", "published"]
    page = html.unescape(member.client.get(run["items"][0]["post_url"]).get_data(as_text=True))
    for entry in picked[0]["entries"]:
        assert entry["link"] in page and entry["source"] in page

    # A later fetch of the same feeds: the same stories, now marked and skipped by the engine.
    again = stories(member, site_id)[:2]
    assert [s["id"] for s in again] == [s["id"] for s in picked]
    assert all(s["published_on_site"] for s in again)
    rerun = member.wait(member.start("sports", site_id, again))
    assert [i["status"] for i in rerun["items"]] == ["skipped", "skipped"]
    assert {i["error"] for i in rerun["items"]} == {"already published on this site"}


def test_bad_story_items_are_refused(member):
    site_id = member.site(name="Archive", kind="local")
    response = member.send("POST", "/api/runs", {
        "kind": "sports", "site_id": site_id,
        "items": [{"title": "x", "entries": [{"title": "t", "link": "javascript:alert(1)",
                                              "source": "s"}]}]})
    assert response.status_code == 400
    assert "story 1, entry 1: link must be an http(s) URL" in str(response.get_json())
    assert member.client.get("/api/runs").get_json()["runs"] == []


def test_sports_roundup_into_the_real_wordpress(member, wordpress):
    site_id = member.site(name="WP", kind="wordpress", url=wordpress.base_url,
                          username=wordpress.admin_user,
                          app_password=wordpress.admin_app_password)
    story = next(s for s in stories(member) if "Nottingham Forest" in s["categories"])
    run = member.wait(member.start("sports", site_id, [story], status="publish"))
    assert run["status"] == "completed", run
    [item] = run["items"]
    assert item["status"] == "published", item
    [post] = wordpress.list_posts(slug=story["id"])
    assert post["status"] == "publish" and str(post["id"]) == item["post_id"]
    assert post["featured_media"] > 0
    content = html.unescape(post["content"]["raw"])
    for entry in story["entries"]:
        assert entry["link"] in content
        assert entry["summary"] not in content
    assert wordpress.term_names("categories", post["categories"]) == ["Football"]
    assert "Nottingham Forest" in wordpress.term_names("tags", post["tags"])
