"""RunManager: durable runs executed by daemon threads, steered through the store.

Everything a run is lives in the store (status, items, events, lease), so pause and cancel work
from any request thread or instance, a paused run holds no thread, and a restart picks up where
the last process died. The manager knows no Flask: it is handed a store, an ``emit`` callable,
the automations by kind and the publishing service.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from automation_scripts.base import (
    Automation,
    InvalidItems,
    ItemContext,
    PreparedItem,
    StopRequested,
)
from runner.errors import InvalidRun, RunNotFound, TransitionNotAllowed
from runner.progress import Emit, ProgressReporter, TimerFactory, _thread_timer
from runner.views import remaining_count, snapshot_view
from storage.base import (
    ITEM_TODO,
    ConflictError,
    DailyLimitReached,
    Item,
    NewItem,
    NotFoundError,
    Run,
    Store,
    StoreError,
    utcnow,
)

log = logging.getLogger(__name__)

LIVE_STATES = ("queued", "running", "pausing", "paused", "interrupted")   # shown as "active"
PAUSABLE = ("queued", "running")
RESUMABLE = ("paused", "interrupted", "pausing")
CANCELLABLE = ("queued", "running", "pausing", "paused", "interrupted")
RETRYABLE = ("completed", "failed", "cancelled")
_WORKED = ("running", "pausing")           # a worker thread owns the run and emits its stops
ALREADY_PUBLISHED = "already published on this site"


@dataclass
class _Job:
    """A run this instance is executing right now."""

    run_id: str
    user_id: str
    thread: threading.Thread | None = None
    last_check: float | None = None
    lost: bool = False                      # the lease went to another instance


@dataclass
class _Outcome:
    again: bool = False                     # a pause was withdrawn: keep working


def readable(exc: BaseException) -> str:
    """A message for the user: the exception's text, its type when it has none; no traceback."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0][:500]
    if type(exc).__module__ == "builtins" and not isinstance(exc, (ValueError, RuntimeError)):
        return f"{type(exc).__name__}: {first}"
    return first


def _recoverable(exc: BaseException) -> bool:
    return isinstance(exc, (StoreError, OSError, TimeoutError)) or bool(
        getattr(exc, "retryable", False))


