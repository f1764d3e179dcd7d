"""Retention end to end: a real stock run into the local archive, then the window passes.

The run's event log and its workdir go; the run, its items, the ledger and the archive's copy
of every post stay; the run page says so, the report page says why it is gone, replay answers
with the run's snapshot. The daily job runs once across two instances under the store's
``jobs/retention`` lease, and the ``tickzen prune`` CLI says what it removes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup

from main_portal_app import create_app, socketio_of
from portal.config import ConfigurationError, from_environment
from runner.retention import Retention, RetentionJob
from runner.workdirs import Workdirs
from storage.base import Item, LedgerEntry, Run, Site, Store, utcnow
from storage.housekeeping import SeededRun
from tests.earnings.runs import Member
from tests.history.test_retention_contract import two_handles  # noqa: F401 - fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
DAYS = 90


@pytest.fixture
def engine_app(make_app, tmp_path: Path) -> Flask:
    return make_app(TICKZEN_START_RUNNER=True, TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"),
                    TICKZEN_WORKDIR=str(tmp_path / "work"), PROGRESS_MAX_PER_SECOND=50)


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")
            if p.is_file()}


def test_past_the_window_a_run_keeps_its_record_and_posts_but_not_its_log_and_files(
        engine_app: Flask, tmp_path: Path) -> None:
    alice = Member(engine_app)
    site_id = alice.site(name="Archive", kind="local")
    run_id = alice.start("stock", site_id, ["AAPL", "MSFT"], data_source="demo",
                         status="publish")
    run = alice.wait(run_id)
    assert run["status"] == "completed" and run["events_pruned_at"] is None
    services = engine_app.extensions["tickzen"]
    store: Store = services.store
    workdir = tmp_path / "work" / run_id
    archive = tmp_path / "archive" / alice.user_id / site_id
    run_files, archived = files_under(workdir), files_under(archive)
    assert any(name.endswith("report.json") for name in run_files) and archived
    before = {"run": store.get_run(run_id), "items": store.list_items(run_id),
              "posts": store.list_posts(alice.user_id, limit=100)}
    events = len(store.list_events(run_id))
    assert events == before["run"].last_seq > 0
    page = alice.client.get("/account").get_data(as_text=True)
    assert 'id="disk-run-files">0 bytes' not in page and 'id="disk-archive">0 bytes' not in page

    retention: Retention = services.retention
    assert retention.days == DAYS
    soon = retention.prune(utcnow() + timedelta(days=DAYS - 1))
    assert soon.runs == [] and len(store.list_events(run_id)) == events
    later = utcnow() + timedelta(days=DAYS + 1)
    dry = retention.prune(later, dry_run=True)
    assert [(r.run_id, r.events) for r in dry.runs] == [(run_id, events)]
    assert dry.runs[0].files_bytes == sum(run_files.values())
    assert len(store.list_events(run_id)) == events and workdir.is_dir()      # dry: nothing

    done = retention.prune(later)
    assert [r.run_id for r in done.runs] == [run_id] and done.errors == []
    pruned = store.get_run(run_id)
    assert pruned.events_pruned_at == later and pruned.files_pruned_at == later
    assert pruned.events_pruned_seq == events
    assert store.list_events(run_id) == [] and not workdir.exists()
    assert files_under(archive) == archived                       # the archive is a site
    assert store.list_items(run_id) == before["items"]
    assert store.list_posts(alice.user_id, limit=100) == before["posts"]
    marks = ("events_pruned_at", "files_pruned_at", "events_pruned_seq")
    assert {k: v for k, v in pruned.__dict__.items() if k not in marks} == {
        k: v for k, v in before["run"].__dict__.items() if k not in marks}
    assert retention.prune(later + timedelta(days=1)).runs == []            # done once

    # What the user sees: the run page says so, reports say why they are gone, posts stay.
    detail = alice.client.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'id="tz-run-pruned"' in detail and f"{DAYS} days" in detail
    answer = alice.client.get(f"/api/runs/{run_id}").get_json()
    assert answer["events_pruned_at"] and all(i["report_url"] is None for i in answer["items"])
    report = alice.client.get(f"/runs/{run_id}/items/0/report")
    assert report.status_code == 404 and "removed on" in report.get_data(as_text=True)
    post = alice.client.get(answer["items"][0]["post_url"])
    assert post.status_code == 200
    history = alice.client.get("/history").get_data(as_text=True)
    assert run_id in history and "tz-report-link" not in history
    page = alice.client.get("/account").get_data(as_text=True)
    assert 'id="disk-run-files">0 bytes' in page and 'id="disk-archive">0 bytes' not in page

    # Replay of the pruned log answers with the run's snapshot, never an error.
    socket = socketio_of(engine_app).test_client(engine_app, flask_test_client=alice.client)
    socket.get_received()
    socket.emit("replay", {"automation_id": run_id, "after_seq": 0})
    received = socket.get_received()
    assert [m["name"] for m in received] == ["automation_snapshot"]
    payload = received[0]["args"][0]
    assert payload["replay_of"] == run_id
    [entry] = payload["runs"]
    assert entry["run_id"] == run_id and entry["events_pruned_at"] and entry["status"] == \
        "completed" and entry["last_seq"] == events
    socket.emit("replay", {"automation_id": run_id, "after_seq": events})
    assert socket.get_received() == []                       # nothing after last_seq
    socket.disconnect()


def seed_finished(store: Store, user_id: str, site_id: str, count: int, finished: Any,
                  status: str = "completed", prefix: str = "r") -> list[str]:
    seeded = []
    for n in range(count):
        run_id = f"{prefix}{n:04d}"
        run = Run(id=run_id, user_id=user_id, kind="stock", site_id=site_id, status=status,
                  total=1, counts={"published": 1}, percent=100, created_at=finished,
                  updated_at=finished)
        item = Item(run_id=run_id, position=0, key=f"{prefix}-{n}", input="X",
                    status="published", updated_at=finished)
        post = LedgerEntry(user_id=user_id, site_id=site_id, slug=f"{prefix}-{n}",
                           item_key=f"{prefix}-{n}", kind="stock", run_id=run_id,
                           status="published", day="2026-01-01", created_at=finished)
        seeded.append(SeededRun(run, [item], [{"stage": "processing"}] * 4, [post]))
    store.seed_runs(seeded)
    return [s.run.id for s in seeded]


def owner_of(store: Store) -> tuple[str, str]:
    user = store.create_user("ann@example.com", "h")
    site = store.create_site(user.id, Site(id="", user_id=user.id, name="A", kind="local"))
    return user.id, site.id


def test_active_runs_and_runs_inside_the_window_keep_everything(tmp_path: Path) -> None:
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "db.sqlite")
    try:
        user, site = owner_of(store)
        now = utcnow()
        old = seed_finished(store, user, site, 2, now - timedelta(days=DAYS + 5))
        recent = seed_finished(store, user, site, 2, now - timedelta(days=DAYS - 5), prefix="n")
        paused = seed_finished(store, user, site, 1, now - timedelta(days=DAYS + 5),
                               status="paused", prefix="p")
        for run_id in old + recent + paused:
            (tmp_path / "work" / run_id / "0000-x").mkdir(parents=True)
            (tmp_path / "work" / run_id / "0000-x" / "chart.png").write_bytes(b"x" * 100)
        retention = Retention(store, Workdirs(tmp_path / "work"), DAYS)
        assert sorted(r.run_id for r in retention.prune(now).runs) == old
        for run_id in recent + paused:
            assert len(store.list_events(run_id)) == 4 and (tmp_path / "work" / run_id).is_dir()
        assert Retention(store, Workdirs(tmp_path / "work"), 0).prune(
            now + timedelta(days=999)).runs == []                      # 0: keep everything
    finally:
        store.close()


def test_a_pass_stops_when_its_lease_is_lost(tmp_path: Path) -> None:
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "db.sqlite")
    try:
        user, site = owner_of(store)
        seed_finished(store, user, site, 120, utcnow() - timedelta(days=DAYS + 1))
        report = Retention(store, Workdirs(tmp_path / "work"), DAYS).prune(
            keep_going=lambda: False)
        assert report.stopped and len(report.runs) == 50
        assert len(store.list_prunable_runs(utcnow() - timedelta(days=DAYS))) == 70
    finally:
        store.close()


def test_the_daily_job_runs_once_across_two_instances(two_handles: list[Store],  # noqa: F811
                                                      tmp_path: Path) -> None:
    first, second = two_handles
    user, site = owner_of(first)
    now = utcnow()
    runs = seed_finished(first, user, site, 6, now - timedelta(days=DAYS + 2))
    jobs = [RetentionJob(Retention(handle, Workdirs(tmp_path / "work"), DAYS), f"instance-{n}",
                         clock=lambda: now) for n, handle in enumerate(two_handles)]
    barrier = threading.Barrier(2)
    reports: list[Any] = [None, None]

    def run(n: int) -> None:
        barrier.wait()
        reports[n] = jobs[n].run_due(now)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done = [r for r in reports if r is not None]
    assert len(done) == 1 and sorted(r.run_id for r in done[0].runs) == runs
    assert all(second.get_run(r).events_pruned_at is not None for r in runs)
    job = second.get_job("retention")
    assert job.owner is None and job.last_result["runs"] == 6
    assert job.next_run_at == now + timedelta(days=1)
    assert [j.run_due(now + timedelta(hours=23)) for j in jobs] == [None, None]   # same day
    tomorrow = jobs[1].run_due(now + timedelta(days=1))
    assert tomorrow is not None and tomorrow.runs == []


def test_the_scheduler_thread_runs_the_daily_job(make_app, tmp_path: Path) -> None:
    from storage.sqlite import SQLiteStore

    seeded = SQLiteStore(tmp_path / "scheduled.db")
    user, site = owner_of(seeded)
    runs = seed_finished(seeded, user, site, 3, utcnow() - timedelta(days=DAYS + 1))
    seeded.close()
    app = make_app(TICKZEN_START_RUNNER=True, TICKZEN_SCHEDULER_TICK=0.05,
                   TICKZEN_STORE=f"sqlite:///{tmp_path / 'scheduled.db'}",
                   TICKZEN_WORKDIR=str(tmp_path / "work"))
    store = app.extensions["tickzen"].store
    deadline = time.monotonic() + 30
    job = None
    while time.monotonic() < deadline:
        job = store.get_job("retention")
        if job is not None and job.last_finished_at is not None:
            break
        time.sleep(0.05)
    assert job is not None and job.last_finished_at is not None, job
    assert job.last_result["runs"] == 3 and job.next_run_at > utcnow() + timedelta(hours=23)
    assert all(store.get_run(r).events_pruned_at is not None for r in runs)


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A portal configuration the CLI builds its app from, and a user with old runs in it."""
    config = {"ENV_NAME": "testing", "INSTANCE_PATH": str(tmp_path / "instance"),
              "TICKZEN_STORE": f"sqlite:///{tmp_path / 'cli.db'}",
              "TICKZEN_WORKDIR": str(tmp_path / "work")}
    from storage.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "cli.db")
    user, site = owner_of(store)
    old = seed_finished(store, user, site, 2, utcnow() - timedelta(days=DAYS + 3))
    live = store.create_run(Run(id="live-run", user_id=user, kind="stock", site_id=site,
                                status="running", owner="the-server"), [])
    (tmp_path / "work" / old[0]).mkdir(parents=True)
    (tmp_path / "work" / old[0] / "chart.png").write_bytes(b"x" * 2048)
    store.close()
    built: list[Flask] = []

    def factory() -> Flask:
        app = create_app(dict(config))
        built.append(app)
        return app

    yield {"cli": FlaskGroup(create_app=factory), "old": old, "live": live.id,
           "store_path": tmp_path / "cli.db", "work": tmp_path / "work", "apps": built}
    for app in built:
        app.extensions["tickzen"].store.close()


