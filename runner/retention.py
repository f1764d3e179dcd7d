"""Retention: what a finished run keeps once ``TICKZEN_RETENTION_DAYS`` have passed.

Kept forever: the run record, its items and the publish ledger (the record of what was
published), and the local archive (a site: its posts and images are what it publishes).
Removed after the window, counted from when the run finished (its last change): the run's
stored events (the live log; replay then answers with the run's snapshot) and its workdir, the
charts and report files under ``TICKZEN_WORKDIR/<run id>``. That goes for local-archive runs
too: the archive wrote its own copy of each post and its images, so the workdir is a
duplicate there. The run records when each went (``events_pruned_at``, ``files_pruned_at``,
and how far its events went, ``events_pruned_seq``), so its page can say so; a retry makes it a
candidate again once it has finished anew (``HousekeepingStore.prune_run``).

The same window bounds what notifications leave behind: a read notification goes once it is
older than the window, an unread one after ``UNREAD_WINDOWS`` windows (a user away for a while
still finds what happened, but one who never reads does not grow a table forever); an outbox
event goes with its deliveries once it is older than the window and none of them is pending;
a webhook's delivery attempts go once older than the window, but its newest
``WEBHOOK_ATTEMPTS_KEPT`` stay, however old (what its log's API lists by default).

``RetentionJob`` does it daily on one instance of several: the store's ``jobs/retention``
lease is claimed by compare-and-set, renewed while the job works, and released with the next
due time. The campaign scheduler's thread polls it; the work runs on a thread of its own, so
a long first prune never delays a campaign's fire. The same pass measures what each user's
run folders and local archive hold (one walk of both roots) and keeps it in the user's
settings (``disk_usage``), so /account shows it without walking a big history per view.
Before its first prune the job walks every run once (``HousekeepingStore.backfill_runs``: on
Firestore, runs written before the prune fields existed get them, else the prune query never
finds them), in batches under its lease; where it got to is kept in the job's ``last_result``
(``runs_backfill``: a resume token, then ``done``).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from automation_scripts.publishing.archive import archive_path
from runner.workdirs import Workdirs
from storage.base import ConflictError, NotFoundError, Run, utcnow
from storage.housekeeping import HousekeepingStore, pruned_seq, run_files_pruned
from storage.paging import Cursor

log = logging.getLogger(__name__)

JOB_NAME = "retention"
BATCH = 200                              # runs (or notifications, ...) per store call
BACKFILL_BATCH = 500                     # runs the backfill reads per store call
UNREAD_WINDOWS = 4                       # unread notifications are kept 4 retention windows
WEBHOOK_ATTEMPTS_KEPT = 50               # each webhook's newest attempts stay (its API's page)
BACKFILL_KEY = "runs_backfill"           # in the job's last_result: a resume token or "done"
BACKFILL_DONE = "done"
RUNS_PER_USAGE_PAGE = 500
USAGE_SETTING = "disk_usage"             # users' settings key of the daily measurement


def _subfolders(root: Path) -> list[os.DirEntry[str]]:
    try:
        return [e for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(bytes, files) under ``folder``, symlinks not followed; (0, 0) when it is absent."""
    total = files = 0
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                    files += 1
            except OSError:
                continue
    return total, files


@dataclass(frozen=True)
class PrunedRun:
    """One run retention removed (or, in a dry run, would remove) the events and files of."""

    run_id: str
    user_id: str
    finished_at: datetime
    events: int                         # events stored for it (those after events_pruned_seq)
    files_bytes: int
    files: int


@dataclass
class RetentionReport:
    """What one pass did: the runs, and those it left (changed meanwhile, or a file error);
    the notifications, outbox events (with their deliveries) and webhook attempts it removed;
    the backfill."""

    cutoff: datetime
    dry_run: bool
    unread_cutoff: datetime | None = None      # unread notifications older than this go
    runs: list[PrunedRun] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: bool = False               # the lease was lost or the job was stopped
    notifications: int = 0
    outbox_events: int = 0
    outbox_deliveries: int = 0
    webhook_attempts: int = 0
    backfilled: int = 0                 # run records given the prune fields
    backfill: str | None = None         # BACKFILL_DONE, or where it goes on (None: not run)

    @property
    def events(self) -> int:
        return sum(r.events for r in self.runs)

    @property
    def files_bytes(self) -> int:
        return sum(r.files_bytes for r in self.runs)

    def summary(self) -> dict[str, Any]:
        """The job's ``last_result``: counts only, small enough for any store."""
        summary = {"cutoff": self.cutoff.isoformat(), "dry_run": self.dry_run,
                   "runs": len(self.runs), "events": self.events,
                   "files_bytes": self.files_bytes, "skipped": self.skipped,
                   "errors": len(self.errors), "stopped": self.stopped,
                   "notifications": self.notifications, "outbox_events": self.outbox_events,
                   "outbox_deliveries": self.outbox_deliveries,
                   "webhook_attempts": self.webhook_attempts, "backfilled": self.backfilled}
        if self.backfill is not None:
            summary[BACKFILL_KEY] = self.backfill
        return summary


