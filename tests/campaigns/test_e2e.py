"""A campaign end to end in one app, nothing stood in for: the scheduler thread fires on the
real clock, the run manager runs the real stock automation on demo prices, and the posts land
in the local archive; the campaign completes when its list is used up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.earnings.runs import Member
from tests.support.procs import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def live_app(make_app, tmp_path: Path):
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50,
                    TICKZEN_MIN_INTERVAL_SECONDS=1, TICKZEN_SCHEDULER_TICK=0.1)


def test_a_campaign_publishes_its_list_into_the_archive_and_completes(live_app,
                                                                      tmp_path: Path) -> None:
    alice = Member(live_app)
    site_id = alice.site(name="Archive", kind="local")
    health = alice.client.get("/healthz").get_json()
    assert health["scheduler"] == "ok"
    response = alice.send("POST", "/api/campaigns", {
        "name": "Three tickers", "kind": "stock", "site_id": site_id, "per_run": 2,
        "source": {"tickers": ["AAPL", "MSFT", "NVDA"], "repeat": False},
        "schedule": {"interval_seconds": 1}, "options": {"data_source": "demo",
                                                         "status": "publish"}})
    assert response.status_code == 201, response.get_json()
    url = f"/api/campaigns/{response.get_json()['id']}"

    wait_until(lambda: alice.client.get(url).get_json()["status"] == "completed",
               "the campaign to work through its list", timeout=180)
    fires = alice.client.get(f"{url}/fires?limit=200").get_json()["fires"]
    started = [f for f in reversed(fires) if f["outcome"] == "started"]
    assert len(started) == 2
    assert {f["outcome"] for f in fires} <= {"started", "skipped", "missed"}
    assert "used up" in fires[0]["reason"]
    runs = [alice.wait(f["run_id"]) for f in started]
    assert [[i["label"] for i in r["items"]] for r in runs] == [["AAPL", "MSFT"], ["NVDA"]]
    for run in runs:
        assert run["status"] == "completed" and run["campaign_id"] == response.get_json()["id"]
        assert {i["status"] for i in run["items"]} == {"published"}
        for item in run["items"]:
            assert (tmp_path / "archive" / alice.user_id / site_id / item["key"]).is_dir()
            assert alice.client.get(item["post_url"]).status_code == 200
    health = alice.client.get("/healthz").get_json()
    assert health["scheduler"] == "ok" and health["scheduler_last_tick"]
