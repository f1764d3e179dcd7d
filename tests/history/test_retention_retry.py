"""A retry of a run retention already pruned: the real runner, the real store, the portal.

The retry writes new events and a new workdir. The run then says what went (its first
events, the files of the items the retry did not redo) and shows what is new: the log replays
from the retry on, the retried item's files count on disk, its report link is back; once the
retried run is past the window it is pruned again, new events and files included.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from portal.run_views import RunView
from runner.retention import Retention
from storage.base import Item, Run, Store, utcnow
from tests.browser.test_run_model_js import ev, run, run_model
from tests.engine.test_api_socket import Member, events

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
DAYS = 90


@pytest.fixture
def engine_app(make_app, tmp_path: Path) -> Flask:
    return make_app(TICKZEN_START_RUNNER=True,
                    TICKZEN_EXTRA_AUTOMATIONS="tests.support.test_automations",
                    TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


def test_a_retried_pruned_run_shows_its_new_log_and_files_and_is_pruned_again(
        engine_app: Flask, tmp_path: Path) -> None:
    alice = Member(engine_app, "alice@example.com")
    services = engine_app.extensions["tickzen"]
    store: Store = services.store
    retention: Retention = services.retention
    run_id = alice.start(["flaky-x", "fine"], record=str(tmp_path / "calls.log"))
    first = alice.wait(run_id)
    assert first["counts"]["failed"] == 1
    # The window passes: the run finished DAYS + 1 days ago; today's pass prunes it.
    store.update_run(run_id, updated_at=utcnow() - timedelta(days=DAYS + 1))
    pruned_on = utcnow()
    report = retention.prune(pruned_on)
    assert [r.run_id for r in report.runs] == [run_id]
    pruned = store.get_run(run_id)
    gone = pruned.last_seq
    assert pruned.events_pruned_seq == gone > 0 and pruned.files_pruned_at == pruned_on
    assert not (tmp_path / "work" / run_id).exists()

    (tmp_path / "heal").touch()
    assert alice.post(f"/api/runs/{run_id}/retry").status_code == 200
    answer = alice.wait(run_id)
    assert answer["counts"]["published"] == 2
    assert answer["events_pruned_at"] is None and answer["events_pruned_seq"] == gone
    assert answer["files_pruned_at"] is not None               # the other item's are gone
    retried = store.get_run(run_id)
    seqs = [e["seq"] for e in store.list_events(run_id)]
    assert seqs == list(range(gone + 1, retried.last_seq + 1))
    folders = [p.name for p in (tmp_path / "work" / run_id).iterdir()]
    assert folders == ["0000-flaky-x-test"]
    usage = retention.disk_usage(alice.user_id)
    assert usage.run_files_bytes > 0 and usage.run_folders == 1    # the retry's files count
    page = alice.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'id="tz-run-pruned"' in page and f"its first {gone} events" in page
    assert "the events since" in page

    # Replay from the start: the snapshot stands in for the pruned part, then the new events.
    sock = alice.socket()
    sock.get_received()
    sock.emit("replay", {"automation_id": run_id, "after_seq": 0})
    received = sock.get_received()
    assert received[0]["name"] == "automation_snapshot"
    [entry] = received[0]["args"][0]["runs"]
    assert entry["events_pruned_seq"] == gone and "events_pruned_at" not in entry
    assert [e["seq"] for e in events(received, "automation_progress")] == seqs
    sock.emit("replay", {"automation_id": run_id, "after_seq": seqs[1]})
    assert [e["seq"] for e in events(sock.get_received(), "automation_progress")] == seqs[2:]
    sock.disconnect()

    # Past the window again (from the retry's finish): its new events and files go too.
    later = utcnow() + timedelta(days=DAYS + 1)
    again = retention.prune(later)
    assert [(r.run_id, r.events) for r in again.runs] == [(run_id, len(seqs))]
    twice = store.get_run(run_id)
    assert (twice.events_pruned_at, twice.files_pruned_at, twice.events_pruned_seq) == (
        later, later, retried.last_seq)
    assert store.list_events(run_id) == [] and not (tmp_path / "work" / run_id).exists()
    assert retention.disk_usage(alice.user_id).run_folders == 0
    page = alice.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "Its event log was removed on" in page


def test_report_links_stay_for_the_items_a_retry_redid(app: Flask) -> None:
    pruned_on = utcnow() - timedelta(days=1)
    run_ = Run(id="r1", user_id="u1", kind="stock", site_id="s1", status="completed",
               files_pruned_at=pruned_on, events_pruned_seq=40, last_seq=60,
               updated_at=utcnow())
    result = {"report": "report.json", "files": ["report.json"]}
    items = [Item(run_id="r1", position=n, key=f"k{n}", input="X", status="published",
                  result=result, updated_at=when)
             for n, when in enumerate((pruned_on - timedelta(days=91), utcnow()))]
    with app.test_request_context():
        view = RunView.of(run_, items).api()
    assert [i["report_url"] for i in view["items"]] == [None, "/runs/r1/items/1/report"]
    assert view["events_pruned_seq"] == 40


def test_the_live_log_of_a_retried_pruned_run_starts_after_what_went() -> None:
    retried = run(status="running", last_seq=85, events_pruned_seq=80)
    steps = run_model(retried, [["event", ev(81, "resumed", "Retrying 1 failed items")],
                                ["event", ev(82, "processing")]])
    assert [s["r"] for s in steps] == ["applied", "applied"] and steps[-1]["logSeq"] == 82
    assert steps[-1]["log"][0] == "Retrying 1 failed items"
