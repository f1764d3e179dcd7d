"""Feed fetching over real HTTP (tests/support/feed_server.py) and story clustering on the
real feeds of ../shared/data/feeds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from automation_scripts.sports.feeds import (
    FeedCache,
    FeedEntry,
    FeedFetcher,
    FeedSource,
    cluster_entries,
    rank_stories,
    story_key,
    validate_feed_url,
    validate_sources,
)
from tests.support import procs

NOW = datetime(2026, 2, 12, 12, 0, tzinfo=UTC)     # the day the recorded feeds were taken


@pytest.fixture
def real_feeds(shared_data: Path, feed_server) -> list[FeedSource]:
    names = sorted(p.name for p in (shared_data / "feeds").glob("*.xml"))
    assert names, "no feeds in ../shared/data/feeds"
    return [FeedSource(name=n[:-4], url=feed_server.url(f"feeds/{n}")) for n in names]


def fetcher(tmp_path: Path, **kw) -> FeedFetcher:
    return FeedFetcher(FeedCache(tmp_path / "cache"), **kw)


def test_fetches_every_real_feed(tmp_path, real_feeds):
    report = fetcher(tmp_path).fetch_all(real_feeds)
    assert [r.status for r in report.sources] == ["ok"] * len(real_feeds)
    assert len(report.entries) > 150
    guardian = [e for e in report.entries if e.source == "guardian-football"]
    assert guardian and all(e.link.startswith("https://www.theguardian.com/") for e in guardian)
    assert any("Premier League" in e.categories for e in guardian)
    assert all(e.published and e.published.endswith("+00:00") for e in report.entries)
    assert all("<" not in e.summary for e in report.entries)     # plain text only


def test_conditional_get_304_serves_cached_entries(tmp_path, real_feeds, feed_server):
    source = next(s for s in real_feeds if s.name == "espn-nba")
    path = "/feeds/espn-nba.xml"
    before = feed_server.stats().get(path, {})
    first = fetcher(tmp_path).fetch_all([source])
    second = fetcher(tmp_path).fetch_all([source])       # a new fetcher: the cache is on disk
    after = feed_server.stats()[path]
    assert first.sources[0].status == "ok"
    assert second.sources[0].status == "not_modified"
    assert after.get("304", 0) == before.get("304", 0) + 1
    assert after.get("200", 0) == before.get("200", 0) + 1
    assert [e.link for e in second.entries] == [e.link for e in first.entries]
    assert len(second.entries) == 12


def test_without_cache_no_conditional_headers(tmp_path, real_feeds, feed_server):
    source = next(s for s in real_feeds if s.name == "deadspin")
    path = "/feeds/deadspin.xml"
    before = feed_server.stats().get(path, {}).get("200", 0)
    FeedFetcher(FeedCache(tmp_path / "a")).fetch_all([source])
    FeedFetcher(FeedCache(tmp_path / "b")).fetch_all([source])
    assert feed_server.stats()[path]["200"] == before + 2


def test_bad_feeds_are_reported_per_source_without_failing_the_others(tmp_path, real_feeds,
                                                                       feed_server):
    dead_port = procs.free_port()
    good = [s for s in real_feeds if s.name in ("bbc-sport-football", "espn-fc")]
    bad = [
        FeedSource("Malformed", feed_server.url("bad/malformed.xml")),
        FeedSource("Unreachable", f"http://127.0.0.1:{dead_port}/rss"),
        FeedSource("Server error", feed_server.url("bad/error.xml")),
        FeedSource("Missing", feed_server.url("feeds/no-such-feed.xml")),
    ]
    report = fetcher(tmp_path, timeout=3).fetch_all(good[:1] + bad + good[1:])
    by_name = {r.name: r for r in report.sources}
    assert by_name["bbc-sport-football"].status == "ok"
    assert by_name["espn-fc"].status == "ok"
    assert "not a valid RSS/Atom feed" in by_name["Malformed"].error
    assert "unreachable" in by_name["Unreachable"].error
    assert by_name["Server error"].error == "the feed answered HTTP 500"
    assert by_name["Missing"].error == "the feed answered HTTP 404"
    assert {e.source for e in report.entries} == {"bbc-sport-football", "espn-fc"}
    assert len(report.entries) == 20 + 12


def test_oversize_feed_is_cut_off(tmp_path, feed_server):
    report = fetcher(tmp_path, max_bytes=512 * 1024).fetch_all([
        FeedSource("Huge", feed_server.url("bad/huge.xml")),
        FeedSource("Huge declared", feed_server.url("bad/huge-declared.xml"))])
    assert [r.status for r in report.sources] == ["error", "error"]
    assert all(r.error == "the feed is larger than 512 KB" for r in report.sources)
    assert report.entries == []


def test_slow_feed_times_out(tmp_path, feed_server):
    report = fetcher(tmp_path, timeout=0.5).fetch_all([
        FeedSource("Slow", feed_server.url("bad/slow.xml?delay=3"))])
    assert report.sources[0].status == "error"
    assert report.sources[0].error == "the feed did not answer in time"


def test_redirects_are_followed_and_every_hop_is_checked(tmp_path, feed_server):
    from urllib.parse import quote

    from automation_scripts.publishing.safety import url_problem

    ours = feed_server.url("")

    def ssrf(url: str) -> str | None:         # the test server is trusted, the rest is not
        return None if url.startswith(ours) else url_problem(url, allow_private=False)

    def via(target: str) -> str:
        return feed_server.url("redirect?to=" + quote(target, safe=""))

    chain = "/bad/empty.xml"
    for _ in range(7):                          # seven hops: more than anyone needs
        chain = "/redirect?to=" + quote(chain, safe="")
    checked = fetcher(tmp_path, url_check=ssrf, timeout=3).fetch_all([
        FeedSource("Moved", via(feed_server.url("bad/empty.xml"))),
        FeedSource("Into the LAN", via("http://127.0.0.1:9/admin")),
        FeedSource("Metadata", via("http://169.254.169.254/latest/meta-data/")),
        FeedSource("Not http", via("file:///etc/passwd")),
        FeedSource("Chain", feed_server.url(chain.lstrip("/"))),
    ])
    by_name = {r.name: r for r in checked.sources}
    assert by_name["Moved"].status == "ok"
    assert "private or local address" in by_name["Into the LAN"].error
    assert "private or local address" in by_name["Metadata"].error
    assert "redirects to a URL that is not allowed" in by_name["Not http"].error
    assert "redirects more than" in by_name["Chain"].error


def test_empty_feed_is_fine_but_has_no_entries(tmp_path, feed_server):
    report = fetcher(tmp_path).fetch_all([FeedSource("Empty", feed_server.url("bad/empty.xml"))])
    assert report.sources[0].status == "ok" and report.sources[0].entries == 0


def test_corrupt_cache_is_a_cold_cache(tmp_path, real_feeds):
    source = next(s for s in real_feeds if s.name == "deadspin")
    f = fetcher(tmp_path)
    f.fetch_all([source])
    for file in (tmp_path / "cache").glob("*.json"):
        file.write_text("{not json")
    again = f.fetch_all([source])
    assert again.sources[0].status == "ok" and len(again.entries) == 6


# -- clustering on the real feeds --------------------------------------------------------------


@pytest.fixture
def stories(tmp_path, real_feeds):
    report = fetcher(tmp_path).fetch_all(real_feeds)
    return rank_stories(cluster_entries(report.entries), NOW)


def _story_with(stories, needle: str):
    found = [s for s in stories if any(needle in e.title for e in s.entries)]
    assert len(found) == 1, [s.title for s in found]
    return found[0]


def test_same_story_from_several_outlets_is_one_story(stories):
    hof = _story_with(stories, "Naismith Basketball Hall of Fame")
    assert set(hof.sources) == {"the-athletic-nba", "cbs-sports-nba", "yahoo-sports-nba",
                                "espn-nba"}
    stewart = _story_with(stories, "Isaiah Stewart suspended 7 games")
    assert set(stewart.sources) == {"the-athletic-nba", "deadspin", "cbs-sports-nba"}
    dyche = _story_with(stories, "Sean Dyche sacked by Nottingham Forest")
    assert set(dyche.sources) == {"independent-football", "espn-fc", "guardian-football"}
    assert "Nottingham Forest" in dyche.categories
    assert "Sport" not in dyche.categories                 # generic feed categories dropped


def test_unrelated_stories_stay_apart(stories):
    # Both mention the Premier League and players, but they are different stories.
    zerbi = _story_with(stories, "Roberto De Zerbi LEAVES Marseille")
    assert zerbi.sources == ["daily-mail-football"]
    # Two "Football Daily" podcast entries from one outlet count as one source at most.
    assert all(len(s.sources) == len(set(s.sources)) for s in stories)


def test_ranking_prefers_more_outlets_then_recency(stories):
    assert len(stories[0].sources) == 4                    # the Hall of Fame finalists
    multi = [s for s in stories if len(s.sources) > 1]
    singles = [s for s in stories if len(s.sources) == 1]
    assert stories.index(multi[0]) < stories.index(singles[0])
    assert [s.score for s in stories] == sorted((s.score for s in stories), reverse=True)


def test_story_key_is_stable_across_fetches_and_new_outlets(tmp_path, real_feeds):
    first = cluster_entries(fetcher(tmp_path / "one").fetch_all(real_feeds).entries)
    second = cluster_entries(fetcher(tmp_path / "two").fetch_all(real_feeds).entries)
    assert sorted(s.id for s in first) == sorted(s.id for s in second)
    dyche = _story_with(first, "Sean Dyche sacked by Nottingham Forest")
    latecomer = FeedEntry(source="Another outlet", feed_url="http://x/", link="https://x/1",
                          title="Forest sack Sean Dyche after Wolves draw",
                          published="2026-02-12T11:00:00+00:00")
    assert story_key(dyche.entries + [latecomer]) == dyche.id
    assert len({s.id for s in first}) == len(first)        # ids are unique


# -- source validation -------------------------------------------------------------------------


@pytest.mark.parametrize("url, message", [
    ("", "a feed URL is required"),
    ("ftp://example.com/rss", "is not an http(s) URL"),
    ("javascript:alert(1)", "is not an http(s) URL"),
    ("http:///rss", "has no host name"),
    ("https://user:pw@example.com/rss", "must not carry credentials"),
    ("https://example.com/a b", "cannot contain spaces"),
    ("https://example.com/" + "a" * 3000, "too long"),
])
def test_bad_feed_urls(url, message):
    with pytest.raises(ValueError) as err:
        validate_feed_url(url)
    assert message in str(err.value)


def test_validate_sources_names_every_bad_entry_and_drops_duplicates():
    with pytest.raises(ValueError) as err:
        validate_sources([{"url": "https://ok.example/rss"}, {"url": "nope"}, 42])
    assert "feed 2:" in str(err.value) and "feed 3:" in str(err.value)
    ok = validate_sources(["https://a.example/rss", {"name": " A  feed ", "url":
                                                      "https://a.example/rss"}])
    assert [(s.name, s.url) for s in ok] == [("a.example", "https://a.example/rss")]
    with pytest.raises(ValueError, match="non-empty list"):
        validate_sources([])
