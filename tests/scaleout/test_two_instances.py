"""Two portal instances (startup.sh, gunicorn) over one Redis and one Firestore (the emulator).

A user's socket on one instance watches a run executing on the other; a pause sent through the
watcher's instance stops it at the owner's next checkpoint; after a resume the owner is killed
with ``kill -9`` and the survivor takes the run over once the lease expires and finishes it.
Every item is published exactly once: the Firestore ledger, the local archive (watched while the
test runs: each article.json is written once), and the test automation's record of calls.

Which instance picks a queued run is a race between them (the API's instance and the other's
heartbeat), so the test reads the run's owner from the store and names the roles after it.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.portal_instances import PortalInstance, sign_up, watch
from tests.support.procs import wait_until
from tests.support.test_automations import read_record

LEASE_SECONDS = 2
ITEMS = [f"item{i}" for i in range(8)]
KEYS = [f"{name}-test" for name in ITEMS]


class ArchiveWatcher:
    """Polls the archive folder; remembers every distinct article.json version per slug.

    The local publisher writes article.json by atomic rename, so a second publication of a slug
    would show up as a second inode (writes are seconds apart here; the poll is 10 ms).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions: dict[str, set[tuple[int, int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ArchiveWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)
        self._scan()

    def _scan(self) -> None:
        for path in self.root.glob("*/*/*/article.json"):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            self.versions.setdefault(path.parent.name, set()).add((st.st_ino, st.st_mtime_ns))

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self._scan()


def _progress(sock: Any, run_id: str, stage: str | None = None) -> list[dict]:
    return [e for e in sock.events("automation_progress")
            if e.get("run_id") == run_id and (stage is None or e.get("stage") == stage)]


def _control(sock: Any, event: str, run_id: str) -> list[dict]:
    return [e for e in sock.events(event) if e.get("automation_id") == run_id]


@pytest.fixture
def firestore_project(firestore_emulator: Any) -> str:
    return f"demo-scaleout-{uuid.uuid4().hex[:8]}"


def test_two_instances_share_runs_and_take_over_after_kill(
        portal_instances, redis_url: str, firestore_emulator: Any, firestore_project: str,
        tmp_path: Path) -> None:
    from storage.firestore import FirestoreStore

    archive = tmp_path / "archive"                     # shared, like an Azure Files mount
    common = {
        "TICKZEN_ENV": "production",                   # startup.sh's own default
        "SECRET_KEY": "scaleout-secret", "TICKZEN_PROXY_FIX": "0",
        "TICKZEN_SECRETS_KEY": "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=",
        "TICKZEN_STORE": f"firestore://{firestore_project}",
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "SOCKETIO_MESSAGE_QUEUE": redis_url, "RATELIMIT_STORAGE_URI": redis_url,
        "TICKZEN_LEASE_SECONDS": str(LEASE_SECONDS),
        "TICKZEN_EXTRA_AUTOMATIONS": "tests.support.test_automations",
        "TICKZEN_ARCHIVE_DIR": str(archive), "GUNICORN_THREADS": "16",
    }
    a = portal_instances("a", WEBSITE_INSTANCE_ID="scaleout-a",
                         TICKZEN_WORKDIR=str(tmp_path / "work-a"), **common)
    b = portal_instances("b", WEBSITE_INSTANCE_ID="scaleout-b",
                         TICKZEN_WORKDIR=str(tmp_path / "work-b"), **common)
    a.wait()
    b.wait()
    by_prefix = {"scaleout-a": a, "scaleout-b": b}

    def owner_of(run: Any) -> PortalInstance | None:
        owner = run.owner or ""
        return next((i for p, i in by_prefix.items() if owner.startswith(p + "-")), None)

    store = FirestoreStore(project=firestore_project)
    try:
        session = sign_up(a.url, "scale@example.com")
        site = session.post(f"{a.url}/api/sites", json={"name": "Archive", "kind": "local"},
                            timeout=30)
        assert site.status_code == 201, site.text
        site_id = site.json()["id"]
        sockets = {a.name: watch(a, session), b.name: watch(b, session)}
        for sock in sockets.values():
            sock.wait_for(lambda got: any(e == "connection_status" for e, _ in got),
                          what="connection_status")

        gate = tmp_path / "gate"
        gate.mkdir()
        record = tmp_path / "calls.log"
        response = session.post(f"{a.url}/api/runs", timeout=30, json={
            "kind": "test", "site_id": site_id, "items": ITEMS,
            "options": {"gate": str(gate), "record": str(record), "steps": 2, "delay": 0.1}})
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]

        # 1. Held at the gate inside item0 on one instance; the other instance's socket sees it.
        run = wait_until(lambda: (r := store.get_run(run_id)) and r.status == "running"
                         and owner_of(r) and read_record(record) and r, "the run to start")
        owner = owner_of(run)
        watcher = a if owner is b else b
        sock = sockets[watcher.name]
        sock.wait_for(lambda _: _progress(sock, run_id, "processing"),
                      what="progress relayed through Redis")
        assert store.get_run(run_id).owner == run.owner    # still the other instance's run
        assert {e["stage"] for e in _progress(sock, run_id)} >= {"initializing", "processing"}

        # 2. Pause through the watcher's instance: the owner stops at its next checkpoint.
        sock.emit("pause_automation", {"automation_id": run_id})
        sock.wait_for(lambda _: _control(sock, "automation_paused", run_id),
                      what="automation_paused")
        paused = wait_until(lambda: (r := store.get_run(run_id)) and r.status == "paused" and r,
                            "status paused")
        assert paused.counts.get("published", 0) == 0
        assert [i.status for i in store.list_items(run_id)] == ["pending"] * len(ITEMS)
        assert read_record(record) == ["process item0-test"]

        # 3. Resume (from the watcher's instance); whoever picks it up is the victim.
        sock.emit("resume_automation", {"automation_id": run_id})
        sock.wait_for(lambda _: _control(sock, "automation_resumed", run_id),
                      what="automation_resumed")
        run = wait_until(lambda: (r := store.get_run(run_id)) and r.status == "running"
                         and owner_of(r) and len(read_record(record)) == 2 and r,
                         "the resumed run to be held at the gate again")
        victim = owner_of(run)
        survivor = a if victim is b else b
        survivor_sock = sockets[survivor.name]

        with ArchiveWatcher(archive) as archive_watch:
            (gate / "open").touch()
            wait_until(lambda: (store.get_run(run_id).counts or {}).get("published", 0) >= 3,
                       "three items published before the kill")
            victim.kill()                                    # kill -9 of its process group
            killed_at = store.get_run(run_id)
            assert killed_at.status == "running" and owner_of(killed_at) is victim
            assert killed_at.counts.get("published", 0) < len(ITEMS), "finished before kill"

            # 4. The survivor takes the run over after the lease expires and finishes it.
            survivor_sock.wait_for(lambda _: _progress(survivor_sock, run_id, "complete"),
                                   timeout=90, what="the run to complete on the survivor")
        done = store.get_run(run_id)
        assert done.status == "completed"
        assert done.counts.get("published") == len(ITEMS) and not done.counts.get("failed")
        items = store.list_items(run_id)
        assert [i.status for i in items] == ["published"] * len(ITEMS)

        # Exactly once: the ledger, the archive (one version of each file), the call record.
        user_id = store.get_user_by_email("scale@example.com").id
        ledger = store.list_posts(user_id, site_id, limit=100)
        assert sorted(e.slug for e in ledger) == sorted(KEYS)
        assert {e.status for e in ledger} == {"published"} and {e.run_id for e in ledger} == {
            run_id}
        assert sorted(archive_watch.versions) == sorted(KEYS)
        twice = {slug: v for slug, v in archive_watch.versions.items() if len(v) != 1}
        assert not twice, f"article.json written more than once: {twice}"
        calls = read_record(record)
        for key in KEYS:
            # item0 was processed before the pause and again after it; the item in flight at
            # the kill may be processed by both instances; nothing a third time.
            assert 1 <= calls.count(f"process {key}") <= 2, (key, calls)

        # The survivor's replay: seqs 1..last_seq with no gap, percent never goes down.
        replay_from = len(survivor_sock.received)
        survivor_sock.emit("replay", {"automation_id": run_id, "after_seq": 0})
        last_seq = store.get_run(run_id).last_seq
        replayed = survivor_sock.wait_for(
            lambda got: (r := [p for e, p in got[replay_from:] if e == "automation_progress"
                               and p.get("run_id") == run_id]) and r[-1]["seq"] == last_seq
            and r, what="the replay")
        assert [e["seq"] for e in replayed] == list(range(1, last_seq + 1))
        percents = [e["percent"] for e in replayed if e.get("percent") is not None]
        assert percents == sorted(percents) and percents[-1] == 100
        assert survivor.url and victim.proc is None
    finally:
        store.close()
