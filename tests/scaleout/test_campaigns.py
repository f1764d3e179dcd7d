"""Two portal instances (startup.sh) over one Redis and one Firestore, one campaign firing every
second: both schedulers tick, the store decides, and every fire makes exactly one run. The list
is worked through once: every item processed and published exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.portal_instances import sign_up
from tests.support.procs import wait_until
from tests.support.test_automations import read_record

ITEMS = [f"item{i}" for i in range(12)]


@pytest.fixture
def firestore_project(firestore_emulator: Any) -> str:
    return f"demo-campaigns-{uuid.uuid4().hex[:8]}"


def test_two_instances_one_campaign_one_run_per_fire(
        portal_instances, redis_url: str, firestore_emulator: Any, firestore_project: str,
        tmp_path: Path) -> None:
    from storage.firestore import FirestoreStore

    record = tmp_path / "calls.log"
    common = {
        "TICKZEN_ENV": "production", "SECRET_KEY": "campaigns-secret", "TICKZEN_PROXY_FIX": "0",
        "TICKZEN_SECRETS_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
        "TICKZEN_STORE": f"firestore://{firestore_project}",
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "SOCKETIO_MESSAGE_QUEUE": redis_url, "RATELIMIT_STORAGE_URI": redis_url,
        "TICKZEN_LEASE_SECONDS": "3", "TICKZEN_MIN_INTERVAL_SECONDS": "1",
        "TICKZEN_SCHEDULER_TICK": "0.2",
        "TICKZEN_EXTRA_AUTOMATIONS": "tests.support.test_automations",
        "TICKZEN_ARCHIVE_DIR": str(tmp_path / "archive"), "GUNICORN_THREADS": "16",
    }
    a = portal_instances("a", WEBSITE_INSTANCE_ID="campaigns-a",
                         TICKZEN_WORKDIR=str(tmp_path / "work-a"), **common)
    b = portal_instances("b", WEBSITE_INSTANCE_ID="campaigns-b",
                         TICKZEN_WORKDIR=str(tmp_path / "work-b"), **common)
    a.wait()
    b.wait()
    for instance in (a, b):
        assert instance_health(instance)["scheduler"] == "ok"

    session = sign_up(a.url, "campaigns@example.com")
    site = session.post(f"{a.url}/api/sites", json={"name": "Archive", "kind": "local"},
                        timeout=30)
    assert site.status_code == 201, site.text
    created = session.post(f"{b.url}/api/campaigns", timeout=30, json={
        "name": "Every second", "kind": "test", "site_id": site.json()["id"], "per_run": 3,
        "source": {"items": ITEMS, "repeat": False}, "schedule": {"interval_seconds": 1},
        "options": {"steps": 1, "delay": 0.05, "record": str(record)}})
    assert created.status_code == 201, created.text
    url = f"/api/campaigns/{created.json()['id']}"

    wait_until(lambda: session.get(f"{a.url}{url}", timeout=30).json()["status"] == "completed",
               "the campaign to work through its list on two instances", timeout=180)
    store = FirestoreStore(project=firestore_project)
    try:
        campaign_id = created.json()["id"]
        fires = store.list_fires(campaign_id, limit=1000)
        runs = store.list_runs(campaign_id=campaign_id, limit=1000)
        wait_until(lambda: all(r.status == "completed" for r in
                               store.list_runs(campaign_id=campaign_id, limit=1000)),
                   "every campaign run to finish", timeout=120)
    finally:
        store.close()
    started = [f for f in fires if f.outcome == "started"]
    assert len(started) == 4                                # 12 items, 3 per run
    assert len({f.id for f in fires}) == len(fires)         # each due time recorded once
    assert sorted(r.fire_id for r in runs) == sorted(f.id for f in started)
    assert sorted(r.id for r in runs) == sorted(f.run_id for f in started)
    processed = Counter(line.split()[1] for line in read_record(record)
                        if line.startswith("process "))
    assert processed == Counter({f"{name}-test": 1 for name in ITEMS})
    posts = session.get(f"{a.url}/api/runs?limit=50", timeout=30).json()["runs"]
    assert sum(r["counts"]["published"] for r in posts) == len(ITEMS)
    assert {r["campaign_id"] for r in posts} == {campaign_id}
    for instance in (a, b):                                 # both ticked all along
        health = instance_health(instance)
        assert health["scheduler"] == "ok" and health["scheduler_last_tick"]


def instance_health(instance: Any) -> dict[str, Any]:
    import requests

    return requests.get(f"{instance.url}/healthz", timeout=30).json()
