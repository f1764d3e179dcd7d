"""Articles through the real HTTP API, the runner and the local archive: search fields and
structured data, internal links to the site's own published posts, update in place, and the
options' checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from automation_scripts.fact_check import unsupported_figures
from automation_scripts.publishing.archive import archived_revisions, load_archived_article
from tests.earnings.runs import Member

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

LINKS = {"enabled": True, "max": 3, "same_category": False}


@pytest.fixture
def engine_app(make_app, tmp_path: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


def archived(app, member: Member, site_id: str, slug: str) -> dict:
    stored = load_archived_article(app.config["TICKZEN_ARCHIVE_DIR"], member.user_id, site_id,
                                   slug)
    assert stored is not None, slug
    return stored


def run_ok(member: Member, kind: str, site_id: str, items: list, **options) -> dict:
    run = member.wait(member.start(kind, site_id, items, data_source="demo", **options))
    assert run["status"] == "completed", run
    assert all(i["status"] == "published" for i in run["items"]), run["items"]
    return run


def test_search_fields_faq_and_structured_data_in_the_archive(engine_app):
    alice = Member(engine_app)
    site = alice.site(name="Archive", kind="local")
    run = run_ok(alice, "stock", site, ["AAPL", "KO"], status="publish")
    for item in run["items"]:
        assert item["writer"] == "template" and item["writer_note"] == ""
        post = archived(engine_app, alice, site, item["key"])
        assert 40 <= len(post["excerpt"]) <= 160
        assert post["focus_keyword"].endswith("stock analysis")
        assert 3 <= len(post["faq"]) <= 5
        # every FAQ answer quotes the article's own figures only
        report = json.loads((Path(engine_app.config["TICKZEN_WORKDIR"]) / run["id"]).glob(
            f"*-{item['key']}/report.json").__next__().read_text())
        for entry in post["faq"]:
            assert entry["question"].endswith("?")
            assert entry["answer"] in post["html"]
            assert unsupported_figures(entry["answer"], report) == [], entry
        types = [obj["@type"] for obj in post["json_ld"]]
        assert types == ["Article", "FAQPage"]
        article_ld, faq_ld = post["json_ld"]
        assert article_ld["headline"] == post["title"][:110]
        assert article_ld["description"] == post["excerpt"]
        assert article_ld["about"]["tickerSymbol"] == item["label"]
        assert [q["name"] for q in faq_ld["mainEntity"]] == [e["question"] for e in post["faq"]]
        page = alice.client.get(item["post_url"]).get_data(as_text=True)
        assert page.count('<script type="application/ld+json">') == 2
        scripts = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page)
        assert json.loads(scripts[0])["@type"] == "Article"


def test_earnings_and_sports_get_search_fields_too(engine_app):
    alice = Member(engine_app)
    site = alice.site(name="Archive", kind="local")
    run = run_ok(alice, "earnings", site, ["NFLX"], status="publish")
    post = archived(engine_app, alice, site, run["items"][0]["key"])
    assert len(post["excerpt"]) <= 160 and 3 <= len(post["faq"]) <= 5
    assert [o["@type"] for o in post["json_ld"]] == ["Article", "FAQPage"]


def test_internal_links_point_to_published_posts_of_the_same_site_only(engine_app):
    alice = Member(engine_app)
    site = alice.site(name="Archive", kind="local", internal_links=LINKS)
    other = alice.site(name="Other", kind="local")
    first = run_ok(alice, "stock", site, ["AAPL", "MSFT"], status="publish")
    draft = run_ok(alice, "stock", site, ["NVDA"], status="draft")
    elsewhere = run_ok(alice, "stock", other, ["TSLA"], status="publish")
    published = {i["post_url"] for i in first["items"]}
    never = {draft["items"][0]["post_url"], elsewhere["items"][0]["post_url"]}

    later = run_ok(alice, "stock", site, ["META"], status="publish")
    post = archived(engine_app, alice, site, later["items"][0]["key"])
    links = set(re.findall(r'href="(/sites/[^"]+)"', post["html"]))
    assert "<h2>Related analysis</h2>" in post["html"]
    assert links == published and not links & never
    assert later["items"][0]["post_url"] not in links

    # an update-mode post of AAPL: its earlier AAPL analysis comes first and is linked inline
    # at the first mention of the ticker; never a link to itself
    update = run_ok(alice, "stock", site, ["AAPL"], status="publish", mode="update")
    item = update["items"][0]
    assert item["key"] == "aapl-stock-analysis"
    post = archived(engine_app, alice, site, item["key"])
    earlier = first["items"][0]["post_url"]
    hrefs = re.findall(r'href="(/sites/[^"]+)"', post["html"])
    assert item["post_url"] not in hrefs
    assert hrefs.count(earlier) == 2                 # one inline link + the related block
    inline = re.search(f'<a href="{re.escape(earlier)}"[^>]*>AAPL</a>', post["html"])
    assert inline and inline.start() < post["html"].index("<h2>Related analysis</h2>")
    related = post["html"][post["html"].index("<h2>Related analysis</h2>"):]
    assert related.index(earlier) < min(related.index(u) for u in published - {earlier})


def test_links_off_and_max_respected(engine_app):
    alice = Member(engine_app)
    site = alice.site(name="Archive", kind="local")
    run_ok(alice, "stock", site, ["AAPL", "MSFT", "KO"], status="publish")
    plain = run_ok(alice, "stock", site, ["PEP"], status="publish")
    html = archived(engine_app, alice, site, plain["items"][0]["key"])["html"]
    assert "Related analysis" not in html and 'href="/sites/' not in html
    alice.send("PATCH", f"/api/sites/{site}", {"internal_links": {**LINKS, "max": 1}})
    one = run_ok(alice, "stock", site, ["XOM"], status="publish")
    html = archived(engine_app, alice, site, one["items"][0]["key"])["html"]
    assert len(set(re.findall(r'href="(/sites/[^"]+)"', html))) == 1


def test_update_mode_keeps_one_post_and_its_revisions(engine_app, tmp_path):
    alice = Member(engine_app)
    site = alice.site(name="Archive", kind="local")
    first = run_ok(alice, "stock", site, ["KO"], status="publish", mode="update")
    key = first["items"][0]["key"]
    assert key == "ko-stock-analysis"
    post = archived(engine_app, alice, site, key)
    assert post["revision"] == 1 and "Updated on" not in post["html"]
    second = run_ok(alice, "stock", site, ["KO"], status="publish", mode="update")
    assert second["items"][0]["post_url"] == first["items"][0]["post_url"]
    post = archived(engine_app, alice, site, key)
    assert post["revision"] == 2 and post["html"].startswith("<p><em>Updated on ")
    assert post["run_id"] == second["id"]
    assert archived_revisions(engine_app.config["TICKZEN_ARCHIVE_DIR"], alice.user_id, site,
                              key) == [1]
    featured = [i for i in post["images"] if i["role"] == "featured"]
    assert featured[0]["filename"] == "ko-price-r2.png"          # a new featured image
    store = engine_app.extensions["tickzen"].store
    entry = store.get_post(alice.user_id, site, key)
    assert (entry.run_id, entry.last_updated_run) == (first["id"], second["id"])
    assert len(store.list_posts(alice.user_id, site)) == 1
    # a retry of the finished run changes nothing: the item is published already
    assert alice.send("POST", f"/api/runs/{second['id']}/retry").status_code == 409
    assert archived(engine_app, alice, site, key)["revision"] == 2


def test_mode_and_site_options_are_checked(engine_app):
    alice = Member(engine_app)
    site = alice.site(name="Archive", kind="local")
    response = alice.send("POST", "/api/runs", {"kind": "stock", "site_id": site,
                                                "items": ["AAPL"],
                                                "options": {"mode": "replace"}})
    assert response.status_code == 400 and "options.mode" in response.get_json()["error"]
    assert alice.client.get("/api/runs").get_json()["runs"] == []
    for bad in ({"enabled": True, "max": 11}, {"enabled": "yes"}, {"max": -1}, [1],
                {"enabled": True, "max": "many"}, {"enabled": True, "nope": 1}):
        response = alice.send("PATCH", f"/api/sites/{site}", {"internal_links": bad})
        assert response.status_code == 400, bad
        assert "internal_links" in response.get_json()["error"]
    response = alice.send("PATCH", f"/api/sites/{site}", {"structured_data": "on"})
    assert response.status_code == 400
    ok = alice.send("PATCH", f"/api/sites/{site}", {"internal_links": LINKS,
                                                    "structured_data": True})
    assert ok.status_code == 200
    body = ok.get_json()
    assert body["internal_links"] == LINKS and body["structured_data"] is True
