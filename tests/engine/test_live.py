"""The real portal in a subprocess, python-socketio clients over websocket (real sockets)."""

from __future__ import annotations

import time

import pytest

from tests.support.live_server import unique_email
from tests.support.test_automations import read_record

pytestmark = pytest.mark.slow


def progress_of(sock, run_id):
    return [p for p in sock.events("automation_progress") if p["run_id"] == run_id]


def finished(sock, run_id):
    return any(p["stage"] == "complete" for p in progress_of(sock, run_id))


def test_two_users_are_isolated(live_server):
    alice = live_server.register(unique_email("alice"))
    bob = live_server.register(unique_email("bob"))
    a_site, b_site = live_server.add_local_site(alice), live_server.add_local_site(bob)
    a_sock, b_sock = live_server.socket(alice), live_server.socket(bob)
    a_run = live_server.start_run(alice, a_site, ["a1", "a2"], steps=3)
    b_run = live_server.start_run(bob, b_site, ["b1"], steps=3)
    a_sock.wait_for(lambda _: finished(a_sock, a_run), what="alice's run to complete")
    b_sock.wait_for(lambda _: finished(b_sock, b_run), what="bob's run to complete")
    assert {p["run_id"] for p in a_sock.events("automation_progress")} == {a_run}
    assert {p["run_id"] for p in b_sock.events("automation_progress")} == {b_run}
    # bob cannot steer or replay alice's run; the error goes to bob only
    b_sock.emit("replay", {"automation_id": a_run, "after_seq": 0})
    b_sock.emit("cancel_automation", {"automation_id": a_run})
    b_sock.wait_for(lambda _: len(b_sock.events("automation_error")) == 2, what="errors")
    assert [e["error_type"] for e in b_sock.events("automation_error")] == ["not_found"] * 2
    assert {p["run_id"] for p in b_sock.events("automation_progress")} == {b_run}
    assert a_sock.events("automation_error") == []
    assert live_server.run(alice, a_run)["status"] == "completed"
    snapshot = a_sock.events("automation_snapshot")[0]
    assert snapshot == {"runs": []}
    assert bob.get(f"{live_server.url}/api/runs/{a_run}", timeout=10).status_code == 404


