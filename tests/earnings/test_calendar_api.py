"""GET /api/earnings/calendar through the real app."""

from __future__ import annotations

import json

import pytest

from tests.support import procs


def test_needs_a_signed_in_user(client):
    assert client.get("/api/earnings/calendar").status_code in (302, 401)


def test_demo_calendar_lists_seven_days(client, auth):
    auth.signed_in()
    body = client.get("/api/earnings/calendar?provider=demo&start=2026-11-23").get_json()
    assert body["provider"] == "demo" and body["demo"] is True
    assert [d["date"] for d in body["days"]] == [f"2026-11-{n}" for n in range(23, 30)]
    assert body["total"] == sum(len(d["entries"]) for d in body["days"]) > 0
    assert all(e["date"] == d["date"] for d in body["days"] for e in d["entries"])


def test_file_calendar_from_the_real_data(make_app, auth, shared_data):
    app = make_app(TICKZEN_EARNINGS_CALENDAR_FILE=str(shared_data / "earnings_calendar.json"))
    client = app.test_client()
    type(auth)(client).signed_in()
    body = client.get("/api/earnings/calendar?provider=file&start=2026-02-19").get_json()
    assert [len(d["entries"]) for d in body["days"]] == [159, 22, 0, 0, 86, 148, 236]
    assert body["total"] == 651 and body["demo"] is False


def test_file_calendar_without_a_start_shows_the_files_days(make_app, auth, shared_data,
                                                             tmp_path):
    # The run page asks without a start: a file is a snapshot, so the week starts at its first
    # day from today on, or at its first day when it lies wholly in the past.
    app = make_app(TICKZEN_EARNINGS_CALENDAR_FILE=str(shared_data / "earnings_calendar.json"))
    client = app.test_client()
    type(auth)(client).signed_in()
    body = client.get("/api/earnings/calendar?provider=file").get_json()
    assert body["start"] == "2026-02-19" and body["total"] == 651

    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    past, soon = today - timedelta(days=30), today + timedelta(days=2)
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"calendar": {
        past.isoformat(): [{"ticker": "OLD", "date": past.isoformat()}],
        soon.isoformat(): [{"ticker": "NEXT", "date": soon.isoformat()}]}}))
    client = make_app(TICKZEN_EARNINGS_CALENDAR_FILE=str(path)).test_client()
    type(auth)(client).signed_in()
    body = client.get("/api/earnings/calendar?provider=file").get_json()
    assert body["start"] == soon.isoformat()
    assert [e["ticker"] for d in body["days"] for e in d["entries"]] == ["NEXT"]


def test_empty_calendar_file(make_app, auth, tmp_path):
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"calendar": {}}))
    client = make_app(TICKZEN_EARNINGS_CALENDAR_FILE=str(path)).test_client()
    type(auth)(client).signed_in()
    body = client.get("/api/earnings/calendar?provider=file&start=2026-02-19").get_json()
    assert body["total"] == 0 and len(body["days"]) == 7


@pytest.mark.parametrize("query, status, message", [
    ("provider=bloomberg", 400, "unknown provider 'bloomberg'"),
    ("provider=demo&start=tomorrow", 400, "start must be a date (YYYY-MM-DD)"),
    ("provider=demo&days=30", 400, "days must be a whole number from 1 to 14"),
    ("provider=demo&days=two", 400, "days must be a whole number from 1 to 14"),
    ("provider=finnhub", 400, "the finnhub provider is not available: the finnhub provider "
                              "needs an API key"),
    ("provider=file", 400, "no earnings calendar file is configured"),
])
def test_bad_queries(client, auth, query, status, message):
    auth.signed_in()
    response = client.get(f"/api/earnings/calendar?{query}")
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_provider_down_is_a_502_with_the_reason(make_app, auth):
    client = make_app(FINNHUB_API_KEY="k", TICKZEN_PROVIDER_TIMEOUT=2,
                      FINNHUB_API_URL=f"http://127.0.0.1:{procs.free_port()}").test_client()
    type(auth)(client).signed_in()
    response = client.get("/api/earnings/calendar?provider=finnhub")
    assert response.status_code == 502
    assert response.get_json() == {"error": "finnhub is unreachable: ConnectionError"}
