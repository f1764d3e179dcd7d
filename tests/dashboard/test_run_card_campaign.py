"""A run started by a campaign carries the campaign's name to its live card: in the API answer,
the socket snapshot and the run page's starting state (portal/run_views.py), kept by the
card's model (static/js/run_view.js under Node) and written as text only."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from main_portal_app import socketio_of
from tests.earnings.runs import Member
from tests.support.procs import need

ROOT = Path(__file__).resolve().parents[2]
NAME = "Morning <b>movers</b> & co"          # markup in a name stays text
MODEL = r"""
const { RunModel } = require(process.argv[1]);
const [initial, ...views] = JSON.parse(process.argv[2]);
const m = new RunModel(initial);
const out = [[m.campaignId, m.campaignName]];
for (const v of views) { m.replace(v); out.push([m.campaignId, m.campaignName]); }
console.log(JSON.stringify(out));
"""


def model(views: list[dict[str, Any]]) -> list[list[Any]]:
    node = shutil.which("node")
    need(node is not None, "node is not installed (apt-get install -y nodejs)")
    done = subprocess.run([node, "-e", MODEL, str(ROOT / "static/js/run_view.js"),
                           json.dumps(views)], capture_output=True, text=True, timeout=30,
                          check=True)
    return json.loads(done.stdout)


def view(last_seq: int = 0, **extra: Any) -> dict[str, Any]:
    return {"run_id": "r1", "kind": "stock", "status": "running", "last_seq": last_seq,
            "items": [], **extra}


def test_the_card_model_keeps_the_campaign_name() -> None:
    out = model([view(campaign_id="c1", campaign_name=NAME),
                 view(1),                                      # an event's view without it
                 view(2, campaign_id="c1"),                    # a view that does not say
                 view(0, campaign_id="c1", campaign_name="Renamed"),   # older seq: still
                 view(3, campaign_id="c1", campaign_name=None)])       # deleted since
    assert out == [["c1", NAME], ["c1", NAME], ["c1", NAME], ["c1", "Renamed"], ["c1", None]]
    assert model([view()]) == [[None, None]]


def test_the_card_writes_the_name_as_text() -> None:
    script = (ROOT / "static/js/run_view.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert re.search(r'setText\(campaign, m\.campaignId \? "Campaign: "', script)
    live = (ROOT / "templates/runs/_live.html").read_text()
    assert '<span class="tz-run-campaign tz-muted" hidden></span>' in live


@pytest.fixture
def alice(app: Flask) -> Member:
    return Member(app, "alice@example.com")


def campaign_run(member: Member) -> tuple[str, str]:
    site = member.site(name="Archive", kind="local")
    made = member.send("POST", "/api/campaigns", {
        "name": NAME, "kind": "stock", "site_id": site, "source": {"tickers": ["AAPL"]},
        "per_run": 1, "schedule": {"cron": "0 7 * * 1-5", "timezone": "America/New_York"},
        "options": {"data_source": "demo"}})
    assert made.status_code == 201, made.get_json()
    campaign_id = made.get_json()["id"]
    fired = member.send("POST", f"/api/campaigns/{campaign_id}/run")
    assert fired.status_code == 202, fired.get_json()
    return campaign_id, fired.get_json()["run_id"]


def test_the_run_answer_snapshot_and_page_carry_the_name(app: Flask, alice: Member) -> None:
    campaign_id, run_id = campaign_run(alice)
    plain = alice.start("stock", alice.site(name="Other", kind="local"), ["MSFT"],
                        data_source="demo")
    answer = alice.client.get(f"/api/runs/{run_id}").get_json()
    assert (answer["campaign_id"], answer["campaign_name"]) == (campaign_id, NAME)
    listed = {r["id"]: r for r in alice.client.get("/api/runs").get_json()["runs"]}
    assert listed[run_id]["campaign_name"] == NAME and listed[plain]["campaign_name"] is None

    socket = socketio_of(app).test_client(app, flask_test_client=alice.client)
    [snapshot] = [e["args"][0] for e in socket.get_received()
                  if e["name"] == "automation_snapshot"]
    entries = {e["run_id"]: e for e in snapshot["runs"]}
    assert (entries[run_id]["campaign_id"], entries[run_id]["campaign_name"]) == \
        (campaign_id, NAME)
    assert "campaign_name" not in entries[plain]
    socket.disconnect()

    page = alice.client.get(f"/runs/{run_id}").get_data(as_text=True)
    config = re.search(r'<script type="application/json" id="tz-page-config">(.*?)</script>',
                       page, re.S)
    assert config and json.loads(config.group(1))["runs"][0]["campaign_name"] == NAME
    assert "<b>movers</b>" not in page                     # escaped wherever it appears

    assert alice.send("DELETE", f"/api/campaigns/{campaign_id}").status_code == 200
    gone = alice.client.get(f"/api/runs/{run_id}").get_json()
    assert (gone["campaign_id"], gone["campaign_name"]) == (campaign_id, None)


def test_another_users_campaign_name_never_shows(app: Flask, alice: Member) -> None:
    _, run_id = campaign_run(alice)
    bob = Member(app, "bob@example.com")
    assert bob.client.get(f"/api/runs/{run_id}").status_code == 404
