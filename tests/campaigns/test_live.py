"""Campaigns in a live portal subprocess (the real scheduler thread, SQLite, the ``test`` kind):
a list worked through without repeats, ``kill -9`` while a campaign fires, an outage longer than
the catch-up window, pause, run now and overlap. Waits are for events (fires, ticks, runs),
never for a length of time."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.procs import wait_until
from tests.support.test_automations import read_record

pytestmark = pytest.mark.slow

LIVE = {"TICKZEN_MIN_INTERVAL_SECONDS": 1, "TICKZEN_SCHEDULER_TICK": 0.2,
        "TICKZEN_LEASE_SECONDS": 3}


def campaign(server: Any, session: requests.Session, site_id: str, items: list[str],
             **fields: Any) -> str:
    body = {"name": "Live", "kind": "test", "site_id": site_id, "per_run": 4,
            "source": {"items": items, "repeat": False}, "schedule": {"interval_seconds": 3},
            "options": {"steps": 1}}
    body.update(fields)
    response = session.post(f"{server.url}/api/campaigns", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def get(server: Any, session: requests.Session, path: str) -> Any:
    response = session.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def fires_of(server: Any, session: requests.Session, campaign_id: str) -> list[dict]:
    return get(server, session, f"/api/campaigns/{campaign_id}/fires?limit=200")["fires"]


def campaign_runs(server: Any, campaign_id: str) -> list[Any]:
    store = server.open_store()
    try:
        return [(run, [i.input["name"] for i in store.list_items(run.id)])
                for run in store.list_runs(campaign_id=campaign_id, limit=500)]
    finally:
        store.close()


def ticks_after(server: Any, session: requests.Session, n: int) -> None:
    """Wait until the scheduler has ticked ``n`` more times (its last tick moved on)."""
    seen: list[str] = []

    def moved() -> bool:
        tick = get(server, session, "/healthz")["scheduler_last_tick"]
        if tick and (not seen or tick != seen[-1]):
            seen.append(tick)
        return len(seen) > n

    wait_until(moved, f"{n} scheduler ticks", timeout=60)


def test_a_list_is_worked_through_4_at_a_time_without_repeats(live_server_factory,
                                                              tmp_path: Path) -> None:
    server = live_server_factory(**LIVE).start()
    session = server.register("list@example.com")
    site_id = server.add_local_site(session)
    record = tmp_path / "calls.log"
    items = [f"ticker{i:02d}" for i in range(12)]
    campaign_id = campaign(server, session, site_id, items,
                           options={"steps": 1, "record": str(record)})
    wait_until(lambda: get(server, session, f"/api/campaigns/{campaign_id}")["status"]
               == "completed", "the campaign to complete", timeout=120)
    runs = campaign_runs(server, campaign_id)
    assert sorted(len(names) for _, names in runs) == [4, 4, 4]
    assert Counter(n for _, names in runs for n in names) == Counter(items)
    processed = [line for line in read_record(record) if line.startswith("process ")]
    assert sorted(processed) == sorted(f"process {n}-test" for n in items)
    started = [f for f in fires_of(server, session, campaign_id) if f["outcome"] == "started"]
    assert sorted(f["run_id"] for f in started) == sorted(r.id for r, _ in runs)


def test_kill_9_while_firing_leaves_one_run_per_fire_and_no_item_twice(
        live_server_factory, tmp_path: Path) -> None:
    server = live_server_factory(**LIVE).start()
    session = server.register("kill@example.com")
    site_id = server.add_local_site(session)
    items = [f"name{i:02d}" for i in range(16)]
    campaign_id = campaign(server, session, site_id, items, per_run=2,
                           schedule={"interval_seconds": 2},
                           options={"steps": 3, "delay": 0.1})
    rng = random.Random(13)
    for _ in range(4):
        fired = len(fires_of(server, session, campaign_id))
        wait_until(lambda fired=fired, session=session: len(
                   fires_of(server, session, campaign_id)) > fired,
                   "a fire before the kill", timeout=60)
        ticks_after(server, session, rng.randint(0, 8))        # a random moment after it
        server.kill()
        server.start()
        session = server.login("kill@example.com")
    wait_until(lambda: get(server, session, f"/api/campaigns/{campaign_id}")["status"]
               == "completed", "the campaign to complete after the kills", timeout=180)
    wait_until(lambda: all(r.status == "completed" for r, _ in
                           campaign_runs(server, campaign_id)),
               "every run to finish (campaign runs resume by themselves)", timeout=120)
    runs = campaign_runs(server, campaign_id)
    assert Counter(n for _, names in runs for n in names) == Counter(items)   # none twice
    assert len({r.fire_id for r, _ in runs}) == len(runs)
    fires = fires_of(server, session, campaign_id)
    started = {f["fire_id"]: f["run_id"] for f in fires if f["outcome"] == "started"}
    assert started == {r.fire_id: r.id for r, _ in runs}
    store = server.open_store()
    try:
        posts = store.list_posts(server.user_id("kill@example.com"), site_id, limit=100)
    finally:
        store.close()
    assert sorted(p.slug for p in posts) == sorted(f"{n}-test" for n in items)


def test_down_longer_than_the_window_then_pause_run_now_and_overlap(live_server_factory,
                                                                    tmp_path: Path) -> None:
    server = live_server_factory(**LIVE).start()
    session = server.register("outage@example.com")
    site_id = server.add_local_site(session)
    gate = tmp_path / "gate"
    gate.mkdir()
    campaign_id = campaign(server, session, site_id, [f"n{i}" for i in range(40)], per_run=1,
                           schedule={"interval_seconds": 1}, catch_up_seconds=2,
                           options={"steps": 1, "gate": str(gate)})
    url = f"/api/campaigns/{campaign_id}"
    wait_until(lambda: any(f["outcome"] == "skipped" for f in fires_of(server, session,
                                                                       campaign_id)),
               "an overlapping fire to be skipped (the first run waits at its gate)")
    first = [f for f in fires_of(server, session, campaign_id) if f["outcome"] == "started"]
    assert len(first) == 1
    assert all(f["reason"] == "previous run still active"
               for f in fires_of(server, session, campaign_id) if f["outcome"] == "skipped")

    server.stop()                                    # down: fires fall due with nobody there
    stopped_at = get_campaign_store(server, campaign_id).next_fire_at
    wait_until(lambda: datetime.now(UTC) > stopped_at + timedelta(seconds=4),
               "an outage longer than the 2 s catch-up window")
    (gate / "open").touch()
    server.start()
    session = server.login("outage@example.com")
    wait_until(lambda: any(f["scheduled_for"] >= stopped_at.isoformat()
                           for f in fires_of(server, session, campaign_id)),
               "the first tick after the restart")
    batch = [f for f in fires_of(server, session, campaign_id)
             if f["scheduled_for"] >= stopped_at.isoformat()]
    first_tick = min(f["fired_at"] for f in batch)
    outage = [f for f in batch if f["fired_at"] == first_tick]        # one tick's record
    assert any(f["outcome"] == "missed" and "late" in f["reason"] for f in outage)
    assert sum(f["outcome"] in ("started", "skipped") for f in outage) == 1   # one late fire
    assert all(f["outcome"] == "missed" for f in outage
               if f["scheduled_for"] != max(g["scheduled_for"] for g in outage))

    paused = session.post(f"{server.url}{url}/pause", timeout=10)
    assert paused.status_code == 200
    count = len(fires_of(server, session, campaign_id))
    ticks_after(server, session, 10)
    assert len(fires_of(server, session, campaign_id)) == count          # pause stops fires

    wait_until(lambda: all(r.status in ("completed", "failed", "cancelled")
                           for r, _ in campaign_runs(server, campaign_id)),
               "the campaign's runs to finish")
    now = session.post(f"{server.url}{url}/run", timeout=10)
    assert now.status_code == 202, now.text
    busy = session.post(f"{server.url}{url}/run", timeout=10)
    assert busy.status_code in (202, 409)
    if busy.status_code == 409:
        assert busy.json()["error"] == "previous run still active"


def get_campaign_store(server: Any, campaign_id: str) -> Any:
    store = server.open_store()
    try:
        return store.get_campaign(None, campaign_id)
    finally:
        store.close()
