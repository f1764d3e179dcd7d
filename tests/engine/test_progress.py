"""ProgressReporter with a mocked emit, an injected clock and a hand-fired timer."""

from __future__ import annotations

from unittest.mock import Mock

import pytest

from runner.progress import ProgressReporter
from storage.base import NewItem, Run


class FakeTimer:
    def __init__(self, delay, callback, log):
        self.delay, self.callback, self.cancelled, self.started = delay, callback, False, False
        log.append(self)

    def start(self):
        self.started = True

    def cancel(self):
        self.cancelled = True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def run(store, owner):
    return store.create_run(Run(id="", user_id=owner.user_id, kind="test",
                                site_id=owner.site_id), [NewItem("a", {"name": "a"}, "a")])


@pytest.fixture
def rig(store, run):
    clock, timers, emit = Clock(), [], Mock()
    reporter = ProgressReporter(store, emit, run, max_per_second=2, clock=clock,
                                timer_factory=lambda d, cb: FakeTimer(d, cb, timers))
    return reporter, clock, timers, emit


def sent(emit):
    return [(c.args[1]["stage"], c.args[1]["message"]) for c in emit.call_args_list
            if c.args[0] == "automation_progress"]


def test_intermediate_updates_are_coalesced_and_flushed_before_a_result(rig, store, run):
    reporter, clock, timers, emit = rig
    assert reporter.progress("initializing", "start", 0) == 1
    assert reporter.progress("processing", "p0", 10) == 2      # a stage change: at once
    clock.now += 0.1
    assert reporter.progress("processing", "p1", 20) is None   # within 0.5 s: coalesced
    clock.now += 0.1
    assert reporter.progress("processing", "p2", 30) is None   # replaces p1
    assert len(timers) == 1 and timers[0].started
    assert timers[0].delay == pytest.approx(0.4)     # armed at +0.1, due at +0.5
    clock.now += 0.1
    # an item result goes out at once, after the latest coalesced state (p2; p1 is dropped)
    assert reporter.progress("processing", "done", 40, {"success": True}) == 4
    assert sent(emit) == [("initializing", "start"), ("processing", "p0"),
                          ("processing", "p2"), ("processing", "done")]
    assert timers[0].cancelled
    # only what was sent is stored, gap-free
    assert [e["message"] for e in store.list_events(run.id)] == ["start", "p0", "p2", "done"]
    assert [c.args[1]["seq"] for c in emit.call_args_list] == [1, 2, 3, 4]
    assert {c.args[2] for c in emit.call_args_list} == {f"user_{run.user_id}"}


def test_a_pending_update_goes_out_when_the_timer_fires(rig, store, run):
    reporter, clock, timers, emit = rig
    reporter.progress("processing", "first", 5)
    clock.now += 0.2
    reporter.progress("processing", "later", 15)
    assert sent(emit) == [("processing", "first")]
    clock.now += 0.3
    timers[0].callback()
    assert sent(emit) == [("processing", "first"), ("processing", "later")]
    assert reporter.flush() is None                 # nothing left


def test_rate_is_at_most_max_per_second(rig):
    reporter, clock, timers, emit = rig
    reporter.progress("processing", "m0", 1)
    for i in range(1, 41):                          # 40 updates over 2 seconds
        clock.now += 0.05
        reporter.progress("processing", f"m{i}", 1 + i)
    reporter.flush()
    times = len(sent(emit))
    assert times <= 2 * 2 + 2                       # ~2 per second, plus first and flush
    assert sent(emit)[-1] == ("processing", "m40")  # the latest state is never lost


def test_stage_changes_errors_and_complete_are_never_delayed(rig):
    reporter, clock, timers, emit = rig
    reporter.progress("processing", "a", 1)
    for stage in ("publishing", "error", "processing", "complete"):
        assert reporter.progress(stage, stage, 50) is not None
    assert [s for s, _ in sent(emit)] == ["processing", "publishing", "error", "processing",
                                          "complete"]


def test_percent_never_decreases_and_payload_shape(rig, store, run):
    reporter, clock, timers, emit = rig
    reporter.progress("initializing", "x", 50)
    reporter.progress("publishing", "y", 30)
    reporter.progress("error", "z")
    payloads = [c.args[1] for c in emit.call_args_list]
    assert [p.get("percent") for p in payloads] == [50, 50, None]
    assert list(payloads[0]) == ["run_id", "kind", "seq", "stage", "message", "timestamp",
                                 "percent"]
    assert store.get_run(run.id).percent == 50


def test_error_and_control_payloads(rig, run):
    reporter, clock, timers, emit = rig
    reporter.error("item_failed", "boom", recoverable=True, data={"item": "a"})
    reporter.control("automation_paused", "Paused", 3)
    (e1, p1, r1), (e2, p2, r2) = [c.args for c in emit.call_args_list]
    assert e1 == "automation_error" and r1 == f"user_{run.user_id}"
    assert set(p1) == {"run_id", "error_type", "message", "recoverable", "timestamp", "data"}
    assert (p1["run_id"], p1["error_type"], p1["recoverable"]) == (run.id, "item_failed", True)
    assert (e2, p2, r2) == ("automation_paused", {"automation_id": run.id, "message": "Paused",
                                                  "remaining_count": 3}, f"user_{run.user_id}")


def test_a_failing_emit_does_not_break_the_run(store, run):
    emit = Mock(side_effect=RuntimeError("socket layer down"))
    reporter = ProgressReporter(store, emit, run, max_per_second=2)
    assert reporter.progress("initializing", "x") == 1
    assert store.list_events(run.id)[0]["message"] == "x"


def test_unknown_stage_is_reported_as_processing(rig):
    reporter, clock, timers, emit = rig
    reporter.progress("bogus", "x")
    assert sent(emit) == [("processing", "x")]