@dataclass(frozen=True)
class DiskUsage:
    """What one user's history holds on disk: run workdirs (removed after the retention
    window) and the local archive (kept: it is a site)."""

    run_files_bytes: int
    run_folders: int
    archive_bytes: int
    archive_files: int

    @property
    def total_bytes(self) -> int:
        return self.run_files_bytes + self.archive_bytes

    def setting(self, measured_at: datetime) -> dict[str, Any]:
        """As kept in the user's settings."""
        return {"run_files_bytes": self.run_files_bytes, "run_folders": self.run_folders,
                "archive_bytes": self.archive_bytes, "archive_files": self.archive_files,
                "measured_at": measured_at.isoformat()}

    @classmethod
    def from_setting(cls, value: Any) -> tuple[DiskUsage, datetime] | None:
        """The measurement a user's settings keep, and when it was made; None if absent."""
        try:
            return (cls(int(value["run_files_bytes"]), int(value["run_folders"]),
                        int(value["archive_bytes"]), int(value["archive_files"])),
                    datetime.fromisoformat(value["measured_at"]))
        except (KeyError, TypeError, ValueError):
            return None


def _in_batches(batch: Callable[[Any], Any], report: RetentionReport,
                keep_going: Callable[[], bool]) -> None:
    """Call ``batch`` (one bounded store call, counted into ``report``) from where the one
    before it ended (None at first) until it returns None, asking ``keep_going`` (the job's
    lease renewal) between calls; a refusal stops the pass."""
    position = batch(None)
    while position is not None:
        if not keep_going():
            report.stopped = True
            return
        position = batch(position)


