"""The campaign JSON API through the real app: answers as DESIGN.md lists them, every bad input
a 4xx with the reason and nothing stored, and nobody reaches another user's campaigns."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.earnings.runs import Member


def stock_body(site_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Morning tickers", "kind": "stock", "site_id": site_id,
        "source": {"tickers": ["aapl", "MSFT", "brk.b", "NVDA", "AAPL"]}, "per_run": 2,
        "schedule": {"cron": "0 7 * * 1-5", "timezone": "America/New_York"},
        "options": {"data_source": "demo", "status": "publish"}}
    body.update(fields)
    return body


@pytest.fixture
def alice(app: Flask) -> Member:
    return Member(app, "alice@example.com")


@pytest.fixture
def site_id(alice: Member) -> str:
    return alice.site(name="Archive", kind="local")


def create(member: Member, body: dict[str, Any]) -> dict[str, Any]:
    response = member.send("POST", "/api/campaigns", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_answers_the_campaign_with_its_schedule_and_queue(alice: Member,
                                                                 site_id: str) -> None:
    campaign = create(alice, stock_body(site_id))
    assert campaign["status"] == "active" and campaign["kind"] == "stock"
    assert campaign["schedule_text"] == "At 07:00, Monday through Friday, America/New_York"
    assert len(campaign["next_fires"]) == 3
    assert campaign["next_fires"][0] == campaign["next_fire_at"]
    assert campaign["source"] == {"tickers": ["AAPL", "MSFT", "BRK-B", "NVDA"], "repeat": True}
    assert campaign["queue"] == {"total": 4, "done": 0, "cycle": 0, "next": ["AAPL", "MSFT"]}
    assert campaign["catch_up_seconds"] == 3600 and campaign["last_fire"] is None
    assert alice.client.get(f"/api/campaigns/{campaign['id']}").get_json() == campaign
    assert alice.client.get("/api/campaigns").get_json() == {"campaigns": [campaign]}


def test_earnings_and_sports_campaigns(alice: Member, site_id: str) -> None:
    earnings = create(alice, stock_body(site_id, kind="earnings", name="Previews",
                                        source={"days_ahead": 1, "mode": "preview",
                                                "watchlist": ["aapl", "brk.b"]},
                                        options={"provider": "demo"},
                                        schedule={"interval_seconds": 3600}))
    assert earnings["source"] == {"days_ahead": 1, "mode": "preview",
                                  "watchlist": ["AAPL", "BRK.B"]}
    assert earnings["schedule_text"] == "Every hour"
    assert earnings["queue"]["total"] is None
    sports = create(alice, stock_body(site_id, kind="sports", name="Roundups", source={},
                                      options={}))
    assert sports["source"] == {} and sports["queue"]["next"] == []


def test_patch_pause_resume_delete(alice: Member, site_id: str) -> None:
    campaign = create(alice, stock_body(site_id))
    url = f"/api/campaigns/{campaign['id']}"
    changed = alice.send("PATCH", url, {"name": "Renamed", "per_run": 3,
                                        "schedule": {"interval_seconds": 900}}).get_json()
    assert (changed["name"], changed["per_run"], changed["schedule_text"]) == (
        "Renamed", 3, "Every 15 minutes")
    assert changed["queue"]["next"] == ["AAPL", "MSFT", "BRK-B"]
    paused = alice.send("POST", f"{url}/pause")
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    assert paused.get_json()["next_fires"] == []
    assert alice.send("POST", f"{url}/pause").status_code == 409
    resumed = alice.send("POST", f"{url}/resume").get_json()
    assert resumed["status"] == "active" and len(resumed["next_fires"]) == 3
    assert alice.send("POST", f"{url}/resume").status_code == 409
    assert alice.send("POST", f"{url}/explode").status_code == 404
    assert alice.send("DELETE", url).get_json() == {"deleted": campaign["id"]}
    assert alice.client.get(url).status_code == 404


def test_run_now_then_409_while_that_run_is_active(alice: Member, site_id: str) -> None:
    campaign = create(alice, stock_body(site_id))
    url = f"/api/campaigns/{campaign['id']}"
    started = alice.send("POST", f"{url}/run")
    assert started.status_code == 202
    run_id = started.get_json()["run_id"]
    run = alice.client.get(f"/api/runs/{run_id}").get_json()          # (no runner in this app)
    assert run["campaign_id"] == campaign["id"] and run["status"] == "queued"
    assert [i["label"] for i in run["items"]] == ["AAPL", "MSFT"]
    again = alice.send("POST", f"{url}/run")
    assert again.status_code == 409
    assert again.get_json() == {"error": "previous run still active"}
    fires = alice.client.get(f"{url}/fires").get_json()["fires"]
    assert [(f["outcome"], f["reason"], f["run_id"]) for f in fires] == [
        ("started", "run now", run_id)]
    assert set(fires[0]) == {"fire_id", "scheduled_for", "fired_at", "outcome", "reason",
                             "run_id"}
    after = alice.client.get(url).get_json()
    assert after["last_fire"]["run_id"] == run_id and after["queue"]["done"] == 2
    assert alice.client.get(f"{url}/fires?limit=0").status_code == 400


def test_schedule_preview(alice: Member) -> None:
    answer = alice.send("POST", "/api/campaigns/schedule-preview",
                        {"schedule": {"cron": "30 23 * * *", "timezone": "Asia/Kolkata"}})
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["schedule_text"] == "At 23:30, Asia/Kolkata"
    assert [t[11:19] for t in body["next_fires"]] == ["18:00:00"] * 3
    assert all("23:30 IST" in t for t in body["next_fires_local"])
    bad = alice.send("POST", "/api/campaigns/schedule-preview",
                     {"schedule": {"interval_seconds": 60}})
    assert bad.status_code == 400 and "at least 300" in bad.get_json()["error"]


BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("empty list", {"source": {"tickers": []}}, "non-empty list"),
    ("10,001 tickers", {"source": {"tickers": [f"T{i}" for i in range(10_001)]}},
     "at most 10000"),
    ("per_run 0", {"per_run": 0}, "per_run must be from 1 to 500"),
    ("per_run above the maximum", {"per_run": 501}, "per_run must be from 1 to 500"),
    ("per_run as text", {"per_run": "2"}, "per_run must be a whole number"),
    ("a bad ticker", {"source": {"tickers": ["AAPL", "<script>"]}}, "invalid"),
    ("a bad status", {"options": {"status": "bogus"}}, "options.status must be one of"),
    ("a bad data source", {"options": {"data_source": "nope"}}, "unknown data_source"),
    ("options not an object", {"options": ["x"]}, "options must be an object"),
    ("an invalid cron", {"schedule": {"cron": "61 7 * * *"}}, "not a valid cron"),
    ("six cron fields", {"schedule": {"cron": "0 0 7 * * *"}}, "5 fields"),
    ("an unknown zone", {"schedule": {"cron": "0 7 * * *", "timezone": "Mars/Base"}},
     "unknown time zone"),
    ("too short an interval", {"schedule": {"interval_seconds": 60}}, "at least 300"),
    ("a cron too often", {"schedule": {"cron": "* * * * *"}}, "at least 300 s apart"),
    ("no schedule", {"schedule": None}, "missing: schedule"),
    ("no name", {"name": ""}, "name must be text"),
    ("an unknown kind", {"kind": "poetry"}, "unknown kind"),
    ("an unknown field", {"colour": "red"}, "unknown field"),
    ("source keys of another kind", {"source": {"tickers": ["AAPL"], "days_ahead": 1}},
     "unknown source field"),
    ("repeat not a bool", {"source": {"tickers": ["AAPL"], "repeat": "yes"}},
     "repeat must be true or false"),
    ("catch-up zero", {"catch_up_seconds": 0}, "catch_up_seconds must be from 1"),
    ("an earnings recap today", {"kind": "earnings", "source": {"mode": "recap",
                                                                "days_ahead": 0}},
     "days_ahead must be from 1"),
    ("an earnings watchlist ticker", {"kind": "earnings",
                                      "source": {"watchlist": ["AAPL", "??"]}}, "invalid"),
    ("a sports source", {"kind": "sports", "source": {"tickers": ["AAPL"]}}, "source is {}"),
]


@pytest.mark.parametrize(("case", "change", "says"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_is_a_400_with_the_reason_and_stores_nothing(
        alice: Member, site_id: str, case: str, change: dict[str, Any], says: str) -> None:
    body = {**stock_body(site_id), **change}
    response = alice.send("POST", "/api/campaigns", body)
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert says in answer["error"] + " ".join(answer.get("details", []))
    assert alice.client.get("/api/campaigns").get_json() == {"campaigns": []}


def test_bodies_that_are_not_objects(alice: Member) -> None:
    for data in ("[1, 2]", "not json", ""):
        response = alice.client.post("/api/campaigns", data=data,
                                     headers={"X-CSRFToken": alice.token,
                                              "Content-Type": "application/json"})
        assert response.status_code == 400 and "JSON object" in response.get_json()["error"]


def test_an_unknown_or_foreign_site_is_not_found(app: Flask, alice: Member, site_id: str
                                                 ) -> None:
    bob = Member(app, "bob@example.com")
    bobs_site = bob.site(name="Bob's", kind="local")
    for site in ("nope", bobs_site):
        response = alice.send("POST", "/api/campaigns", stock_body(site))
        assert response.status_code == 404 and response.get_json() == {
            "error": "site not found"}
    assert alice.client.get("/api/campaigns").get_json() == {"campaigns": []}


def test_bad_patches_change_nothing(alice: Member, site_id: str) -> None:
    campaign = create(alice, stock_body(site_id))
    url = f"/api/campaigns/{campaign['id']}"
    for change, says in (({"kind": "sports"}, "kind cannot change"),
                         ({"per_run": 0}, "per_run"), ({}, "nothing to change"),
                         ({"schedule": {"cron": "0 7 * * *", "timezone": "Nowhere"}},
                          "unknown time zone"),
                         ({"site_id": "nope"}, "site not found")):
        response = alice.send("PATCH", url, change)
        assert 400 <= response.status_code < 500 and says in response.get_json()["error"]
    assert alice.client.get(url).get_json() == campaign


def test_another_users_campaign_is_404_and_unchanged(app: Flask, alice: Member,
                                                     site_id: str) -> None:
    campaign = create(alice, stock_body(site_id))
    url = f"/api/campaigns/{campaign['id']}"
    bob = Member(app, "bob@example.com")
    calls = [("GET", url, None), ("PATCH", url, {"name": "mine"}), ("DELETE", url, None),
             ("POST", f"{url}/pause", None), ("POST", f"{url}/resume", None),
             ("POST", f"{url}/run", None), ("GET", f"{url}/fires", None)]
    for method, path, body in calls:
        response = bob.send(method, path, body)
        assert response.status_code == 404, (method, path)
        assert response.get_json() == {"error": "campaign not found"}
    assert bob.client.get("/api/campaigns").get_json() == {"campaigns": []}
    assert alice.client.get(url).get_json() == campaign
    anonymous = app.test_client()
    assert anonymous.get("/api/campaigns").status_code == 401