class RunManager:
    """Start, pause, resume, cancel, retry and recover runs; one thread per running run."""

    def __init__(self, store: Store, emit: Emit, automations: MutableMapping[str, Automation],
                 publishing: Any, *, instance_id: str | None = None, max_runs: int = 8,
                 max_runs_per_user: int = 2, workdir_root: str | Path,
                 progress_max_per_second: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, max_items: int = 500,
                 lease_seconds: float = 30.0, checkpoint_interval: float = 0.1,
                 autostart: bool = True, timer_factory: TimerFactory = _thread_timer,
                 services: Mapping[str, Any] | None = None, takeover: bool = False) -> None:
        self.store = store
        self.emit = emit
        self.automations = automations
        self.publishing = publishing
        self.instance_id = instance_id or f"instance-{uuid.uuid4().hex}"
        self.max_runs = max(1, int(max_runs))
        self.max_runs_per_user = max(1, int(max_runs_per_user))
        self.workdir_root = Path(workdir_root)
        self.progress_max_per_second = progress_max_per_second
        self.clock = clock
        self.max_items = max_items
        self.lease_seconds = lease_seconds
        self.checkpoint_interval = checkpoint_interval
        self.autostart = autostart
        self.timer_factory = timer_factory
        self.services = dict(services or {})
        # Several instances: the heartbeat also continues runs whose owner's lease expired.
        self.takeover = takeover
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._reporters: dict[str, ProgressReporter] = {}
        self._shutdown = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------
    # Submitting and reading.

    def submit(self, user_id: str, kind: str, site_id: str, raw_items: Any,
               options: Mapping[str, Any] | None = None, *, today: date | None = None
               ) -> tuple[Run, list[str]]:
        """Validate and store a new run (queued), then start it if a slot is free.

        Raises InvalidRun (400) or RunNotFound (404, unknown or foreign site); stores nothing
        on any error. Returns the run and notes (e.g. duplicates removed).
        """
        options = dict(options or {})
        automation = self.automations.get(kind) if isinstance(kind, str) else None
        if automation is None:
            known = ", ".join(sorted(self.automations)) or "none"
            raise InvalidRun(f"unknown kind {kind!r}; known kinds: {known}")
        if not isinstance(site_id, str) or not site_id or \
                self.store.get_site(user_id, site_id) is None:
            raise RunNotFound("unknown site")
        if not isinstance(raw_items, list) or not raw_items:
            raise InvalidRun("items must be a non-empty list")
        if len(raw_items) > self.max_items:
            raise InvalidRun(f"too many items: {len(raw_items)} (at most {self.max_items})")
        try:
            prepared, notes = automation.prepare(raw_items, options, today or date.today())
        except InvalidItems as exc:
            raise InvalidRun("some items are invalid", list(exc.errors)) from exc
        notes = list(notes)
        unique: list[PreparedItem] = []
        seen: set[str] = set()
        for item in prepared:
            if item.key in seen:
                notes.append(f"duplicate removed: {item.label or item.key}")
                continue
            seen.add(item.key)
            unique.append(item)
        if not unique:
            raise InvalidRun("no usable items")
        run = self.store.create_run(
            Run(id="", user_id=user_id, kind=kind, site_id=site_id, options=options),
            [NewItem(key=p.key, input=p.input, label=p.label) for p in unique])
        self._schedule()
        return self.store.get_run(run.id) or run, notes

    def get(self, run_id: str, user_id: str | None) -> Run:
        """The run; RunNotFound when missing or (``user_id`` given) another user's."""
        run = self.store.get_run(run_id) if isinstance(run_id, str) and run_id else None
        if run is None or (user_id is not None and run.user_id != user_id):
            raise RunNotFound("run not found")
        return run

    def items(self, run_id: str) -> list[Item]:
        return self.store.list_items(run_id)

    def list_runs(self, user_id: str, limit: int = 50, offset: int = 0) -> list[Run]:
        return self.store.list_runs(user_id=user_id, limit=limit, offset=offset)

    def events(self, run_id: str, user_id: str | None, after_seq: int = 0
               ) -> list[dict[str, Any]]:
        """Stored ``automation_progress`` events after ``after_seq`` (replay)."""
        self.get(run_id, user_id)
        return self.store.list_events(run_id, after_seq=after_seq)

    def snapshot(self, user_id: str, recent: int = 10) -> list[dict[str, Any]]:
        """The user's live runs and the ``recent`` newest ones, with their items."""
        runs: dict[str, Run] = {}
        for run in self.store.list_runs(user_id=user_id, statuses=LIVE_STATES, limit=200):
            runs[run.id] = run
        for run in self.store.list_runs(user_id=user_id, limit=recent):
            runs.setdefault(run.id, run)
        ordered = sorted(runs.values(), key=lambda r: r.created_at, reverse=True)
        return [snapshot_view(r, self.store.list_items(r.id)) for r in ordered]

    # ------------------------------------------------------------------------------------------
    # Steering: every change is a compare-and-set; the loser of a race gets a 409.

    def pause(self, run_id: str, user_id: str | None) -> Run:
        """queued -> paused at once; running -> pausing (the worker stops at a checkpoint)."""
        with self._lock:
            run = self.get(run_id, user_id)
            if run.status == "queued":
                run = self._cas(run, ["queued"], "paused")
                self._announce_stop(run, "pause", "Paused before starting")
                return run
            if run.status == "running":
                return self._cas(run, ["running"], "pausing")
            raise TransitionNotAllowed(f"a {run.status} run cannot be paused", run.status)

    def resume(self, run_id: str, user_id: str | None) -> Run:
        """paused|interrupted -> queued (started when a slot frees); pausing -> running."""
        with self._lock:
            run = self.get(run_id, user_id)
            if run.status == "pausing":
                run = self._cas(run, ["pausing"], "running")
                self._reporter(run).control("automation_resumed", "Pause withdrawn; running",
                                            remaining_count(run))
                return run
            if run.status not in ("paused", "interrupted"):
                raise TransitionNotAllowed(f"a {run.status} run cannot be resumed", run.status)
            run = self._cas(run, ["paused", "interrupted"], "queued", error=None)
            self._announce_resume(run, f"Resuming: {remaining_count(run)} items left")
            self._schedule()
            return self.store.get_run(run_id) or run

    def cancel(self, run_id: str, user_id: str | None) -> Run:
        """Any live run -> cancelled; a running one stops at its worker's next checkpoint."""
        with self._lock:
            run = self.get(run_id, user_id)
            if run.status not in CANCELLABLE:
                raise TransitionNotAllowed(f"a {run.status} run cannot be cancelled", run.status)
            previous = run.status
            run = self._cas(run, [previous], "cancelled")
            if previous not in _WORKED:
                self._announce_stop(run, "cancel", "Run cancelled")
            return run

    def retry(self, run_id: str, user_id: str | None) -> Run:
        """A finished run with failed items: those items back to pending, the run queued.

        Items never finished (a cancelled run's, or those a run that failed as a whole left
        behind) are worked on too; a run that failed as a whole can be retried even with no
        failed item, else its "recoverable" error would leave the user no way on.
        """
        with self._lock:
            run = self.get(run_id, user_id)
            failed = (run.counts or {}).get("failed", 0)
            unfinished = run.status == "failed" and remaining_count(run) > 0
            if run.status not in RETRYABLE or not (failed or unfinished):
                what = "has no failed items" if run.status in RETRYABLE else f"is {run.status}"
                raise TransitionNotAllowed(f"cannot retry: the run {what}", run.status)
            run = self._cas(run, [run.status], "queued", error=None)
            for item in self.store.list_items(run_id):
                if item.status == "failed":
                    self.store.transition_item(run_id, item.position, ["failed"], "pending",
                                               error=None)
            run = self.store.get_run(run_id) or run
            message = f"Retrying {failed} failed items" if failed else \
                f"Retrying: {remaining_count(run)} items left"
            self._announce_resume(run, message)
            self._schedule()
            return self.store.get_run(run_id) or run

    def _cas(self, run: Run, expected: Iterable[str], new_status: str, **changes: Any) -> Run:
        try:
            return self.store.transition_run(run.id, list(expected), new_status, **changes)
        except ConflictError as exc:
            current = exc.current or "changed"
            raise TransitionNotAllowed(
                f"the run is {current} now; it cannot become {new_status}", exc.current) from exc
        except NotFoundError as exc:
            raise RunNotFound("run not found") from exc

    def _announce_stop(self, run: Run, reason: str, message: str) -> None:
        reporter = self._reporter(run)
        if reason == "pause":
            reporter.progress("paused", message, data={"remaining": remaining_count(run)})
            reporter.control("automation_paused", message, remaining_count(run))
        else:
            reporter.progress("cancelled", message, data={"remaining": remaining_count(run)})
            reporter.control("automation_cancelled", message, remaining_count(run))
        self._drop_reporter(run.id)

    def _announce_resume(self, run: Run, message: str) -> None:
        reporter = self._reporter(run)
        reporter.progress("resumed", message, data={"remaining": remaining_count(run)})
        reporter.control("automation_resumed", message, remaining_count(run))

    # ------------------------------------------------------------------------------------------
    # Start-up, scheduling, leases, shutdown.

    def recover(self, *, auto_resume: bool = False, single_instance: bool = True) -> list[str]:
        """Runs left running/pausing by a dead process -> interrupted; start queued runs.

        ``single_instance``: every other owner is a dead process (a new instance id per
        process). Otherwise (several instances) nothing is interrupted: another instance may be
        working on those runs, and the heartbeat's takeover sweep continues any whose lease
        expires. Returns the ids made interrupted. With ``auto_resume`` the ones that were
        running are resumed (a run that was being paused stays interrupted: its user asked it
        to stop).
        """
        if not single_instance:
            self.takeover = True
            self.start()
            return []
        now = utcnow()
        found: list[str] = []
        to_resume: list[str] = []
        for run in self.store.list_runs(statuses=_WORKED, limit=10_000):
            if run.id in self._jobs:
                continue
            lease_live = run.lease_until is not None and run.lease_until > now
            if not single_instance and lease_live and run.owner != self.instance_id:
                continue
            try:
                self.store.transition_run(
                    run.id, [run.status], "interrupted",
                    error="The server stopped while this run was working; resume it to "
                          "continue.")
            except (ConflictError, NotFoundError):
                continue
            if run.owner:
                self.store.release_lease(run.id, run.owner)
            found.append(run.id)
            if run.status == "running":
                to_resume.append(run.id)
            log.warning("run %s was %s in a dead process: now interrupted", run.id, run.status)
        if auto_resume:
            for run_id in to_resume:
                with contextlib.suppress(TransitionNotAllowed, RunNotFound):
                    self.resume(run_id, None)
        self.start()
        return found

    def start(self) -> None:
        """Start the heartbeat (lease renewal, queued-run pick-up) and any queued runs."""
        if not self.autostart:
            return
        with self._lock:
            if self._heartbeat is None and not self._shutdown.is_set():
                self._heartbeat = threading.Thread(target=self._beat, daemon=True,
                                                   name="tickzen-runner-heartbeat")
                self._heartbeat.start()
        self._schedule()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every worker at its next checkpoint; their runs become ``interrupted``."""
        self._shutdown.set()
        with self._lock:
            jobs = list(self._jobs.values())
        deadline = time.monotonic() + timeout
        for job in jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))
        if self._heartbeat is not None:
            self._heartbeat.join(max(0.0, deadline - time.monotonic()))
        for reporter in list(self._reporters.values()):
            reporter.flush()

    def join(self, run_id: str, timeout: float = 30.0) -> bool:
        """Wait for this instance's worker of ``run_id`` to exit (tests, graceful tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                job = self._jobs.get(run_id)
            if job is None:
                return True
            if job.thread is not None:
                job.thread.join(min(0.2, max(0.0, deadline - time.monotonic())))
            else:
                time.sleep(0.01)
        return run_id not in self._jobs

    @property
    def active_run_ids(self) -> list[str]:
        with self._lock:
            return list(self._jobs)

    def _schedule(self) -> None:
        """Start queued runs, oldest first, while the global and per-user caps allow."""
        if not self.autostart or self._shutdown.is_set():
            return
        with self._lock:
            if len(self._jobs) >= self.max_runs:
                return
            queued = self.store.list_runs(statuses=["queued"], limit=10_000)
            queued.sort(key=lambda r: r.created_at)
            for run in queued:
                if len(self._jobs) >= self.max_runs:
                    break
                if run.id in self._jobs:
                    continue
                mine = sum(1 for j in self._jobs.values() if j.user_id == run.user_id)
                if mine >= self.max_runs_per_user:
                    continue
                now = utcnow()
                until = now + timedelta(seconds=self.lease_seconds)
                if not self.store.acquire_lease(run.id, self.instance_id, until, now):
                    continue
                try:
                    self.store.transition_run(run.id, ["queued"], "running")
                except (ConflictError, NotFoundError):
                    self.store.release_lease(run.id, self.instance_id)
                    continue
                self._launch(run)

    def _launch(self, run: Run) -> None:
        """Start a worker thread for ``run`` (its lease is ours; caller holds the lock)."""
        job = _Job(run_id=run.id, user_id=run.user_id)
        job.thread = threading.Thread(target=self._execute, args=(job,), daemon=True,
                                      name=f"tickzen-run-{run.id[:8]}")
        self._jobs[run.id] = job
        job.thread.start()

    def take_over(self) -> list[str]:
        """Continue running/pausing runs whose owner's lease has expired (a dead instance).

        The lease is taken with the store's compare-and-set, so of several instances sweeping
        at once one wins. The new worker skips items done, and an item left ``publishing`` goes
        through the publishing service's ledger and slug look-up: nothing is published twice.
        Returns the ids taken.
        """
        if not self.autostart or self._shutdown.is_set():
            return []
        taken: list[str] = []
        for run in self.store.list_runs(statuses=_WORKED, limit=10_000):
            now = utcnow()
            if run.lease_until is not None and run.lease_until > now:
                continue
            with self._lock:
                if len(self._jobs) >= self.max_runs:
                    break
                if run.id in self._jobs:
                    continue
                until = now + timedelta(seconds=self.lease_seconds)
                try:
                    if not self.store.acquire_lease(run.id, self.instance_id, until, now):
                        continue
                except NotFoundError:
                    continue
                current = self.store.get_run(run.id)
                if current is None or current.status not in _WORKED:
                    self.store.release_lease(run.id, self.instance_id)
                    continue
                self._reporters.pop(run.id, None)   # stale: made for a control message
                log.warning("taking over run %s (%s) from %s: its lease expired at %s",
                            run.id, current.status, run.owner, run.lease_until)
                self._launch(current)
                taken.append(run.id)
        return taken

    def _beat(self) -> None:
        interval = max(0.05, self.lease_seconds / 3)
        while not self._shutdown.wait(interval):
            try:
                now = utcnow()
                until = now + timedelta(seconds=self.lease_seconds)
                with self._lock:
                    jobs = list(self._jobs.values())
                for job in jobs:
                    if not self.store.acquire_lease(job.run_id, self.instance_id, until, now):
                        job.lost = True
                if self.takeover:
                    self.take_over()
                self._schedule()
            except Exception:   # the heartbeat must outlive a store hiccup
                log.exception("runner heartbeat failed")

    # ------------------------------------------------------------------------------------------
    # The worker.

    def _reporter(self, run: Run) -> ProgressReporter:
        with self._lock:
            reporter = self._reporters.get(run.id)
            if reporter is None:
                reporter = ProgressReporter(self.store, self.emit, run,
                                            max_per_second=self.progress_max_per_second,
                                            clock=self.clock,
                                            timer_factory=self.timer_factory)
                self._reporters[run.id] = reporter
            return reporter

    def _drop_reporter(self, run_id: str) -> None:
        with self._lock:
            if run_id not in self._jobs:
                reporter = self._reporters.pop(run_id, None)
                if reporter is not None:
                    reporter.flush()

    def _execute(self, job: _Job) -> None:
        try:
            while self._work(job).again:
                pass
        except Exception as exc:
            log.exception("run %s failed outside any item", job.run_id)
            self._fail_run(job.run_id, exc)
        finally:
            try:
                self.store.release_lease(job.run_id, self.instance_id)
            except Exception:
                log.exception("releasing the lease of run %s failed", job.run_id)
            with self._lock:
                self._jobs.pop(job.run_id, None)
            self._drop_reporter(job.run_id)
            try:
                self._schedule()
            except Exception:
                log.exception("scheduling after run %s failed", job.run_id)

    def _work(self, job: _Job) -> _Outcome:
        run = self.store.get_run(job.run_id)
        if run is None or run.status not in _WORKED:
            return _Outcome()
        reporter = self._reporter(run)
        try:
            automation = self.automations.get(run.kind)
            if automation is None:
                raise _RunFailure(f"no automation for kind {run.kind!r} on this server",
                                  recoverable=False)
            items = self.store.list_items(run.id)
            total = len(items)
            todo = [i for i in items if i.status in ITEM_TODO]
            finished = total - len(todo)
            reporter.progress("initializing", f"Starting: {len(todo)} of {total} items to do",
                              percent=100 * finished / total if total else 0,
                              data={"total": total, "remaining": len(todo)})
            for item in todo:
                self._check(job, strict=True)
                self._do_item(job, run, automation, reporter, item, finished, total)
                finished += 1
            self._check(job, strict=True)
        except StopRequested as stop:
            return self._stopped(job, reporter, stop.reason)
        try:
            done = self.store.transition_run(run.id, _WORKED, "completed", percent=100)
        except ConflictError as exc:
            if exc.current == "cancelled":
                return self._stopped(job, reporter, "cancel")
            raise
        counts = done.counts or {}
        published, skipped, failed = (counts.get(s, 0) for s in ("published", "skipped",
                                                                  "failed"))
        message = f"Run complete: {published} published, {skipped} skipped, {failed} failed"
        reporter.progress("complete", message, percent=100,
                          data={"total": done.total, "published": published,
                                "skipped": skipped, "failed": failed,
                                "success": failed == 0})
        return _Outcome()

    def _check(self, job: _Job, strict: bool = False) -> None:
        """The checkpoint: raise StopRequested when the run should stop (store read at most
        every ``checkpoint_interval`` unless ``strict``)."""
        if self._shutdown.is_set():
            raise StopRequested("shutdown")
        if job.lost:
            raise StopRequested("lost")
        now = self.clock()
        if not strict and job.last_check is not None and \
                now - job.last_check < self.checkpoint_interval:
            return
        job.last_check = now
        run = self.store.get_run(job.run_id)
        status = run.status if run else "cancelled"
        if status == "cancelled":
            raise StopRequested("cancel")
        if run is not None and run.owner not in (None, self.instance_id):
            raise StopRequested("lost")         # another instance took the run over
        if status == "pausing":
            raise StopRequested("pause")
        if status != "running":
            raise StopRequested("lost")

    def _stopped(self, job: _Job, reporter: ProgressReporter, reason: str) -> _Outcome:
        reporter.flush()
        if reason == "lost":
            log.warning("run %s is no longer ours; worker stops", job.run_id)
            return _Outcome()
        if reason == "shutdown":
            with contextlib.suppress(ConflictError, NotFoundError):
                self.store.transition_run(job.run_id, _WORKED, "interrupted",
                                          error="The server shut down; resume to continue.")
            return _Outcome()
        if reason == "pause":
            try:
                run = self.store.transition_run(job.run_id, ["pausing"], "paused")
            except ConflictError as exc:
                if exc.current == "running":            # the pause was withdrawn
                    return _Outcome(again=True)
                if exc.current != "cancelled":
                    return _Outcome()
                reason = "cancel"
            else:
                message = f"Paused: {remaining_count(run)} items left"
                reporter.progress("paused", message, data={"remaining": remaining_count(run)})
                reporter.control("automation_paused", message, remaining_count(run))
                return _Outcome()
        run = self.store.get_run(job.run_id)
        if run is not None:
            reporter.progress("cancelled", "Run cancelled",
                              data={"remaining": remaining_count(run)})
            reporter.control("automation_cancelled", "Run cancelled", remaining_count(run))
        return _Outcome()

    def _do_item(self, job: _Job, run: Run, automation: Automation,
                 reporter: ProgressReporter, item: Item, finished: int, total: int) -> None:
        label = item.label or item.key
        base: dict[str, Any] = {"item": label, "index": item.position, "total": total}
        if run.kind in ("stock", "earnings"):
            base["ticker"] = label

        def run_percent(of_item: float) -> float:
            return 100 * (finished + max(0.0, min(100.0, of_item)) / 100) / total

        entry = self.publishing.already_published(run.user_id, run.site_id, item.key)
        if entry is not None:
            post = {"post_id": _str(entry.post_id), "post_url": entry.post_url}
            if entry.run_id == run.id:
                self.store.transition_item(run.id, item.position, [item.status], "published",
                                           error=None, **post)
                reporter.progress("processing", f"✓ {label} published", run_percent(100),
                                  {**base, "success": True, **post})
            else:
                self.store.transition_item(run.id, item.position, [item.status], "skipped",
                                           error=ALREADY_PUBLISHED, **post)
                reporter.progress("processing", f"{label} skipped: {ALREADY_PUBLISHED}",
                                  run_percent(100), {**base, "success": True, "skipped": True,
                                                 **post})
            return

        item = self.store.transition_item(
            run.id, item.position, ["pending", "failed", "processing", "publishing"],
            "processing", attempts=item.attempts + 1, error=None)
        reporter.progress("processing", f"Processing {label} ({item.position + 1}/{total})",
                          run_percent(0), base, force=True)
        workdir = self.workdir_root / run.id / f"{item.position:04d}-{item.key}"[:120]
        workdir.mkdir(parents=True, exist_ok=True)

        def item_progress(stage: str, message: str, percent: float | None = None,
                          data: Mapping[str, Any] | None = None) -> None:
            # The runner owns item results: an automation's own "success" is not one.
            extra = {k: v for k, v in (data or {}).items() if k != "success"}
            stage = stage if stage in ("processing", "publishing") else "processing"
            reporter.progress(stage, str(message),
                              None if percent is None else run_percent(0.9 * float(percent)),
                              {**base, **extra})

        ctx = ItemContext(run_id=run.id, user_id=run.user_id, index=item.position, total=total,
                          options=dict(run.options), workdir=workdir, progress=item_progress,
                          checkpoint=lambda: self._check(job), services=self.services)
        stage = "processing"
        try:
            article = automation.process(PreparedItem(item.key, item.input, item.label), ctx)
            self._check(job, strict=True)
            self.store.transition_item(run.id, item.position, ["processing"], "publishing")
            stage = "publishing"
            reporter.progress("publishing", f"Publishing {label}", run_percent(90), base)
            result = self.publishing.publish(run.user_id, run.site_id, article, run_id=run.id,
                                             kind=run.kind, options=dict(run.options))
        except StopRequested:
            if stage == "processing":
                with contextlib.suppress(ConflictError):
                    self.store.transition_item(run.id, item.position, ["processing"], "pending")
            raise
        except Exception as exc:
            if isinstance(exc, StoreError) and not isinstance(exc, DailyLimitReached):
                raise                                   # the store is in trouble: whole run
            message = readable(exc)
            log.warning("run %s item %s failed: %s", run.id, item.key, message,
                        exc_info=not _expected(exc))
            self.store.transition_item(run.id, item.position, ["processing", "publishing"],
                                       "failed", error=message)
            reporter.progress("error", f"✗ {label} failed: {message}", run_percent(100),
                              {**base, "success": False, "error": message})
            reporter.error("item_failed", f"{label}: {message}", recoverable=True,
                           data={**base, "error": message})
            return
        post = {"post_id": _str(result.post_id), "post_url": result.post_url}
        files = sorted(p.name for p in workdir.iterdir()) if workdir.exists() else []
        self.store.transition_item(
            run.id, item.position, ["publishing"], "published",
            result={"title": article.title, "excerpt": article.excerpt,
                    "status": result.status, "existed": result.existed,
                    "workdir": str(workdir), "files": files}, **post)
        reporter.progress("processing", f"✓ {label} published", run_percent(100),
                          {**base, "success": True, **post})

    def _fail_run(self, run_id: str, exc: BaseException) -> None:
        message = readable(exc)
        recoverable = exc.recoverable if isinstance(exc, _RunFailure) else _recoverable(exc)
        try:
            run = self.store.transition_run(run_id, _WORKED, "failed", error=message)
        except Exception:
            log.exception("marking run %s failed did not work", run_id)
            return
        try:
            reporter = self._reporter(run)
            reporter.progress("error", f"Run failed: {message}",
                              data={"success": False, "error": message})
            reporter.error("run_failed", message, recoverable=recoverable)
        except Exception:
            log.exception("reporting the failure of run %s did not work", run_id)


class _RunFailure(Exception):
    """A failure of the whole run (not of one item)."""

    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


def _expected(exc: BaseException) -> bool:
    """Failures with a readable cause need no traceback in the log."""
    from automation_scripts.base import AutomationError
    from automation_scripts.publishing import PublishError

    return isinstance(exc, (AutomationError, PublishError))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