def test_anonymous_socket_is_refused(live_server):
    import requests
    import socketio

    sock = live_server.socket(requests.Session(), connect=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        sock.connect()


def test_disconnect_and_replay_lose_nothing_and_duplicate_nothing(live_server, tmp_path):
    alice = live_server.register(unique_email("alice"))
    site = live_server.add_local_site(alice)
    first = live_server.socket(alice)
    run_id = live_server.start_run(alice, site, ["r1", "r2", "r3", "r4"], steps=4, delay=0.05)
    first.wait_for(lambda _: len(progress_of(first, run_id)) >= 3, what="first events")
    first.disconnect()
    seen = {p["seq"]: p for p in progress_of(first, run_id)}
    last_seen = max(seen)
    time.sleep(0.3)                      # events keep coming while nobody listens
    second = live_server.socket(alice)
    snap = second.wait_for(lambda _: second.events("automation_snapshot"), what="snapshot")[0]
    [entry] = [r for r in snap["runs"] if r["run_id"] == run_id]
    second.emit("replay", {"automation_id": run_id, "after_seq": last_seen})
    second.wait_for(lambda _: finished(second, run_id), what="the run to complete")
    for payload in progress_of(second, run_id):     # dedup by seq, as the page does
        seen.setdefault(payload["seq"], payload)
    stored = live_server.open_store()
    try:
        events = stored.list_events(run_id)
    finally:
        stored.close()
    assert sorted(seen) == [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [seen[s] for s in sorted(seen)] == events
    assert entry["last_seq"] >= last_seen
    # The replay answers the missed events in seq order; live events of the still-running run
    # may reach the new socket before it (the page dedups by seq), so look where it starts.
    received = [p["seq"] for p in progress_of(second, run_id)]
    missed = list(range(last_seen + 1, entry["last_seq"] + 1))
    if missed:
        start = received.index(last_seen + 1)
        replayed = [s for s in received[start:] if s <= entry["last_seq"]]
        assert replayed[:len(missed)] == missed


def test_pause_stops_progress_until_resume_finishes(live_server, tmp_path):
    alice = live_server.register(unique_email("alice"))
    site = live_server.add_local_site(alice)
    sock = live_server.socket(alice)
    record = tmp_path / "calls.log"
    run_id = live_server.start_run(alice, site, ["p1", "p2", "p3"], steps=5, delay=0.05,
                                   record=str(record))
    sock.wait_for(lambda _: len(progress_of(sock, run_id)) >= 2, what="progress")
    sock.emit("pause_automation", {"automation_id": run_id})
    paused = sock.wait_for(lambda _: sock.events("automation_paused"), what="paused")[0]
    assert paused["automation_id"] == run_id and paused["remaining_count"] >= 1
    count = len(progress_of(sock, run_id))
    assert progress_of(sock, run_id)[-1]["stage"] == "paused"
    time.sleep(0.5)                      # a paused run sends nothing
    assert len(progress_of(sock, run_id)) == count
    assert live_server.run(alice, run_id)["status"] == "paused"
    sock.emit("resume_automation", {"automation_id": run_id})
    sock.wait_for(lambda _: finished(sock, run_id), what="the run to complete")
    assert sock.events("automation_resumed")[0]["automation_id"] == run_id
    run = live_server.run(alice, run_id)
    assert run["status"] == "completed"
    assert [i["status"] for i in run["items"]] == ["published"] * 3
    seqs = [p["seq"] for p in progress_of(sock, run_id)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_kill_9_mid_run_then_restart_and_resume_publishes_every_item_once(
        live_server_factory, tmp_path):
    server = live_server_factory(TICKZEN_AUTOMATION_MODULES="").start()   # fast restarts
    alice = server.register("alice@example.com")
    site = server.add_local_site(alice)
    record = tmp_path / "calls.log"
    names = [f"k{i}" for i in range(6)]
    run_id = server.start_run(alice, site, names, steps=4, delay=0.04, record=str(record))
    deadline = time.monotonic() + 30
    while sum(1 for line in read_record(record) if line.startswith("process")) < 3:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.01)
    server.kill()

    store = server.open_store()
    try:
        assert store.get_run(run_id).status == "running"      # as the dead process left it
        before = [i.status for i in store.list_items(run_id)]
    finally:
        store.close()
    assert "pending" in before

    server.start()                                             # same SQLite file, new process
    alice = server.login("alice@example.com")
    assert server.run(alice, run_id)["status"] == "interrupted"
    sock = server.socket(alice)
    snap = sock.wait_for(lambda _: sock.events("automation_snapshot"), what="snapshot")[0]
    assert [r["status"] for r in snap["runs"] if r["run_id"] == run_id] == ["interrupted"]
    response = alice.post(f"{server.url}/api/runs/{run_id}/resume", timeout=10)
    assert response.status_code == 200, response.text
    run = server.wait_run(alice, run_id)
    assert [i["status"] for i in run["items"]] == ["published"] * len(names)

    store = server.open_store()
    try:
        user_id = store.get_user_by_email("alice@example.com").id
        posts = store.list_posts(user_id, site, limit=100)
        events = store.list_events(run_id)
    finally:
        store.close()
    assert sorted(p.slug for p in posts) == sorted(f"{n}-test" for n in names)
    assert all(p.status == "published" and p.run_id == run_id for p in posts)
    articles = sorted(server.archive_dir.rglob("article.json"))
    assert sorted(a.parent.name for a in articles) == sorted(f"{n}-test" for n in names)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents)
    assert {post.post_id for post in posts} == {f"{n}-test" for n in names}


def test_auto_resume_after_kill_9(live_server_factory, tmp_path):
    server = live_server_factory(TICKZEN_AUTO_RESUME=True, TICKZEN_AUTOMATION_MODULES="").start()
    alice = server.register("alice@example.com")
    site = server.add_local_site(alice)
    record = tmp_path / "calls.log"
    run_id = server.start_run(alice, site, ["x1", "x2", "x3"], steps=4, delay=0.05,
                              record=str(record))
    deadline = time.monotonic() + 30
    while not read_record(record):
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.01)
    server.kill()
    server.start()
    alice = server.login("alice@example.com")
    run = server.wait_run(alice, run_id)
    assert [i["status"] for i in run["items"]] == ["published"] * 3, (
        run["items"], read_record(record), server.log_tail(80))
    assert len(list(server.archive_dir.rglob("article.json"))) == 3
