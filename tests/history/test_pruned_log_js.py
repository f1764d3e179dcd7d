"""static/js/run_view.js with a run whose event log retention removed: the model holds
nothing to replay before ``last_seq`` (so it never waits for those events), and later events
(a retry) apply at once."""

from __future__ import annotations

from tests.browser.test_run_model_js import ev, run, run_model


def test_a_pruned_run_waits_for_no_event_before_its_last_seq() -> None:
    pruned = run(status="completed", last_seq=80, events_pruned_at="2026-12-01T03:00:00+00:00")
    [after_retry] = run_model(pruned, [["event", ev(81, "initializing", "Retry started")]])
    assert after_retry["r"] == "applied" and after_retry["logSeq"] == 81
    assert after_retry["log"] == ["Retry started"] and after_retry["status"] == "running"
    [kept] = run_model(run(status="completed", last_seq=80),
                       [["event", ev(81, "initializing")]])
    assert kept["r"] == "buffered" and kept["logSeq"] == 0       # a full log: replay fills it


def test_a_snapshot_saying_the_log_was_pruned_moves_the_log_on() -> None:
    steps = run_model(run(status="completed", last_seq=80),
                      [["snapshot", run(status="completed", last_seq=80,
                                        events_pruned_at="2026-12-01T03:00:00+00:00")]])
    assert steps[0]["logSeq"] == 80