def test_the_prune_command_says_what_it_removes(cli_env: dict[str, Any]) -> None:
    from storage.sqlite import SQLiteStore

    runner = CliRunner()
    dry = runner.invoke(cli_env["cli"], ["tickzen", "prune", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    for run_id in cli_env["old"]:
        assert f"would remove run {run_id}" in dry.output
    assert "2.0 KB" in dry.output and "Would remove the event logs of 2 runs" in dry.output
    # A one-off command starts no runner: the server's running run is left as it is.
    app = cli_env["apps"][0]
    assert app.extensions["tickzen"].runs.autostart is False
    store = SQLiteStore(cli_env["store_path"])
    try:
        assert store.get_run(cli_env["live"]).status == "running"
        assert all(len(store.list_events(r)) == 4 for r in cli_env["old"])
        done = runner.invoke(cli_env["cli"], ["tickzen", "prune"])
        assert done.exit_code == 0 and "Removed the event logs of 2 runs" in done.output
        assert all(store.list_events(r) == [] for r in cli_env["old"])
        assert not (cli_env["work"] / cli_env["old"][0]).exists()
        assert store.get_run(cli_env["live"]).status == "running"
        again = runner.invoke(cli_env["cli"], ["tickzen", "prune", "--days", "1"])
        assert again.exit_code == 0 and "of 0 runs" in again.output
        assert runner.invoke(cli_env["cli"], ["tickzen", "prune", "--days", "0"]).exit_code == 2
        usage = runner.invoke(cli_env["cli"], ["tickzen", "usage", "ANN@example.com"])
        assert usage.exit_code == 0 and "ann@example.com: 0 bytes" in usage.output
        missing = runner.invoke(cli_env["cli"], ["tickzen", "usage", "nobody@example.com"])
        assert missing.exit_code == 1 and "no account" in missing.output
    finally:
        store.close()


def test_the_retention_window_is_configured_and_checked() -> None:
    assert from_environment({"TICKZEN_RETENTION_DAYS": "30"})["TICKZEN_RETENTION_DAYS"] == 30
    for bad in ("-1", "soon"):
        with pytest.raises(ConfigurationError):
            from_environment({"TICKZEN_RETENTION_DAYS": bad})


def test_the_daily_pass_measures_each_users_disk_for_the_account_page(
        make_app, tmp_path: Path) -> None:
    app = make_app(TICKZEN_WORKDIR=str(tmp_path / "work"),
                   TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"))
    client = app.test_client()
    from tests.conftest import AuthActions

    user = AuthActions(client).signed_in("disk@example.com")
    services = app.extensions["tickzen"]
    store = services.store
    site = store.list_sites(user)[0].id
    other, other_site = owner_of(store)
    now = utcnow()
    mine = seed_finished(store, user, site, 3, now - timedelta(days=2), prefix="m")
    theirs = seed_finished(store, other, other_site, 1, now - timedelta(days=2), prefix="t")
    for run_id, size in zip(mine + theirs, (1000, 2000, 0, 5000), strict=True):
        folder = tmp_path / "work" / run_id / "0000-x"
        folder.mkdir(parents=True)
        if size:
            (folder / "chart.png").write_bytes(b"x" * size)
    (tmp_path / "work" / "not-a-run").mkdir()
    post = tmp_path / "archive" / user / site / "post-1" / "images"
    post.mkdir(parents=True)
    (post / "a.png").write_bytes(b"y" * 4096)
    assert services.retention.record_usage(now) == 2
    measured = store.get_user(user).settings["disk_usage"]
    assert measured["run_files_bytes"] == 3000 and measured["run_folders"] == 2
    assert measured["archive_bytes"] == 4096 and measured["archive_files"] == 1
    assert store.get_user(other).settings["disk_usage"]["run_files_bytes"] == 5000
    (tmp_path / "work" / mine[0] / "0000-x" / "more.png").write_bytes(b"z" * 10_000)
    page = client.get("/account").get_data(as_text=True)
    assert 'id="disk-run-files">2.9 KB' in page and 'id="disk-archive">4.0 KB' in page
    assert 'id="disk-measured"' in page               # the daily figure, not a walk per view
