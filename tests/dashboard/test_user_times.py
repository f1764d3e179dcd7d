"""Every time a page prints is in the signed-in user's zone, the zone named: a user in
Asia/Kolkata sees 20:05 UTC on 1 May as "2026-05-02 01:35 IST" on the dashboard, /history, a
run's page, an archived post and /account; /history's day filters are days in that zone; every
page hands its scripts the zone (static/js/local_time.js) and the schedule preview reads like
the campaign pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from automation_scripts.base import Article
from runner.retention import DiskUsage
from storage.base import LedgerEntry, NewItem, Run, Site, Store
from tests.conftest import AuthActions

INSTANT = datetime(2026, 5, 1, 20, 5, tzinfo=UTC)
KOLKATA = "2026-05-02 01:35 IST"
UTC_TEXT = "2026-05-01 20:05 UTC"


@pytest.fixture
def app(make_app, tmp_path: Path) -> Flask:
    return make_app(TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"))


def store_of(app: Flask) -> Store:
    return app.extensions["tickzen"].store


def times_of(html: str, instant: datetime = INSTANT) -> list[str]:
    """The texts of the page's <time> elements that carry ``instant``."""
    stamp = re.escape(instant.strftime("%Y-%m-%dT%H:%M"))
    return [unescape(t) for t in re.findall(rf'<time datetime="{stamp}[^"]*">([^<]*)</time>',
                                            html)]


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"', 1)[1]


@pytest.fixture
def kolkata(app: Flask, auth: AuthActions) -> str:
    """A signed-in user in Asia/Kolkata with a run and a published post at INSTANT."""
    user_id = auth.signed_in()
    store = store_of(app)
    store.update_user(user_id, {"timezone": "Asia/Kolkata"})
    site = store.create_site(user_id, Site(id="", user_id=user_id, name="Blog", kind="local"))
    run = store.create_run(Run(id="", user_id=user_id, kind="stock", site_id=site.id,
                               status="completed", created_at=INSTANT, updated_at=INSTANT),
                           [NewItem(key="aapl", input="AAPL")])
    store.reserve_post(LedgerEntry(user_id=user_id, site_id=site.id, slug="aapl-up",
                                   item_key="aapl", kind="stock", run_id=run.id,
                                   status="published", title="AAPL up", day="2026-05-01",
                                   published_at=INSTANT, created_at=INSTANT))
    return run.id


def test_dashboard_runs_and_posts_in_the_users_zone(client: FlaskClient, kolkata: str) -> None:
    html = client.get("/").get_data(as_text=True)
    assert times_of(section(html, "recent-runs").split("</section>")[0]) == [KOLKATA]
    assert times_of(section(html, "recent-posts").split("</section>")[0]) == [KOLKATA]
    assert " UTC" not in section(html, "recent-runs").split('id="sites"')[0]


def test_history_tables_in_the_users_zone(client: FlaskClient, kolkata: str) -> None:
    html = client.get("/history").get_data(as_text=True)
    runs = section(html, "history-runs").split("</table>")[0]
    posts = section(html, "history-posts").split("</table>")[0]
    assert times_of(runs) == [KOLKATA] and times_of(posts) == [KOLKATA]
    assert "(UTC)" not in html
    assert "Started from (day in Asia/Kolkata)" in html


def test_history_days_are_the_users_days(client: FlaskClient, kolkata: str) -> None:
    """20:05 UTC on 1 May is 2 May in Kolkata: the page's day filter finds it on the 2nd."""
    def rows(query: str) -> list[str]:
        html = client.get(f"/history?{query}").get_data(as_text=True)
        return re.findall(r'<tr data-run-id="([^"]+)"', html)

    assert rows("from=2026-05-02&to=2026-05-02") == [kolkata]
    assert rows("from=2026-05-01&to=2026-05-01") == []
    assert rows("to=2026-05-01") == [] and rows("from=2026-05-03") == []
    api = client.get("/api/runs?from=2026-05-01&to=2026-05-01").get_json()
    assert [r["id"] for r in api["runs"]] == [kolkata]          # the API's days stay UTC


def test_run_page_start_and_pruned_log_in_the_users_zone(app: Flask, client: FlaskClient,
                                                         kolkata: str) -> None:
    html = client.get(f"/runs/{kolkata}").get_data(as_text=True)
    assert times_of(section(html, "tz-run-detail")) == [KOLKATA]
    store_of(app).prune_run(kolkata, finished_before=INSTANT + timedelta(minutes=1),
                            when=INSTANT, files_pruned=True)
    html = client.get(f"/runs/{kolkata}").get_data(as_text=True)
    assert times_of(section(html, "tz-run-pruned").split("</p>")[0]) == [KOLKATA]


def test_archived_post_in_the_users_zone(app: Flask, client: FlaskClient, auth: AuthActions,
                                         tmp_path: Path) -> None:
    user_id = auth.signed_in()
    store_of(app).update_user(user_id, {"timezone": "Asia/Kolkata"})
    site = store_of(app).list_sites(user_id)[0]
    published = app.extensions["tickzen"].publishing.publish(
        user_id, site.id, Article(slug="a-post", title="A post", html="<p>Hi</p>",
                                  excerpt="Hi"), run_id="r1", kind="stock",
        options={"status": "publish"})
    stored = tmp_path / "archive" / user_id / site.id / "a-post" / "article.json"
    record = json.loads(stored.read_text())
    record["published_at"] = INSTANT.isoformat()
    stored.write_text(json.dumps(record))
    html = client.get(published.post_url).get_data(as_text=True)
    assert times_of(html) == [KOLKATA]


def test_account_disk_measurement_in_the_users_zone(app: Flask, client: FlaskClient,
                                                    kolkata: str, auth: AuthActions) -> None:
    user = store_of(app).get_user_by_email("user@example.com")
    store_of(app).update_user_settings(user.id, {"disk_usage": DiskUsage(0, 0, 0, 0)
                                                 .setting(INSTANT)})
    html = client.get("/account").get_data(as_text=True)
    assert times_of(section(html, "disk-measured").split("</p>")[0]) == [KOLKATA]


def test_without_a_zone_the_pages_say_utc(app: Flask, client: FlaskClient,
                                          kolkata: str) -> None:
    user = store_of(app).get_user_by_email("user@example.com")
    store_of(app).update_user(user.id, {"timezone": ""})
    assert times_of(client.get("/history").get_data(as_text=True)) == [UTC_TEXT, UTC_TEXT]
    assert "Started from (day in UTC)" in client.get("/history").get_data(as_text=True)


def test_every_page_tells_its_scripts_the_zone(client: FlaskClient, kolkata: str) -> None:
    html = client.get("/history").get_data(as_text=True)
    head = re.search(r"<html [^>]*>", html).group(0)
    assert 'data-time-zone="Asia/Kolkata"' in head
    names = json.loads(unescape(re.search(r"data-zone-names='([^']*)'", head).group(1)))
    assert names == {"330": "IST"}
    assert "js/local_time.js" in html


def test_schedule_preview_reads_like_the_campaign_pages(client: FlaskClient, kolkata: str,
                                                        auth: AuthActions) -> None:
    answer = client.post("/api/campaigns/schedule-preview", headers=auth.headers(), json={
        "schedule": {"cron": "0 7 * * 1-5", "timezone": "America/New_York"}})
    assert answer.status_code == 200, answer.get_json()
    for text in answer.get_json()["next_fires_local"]:
        assert re.fullmatch(r"\w{3} \d\d \w{3} \d{4}, 1[67]:30 IST \(\w{3} 07:00 E[SD]T\)",
                            text), text
