"""One engine flow on the Firestore backend (Google's emulator): run, item failure, pause,
resume, seqs gap-free, ledger exactly once, recovery of a dead instance's run."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import Mock

import pytest

from runner.manager import RunManager
from tests.engine.conftest import make_owner, wait_record, wait_status
from tests.support.test_automations import RecordingPublisher, TestAutomation, read_record

pytestmark = pytest.mark.firestore


def test_engine_flow_on_firestore(firestore_store, tmp_path):
    store = firestore_store
    owner = make_owner(store, "fs@example.com")
    record = tmp_path / "calls.log"
    gate = tmp_path / "gate"
    gate.mkdir()
    publisher = RecordingPublisher(store, record)
    manager = RunManager(store, Mock(), {"test": TestAutomation()}, publisher,
                         workdir_root=tmp_path / "work", progress_max_per_second=0)
    try:
        run, notes = manager.submit(owner.user_id, "test", owner.site_id,
                                    ["one", "fail-two", "three", "one"],
                                    {"gate": str(gate), "record": str(record), "steps": 2})
        assert notes == ["duplicate removed: one"]
        wait_record(record)
        assert manager.pause(run.id, owner.user_id).status == "pausing"
        (gate / "open").touch()
        wait_status(store, run.id, ("paused",), timeout=60)
        assert manager.join(run.id, timeout=60)
        manager.resume(run.id, owner.user_id)
        wait_status(store, run.id, ("completed",), timeout=60)
        assert manager.join(run.id, timeout=60)

        items = store.list_items(run.id)
        assert [i.status for i in items] == ["published", "failed", "published"]
        assert items[1].error == "synthetic failure for fail-two"
        done = store.get_run(run.id)
        assert (done.counts["published"], done.counts["failed"], done.percent) == (2, 1, 100)
        events = store.list_events(run.id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        emitted = [c.args[1] for c in manager.emit.call_args_list
                   if c.args[0] == "automation_progress"]
        assert emitted == events
        assert sorted(p.slug for p in store.list_posts(owner.user_id, owner.site_id)) == [
            "one-test", "three-test"]
        assert read_record(record).count("publish one-test") == 1

        # a run a dead instance left running is recovered as interrupted
        from storage.base import utcnow

        crashed, _ = RunManager(store, Mock(), {"test": TestAutomation()}, publisher,
                                workdir_root=tmp_path / "w2", autostart=False).submit(
            owner.user_id, "test", owner.site_id, ["four"])
        now = utcnow()
        store.acquire_lease(crashed.id, "dead", now + timedelta(seconds=60), now)
        store.transition_run(crashed.id, ["queued"], "running")
        assert manager.recover(auto_resume=True) == [crashed.id]
        wait_status(store, crashed.id, ("completed",), timeout=60)
        assert store.get_post(owner.user_id, owner.site_id, "four-test").status == "published"
    finally:
        manager.shutdown()
