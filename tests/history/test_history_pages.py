"""/history and GET /api/runs page by keyset: following the links or ``next_cursor`` shows
every run once, in order, with the filters kept; the dashboard and the socket snapshot find
the active runs among many finished ones. A bad cursor is a 400 at the API and ignored on
the page, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from main_portal_app import socketio_of
from storage.base import LedgerEntry, NewItem, Run, Site, Store
from storage.paging import Cursor

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
RUN_ROW = re.compile(r'<tr data-run-id="([^"]+)"')
POST_ROW = re.compile(r'<tr data-slug="([^"]+)"')


def store_of(app: Flask) -> Store:
    return app.extensions["tickzen"].store


def site_for(app: Flask, user_id: str, name: str = "Archive") -> str:
    return store_of(app).create_site(user_id, Site(id="", user_id=user_id, name=name,
                                                   kind="local")).id


def runs_for(app: Flask, user_id: str, site_id: str, count: int, **fields: Any) -> list[Run]:
    """``count`` finished runs, three at each minute (ties broken by id)."""
    store = store_of(app)
    fields.setdefault("status", "completed")
    return [store.create_run(Run(id="", user_id=user_id, kind=fields.get("kind", "stock"),
                                 site_id=site_id, created_at=T0 + timedelta(minutes=n // 3),
                                 updated_at=T0 + timedelta(minutes=n // 3),
                                 **{k: v for k, v in fields.items() if k != "kind"}),
                             [NewItem(key=f"k{n}", input="K")]) for n in range(count)]


def newest_first(runs: list[Run]) -> list[str]:
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]


def link(html: str, rel_or_class: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)"[^>]*(?:rel|class)="{rel_or_class}"', html)
    return unescape(match.group(1)) if match else None


def page_rows(client: FlaskClient, url: str) -> tuple[list[str], str]:
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.get_data(as_text=True)
    return RUN_ROW.findall(html), html


def test_history_links_walk_every_run_once_and_back(app: Flask, client: FlaskClient,
                                                    auth: Any) -> None:
    user = auth.signed_in()
    site = site_for(app, user)
    expected = newest_first(runs_for(app, user, site, 47))
    seen, url, pages = [], "/history", []
    while url:
        rows, html = page_rows(client, url)
        pages.append((url, rows, html))
        seen += rows
        url = link(html, "next")
    assert seen == expected and [len(p[1]) for p in pages] == [20, 20, 7]
    first_html, last_html = pages[0][2], pages[-1][2]
    assert link(first_html, "prev") is None and link(first_html, "tz-pager-newest") is None
    assert link(last_html, "next") is None and link(last_html, "tz-pager-oldest") is None
    back, _ = page_rows(client, link(pages[1][2], "prev"))
    assert back == pages[0][1]                                  # newer runs: page one again
    oldest, html = page_rows(client, link(first_html, "tz-pager-oldest"))
    assert oldest == expected[-20:] and link(html, "next") is None
    newer, _ = page_rows(client, link(html, "prev"))
    assert newer == expected[-40:-20]
    assert page_rows(client, link(html, "tz-pager-newest"))[0] == expected[:20]
    assert page_rows(client, "/history?page=last")[0] == expected[-20:]
    assert page_rows(client, "/history?page=2")[0] == expected[20:40]   # old links still work


def test_history_filters_stay_in_the_links_and_reach_the_store(app: Flask, client: FlaskClient,
                                                              auth: Any) -> None:
    user = auth.signed_in()
    alpha, beta = site_for(app, user, "Alpha"), site_for(app, user, "Beta")
    stock = runs_for(app, user, alpha, 25)
    sports = runs_for(app, user, beta, 23, kind="sports")
    rows, html = page_rows(client, "/history?kind=sports")
    assert rows == newest_first(sports)[:20]
    older = link(html, "next")
    assert "kind=sports" in older
    rows, _ = page_rows(client, older)
    assert rows == newest_first(sports)[20:]
    rows, _ = page_rows(client, f"/history?site={alpha}&kind=sports")
    assert rows == []
    day = f"{T0:%Y-%m-%d}"
    rows, _ = page_rows(client, f"/history?from={day}&to={day}&kind=stock")
    assert rows == newest_first(stock)[:20]
    rows, _ = page_rows(client, f"/history?from={T0 + timedelta(days=1):%Y-%m-%d}")
    assert rows == []


@pytest.mark.parametrize("query", [
    "cursor=not-a-cursor", "before=%%%", "cursor=" + "A" * 5000, "page=last&cursor=x",
    "from=yesterday&to=2026-13-01", "posts_cursor=zzz&posts_page=-1", "status=zzz&kind=<b>"])
def test_junk_positions_and_filters_still_show_a_page(app: Flask, client: FlaskClient,
                                                      auth: Any, query: str) -> None:
    user = auth.signed_in()
    runs_for(app, user, site_for(app, user), 3)
    response = client.get(f"/history?{query}")
    assert response.status_code == 200


def test_history_posts_page_by_keyset_too(app: Flask, client: FlaskClient, auth: Any) -> None:
    user = auth.signed_in()
    store = store_of(app)
    sites = [site_for(app, user, f"S{n}") for n in range(2)]
    made = []
    for n in range(45):
        entry = LedgerEntry(user_id=user, site_id=sites[n % 2], slug=f"post-{n:02d}",
                            item_key=f"k{n}", kind="stock", run_id="r", status="published",
                            day="2026-05-01", created_at=T0 + timedelta(minutes=n // 4))
        made.append(store.reserve_post(entry)[0])
    expected = [p.slug for p in sorted(made, key=lambda p: (p.created_at, p.site_id, p.slug),
                                       reverse=True)]
    seen, url = [], "/history"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += POST_ROW.findall(html)
        match = re.search(r'<a href="([^"]+)" rel="next">Older posts', html)
        url = unescape(match.group(1)) if match else None
    assert seen == expected


def api_walk(client: FlaskClient, query: str = "", limit: int = 7) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        url = f"/api/runs?limit={limit}{query}" + (f"&cursor={cursor}" if cursor else "")
        answer = client.get(url)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        pages.append([r["id"] for r in body["runs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_api_next_cursor_walks_every_run_once(app: Flask, client: FlaskClient,
                                              auth: Any) -> None:
    user = auth.signed_in()
    site = site_for(app, user)
    runs = runs_for(app, user, site, 30)
    expected = newest_first(runs)
    pages = api_walk(client)
    assert [r for p in pages for r in p] == expected and len(pages[-1]) == 30 % 7
    assert [len(p) for p in api_walk(client, limit=10)] == [10, 10, 10]   # none empty
    offset = client.get("/api/runs?limit=5&offset=5").get_json()
    assert [r["id"] for r in offset["runs"]] == expected[5:10] and offset["next_cursor"]
    failed = runs_for(app, user, site, 4, status="failed")
    assert api_walk(client, "&status=failed", limit=3) == [newest_first(failed)[:3],
                                                           newest_first(failed)[3:]]
    assert api_walk(client, "&kind=earnings") == [[]]
    assert api_walk(client, f"&site_id={site}&from={T0:%Y-%m-%d}&to={T0:%Y-%m-%d}",
                    limit=50)[0] == newest_first(runs + failed)


@pytest.mark.parametrize("query", [
    "cursor=not-a-cursor", "cursor=" + "A" * 3000, "cursor=bnVsbA",
    "cursor=" + Cursor(T0, ("a", "b")).encode(), "status=zzz", "kind=nope",
    "from=2026-02-30", "to=tomorrow", "limit=0", "offset=-1", "site_id=" + "x" * 500])
def test_api_bad_cursor_or_filter_is_a_400(app: Flask, client: FlaskClient, auth: Any,
                                            query: str) -> None:
    auth.signed_in()
    response = client.get(f"/api/runs?{query}")
    assert response.status_code == 400
    assert isinstance(response.get_json()["error"], str)


def test_active_runs_are_found_among_many_finished(app: Flask, client: FlaskClient,
                                                   auth: Any) -> None:
    user = auth.signed_in()
    site = site_for(app, user)
    runs_for(app, user, site, 60)
    active = runs_for(app, user, site, 2, status="paused") + \
        runs_for(app, user, site, 1, status="interrupted")
    html = client.get("/").get_data(as_text=True)
    assert all(r.id in html for r in active)
    socket = socketio_of(app).test_client(app, flask_test_client=client)
    [snapshot] = [m["args"][0] for m in socket.get_received()
                  if m["name"] == "automation_snapshot"]
    ids = [entry["run_id"] for entry in snapshot["runs"]]
    assert {r.id for r in active} <= set(ids) and len(ids) == len(active) + 10   # + recent
    socket.disconnect()
