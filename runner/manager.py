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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from automation_scripts.base import Automation, InvalidItems, PreparedItem
from automation_scripts.publishing import POST_STATUSES
from runner.errors import InvalidRun, RunNotFound, TransitionNotAllowed
from runner.generation import GenerationPool
from runner.notifications import Notices
from runner.progress import Emit, ProgressReporter, TimerFactory, _thread_timer
from runner.publishing import MODES
from runner.views import remaining_count
from runner.workdirs import Workdirs
from runner.worker import WORKED, RunWorker, WorkerSettings
from storage.base import (
    ConflictError,
    Item,
    NewItem,
    NotFoundError,
    Run,
    Store,
    utcnow,
)

log = logging.getLogger(__name__)

LIVE_STATES = ("queued", "running", "pausing", "paused", "interrupted")   # shown as "active"
CANCELLABLE = ("queued", "running", "pausing", "paused", "interrupted")
RETRYABLE = ("completed", "failed", "cancelled")


class RunManager:
    """Start, pause, resume, cancel, retry and recover runs; one thread per running run."""

    def __init__(self, store: Store, emit: Emit, automations: MutableMapping[str, Automation],
                 publishing: Any, *, instance_id: str | None = None, max_runs: int = 8,
                 max_runs_per_user: int = 2, workdir_root: str | Path,
                 progress_max_per_second: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, max_items: int = 500,
                 lease_seconds: float = 30.0, checkpoint_interval: float = 0.1,
                 autostart: bool = True, timer_factory: TimerFactory = _thread_timer,
                 services: Mapping[str, Any] | None = None, takeover: bool = False,
                 generation_processes: int = 0, notices: Notices | None = None,
                 automation_settings: Mapping[str, Any] | None = None) -> None:
        self.store = store
        self.emit = emit
        self.automations = automations
        self.publishing = publishing
        self.instance_id = instance_id or f"instance-{uuid.uuid4().hex}"
        self.max_runs = max(1, int(max_runs))
        self.max_runs_per_user = max(1, int(max_runs_per_user))
        self.workdirs = Workdirs(workdir_root)
        self.progress_max_per_second = progress_max_per_second
        self.clock = clock
        self.max_items = max_items
        self.lease_seconds = lease_seconds
        self.checkpoint_interval = checkpoint_interval
        self.autostart = autostart
        self.timer_factory = timer_factory
        self.services = dict(services or {})
        self.notices = notices or Notices(None)     # the outbox events of run transitions
        # Worker processes that make CPU-bound automations' articles (0: in the run's threads),
        # started by the first item that needs them.
        # ``automation_settings``: what each process's ``create(settings)`` is handed.
        self.generation = GenerationPool(generation_processes, automation_settings) \
            if generation_processes > 0 else None
        # Several instances: the heartbeat also continues runs whose owner's lease expired.
        self.takeover = takeover
        self._lock = threading.RLock()
        self._workers: dict[str, RunWorker] = {}
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
        unique, notes = self.prepare(user_id, kind, site_id, raw_items, options, today=today)
        run = self.store.create_run(
            Run(id="", user_id=user_id, kind=kind, site_id=site_id, options=options),
            [NewItem(key=p.key, input=p.input, label=p.label) for p in unique])
        self._schedule()
        return self.store.get_run(run.id) or run, notes

    def check(self, user_id: str, kind: Any, site_id: Any, options: Mapping[str, Any]
              ) -> Automation:
        """What every submission must pass before its items are looked at: a known kind, the
        user's own site, a valid post status. Returns the kind's automation."""
        automation = self.automations.get(kind) if isinstance(kind, str) else None
        if automation is None:
            known = ", ".join(sorted(self.automations)) or "none"
            raise InvalidRun(f"unknown kind {kind!r}; known kinds: {known}")
        if not isinstance(site_id, str) or not site_id or \
                self.store.get_site(user_id, site_id) is None:
            raise RunNotFound("unknown site")
        _check_status(options.get("status"))
        _check_mode(options.get("mode"))
        return automation

    def prepare(self, user_id: str, kind: str, site_id: str, raw_items: Any,
                options: Mapping[str, Any], *, today: date | None = None
                ) -> tuple[list[PreparedItem], list[str]]:
        """Everything ``submit`` checks, storing nothing (campaigns check their runs with it):
        the items prepared by the kind's automation, duplicates removed, and the notes."""
        automation = self.check(user_id, kind, site_id, options)
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
        return unique, notes

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

    def snapshot(self, user_id: str, recent: int = 10) -> list[tuple[Run, list[Item]]]:
        """The user's live runs and the ``recent`` newest ones, newest first, with their items
        (the portal turns them into the ``automation_snapshot`` it sends on connect)."""
        runs: dict[str, Run] = {}
        for run in self.store.list_runs(user_id=user_id, statuses=LIVE_STATES, limit=200):
            runs[run.id] = run
        for run in self.store.list_runs(user_id=user_id, limit=recent):
            runs.setdefault(run.id, run)
        ordered = sorted(runs.values(), key=lambda r: r.created_at, reverse=True)
        return [(r, self.store.list_items(r.id)) for r in ordered]

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
            run = self._cas(run, [previous], "cancelled",
                            outbox=self.notices.run_finished(run.id, "cancelled"))
            if previous not in WORKED:
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
        running are resumed, a campaign's always (a run that was being paused stays
        interrupted: its user asked it to stop).
        """
        if not single_instance:
            self.takeover = True
            self.start()
            return []
        now = utcnow()
        found: list[str] = []
        to_resume: list[str] = []
        for run in self.store.list_runs(statuses=WORKED, limit=10_000):
            if run.id in self._workers:
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
            if run.status == "running" and (auto_resume or run.campaign_id):
                to_resume.append(run.id)    # nobody watches a campaign's runs: they go on
            log.warning("run %s was %s in a dead process: now interrupted", run.id, run.status)
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
            workers = list(self._workers.values())
        deadline = time.monotonic() + timeout
        for worker in workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        if self._heartbeat is not None:
            self._heartbeat.join(max(0.0, deadline - time.monotonic()))
        if self.generation is not None:
            self.generation.close(wait=not any(w.thread is not None and w.thread.is_alive()
                                               for w in workers))
        for reporter in list(self._reporters.values()):
            reporter.flush()

    def join(self, run_id: str, timeout: float = 30.0) -> bool:
        """Wait for this instance's worker of ``run_id`` to exit (tests, graceful tools)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                worker = self._workers.get(run_id)
            if worker is None:
                return True
            if worker.thread is not None:
                worker.thread.join(min(0.2, max(0.0, deadline - time.monotonic())))
            else:
                time.sleep(0.01)
        return run_id not in self._workers

    @property
    def active_run_ids(self) -> list[str]:
        with self._lock:
            return list(self._workers)

    def wake(self) -> None:
        """Start queued runs now (a campaign's fire just stored one) instead of at the next
        heartbeat."""
        self._schedule()

    def _schedule(self) -> None:
        """Start queued runs, oldest first, while the global and per-user caps allow."""
        if not self.autostart or self._shutdown.is_set():
            return
        with self._lock:
            if len(self._workers) >= self.max_runs:
                return
            queued = self.store.list_runs(statuses=["queued"], limit=10_000)
            queued.sort(key=lambda r: r.created_at)
            for run in queued:
                if len(self._workers) >= self.max_runs:
                    break
                if run.id in self._workers:
                    continue
                mine = sum(1 for w in self._workers.values() if w.user_id == run.user_id)
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
        settings = WorkerSettings(instance_id=self.instance_id, workdirs=self.workdirs,
                                  checkpoint_interval=self.checkpoint_interval,
                                  clock=self.clock, services=self.services,
                                  generation=self.generation, notices=self.notices)
        worker = RunWorker(run, self.automations.get(run.kind), store=self.store,
                           publishing=self.publishing, reporter_for=self._reporter,
                           settings=settings, shutdown=self._shutdown,
                           on_done=self._worker_done)
        self._workers[run.id] = worker
        worker.start()

    def _worker_done(self, run_id: str) -> None:
        """A worker's thread ends (its lease already released): free its slot, start more."""
        with self._lock:
            self._workers.pop(run_id, None)
        self._drop_reporter(run_id)
        try:
            self._schedule()
        except Exception:
            log.exception("scheduling after run %s failed", run_id)

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
        for run in self.store.list_runs(statuses=WORKED, limit=10_000):
            now = utcnow()
            if run.lease_until is not None and run.lease_until > now:
                continue
            with self._lock:
                if len(self._workers) >= self.max_runs:
                    break
                if run.id in self._workers:
                    continue
                until = now + timedelta(seconds=self.lease_seconds)
                try:
                    if not self.store.acquire_lease(run.id, self.instance_id, until, now):
                        continue
                except NotFoundError:
                    continue
                current = self.store.get_run(run.id)
                if current is None or current.status not in WORKED:
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
                    workers = list(self._workers.values())
                for worker in workers:
                    if not self.store.acquire_lease(worker.run_id, self.instance_id, until, now):
                        worker.lost = True
                if self.takeover:
                    self.take_over()
                self._schedule()
            except Exception:   # the heartbeat must outlive a store hiccup
                log.exception("runner heartbeat failed")

    # ------------------------------------------------------------------------------------------
    # Reporters: one per run, shared by its worker and the steering calls (one seq order).

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
            if run_id not in self._workers:
                reporter = self._reporters.pop(run_id, None)
                if reporter is not None:
                    reporter.flush()


def _check_status(status: Any) -> None:
    """A run's ``status`` option (the post status) is checked at submit, not per item: a bad
    one would fail every item. Absent or empty means the site's default."""
    if status in (None, "") or (isinstance(status, str) and status in POST_STATUSES):
        return
    raise InvalidRun(f"options.status must be one of {', '.join(POST_STATUSES)}, "
                     f"not {status!r}")


def _check_mode(mode: Any) -> None:
    """``options.mode``: ``create`` (the default: a new post per item) or ``update`` (one post
    per ticker and site, updated by every run)."""
    if mode in (None, "") or (isinstance(mode, str) and mode in MODES):
        return
    raise InvalidRun(f"options.mode must be one of {', '.join(MODES)}, not {mode!r}")
