"""What the worker takes from the automation (label field, report file) and where item files
live (Workdirs): real SQLite store, the test automation, a mocked ``emit``."""

from __future__ import annotations

from pathlib import Path

from runner.workdirs import Workdirs, item_dirname
from tests.engine.conftest import progress, wait_status
from tests.support.test_automations import TestAutomation


class ReportingAutomation(TestAutomation):
    """The test kind, declaring its label field and the report file it leaves behind."""

    kind = "reporting"
    label_field = "name"
    report_file = "notes.txt"


def _finish(manager, store, run_id):
    status = wait_status(store, run_id, ("completed", "failed", "cancelled", "paused"))
    assert manager.join(run_id)
    return status


def test_the_automation_names_the_label_field_and_the_report(make_manager, store, owner):
    manager = make_manager()
    manager.automations["reporting"] = ReportingAutomation()
    declared, _ = manager.submit(owner.user_id, "reporting", owner.site_id, ["alpha"])
    plain, _ = manager.submit(owner.user_id, "test", owner.site_id, ["beta"])
    assert _finish(manager, store, declared.id) == "completed"
    assert _finish(manager, store, plain.id) == "completed"

    [item] = store.list_items(declared.id)
    assert item.result["report"] == "notes.txt"
    assert item.result["files"] == ["notes.txt"]
    assert item.result["workdir"] == str(manager.workdirs.for_item(declared.id, 0, "alpha-test"))
    item_events = [p["data"] for p in progress(manager, declared.id) if "item" in p["data"]]
    assert item_events and all(d["name"] == "alpha" for d in item_events)

    [item] = store.list_items(plain.id)
    assert "report" not in item.result
    item_events = [p["data"] for p in progress(manager, plain.id) if "item" in p["data"]]
    assert item_events and not any("ticker" in d or "name" in d for d in item_events)


def test_no_report_is_recorded_when_the_declared_file_is_missing(make_manager, store, owner):
    class MissingReport(TestAutomation):
        kind = "missing"
        report_file = "report.json"

    manager = make_manager()
    manager.automations["missing"] = MissingReport()
    run, _ = manager.submit(owner.user_id, "missing", owner.site_id, ["gamma"])
    assert _finish(manager, store, run.id) == "completed"
    [item] = store.list_items(run.id)
    assert item.status == "published" and "report" not in item.result


def test_item_folders_are_named_by_position_and_key_and_cut_to_120(tmp_path: Path):
    workdirs = Workdirs(tmp_path)
    assert workdirs.for_run("r1") == tmp_path / "r1"
    assert workdirs.for_item("r1", 3, "aapl-stock") == tmp_path / "r1" / "0003-aapl-stock"
    long_key = "k" * 200
    assert item_dirname(7, long_key) == ("0007-" + long_key)[:120]
    assert len(workdirs.for_item("r1", 7, long_key).name) == 120


def test_locate_finds_the_recorded_folder_or_one_of_its_position_only_inside_the_run(
        tmp_path: Path):
    workdirs = Workdirs(tmp_path / "work")
    recorded = workdirs.for_item("run", 2, "b")
    recorded.mkdir(parents=True)
    (recorded / "report.json").write_text("{}")
    assert workdirs.locate("run", 2, str(recorded), holding="report.json") == recorded.resolve()
    assert workdirs.locate("run", 2, None, holding="report.json") == recorded.resolve()
    assert workdirs.locate("run", 2, str(recorded), holding="other.json") is None
    assert workdirs.locate("run", 1, None, holding="report.json") is None

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.json").write_text("{}")
    assert workdirs.locate("run", 5, str(elsewhere), holding="report.json") is None
    other_run = workdirs.for_item("other", 5, "x")
    other_run.mkdir(parents=True)
    (other_run / "report.json").write_text("{}")
    assert workdirs.locate("run", 5, str(other_run), holding="report.json") is None
    escape = str(workdirs.for_run("run") / ".." / "other" / "0005-x")
    assert workdirs.locate("run", 5, escape, holding="report.json") is None
