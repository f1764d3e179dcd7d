"""Earnings runs end to end: HTTP API -> RunManager thread -> EarningsAutomation ->
PublishingService -> the local archive, and the real WordPress of tests/support/wordpress.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.earnings.runs import Member

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def fundamentals_file(tmp_path: Path) -> Path:
    """Fundamentals in the file provider's documented shape (made-up numbers) for two of the
    calendar's real tickers."""
    def quarters(base: float) -> list[dict]:
        dates = ["2025-02-20", "2025-05-01", "2025-07-31", "2025-10-23", "2026-02-19"]
        return [{"period": f"Q{n}", "report_date": d, "eps_actual": round(base + n * 0.05, 2),
                 "eps_estimate": round(base + n * 0.04, 2), "revenue": 1e9 + n * 5e7}
                for n, d in enumerate(dates)]
    path = tmp_path / "fundamentals.json"
    path.write_text(json.dumps({"TXRH": {"name": "Texas Roadhouse", "quarters": quarters(1.6),
                                         "next_report_date": "2026-04-30",
                                         "next_eps_estimate": 1.9},
                                "LYV": {"name": "Live Nation", "quarters": quarters(0.4)}}))
    return path


@pytest.fixture
def engine_app(make_app, tmp_path: Path, shared_data: Path, fundamentals_file: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50,
                    TICKZEN_EARNINGS_CALENDAR_FILE=str(shared_data / "earnings_calendar.json"),
                    TICKZEN_EARNINGS_FUNDAMENTALS_FILE=str(fundamentals_file))


def test_demo_earnings_into_the_local_archive_exactly_once(engine_app, tmp_path):
    alice = Member(engine_app)
    site_id = alice.site(name="Archive", kind="local")
    run_id = alice.start("earnings", site_id, ["NFLX", "nflx", "KO"], data_source="demo",
                         status="publish")
    run = alice.wait(run_id)
    assert run["status"] == "completed", run
    assert [i["status"] for i in run["items"]] == ["published", "published"]
    keys = [i["key"] for i in run["items"]]
    today = datetime.now(UTC).date().isoformat()
    assert all("-earnings-preview-" in k and k[-10:] >= today for k in keys)
    page = alice.client.get(run["items"][0]["post_url"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Demo data:" in html and "EPS actual vs estimate" in html
    folder = tmp_path / "archive" / alice.user_id / site_id / keys[0]
    assert any(p.suffix == ".png" for p in (folder / "images").iterdir())

    again = alice.wait(alice.start("earnings", site_id, ["NFLX"], data_source="demo"))
    [item] = again["items"]
    assert item["status"] == "skipped" and item["error"] == "already published on this site"
    assert item["post_url"] == run["items"][0]["post_url"]


def test_bad_earnings_runs_are_refused_before_anything_is_stored(engine_app):
    alice = Member(engine_app)
    site_id = alice.site(name="Archive", kind="local")
    response = alice.send("POST", "/api/runs", {
        "kind": "earnings", "site_id": site_id, "items": ["TXRH", "ZZZZQ", "$$$"],
        "options": {"data_source": "file"}})
    assert response.status_code == 400
    body = response.get_json()
    assert "ZZZZQ is not in the earnings calendar file" in json.dumps(body)
    assert "'$$$' is not a valid ticker symbol" in json.dumps(body)
    assert alice.client.get("/api/runs").get_json()["runs"] == []


def test_file_earnings_into_the_real_wordpress(engine_app, wordpress):
    alice = Member(engine_app)
    site_id = alice.site(name="WP", kind="wordpress", url=wordpress.base_url,
                         username=wordpress.admin_user,
                         app_password=wordpress.admin_app_password)
    run = alice.wait(alice.start("earnings", site_id,
                                 [{"ticker": "TXRH", "report_date": "2026-02-19"}, "LYV"],
                                 data_source="file", status="draft"))
    assert run["status"] == "completed", run
    assert [i["key"] for i in run["items"]] == ["txrh-earnings-recap-2026-02-19",
                                                "lyv-earnings-recap-2026-02-19"]
    assert [i["status"] for i in run["items"]] == ["published", "published"], run["items"]
    [post] = wordpress.list_posts(slug="txrh-earnings-recap-2026-02-19")
    assert post["status"] == "draft" and str(post["id"]) == run["items"][0]["post_id"]
    assert "TXRH" in post["title"]["raw"] and "$1.80" in post["title"]["raw"]   # words vary
    assert post["featured_media"] > 0
    assert "Texas Roadhouse" in post["content"]["raw"]
    assert wordpress.term_names("categories", post["categories"]) == ["Earnings"]
    assert {"TXRH", "recap"} <= set(wordpress.term_names("tags", post["tags"]))

    again = alice.wait(alice.start("earnings", site_id, ["TXRH"], data_source="file"))
    assert again["items"][0]["status"] == "skipped"
    assert len(wordpress.list_posts(slug="txrh-earnings-recap-2026-02-19")) == 1
