"""Sports works offline: a new user whose feeds cannot be reached gets the demo stories
(synthetic, made by the project, labelled demo), and a run of them publishes demo-labelled
roundups to the local archive.

"No network" is made certain, not assumed: every HTTP(S) request of the portal goes through a
proxy address where nothing listens, so the fourteen default feeds fail as they do offline.
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path

import pytest

from automation_scripts.publishing.archive import load_archived_article
from automation_scripts.sports.automation import normalise_story
from automation_scripts.sports.demo_stories import DEMO_HOST, demo_stories, is_demo_story
from automation_scripts.sports.feeds import DEFAULT_SOURCES, story_key
from tests.earnings.runs import Member
from tests.support import procs

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def offline(monkeypatch) -> None:
    dead = f"http://127.0.0.1:{procs.free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def engine_app(make_app, tmp_path: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


def test_demo_stories_are_made_from_the_seed_and_submit_as_they_are():
    day = date(2026, 3, 2)
    stories = demo_stories(today=day)
    assert [s.to_dict() for s in stories] == [s.to_dict() for s in demo_stories(today=day)]
    assert [s.id for s in stories] != [s.id for s in demo_stories(today=date(2026, 3, 3))]
    assert len({s.id for s in stories}) == len(stories) == 12
    for n, story in enumerate(stories, 1):
        row = story.to_dict()
        assert 2 <= row["source_count"] <= 4 and is_demo_story(row)
        assert all(e["link"].startswith(f"https://{DEMO_HOST}/") for e in row["entries"])
        assert all(e["published"][:10] == "2026-03-01" for e in row["entries"])
        clean = normalise_story(row, n)            # what POST /api/runs does with a pick
        assert story_key(clean["entries"]) == story.id
    assert not is_demo_story({"entries": [{"link": "https://www.bbc.co.uk/sport/x"}]})
    assert not is_demo_story({"entries": []})


def test_no_demo_story_text_comes_from_the_shared_feeds(shared_data):
    shared = "\n".join(p.read_text(errors="replace") for p in (shared_data / "feeds").glob("*"))
    for story in demo_stories(today=date(2026, 3, 2)):
        for entry in story.entries:
            assert entry.title not in shared and entry.summary[:60] not in shared


def test_a_new_user_offline_loads_demo_stories_labelled(engine_app, offline):
    alice = Member(engine_app, "offline@example.com")
    assert alice.client.get("/api/sports/feeds").get_json()["custom"] is False
    body = alice.client.get("/api/sports/stories").get_json()
    assert [s["status"] for s in body["sources"]] == ["error"] * len(DEFAULT_SOURCES)
    assert body["demo"] is True and body["label"] == "demo stories"
    assert "none of your feeds answered" in body["demo_reason"]
    assert len(body["stories"]) == 12 and all(s["demo"] for s in body["stories"])
    page = alice.client.get("/automation/sports").get_data(as_text=True)
    assert 'id="stories-source"' in page and "Demo stories" in page

    only_feeds = alice.client.get("/api/sports/stories?source=feeds").get_json()
    assert only_feeds["demo"] is False and only_feeds["stories"] == []
    asked = alice.client.get("/api/sports/stories?source=demo").get_json()
    assert asked["demo"] is True and asked["sources"] == []
    assert [s["id"] for s in asked["stories"]] == [s["id"] for s in body["stories"]]
    bad = alice.client.get("/api/sports/stories?source=rss")
    assert bad.status_code == 400 and "unknown source" in bad.get_json()["error"]


def test_a_feed_that_answers_means_no_demo(engine_app, shared_data, feed_server):
    alice = Member(engine_app, "online@example.com")
    feeds = [{"name": "espn-nba", "url": feed_server.url("feeds/espn-nba.xml")}]
    assert alice.send("PUT", "/api/sports/feeds", {"feeds": feeds}).status_code == 200
    body = alice.client.get("/api/sports/stories").get_json()
    assert body["demo"] is False and body["stories"]
    assert not any(s["demo"] for s in body["stories"])


def test_a_run_of_three_demo_stories_publishes_labelled_roundups(engine_app, offline,
                                                                  tmp_path: Path):
    alice = Member(engine_app, "newcomer@example.com")
    site_id = alice.site(name="Archive", kind="local")
    picked = alice.client.get(f"/api/sports/stories?site_id={site_id}").get_json()["stories"][:3]
    assert not any(s["published_on_site"] for s in picked)
    run = alice.wait(alice.start("sports", site_id, picked, status="publish"))
    assert run["status"] == "completed", run
    assert [i["status"] for i in run["items"]] == ["published"] * 3
    for item, story in zip(run["items"], picked, strict=True):
        article = load_archived_article(tmp_path / "archive", alice.user_id, site_id,
                                        item["key"])
        assert article is not None and article["status"] == "publish"
        assert article["title"].startswith("[Demo] ") and "demo data" in article["tags"]
        assert article["excerpt"].startswith("Synthetic demo story: ")
        assert "Demo story:" in article["html"] and "original reporting" not in article["html"]
        page = html.unescape(alice.client.get(item["post_url"]).get_data(as_text=True))
        assert "Demo story:" in page and story["entries"][0]["source"] in page
    again = alice.client.get(f"/api/sports/stories?site_id={site_id}").get_json()["stories"]
    assert [s["published_on_site"] for s in again[:3]] == [True] * 3
