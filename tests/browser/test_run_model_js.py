"""static/js/run_view.js's state machine (RunModel) under Node: dedup by seq, gaps held until
filled, snapshots never going back, pause putting the current item back to pending.

The same file runs in the browser tests; here the orderings that a real socket rarely
produces on demand are fed directly.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.procs import need

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = r"""
const { RunModel } = require(process.argv[1]);
const steps = JSON.parse(process.argv[2]);
const m = new RunModel(steps.initial);
const out = [];
for (const [op, arg] of steps.ops) {
  let r = null;
  if (op === "event") r = m.receive(arg);
  else if (op === "snapshot") r = m.replace(arg);
  else if (op === "skip") m.skipGap();
  out.push({ r, status: m.status, percent: m.percent, logSeq: m.logSeq,
             stateSeq: m.stateSeq, items: m.items.map(i => i.status),
             writers: m.items.map(i => [i.writer, i.writer_note]),
             log: m.log.map(e => e.message), controls: m.controls() });
}
console.log(JSON.stringify(out));
"""


def run_model(initial: dict, ops: list) -> list[dict]:
    node = shutil.which("node")
    need(node is not None, "node is not installed (apt-get install -y nodejs)")
    done = subprocess.run([node, "-e", SCRIPT, str(ROOT / "static/js/run_view.js"),
                           json.dumps({"initial": initial, "ops": ops})],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def run(status="running", last_seq=0, items=("AAPL", "MSFT"), **extra) -> dict:
    return {"run_id": "r1", "kind": "stock", "status": status, "percent": 0,
            "last_seq": last_seq, **extra,
            "items": [{"key": f"{t.lower()}-k", "label": t, "status": "pending"} for t in items]}


def ev(seq, stage, message="", percent=None, **data) -> dict:
    e = {"run_id": "r1", "kind": "stock", "seq": seq, "stage": stage, "message": message or
         f"{stage} {seq}", "timestamp": "2026-11-25T10:00:00+00:00"}
    if percent is not None:
        e["percent"] = percent
    if data:
        e["data"] = data
    return e


def test_events_apply_in_order_and_duplicates_are_dropped():
    out = run_model(run(), [
        ["event", ev(1, "initializing", percent=0)],
        ["event", ev(2, "processing", ticker="AAPL", item="AAPL", index=0)],
        ["event", ev(2, "processing", ticker="AAPL", item="AAPL", index=0)],
        ["event", ev(3, "publishing", percent=45, ticker="AAPL", item="AAPL", index=0)],
        ["event", ev(4, "processing", "✓ AAPL published", percent=50, ticker="AAPL",
                     item="AAPL", index=0, success=True, post_id="7", post_url="/p/aapl")],
    ])
    assert [o["r"] for o in out] == ["applied", "applied", "duplicate", "applied", "applied"]
    assert out[1]["items"] == ["processing", "pending"]
    assert out[3]["items"] == ["publishing", "pending"]
    assert out[4]["items"] == ["published", "pending"]
    assert out[4]["percent"] == 50 and out[4]["logSeq"] == 4
    assert len(out[4]["log"]) == 4                  # the duplicate is not logged twice


def test_a_gap_holds_later_events_until_it_is_filled():
    out = run_model(run(), [
        ["event", ev(1, "initializing")],
        ["event", ev(3, "publishing", index=0)],          # 2 is missing
        ["event", ev(4, "processing", index=0, success=True, post_url="/p")],
        ["event", ev(2, "processing", index=0)],          # the replay fills it
    ])
    assert [o["r"] for o in out] == ["applied", "buffered", "buffered", "applied"]
    assert out[2]["items"] == ["pending", "pending"] and out[2]["logSeq"] == 1
    assert out[3]["logSeq"] == 4 and out[3]["items"] == ["published", "pending"]
    assert out[3]["log"] == ["initializing 1", "processing 2", "publishing 3", "processing 4"]


def test_an_unfillable_gap_is_skipped_rather_than_stalling():
    out = run_model(run(), [
        ["event", ev(1, "initializing")],
        ["event", ev(5, "complete", percent=100, success=True)],
        ["skip", None],
    ])
    assert out[1]["status"] == "running"
    assert out[2]["status"] == "completed" and out[2]["percent"] == 100


def test_snapshot_state_then_replay_only_rebuilds_the_log():
    snap = run(status="paused", last_seq=3, percent=50)
    snap["items"][0]["status"] = "published"
    out = run_model(run(), [
        ["snapshot", snap],
        ["event", ev(1, "initializing")],           # replayed history: log only
        ["event", ev(2, "processing", index=0)],
        ["event", ev(3, "paused", "Paused: 1 items left")],
        ["snapshot", run(status="running", last_seq=1)],    # an older view: ignored
        ["event", ev(4, "resumed")],
    ])
    assert out[0]["r"] is True and out[0]["status"] == "paused"
    assert out[2]["items"] == ["published", "pending"]      # not rewound to processing
    assert out[3]["status"] == "paused" and out[3]["log"][-1] == "Paused: 1 items left"
    assert out[4]["r"] is False and out[4]["status"] == "paused"
    assert out[5]["status"] == "running" and out[5]["stateSeq"] == 4


def test_pause_returns_the_current_item_to_pending_and_percent_never_drops():
    out = run_model(run(), [
        ["event", ev(1, "processing", percent=30, index=1)],
        ["event", ev(2, "paused", percent=10)],
    ])
    assert out[0]["items"] == ["pending", "processing"]
    assert out[1]["items"] == ["pending", "pending"] and out[1]["percent"] == 30
    assert out[1]["controls"] == {"pause": False, "resume": True, "cancel": True,
                                  "retry": False}


def test_item_failure_then_retry_of_the_failed_item():
    out = run_model(run(), [
        ["event", ev(1, "error", "✗ MSFT failed: no data", index=1, item="MSFT",
                     success=False, error="no data")],
        ["event", ev(2, "complete", percent=100, success=False)],
        ["event", ev(3, "initializing")],
        ["event", ev(4, "processing", index=1, item="MSFT")],
    ])
    assert out[0]["items"] == ["pending", "failed"] and out[0]["status"] == "running"
    assert out[1]["status"] == "completed" and out[1]["controls"]["retry"] is True
    assert out[3]["items"] == ["pending", "processing"] and out[3]["status"] == "running"


def test_run_level_error_fails_the_run():
    out = run_model(run(), [["event", ev(1, "error", "Run failed: store down",
                                         success=False, error="store down")]])
    assert out[0]["status"] == "failed" and out[0]["items"] == ["pending", "pending"]
    # the server retries a failed run's unfinished items: the button must be offered
    assert out[0]["controls"]["retry"] is True


def test_a_completed_run_without_failures_offers_no_retry():
    out = run_model(run(), [["event", ev(1, "complete", percent=100, success=True)]])
    assert out[0]["status"] == "completed" and out[0]["controls"]["retry"] is False


def test_each_item_keeps_who_wrote_it_from_the_event_and_the_views():
    first = run()
    first["items"][1].update(status="published", writer="template",
                             writer_note="llm:m answered HTTP 429; written by the template writer")
    out = run_model(first, [
        ["event", ev(1, "processing", "✓ AAPL published", index=0, item="AAPL", success=True,
                     post_url="/p/aapl", writer="llm:m", writer_note="")],
        ["snapshot", run(last_seq=2)],                      # a view without writers: kept
        ["snapshot", {**run(last_seq=3), "items": [
            {"key": "aapl-k", "label": "AAPL", "status": "published", "writer": "template",
             "writer_note": "the run reached its cap of 2 LLM calls"},
            {"key": "msft-k", "label": "MSFT", "status": "published"}]}],
    ])
    assert out[0]["writers"] == [["llm:m", ""], ["template", "llm:m answered HTTP 429; "
                                                             "written by the template writer"]]
    assert out[1]["writers"] == out[0]["writers"]
    assert out[2]["writers"][0] == ["template", "the run reached its cap of 2 LLM calls"]