class Retention:
    """Prunes finished runs older than ``days`` (0: keep everything forever)."""

    def __init__(self, store: HousekeepingStore, workdirs: Workdirs, days: int, *,
                 archive_dir: str | os.PathLike[str] | None = None) -> None:
        if days < 0:
            raise ValueError("retention days must be >= 0")
        self.store = store
        self.workdirs = workdirs
        self.days = int(days)
        self.archive_dir = Path(archive_dir) if archive_dir else None

    @property
    def enabled(self) -> bool:
        return self.days > 0

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)

    def unread_cutoff(self, now: datetime) -> datetime:
        """Unread notifications older than this go too."""
        return now - timedelta(days=self.days * UNREAD_WINDOWS)

    def candidates(self, now: datetime) -> Iterator[Run]:
        """Finished runs past the window whose events are still stored, oldest first."""
        if not self.enabled:
            return
        cutoff, after = self.cutoff(now), None
        while True:
            runs = self.store.list_prunable_runs(cutoff, limit=BATCH, after=after)
            yield from runs
            if len(runs) < BATCH:
                return
            after = Cursor(runs[-1].updated_at, (runs[-1].id,))

    def prune(self, now: datetime | None = None, *, dry_run: bool = False,
              keep_going: Callable[[], bool] = lambda: True) -> RetentionReport:
        """One pass. Each run: its events go (a compare-and-set: a run retried meanwhile is
        left alone), then its workdir; then old notifications, finished outbox events and old
        webhook attempts, in batches. ``dry_run`` only says what would go. ``keep_going`` is
        asked between runs and batches (the job's lease renewal)."""
        now = now or utcnow()
        report = RetentionReport(cutoff=self.cutoff(now), dry_run=dry_run,
                                 unread_cutoff=self.unread_cutoff(now))
        for count, run in enumerate(self.candidates(now)):
            if count % 50 == 0 and count and not keep_going():
                report.stopped = True
                break
            folder = self.workdirs.for_run(run.id)
            size, files = folder_bytes(folder)
            stored = run.last_seq - pruned_seq(run)
            record = PrunedRun(run.id, run.user_id, run.updated_at, stored, size, files)
            if dry_run:
                report.runs.append(record)
                continue
            try:
                self.store.prune_run(run.id, finished_before=report.cutoff, when=now,
                                     files_pruned=False)
            except (ConflictError, NotFoundError):
                report.skipped += 1
                continue
            try:
                shutil.rmtree(folder)
            except FileNotFoundError:
                pass
            except OSError as exc:
                report.errors.append(f"run {run.id}: its files stay: {exc}")
                log.warning("retention: the workdir of run %s stays: %s", run.id, exc)
                report.runs.append(PrunedRun(run.id, run.user_id, run.updated_at, stored, 0, 0))
                continue
            try:
                self.store.prune_run(run.id, finished_before=report.cutoff, when=now,
                                     files_pruned=True)
            except (ConflictError, NotFoundError):     # retried (or deleted) just now
                report.skipped += 1
                continue
            report.runs.append(record)
        if self.enabled:
            for batch in (self._notifications_batch(report, now), self._outbox_batch(report),
                          self._webhook_attempts_batch(report)):
                if report.stopped:
                    break
                _in_batches(batch, report, keep_going)
        return report

    def _notifications_batch(self, report: RetentionReport, now: datetime
                             ) -> Callable[[object], object]:
        bounds = {"read_before": report.cutoff, "unread_before": self.unread_cutoff(now)}

        def batch(_: object) -> object:
            if report.dry_run:
                report.notifications = self.store.count_prunable_notifications(**bounds)
                return None
            deleted = self.store.prune_notifications(**bounds, limit=BATCH)
            report.notifications += deleted
            return True if deleted == BATCH else None          # a full batch: maybe more

        return batch

    def _outbox_batch(self, report: RetentionReport) -> Callable[[Cursor | None], object]:
        def batch(after: Cursor | None) -> Cursor | None:
            pruned = self.store.prune_outbox(report.cutoff, limit=BATCH, after=after,
                                             dry_run=report.dry_run)
            report.outbox_events += pruned.events
            report.outbox_deliveries += pruned.deliveries
            return pruned.after

        return batch

    def _webhook_attempts_batch(self, report: RetentionReport) -> Callable[[str | None], object]:
        def batch(start: str | None) -> str | None:
            pruned = self.store.prune_webhook_attempts(
                report.cutoff, keep=WEBHOOK_ATTEMPTS_KEPT, limit=BATCH, start=start,
                dry_run=report.dry_run)
            report.webhook_attempts += pruned.attempts
            return pruned.start

        return batch

    def backfill(self, after: str | None = None,
                 keep_going: Callable[[], bool] = lambda: True) -> tuple[int, str | None]:
        """Walk every run once from the resume token ``after`` (``backfill_runs``): how many
        records got the prune fields, and where to go on (None: the walk is done)."""
        fixed = 0
        while True:
            count, after = self.store.backfill_runs(after, limit=BACKFILL_BATCH)
            fixed += count
            if after is None or not keep_going():
                return fixed, after

    def measure_all(self) -> dict[str, DiskUsage]:
        """Every user's usage in one walk: each run folder under the workdir root is its
        run's owner's, each folder under the archive root is a user's."""
        found: dict[str, list[int]] = {}
        root = self.workdirs.root
        for entry in _subfolders(root):
            run = self.store.get_run(entry.name)
            if run is None:
                continue
            size, files = folder_bytes(Path(entry.path))
            counts = found.setdefault(run.user_id, [0, 0, 0, 0])
            counts[0] += size
            counts[1] += 1 if files else 0
        if self.archive_dir is not None:
            for entry in _subfolders(self.archive_dir):
                size, files = folder_bytes(Path(entry.path))
                counts = found.setdefault(entry.name, [0, 0, 0, 0])
                counts[2] += size
                counts[3] += files
        return {user: DiskUsage(*counts) for user, counts in found.items()}

    def record_usage(self, now: datetime, also: Iterable[str] = ()) -> int:
        """Measure every user (``measure_all``) and keep it in their settings; ``also``:
        users to record even with nothing on disk now (their last runs were just pruned).
        Returns how many users were recorded."""
        usage = self.measure_all()
        recorded = 0
        for user_id in set(usage) | set(also):
            measured = usage.get(user_id, DiskUsage(0, 0, 0, 0))
            try:
                self.store.update_user_settings(user_id, {USAGE_SETTING: measured.setting(now)})
            except NotFoundError:            # a folder or run of a deleted account
                continue
            recorded += 1
        return recorded

    def disk_usage(self, user_id: str) -> DiskUsage:
        """Bytes the user's run workdirs and local-archive sites hold now (walked: the
        workdirs of runs retention already emptied are not looked at). The daily job's
        measurement (``record_usage``) is the cheap way to read it."""
        run_bytes = run_folders = 0
        after: Cursor | None = None
        while True:
            runs = self.store.list_runs(user_id, limit=RUNS_PER_USAGE_PAGE, after=after)
            for run in runs:
                if run_files_pruned(run):
                    continue
                size, files = folder_bytes(self.workdirs.for_run(run.id))
                run_bytes += size
                run_folders += 1 if files else 0
            if len(runs) < RUNS_PER_USAGE_PAGE:
                break
            after = Cursor.of_run(runs[-1])
        archive_bytes = archive_files = 0
        if self.archive_dir is not None:
            try:
                user_folder = archive_path(self.archive_dir, user_id, "site").parent
            except ValueError:
                user_folder = None
            if user_folder is not None:
                archive_bytes, archive_files = folder_bytes(user_folder)
        return DiskUsage(run_bytes, run_folders, archive_bytes, archive_files)


