"""The sports automation: story items from the real feeds -> roundup articles."""

from __future__ import annotations

import copy
import html
from datetime import UTC, date, datetime

import pytest

from automation_scripts.base import InvalidItems, ItemContext, StopRequested
from automation_scripts.sports.automation import create, quote_fragment
from automation_scripts.sports.feeds import (
    FeedCache,
    FeedFetcher,
    FeedSource,
    cluster_entries,
    rank_stories,
)

NOW = datetime(2026, 2, 12, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fetched_stories(tmp_path_factory, shared_data, feed_server) -> list[dict]:
    sources = [FeedSource(p.stem, feed_server.url(f"feeds/{p.name}"))
               for p in sorted((shared_data / "feeds").glob("*.xml"))]
    report = FeedFetcher(FeedCache(tmp_path_factory.mktemp("cache"))).fetch_all(sources)
    return [s.to_dict() for s in rank_stories(cluster_entries(report.entries), NOW)]


@pytest.fixture
def story_dicts(fetched_stories) -> list[dict]:
    return copy.deepcopy(fetched_stories)


def context(tmp_path, stop: bool = False):
    events = []

    def checkpoint():
        if stop:
            raise StopRequested("cancel")

    return ItemContext(run_id="r", user_id="u", index=0, total=1, options={}, workdir=tmp_path,
                       progress=lambda *a, **k: events.append(k), checkpoint=checkpoint), events


def find(stories, needle):
    return next(s for s in stories if any(needle in e["title"] for e in s["entries"]))


def test_roundup_attributes_links_and_never_copies_a_whole_summary(tmp_path, story_dicts):
    story = find(story_dicts, "Sean Dyche sacked by Nottingham Forest")
    automation = create({})
    [item], notes = automation.prepare([story], {}, date(2026, 2, 12))
    assert notes == [] and item.key == story["id"]
    ctx, events = context(tmp_path)
    article = automation.process(item, ctx)
    text = html.unescape(article.html)
    for entry in story["entries"]:
        assert f'href="{entry["link"]}"' in text.replace("&amp;", "&")
        assert entry["source"] in text
        assert entry["summary"] and entry["summary"] not in text
    assert "3 outlets covered this story" in text
    assert article.categories == ["Football"]
    assert "Nottingham Forest" in article.tags and "roundup" in article.tags
    assert article.slug == item.key
    [image] = article.images
    assert image.role == "featured" and image.data[:4] == b"\x89PNG"
    assert [e["percent"] for e in events] == [20, 60]


def test_every_story_of_the_real_feeds_can_be_written(tmp_path, story_dicts):
    automation = create({})
    items, _ = automation.prepare(story_dicts[:20], {}, date(2026, 2, 12))
    assert len(items) == 20
    for item in items:
        article = automation.process(item, context(tmp_path)[0])
        text = html.unescape(article.html)
        assert "<script" not in article.html
        for entry in item.input["entries"]:
            if len(entry["summary"].split()) >= 4:
                assert entry["summary"] not in text


def test_key_is_stable_whatever_the_client_sends_as_id(story_dicts):
    story = copy.deepcopy(story_dicts[0])
    original = story["id"]
    story["id"] = "something-else"
    story["entries"].reverse()
    [item], _ = create({}).prepare([story], {}, date(2026, 2, 12))
    assert item.key == original


def test_duplicates_are_dropped_with_a_note(story_dicts):
    items, notes = create({}).prepare([story_dicts[0], story_dicts[1], story_dicts[0]], {},
                                      date(2026, 2, 12))
    assert len(items) == 2
    assert len(notes) == 1 and "picked twice" in notes[0]


def test_feed_html_in_a_story_is_escaped(tmp_path):
    story = {"title": "<img src=x onerror=alert(1)>Derby day",
             "entries": [{"source": "Evil <b>FC</b>", "title": "Derby <script>x()</script> day",
                          "link": "https://example.com/a?x=1&y=2",
                          "summary": "<p>A long summary of the derby that is certainly more "
                                     "than a few words long.</p>",
                          "published": "2026-02-11T20:00:00+00:00",
                          "categories": ["Football", "<i>Derby</i>"]}]}
    [item], _ = create({}).prepare([story], {}, date(2026, 2, 12))
    article = create({}).process(item, context(tmp_path)[0])
    assert "<script" not in article.html and "onerror" not in article.html
    assert "<img" not in article.html
    assert 'href="https://example.com/a?x=1&amp;y=2"' in article.html
    assert article.tags[0] == "Derby"


@pytest.mark.parametrize("raw, message", [
    ("just a headline", "story 1: expected a story object with title and entries"),
    ({"title": "x"}, "story 1: entries (the outlets' items) are required"),
    ({"title": "x", "entries": [{"title": "t", "link": "javascript:alert(1)", "source": "s"}]},
     "story 1, entry 1: link must be an http(s) URL"),
    ({"title": "x", "entries": [{"title": "", "link": "https://a.b/", "source": "s"}]},
     "story 1, entry 1: a title is required"),
    ({"title": "x", "entries": [{"title": "t", "link": "https://a.b/"}]},
     "story 1, entry 1: the source (outlet name) is required"),
    ({"title": "x", "entries": [{"title": "t", "link": "https://a.b/", "source": "s",
                                 "published": "yesterday"}]},
     "story 1, entry 1: published must be an ISO-8601 time"),
    ({"title": "x", "entries": [{"title": "t", "link": "https://a.b/", "source": "s",
                                 "categories": "Football"}]},
     "story 1, entry 1: categories must be a list of strings"),
    ({"title": "x", "entries": [{"title": "t", "link": f"https://a.b/{n}", "source": "s"}
                                for n in range(21)]},
     "story 1: at most 20 entries"),
])
def test_bad_story_items(raw, message):
    with pytest.raises(InvalidItems) as err:
        create({}).prepare([raw], {}, date(2026, 2, 12))
    assert err.value.errors == [message]


def test_empty_and_oversized_runs():
    with pytest.raises(InvalidItems, match="at least one story"):
        create({}).prepare([], {}, date(2026, 2, 12))
    story = {"title": "x", "entries": [{"title": "t", "link": "https://a.b/", "source": "s"}]}
    with pytest.raises(InvalidItems, match="at most 100 stories"):
        create({}).prepare([story] * 101, {}, date(2026, 2, 12))


def test_cancel_between_steps(tmp_path, story_dicts):
    [item], _ = create({}).prepare([story_dicts[0]], {}, date(2026, 2, 12))
    ctx, events = context(tmp_path, stop=True)
    with pytest.raises(StopRequested):
        create({}).process(item, ctx)
    assert len(events) == 1


@pytest.mark.parametrize("summary", [
    "Short one.",
    "Nottingham Forest sacked coach Sean Dyche on Wednesday.",
    "One two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty. Second sentence here.",
])
def test_quote_fragment_is_short_and_never_the_whole_summary(summary):
    fragment = quote_fragment(summary)
    assert fragment != summary.strip()
    assert len(fragment.split()) <= 15
    assert summary.startswith(fragment)
