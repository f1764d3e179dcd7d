"""The dashboard's last 30 days in the page: for a known history (built through the store),
every figure is in the tables beside the charts; the charts are SVG drawn by the server, with
no script and no style attribute; another user's history never shows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.charts import nice_top, ring, stacked_bars
from portal.insights import percent_text, window
from storage.base import Site
from storage.clock import utcnow
from tests.conftest import AuthActions
from tests.dashboard.html_tables import tables
from tests.support.insight_history import PublishClock, ledger_entry, publish, run_of

AUTH = "WordPress rejected the username or application password (401 incorrect_password)"
LIMIT = "the daily limit of 3 posts for site 'Blog' is used up"
TIMEOUT = "blog.example.com did not answer in time (timeout)"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> PublishClock:
    return PublishClock().install(monkeypatch)


def day(when: Any) -> str:
    return when.date().isoformat()


@pytest.fixture
def history(app: Flask, client: FlaskClient, auth: AuthActions, clock: PublishClock
            ) -> dict[str, Any]:
    """Bob's run and post, then Ann's (signed in): two sites, three runs in the window and
    one before it, posts three and ten days ago and today, one reserved today."""
    store = app.extensions["tickzen"].store
    now = utcnow()
    bob = auth.signed_in("bob@example.com")
    bobs = store.list_sites(bob)[0].id
    run_of(store, bob, bobs, "stock", now - timedelta(days=2), {"BOBX": None, "BOBY": AUTH})
    publish(store, clock, bob, bobs, "bobx", now - timedelta(days=2), title="Bob's post")
    auth.logout()
    ann = auth.signed_in("ann@example.com")
    archive = store.list_sites(ann)[0]
    blog = store.create_site(ann, Site(id="", user_id=ann, name="Blog", kind="local",
                                       daily_limit=3)).id
    three, ten = now - timedelta(days=3), now - timedelta(days=10)
    run_of(store, ann, blog, "stock", three, {"AAPL": None, "MSFT": None, "TSLA": AUTH})
    run_of(store, ann, blog, "earnings", now - timedelta(minutes=5),
           {"NVDA": None, "AMZN": LIMIT})
    run_of(store, ann, archive.id, "sports", ten, {"Big match": None, "Cup final": TIMEOUT})
    run_of(store, ann, blog, "stock", now - timedelta(days=40), {"OLD": None, "GONE": AUTH})
    publish(store, clock, ann, blog, "aapl-post", three, title="AAPL analysis")
    publish(store, clock, ann, blog, "msft-post", three + timedelta(minutes=1))
    publish(store, clock, ann, archive.id, "big-match", ten, "sports", "Big match report")
    publish(store, clock, ann, blog, "nvda-earnings", now, "earnings", "NVDA earnings")
    store.reserve_post(ledger_entry(ann, blog, "under-way", "stock", now))
    return {"now": now, "three": three, "ten": ten, "archive": archive.name}


def test_the_figures_of_a_known_history_are_in_the_tables(client: FlaskClient,
                                                         history: dict[str, Any]) -> None:
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    found = tables(html)
    now, three, ten = history["now"], history["three"], history["ten"]
    archive = history["archive"]
    rows = found["posts-table-site"]            # sites in the order they were made
    assert rows[0] == ["Day (UTC)", archive, "Blog", "Total"]
    assert rows[1:-1] == sorted([[day(ten), "1", "0", "1"], [day(three), "0", "2", "2"],
                                 [day(now), "0", "1", "1"]])
    assert rows[-1] == ["30 days", "1", "3", "4"]
    kinds = found["posts-table-kind"]
    assert kinds[0] == ["Day (UTC)", "Stock", "Earnings", "Sports", "Total"]
    assert kinds[1:-1] == sorted([[day(ten), "0", "0", "1", "1"],
                                  [day(three), "2", "0", "0", "2"],
                                  [day(now), "0", "1", "0", "1"]])
    assert kinds[-1] == ["30 days", "2", "1", "1", "4"]
    assert found["rate-table"] == [["Runs started", "3"], ["Published items", "4"],
                                   ["Failed items", "3"], ["Success rate", "57.1%"]]
    assert [row[:2] for row in found["causes-table"]] == [
        ["Cause", "Failed items"], ["Daily limit", "1"], ["Sign-in refused", "1"],
        ["Network or timeout", "1"], ["Data or provider", "0"], ["Other", "0"]]
    assert found["tickers-table"] == [["Ticker", "Published items"], ["AAPL", "1"],
                                      ["MSFT", "1"], ["NVDA", "1"]]
    sites = {row[0]: row[1:] for row in found["sites-today"][1:]}
    assert sites["Blog"][0].startswith("2 of 3") and "NVDA earnings" in sites["Blog"][1]
    assert sites[archive][0].startswith("0") and "no daily limit" in sites[archive][0]
    assert "Big match report" in sites[archive][1]
    assert "Bob" not in html and "BOBX" not in html


def test_the_charts_are_server_side_svg(client: FlaskClient, history: dict[str, Any]) -> None:
    html = client.get("/").get_data(as_text=True)
    section = html.split('id="insights"')[1].split('id="recent-runs"')[0]
    assert "style=" not in section and "<script" not in section
    assert "css/dashboard.css" in html
    charts = re.findall(r'<svg class="chart[^"]*"[^>]*role="img"', section)
    assert len(charts) == 5                 # per day by site and by kind, rate, causes, tickers
    by_site = section.split('id="posts-by-site"')[1].split("</svg>")[0]
    assert len(re.findall(r"<rect class=\"bar series-\d\"", by_site)) == 3   # (day, site) pairs
    assert "57.1%" in section.split('id="success-rate"')[1].split("</svg>")[0]
    assert 'stroke-dasharray="' in section
    assert "Posts published per day, by site" in section and "4 posts in 30 days" in section


def test_an_empty_account_has_empty_charts(client: FlaskClient, auth: AuthActions) -> None:
    auth.signed_in()
    found = tables(client.get("/").get_data(as_text=True))
    assert found["rate-table"][-1] == ["Success rate", "—"]
    assert found["posts-table-site"][-1] == ["30 days", "0"]
    html = client.get("/").get_data(as_text=True)
    assert "Nothing published in these 30 days." in html
    assert "No item failed in these 30 days." in html


def test_chart_geometry() -> None:
    assert [nice_top(n) for n in (0, 1, 2, 3, 5, 6, 9, 11, 45, 81, 101)] == [
        1, 1, 2, 4, 5, 8, 10, 20, 50, 100, 200]
    chart = stacked_bars(["d1", "d2"], ["1", "2"], [("A", "series-0", {"d1": 2, "d2": 1}),
                                                    ("B", "series-1", {"d1": 2})],
                         width=134, height=130, label_every=1)
    assert chart.top == 4 and [t.value for t in chart.ticks] == [0, 2, 4]
    a1, b1, a2 = chart.bars
    assert (a1.height, b1.height, a2.height) == (50.0, 50.0, 25.0)   # plot height 100
    assert b1.y + b1.height == a1.y and a1.y + a1.height == chart.bottom
    assert a1.tip == "1: A, 2 posts" and a2.tip == "2: A, 1 post"
    assert [x.text for x in chart.labels] == ["1", "2"]
    half = ring(1, 2)
    assert half.dash * 2 == pytest.approx(half.circumference, abs=0.01)
    assert ring(0, 0).dash == 0
    assert [percent_text(*a) for a in ((4, 7), (0, 0), (1, 1), (0, 3), (999, 1000),
                                       (1, 10000))] == ["57.1%", "—", "100%", "0%", "99.9%",
                                                        "0.1%"]


def test_the_window_is_thirty_utc_days_ending_today() -> None:
    now = utcnow()
    since, days = window(now)
    assert len(days) == 30 and days[-1] == now.date() and since.date() == days[0]
    assert since.hour == 0 and since.utcoffset() == timedelta(0)


def test_figures_the_store_cannot_read_cost_the_charts_not_the_page(
        app: Flask, client: FlaskClient, auth: AuthActions, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    auth.signed_in()
    store = app.extensions["tickzen"].store

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("400 The query requires an index")   # as Firestore answers

    monkeypatch.setattr(store, "insights", unavailable)
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="recent-runs"' in html
    assert "cannot be read right now" in html and "<svg" not in html