class RetentionJob:
    """The daily pass under the ``jobs/retention`` lease. ``poll`` is cheap (the scheduler
    calls it every tick): it asks the store at most every ``check_every`` and, when this
    instance wins the lease, works on its own thread."""

    def __init__(self, retention: Retention, owner: str, *,
                 every: timedelta = timedelta(days=1), lease: timedelta = timedelta(minutes=10),
                 check_every: timedelta = timedelta(minutes=1),
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.retention = retention
        self.owner = owner
        self.every = every
        self.lease = lease
        self.check_every = check_every
        self.clock = clock
        self.last_report: RetentionReport | None = None
        self._next_check: datetime | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def poll(self, now: datetime | None = None) -> None:
        """Start the pass on a thread when it may be due (never two at once here)."""
        now = now or self.clock()
        with self._lock:
            if self._stop.is_set():        # retention off still measures disk usage daily
                return
            if self._thread is not None and self._thread.is_alive():
                return
            if self._next_check is not None and now < self._next_check:
                return
            self._next_check = now + self.check_every
            self._thread = threading.Thread(target=self._run_logged, args=(now,), daemon=True,
                                            name="tickzen-retention")
            self._thread.start()

    def run_due(self, now: datetime | None = None) -> RetentionReport | None:
        """Do the pass now if it is due and this instance gets the lease; None otherwise."""
        now = now or self.clock()
        store = self.retention.store
        job = store.claim_job(JOB_NAME, self.owner, now, now + self.lease)
        if job is None:
            return None

        def renew() -> bool:
            if self._stop.is_set():
                return False
            moment = self.clock()
            return store.claim_job(JOB_NAME, self.owner, moment, moment + self.lease) \
                is not None

        progress = job.last_result.get(BACKFILL_KEY)
        backfilled, resume = 0, None
        if progress != BACKFILL_DONE:
            backfilled, resume = self.retention.backfill(
                progress if isinstance(progress, str) else None, keep_going=renew)
        if resume is None:
            report = self.retention.prune(now, keep_going=renew)
        else:                                # stopped: the next pass goes on from ``resume``
            report = RetentionReport(cutoff=self.retention.cutoff(now), dry_run=False,
                                     stopped=True)
        report.backfilled, report.backfill = backfilled, resume or BACKFILL_DONE
        if not report.stopped:
            try:
                self.retention.record_usage(self.clock(), {r.user_id for r in report.runs})
            except Exception:   # the prune is done; a failed measurement waits for tomorrow
                log.exception("retention: measuring disk usage failed")
        try:
            store.finish_job(JOB_NAME, self.owner, now=self.clock(),
                             next_run_at=now + self.every, result=report.summary())
        except ConflictError:
            log.warning("retention: the lease went to another instance before this pass ended")
        self.last_report = report
        if report.runs or report.errors or report.notifications or report.outbox_events \
                or report.webhook_attempts or report.backfilled:
            log.info("retention: %s", report.summary())
        return report

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run_logged(self, now: datetime) -> None:
        try:
            self.run_due(now)
        except Exception:        # a store hiccup: the next poll tries again
            log.exception("retention pass failed")
