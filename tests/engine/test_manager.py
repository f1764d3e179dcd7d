"""RunManager with a real SQLite store and a mocked ``emit``: every emit's payload and room."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from portal.run_views import run_view, snapshot_entries
from runner.errors import InvalidRun, RunNotFound, TransitionNotAllowed
from storage.base import LedgerEntry, NewItem, Run, utcnow
from tests.engine.conftest import emitted, make_owner, progress, wait_record, wait_status
from tests.support.test_automations import read_record

PROGRESS_KEYS = {"run_id", "kind", "seq", "stage", "message", "timestamp", "percent", "data"}


def _finish(manager, store, run_id, statuses=("completed",)):
    status = wait_status(store, run_id, statuses + ("failed", "cancelled", "paused"))
    assert manager.join(run_id)
    return status


def test_run_publishes_every_item_and_emits_to_the_owner_room_only(make_manager, store, owner,
                                                                     record):
    manager = make_manager()
    run, notes = manager.submit(owner.user_id, "test", owner.site_id, ["alpha", "beta"],
                                {"record": str(record), "steps": 2})
    assert notes == []
    assert _finish(manager, store, run.id) == "completed"

    items = store.list_items(run.id)
    assert [i.status for i in items] == ["published", "published"]
    assert [i.post_id for i in items] == ["post-alpha-test", "post-beta-test"]
    assert items[0].result["title"] == "Test article alpha"
    assert items[0].result["files"] == ["notes.txt"]
    assert read_record(record).count("publish alpha-test") == 1

    calls = emitted(manager)
    assert calls and {room for _, _, room in calls} == {f"user_{owner.user_id}"}
    events = progress(manager, run.id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert set(event) <= PROGRESS_KEYS
        assert event["kind"] == "test" and event["timestamp"].endswith("+00:00")
    stages = [e["stage"] for e in events]
    assert stages[0] == "initializing" and stages[-1] == "complete"
    assert "publishing" in stages
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents) and percents[-1] == 100
    results = [e for e in events if "success" in e.get("data", {})]
    assert [(r["data"]["item"], r["data"]["success"], r["data"]["post_id"])
            for r in results[:2]] == [("alpha", True, "post-alpha-test"),
                                      ("beta", True, "post-beta-test")]
    assert events[-1]["data"] == {"total": 2, "published": 2, "skipped": 0, "failed": 0,
                                  "success": True}
    # what was emitted is what was stored, seq for seq (replay returns the same)
    assert store.list_events(run.id) == events
    assert store.get_run(run.id).percent == 100


def test_item_failure_is_recorded_and_the_run_goes_on(make_manager, store, owner):
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["fail-one", "two"], {})
    assert _finish(manager, store, run.id) == "completed"
    first, second = store.list_items(run.id)
    assert first.status == "failed" and first.error == "synthetic failure for fail-one"
    assert second.status == "published"
    error_events = [e for e in progress(manager, run.id) if e["stage"] == "error"]
    assert len(error_events) == 1
    assert error_events[0]["data"]["success"] is False
    assert error_events[0]["data"]["error"] == "synthetic failure for fail-one"
    [(_, payload, room)] = emitted(manager, "automation_error")
    assert room == f"user_{owner.user_id}"
    assert payload["run_id"] == run.id and payload["recoverable"] is True
    assert payload["error_type"] == "item_failed"
    assert payload["message"] == "fail-one: synthetic failure for fail-one"
    assert "Traceback" not in payload["message"]
    assert store.get_run(run.id).counts["failed"] == 1


def test_publish_error_fails_only_that_item(make_manager, store, owner, publisher):
    publisher.fail_keys = {"one-test"}
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["one", "two"], {})
    assert _finish(manager, store, run.id) == "completed"
    items = store.list_items(run.id)
    assert [i.status for i in items] == ["failed", "published"]
    assert items[0].error == "site unreachable while publishing one-test"


def test_submit_rejects_bad_input_and_stores_nothing(make_manager, store, owner):
    manager = make_manager(max_items=3)
    other = make_owner(store, "bob@example.com")
    cases = [
        (dict(kind="nope", site_id=owner.site_id, raw_items=["a"]), InvalidRun, "unknown kind"),
        (dict(kind="test", site_id="missing", raw_items=["a"]), RunNotFound, "unknown site"),
        (dict(kind="test", site_id=other.site_id, raw_items=["a"]), RunNotFound, "unknown site"),
        (dict(kind="test", site_id=owner.site_id, raw_items=[]), InvalidRun, "non-empty"),
        (dict(kind="test", site_id=owner.site_id, raw_items="abc"), InvalidRun, "non-empty"),
        (dict(kind="test", site_id=owner.site_id, raw_items=list("abcd")), InvalidRun,
         "too many items: 4 (at most 3)"),
        (dict(kind="test", site_id=owner.site_id, raw_items=["ok", "bad!"]), InvalidRun,
         "some items are invalid"),
    ]
    for kwargs, error, text in cases:
        with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
            manager.submit(owner.user_id, **kwargs)
    with pytest.raises(InvalidRun) as info:
        manager.submit(owner.user_id, "test", owner.site_id, ["ok", 5, "bad!"])
    assert info.value.details == ["item 2: 5 is not a valid name",
                                  "item 3: 'bad!' is not a valid name"]
    assert store.list_runs() == []
    assert manager.emit.call_count == 0


def test_duplicates_are_removed_and_reported(make_manager, store, owner):
    manager = make_manager(autostart=False)
    run, notes = manager.submit(owner.user_id, "test", owner.site_id, ["a", "b", "a", "A"])
    assert notes == ["duplicate removed: a", "duplicate removed: A"]
    assert [i.key for i in store.list_items(run.id)] == ["a-test", "b-test"]
    assert run.status == "queued"        # no runner threads: it waits


def test_pause_holds_no_thread_and_resume_finishes(make_manager, store, owner, tmp_path, record):
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["one", "two", "three"],
                            {"gate": str(gate), "record": str(record)})
    wait_status(store, run.id, ("running",))
    wait_record(record)                  # the worker is inside item one, at the gate
    assert manager.pause(run.id, owner.user_id).status == "pausing"
    assert _finish(manager, store, run.id, ("paused",)) == "paused"
    assert manager.active_run_ids == []              # no thread while paused
    paused = emitted(manager, "automation_paused")
    assert paused == [("automation_paused",
                       {"automation_id": run.id, "message": "Paused: 3 items left",
                        "remaining_count": 3}, f"user_{owner.user_id}")]
    assert store.get_item(run.id, 0).status == "pending"     # redone on resume
    assert progress(manager, run.id)[-1]["stage"] == "paused"

    (gate / "open").touch()
    before = len(progress(manager, run.id))
    resumed = manager.resume(run.id, owner.user_id)
    assert resumed.status in ("queued", "running")
    assert _finish(manager, store, run.id) == "completed"
    assert emitted(manager, "automation_resumed")[0][1] == {
        "automation_id": run.id, "message": "Resuming: 3 items left", "remaining_count": 3}
    after = progress(manager, run.id)[before:]
    assert after[0]["stage"] == "resumed" and after[-1]["stage"] == "complete"
    seqs = [e["seq"] for e in progress(manager, run.id)]
    assert seqs == list(range(1, len(seqs) + 1))
    lines = read_record(record)
    assert sorted(line for line in lines if line.startswith("publish")) == [
        "publish one-test", "publish three-test", "publish two-test"]


def test_cancel_running_stops_at_checkpoint(make_manager, store, owner, tmp_path, record):
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["one", "two"],
                            {"gate": str(gate), "record": str(record)})
    wait_record(record)
    assert manager.cancel(run.id, owner.user_id).status == "cancelled"
    assert manager.join(run.id)
    assert [i.status for i in store.list_items(run.id)] == ["pending", "pending"]
    assert emitted(manager, "automation_cancelled") == [
        ("automation_cancelled", {"automation_id": run.id, "message": "Run cancelled",
                                  "remaining_count": 2}, f"user_{owner.user_id}")]
    assert progress(manager, run.id)[-1]["stage"] == "cancelled"
    with pytest.raises(TransitionNotAllowed):
        manager.resume(run.id, owner.user_id)
    assert "publish one-test" not in read_record(record)


def test_caps_keep_runs_queued_and_start_them_in_order(make_manager, store, owner, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    bob = make_owner(store, "bob@example.com")
    manager = make_manager(max_runs=2, max_runs_per_user=1)
    opts = {"gate": str(gate), "steps": 1}
    first, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a"], opts)
    second, _ = manager.submit(owner.user_id, "test", owner.site_id, ["b"], opts)
    third, _ = manager.submit(bob.user_id, "test", bob.site_id, ["c"], opts)
    fourth, _ = manager.submit(bob.user_id, "test", bob.site_id, ["d"], opts)
    assert first.status == "running" and third.status == "running"
    assert second.status == "queued" and fourth.status == "queued"
    assert sorted(manager.active_run_ids) == sorted([first.id, third.id])
    # a queued run can be paused and cancelled without ever getting a thread
    assert manager.pause(fourth.id, bob.user_id).status == "paused"
    assert emitted(manager, "automation_paused")[-1][1]["message"] == "Paused before starting"
    assert manager.cancel(fourth.id, bob.user_id).status == "cancelled"
    (gate / "open").touch()
    for run in (first, second, third):
        assert _finish(manager, store, run.id) == "completed"
    assert store.get_run(fourth.id).status == "cancelled"
    assert store.get_run(fourth.id).counts["pending"] == 1


def test_retry_reprocesses_only_failed_items(make_manager, store, owner, tmp_path, record):
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["flaky-x", "fine"],
                            {"record": str(record)})
    assert _finish(manager, store, run.id) == "completed"
    assert store.get_run(run.id).counts["failed"] == 1
    (tmp_path / "heal").touch()
    retried = manager.retry(run.id, owner.user_id)
    assert retried.status in ("queued", "running")
    assert _finish(manager, store, run.id) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published", "published"]
    assert read_record(record).count("process fine-test") == 1
    assert read_record(record).count("process flaky-x-test") == 2
    assert emitted(manager, "automation_resumed")[-1][1] == {
        "automation_id": run.id, "message": "Retrying 1 failed items", "remaining_count": 1}
    with pytest.raises(TransitionNotAllowed, match="no failed items"):
        manager.retry(run.id, owner.user_id)


def test_forbidden_transitions_and_foreign_runs(make_manager, store, owner):
    manager = make_manager()
    bob = make_owner(store, "bob@example.com")
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a"])
    assert _finish(manager, store, run.id) == "completed"
    for action in (manager.pause, manager.resume, manager.cancel):
        with pytest.raises(TransitionNotAllowed):
            action(run.id, owner.user_id)
    calls = manager.emit.call_count
    for action in (manager.pause, manager.resume, manager.cancel, manager.retry):
        with pytest.raises(RunNotFound):
            action(run.id, bob.user_id)
        with pytest.raises(RunNotFound):
            action("no-such-run", owner.user_id)
    assert manager.emit.call_count == calls
    assert store.get_run(run.id).status == "completed"


def test_item_already_published_by_an_earlier_run_is_skipped(make_manager, store, owner):
    manager = make_manager()
    first, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a"])
    _finish(manager, store, first.id)
    second, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a", "b"])
    _finish(manager, store, second.id)
    a, b = store.list_items(second.id)
    assert (a.status, a.error, a.post_id) == ("skipped", "already published on this site",
                                              "post-a-test")
    assert b.status == "published"
    assert len(store.list_posts(owner.user_id, owner.site_id)) == 2


def _crashed_run(store, owner, statuses, ledger_published=()):
    """A run as a killed process leaves it: running, owned by a dead instance."""
    run = store.create_run(Run(id="", user_id=owner.user_id, kind="test", site_id=owner.site_id),
                           [NewItem(f"{n}-test", {"name": n}, n) for n in statuses])
    now = utcnow()
    store.acquire_lease(run.id, "dead-instance", now + timedelta(seconds=60), now)
    store.transition_run(run.id, ["queued"], "running")
    for position, status in enumerate(statuses.values()):
        if status != "pending":
            error = "it broke before the crash" if status == "failed" else None
            store.transition_item(run.id, position, ["pending"], status, error=error)
    for name in ledger_published:
        slug = f"{name}-test"
        store.reserve_post(LedgerEntry(user_id=owner.user_id, site_id=owner.site_id, slug=slug,
                                       item_key=slug, kind="test", run_id=run.id,
                                       day=now.date().isoformat()))
        store.complete_post(owner.user_id, owner.site_id, slug, post_id=f"post-{slug}",
                            post_url=f"http://archive.invalid/{slug}/")
    return run


def test_recover_interrupts_dead_runs_and_resumes_without_double_publishing(
        make_manager, store, owner, publisher):
    # "a" was published and recorded; "b" was publishing (the post exists in the ledger
    # already: the process died before the item was marked); "c" never started.
    run = _crashed_run(store, owner, {"a": "processing", "b": "publishing", "c": "pending"},
                       ledger_published=("a", "b"))
    idle = make_manager(autostart=False)
    assert idle.recover() == [run.id]
    assert store.get_run(run.id).status == "interrupted"
    assert store.get_run(run.id).owner is None

    manager = make_manager()
    run2 = _crashed_run(store, make_owner(store, "c@example.com"), {"x": "pending"})
    assert manager.recover(auto_resume=True) == [run2.id]     # run is already interrupted
    assert _finish(manager, store, run2.id) == "completed"
    assert store.get_run(run.id).status == "interrupted"
    manager.resume(run.id, owner.user_id)
    assert _finish(manager, store, run.id) == "completed"
    items = store.list_items(run.id)
    assert [i.status for i in items] == ["published", "published", "published"]
    assert [i.post_id for i in items] == ["post-a-test", "post-b-test", "post-c-test"]
    assert publisher.calls == ["x-test", "c-test"]      # a and b were not published again


def test_shutdown_leaves_running_runs_interrupted(make_manager, store, owner, tmp_path, record):
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a"],
                            {"gate": str(gate), "record": str(record)})
    wait_record(record)
    manager.shutdown()
    assert store.get_run(run.id).status == "interrupted"
    assert manager.active_run_ids == []


def test_unknown_kind_at_execution_fails_the_run_not_recoverable(make_manager, store, owner):
    manager = make_manager(autostart=False)
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a"])
    del manager.automations["test"]
    manager.autostart = True
    manager.start()
    assert _finish(manager, store, run.id, ("failed",)) == "failed"
    assert store.get_run(run.id).error == "no automation for kind 'test' on this server"
    [(_, payload, room)] = emitted(manager, "automation_error")
    assert payload["error_type"] == "run_failed" and payload["recoverable"] is False
    assert room == f"user_{owner.user_id}"


def test_snapshot_lists_live_and_recent_runs_with_items(make_manager, store, owner):
    manager = make_manager(autostart=False)
    runs = [manager.submit(owner.user_id, "test", owner.site_id, [f"n{i}"])[0]
            for i in range(12)]
    snap = snapshot_entries(manager.snapshot(owner.user_id))
    assert len(snap) == 12                 # all queued (live) runs, newest first
    assert snap[0]["run_id"] == runs[-1].id
    assert snap[0]["items"] == [{"key": "n11-test", "label": "n11", "status": "pending",
                                 "post_id": None, "post_url": None, "error": None}]
    assert set(snap[0]) >= {"run_id", "kind", "status", "percent", "counts", "items",
                            "last_seq"}
    assert snapshot_entries(manager.snapshot(make_owner(store, "x@example.com").user_id)) == []


def test_workdir_is_private_per_item(make_manager, store, owner, tmp_path):
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a"])
    _finish(manager, store, run.id)
    workdir = Path(store.list_items(run.id)[0].result["workdir"])
    assert workdir.is_relative_to(tmp_path / "work" / run.id)
    assert (workdir / "notes.txt").read_text() == "a processed\n"


def test_pause_and_resume_leave_failed_items_failed_until_retry(make_manager, store, owner,
                                                               tmp_path, record):
    gate = tmp_path / "gate"
    gate.mkdir()
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["fail-one", "two", "three"],
                            {"gate": str(gate), "gate_items": ["two"], "record": str(record)})
    deadline = time.monotonic() + 20
    while "process two-test" not in read_record(record):     # fail-one is done (failed)
        assert time.monotonic() < deadline, read_record(record)
        time.sleep(0.01)
    manager.pause(run.id, owner.user_id)
    assert _finish(manager, store, run.id, ("paused",)) == "paused"
    paused = store.get_run(run.id)
    assert paused.counts["failed"] == 1
    assert run_view(paused)["remaining_count"] == 2
    assert emitted(manager, "automation_paused")[-1][1]["remaining_count"] == 2
    [snap] = snapshot_entries(manager.snapshot(owner.user_id))
    assert [(i["status"], i["error"]) for i in snap["items"]] == [
        ("failed", "synthetic failure for fail-one"), ("pending", None), ("pending", None)]

    (gate / "open").touch()
    manager.resume(run.id, owner.user_id)
    assert emitted(manager, "automation_resumed")[-1][1]["remaining_count"] == 2
    assert _finish(manager, store, run.id) == "completed"
    items = store.list_items(run.id)
    assert [(i.status, i.error) for i in items] == [
        ("failed", "synthetic failure for fail-one"), ("published", None), ("published", None)]
    assert read_record(record).count("process fail-one-test") == 1      # not redone on resume
    done = store.get_run(run.id)
    assert done.counts["failed"] == 1 and run_view(done)["remaining_count"] == 0
    assert progress(manager, run.id)[-1]["data"]["failed"] == 1


def test_recovery_and_takeover_do_not_redo_failed_items(make_manager, store, owner, publisher):
    run = _crashed_run(store, owner, {"a": "failed", "b": "processing", "c": "pending"})
    manager = make_manager()
    assert manager.recover() == [run.id]
    interrupted = store.get_run(run.id)
    assert run_view(interrupted)["remaining_count"] == 2
    manager.resume(run.id, owner.user_id)
    assert emitted(manager, "automation_resumed")[-1][1] == {
        "automation_id": run.id, "message": "Resuming: 2 items left", "remaining_count": 2}
    assert _finish(manager, store, run.id) == "completed"
    assert [(i.status, i.error) for i in store.list_items(run.id)] == [
        ("failed", "it broke before the crash"), ("published", None), ("published", None)]
    assert publisher.calls == ["b-test", "c-test"]

    # Another instance's run whose lease ran out: taken over, failed item left alone.
    bob = make_owner(store, "bob@example.com")
    orphan = _crashed_run(store, bob, {"x": "published", "y": "failed", "z": "publishing"})
    past = utcnow() - timedelta(seconds=120)
    store.update_run(orphan.id, lease_until=past)
    assert manager.take_over() == [orphan.id]
    assert _finish(manager, store, orphan.id) == "completed"
    assert [i.status for i in store.list_items(orphan.id)] == ["published", "failed",
                                                              "published"]
    assert publisher.calls == ["b-test", "c-test", "z-test"]

    # retry re-queues the failed item only
    manager.retry(run.id, owner.user_id)
    assert _finish(manager, store, run.id) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published"] * 3
    assert publisher.calls[-1] == "a-test" and publisher.calls.count("b-test") == 1


def test_a_run_that_failed_as_a_whole_can_be_retried(make_manager, store, owner, publisher):
    from storage.base import StoreError

    real_publish = publisher.publish
    broken = {"left": 1}

    def flaky_store_publish(*args, **kwargs):
        if broken["left"]:
            broken["left"] -= 1
            raise StoreError("the store went away for a moment")
        return real_publish(*args, **kwargs)

    publisher.publish = flaky_store_publish
    manager = make_manager()
    run, _ = manager.submit(owner.user_id, "test", owner.site_id, ["a", "b"])
    assert _finish(manager, store, run.id, ("failed",)) == "failed"
    failed = store.get_run(run.id)
    assert failed.counts["failed"] == 0 and run_view(failed)["remaining_count"] == 2
    [(_, payload, _)] = emitted(manager, "automation_error")
    assert payload["error_type"] == "run_failed" and payload["recoverable"] is True
    with pytest.raises(TransitionNotAllowed):
        manager.resume(run.id, owner.user_id)

    manager.retry(run.id, owner.user_id)
    assert emitted(manager, "automation_resumed")[-1][1] == {
        "automation_id": run.id, "message": "Retrying: 2 items left", "remaining_count": 2}
    assert _finish(manager, store, run.id) == "completed"
    assert [i.status for i in store.list_items(run.id)] == ["published", "published"]
    assert publisher.calls == ["a-test", "b-test"]          # once each, after the retry
    with pytest.raises(TransitionNotAllowed, match="no failed items"):
        manager.retry(run.id, owner.user_id)


def test_submit_refuses_an_unknown_post_status_and_stores_nothing(make_manager, store, owner):
    manager = make_manager(autostart=False)
    for status in ("published", "Draft", 5, ["draft"]):
        with pytest.raises(InvalidRun, match="options.status must be one of draft, publish, "
                                             "future"):
            manager.submit(owner.user_id, "test", owner.site_id, ["a"], {"status": status})
    assert store.list_runs() == []
    assert manager.emit.call_count == 0
    for status in ("draft", "publish", "future", "", None):
        run, _ = manager.submit(owner.user_id, "test", owner.site_id, [f"s{status}"],
                                {"status": status})
        assert run.options["status"] == status
