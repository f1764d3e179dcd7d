"""RunWorker: one run's thread. Its items, several in flight (runner/pipeline.py), a checkpoint
between items and steps, results.

The worker is handed everything it touches (the store, a reporter per run, the publishing
service, the automation, this instance's id, the manager's shutdown event and generation pool)
and reports back only through ``on_done(run_id)`` when its thread ends: it never steers the
manager. Every state it writes is a compare-and-set in the store, so a pause, cancel or takeover
from another thread or instance wins or loses cleanly. Run transitions happen on the run's own
thread, after every item in flight has settled; the item steps run on the items' lanes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automation_scripts.base import (
    Article,
    Automation,
    AutomationError,
    ItemContext,
    PreparedItem,
    StopRequested,
)
from automation_scripts.publishing import PublishError, PublishResult
from runner.generation import IN_THREAD, GenerationPool
from runner.links import SiteLinks
from runner.notifications import Notices
from runner.pipeline import ItemPipeline, Lane, publishing_slots
from runner.progress import ProgressReporter, RunPercent
from runner.publishing import run_mode
from runner.views import remaining_count
from runner.workdirs import Workdirs
from storage.base import (
    ITEM_TODO,
    ConflictError,
    DailyLimitReached,
    Item,
    NotFoundError,
    Run,
    Store,
    StoreError,
)

log = logging.getLogger(__name__)

WORKED = ("running", "pausing")            # a worker thread owns the run and emits its stops
ALREADY_PUBLISHED = "already published on this site"

ReporterFor = Callable[[Run], ProgressReporter]


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


def _expected(exc: BaseException) -> bool:
    """Failures with a readable cause need no traceback in the log."""
    return isinstance(exc, (AutomationError, PublishError))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class _RunFailure(Exception):
    """A failure of the whole run (not of one item)."""

    def __init__(self, message: str, *, recoverable: bool) -> None:
        super().__init__(message)
        self.recoverable = recoverable


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker of one manager shares."""

    instance_id: str                        # the lease owner this process writes
    workdirs: Workdirs
    checkpoint_interval: float = 0.1        # seconds between store reads at a checkpoint
    clock: Callable[[], float] = time.monotonic
    services: Mapping[str, Any] = field(default_factory=dict)   # handed to each ItemContext
    notices: Notices = field(default_factory=lambda: Notices(None))   # events of transitions
    generation: GenerationPool | None = None   # worker processes for CPU-bound automations


@dataclass
class _Outcome:
    again: bool = False                     # a pause was withdrawn: keep working


@dataclass
class _Turn:
    """One item on its way through its lane: what its events carry, where its percent lies."""

    run: Run
    item: Item
    label: str
    base: dict[str, Any]
    total: int
    lane: Lane
    share: RunPercent                       # the run's percent, all items in flight

    def percent(self, of_item: float) -> float:
        """The run's percent now that this item is ``of_item`` percent done."""
        return self.share.at(self.item.position, of_item)

    def finished(self) -> float:
        """The run's percent now that this item is done."""
        return self.share.finish(self.item.position)


class RunWorker:
    """Works one run whose lease this instance holds, until it ends, stops or is lost."""

    def __init__(self, run: Run, automation: Automation | None, *, store: Store,
                 publishing: Any, reporter_for: ReporterFor, settings: WorkerSettings,
                 shutdown: threading.Event,
                 on_done: Callable[[str], None] | None = None) -> None:
        self.run_id = run.id
        self.user_id = run.user_id
        self.kind = run.kind
        self.automation = automation
        self.store = store
        self.publishing = publishing
        self.reporter_for = reporter_for
        self.settings = settings
        self.shutdown = shutdown
        self.on_done = on_done
        self.thread: threading.Thread | None = None
        self.last_check: float | None = None
        self.lost = False                   # the lease went to another instance
        self.site_links = SiteLinks(None, publishing, store=store)   # set per run in _work

    def start(self) -> None:
        """Run ``work`` on a daemon thread."""
        self.thread = threading.Thread(target=self.work, daemon=True,
                                       name=f"tickzen-run-{self.run_id[:8]}")
        self.thread.start()

    def work(self) -> None:
        """The thread body: the item loop (again while a pause is withdrawn), then let go of
        the lease and tell ``on_done``."""
        try:
            while self._work().again:
                pass
        except Exception as exc:
            log.exception("run %s failed outside any item", self.run_id)
            self._fail_run(exc)
        finally:
            try:
                self.store.release_lease(self.run_id, self.settings.instance_id)
            except Exception:
                log.exception("releasing the lease of run %s failed", self.run_id)
            if self.on_done is not None:
                self.on_done(self.run_id)

    # ------------------------------------------------------------------------------------------
    # The run.

    def _work(self) -> _Outcome:
        run = self.store.get_run(self.run_id)
        if run is None or run.status not in WORKED:
            return _Outcome()
        reporter = self.reporter_for(run)
        try:
            automation = self.automation
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
            generator = self._generator(automation)
            site = self.store.get_site(run.user_id, run.site_id)
            # The site as the automation sees it (its words, its internal links), per run.
            self.site_links = SiteLinks(site, self.publishing, store=self.store,
                                        category=getattr(automation, "link_category", None),
                                        topic=getattr(automation, "link_topic", None))
            pipeline = ItemPipeline(
                check=self.check, generating=generator.slots,
                publishing=publishing_slots(site),
                poll=self.settings.checkpoint_interval, name=self.run_id[:8])
            share = RunPercent(total, finished)
            pipeline.run(todo, lambda lane: self._do_item(
                run, automation, generator, reporter, lane, share, total))
            self.check(strict=True)
        except StopRequested as stop:
            return self._stopped(reporter, stop.reason)
        try:
            done = self.store.transition_run(
                run.id, WORKED, "completed", percent=100,
                outbox=self.settings.notices.run_finished(run.id, "completed"))
        except ConflictError as exc:
            if exc.current == "cancelled":
                return self._stopped(reporter, "cancel")
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

    def _generator(self, automation: Automation) -> GenerationPool | Any:
        """Where this run's articles are made: the generation pool for a CPU-bound automation
        it accepts, else the item's own thread."""
        pool = self.settings.generation
        if pool is not None and pool.accepts(automation, self.settings.services):
            return pool
        return IN_THREAD

    def check(self, strict: bool = False) -> None:
        """The checkpoint: raise StopRequested when the run should stop (store read at most
        every ``checkpoint_interval`` unless ``strict``)."""
        if self.shutdown.is_set():
            raise StopRequested("shutdown")
        if self.lost:
            raise StopRequested("lost")
        now = self.settings.clock()
        if not strict and self.last_check is not None and \
                now - self.last_check < self.settings.checkpoint_interval:
            return
        self.last_check = now
        run = self.store.get_run(self.run_id)
        status = run.status if run else "cancelled"
        if status == "cancelled":
            raise StopRequested("cancel")
        if run is not None and run.owner not in (None, self.settings.instance_id):
            raise StopRequested("lost")         # another instance took the run over
        if status == "pausing":
            raise StopRequested("pause")
        if status != "running":
            raise StopRequested("lost")

    def _stopped(self, reporter: ProgressReporter, reason: str) -> _Outcome:
        reporter.flush()
        if reason == "lost":
            log.warning("run %s is no longer ours; worker stops", self.run_id)
            return _Outcome()
        if reason == "shutdown":
            with contextlib.suppress(ConflictError, NotFoundError):
                self.store.transition_run(self.run_id, WORKED, "interrupted",
                                          error="The server shut down; resume to continue.")
            return _Outcome()
        if reason == "pause":
            try:
                run = self.store.transition_run(self.run_id, ["pausing"], "paused")
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
        run = self.store.get_run(self.run_id)
        if run is not None:
            reporter.progress("cancelled", "Run cancelled",
                              data={"remaining": remaining_count(run)})
            reporter.control("automation_cancelled", "Run cancelled", remaining_count(run))
        return _Outcome()

    def _fail_run(self, exc: BaseException) -> None:
        message = readable(exc)
        recoverable = exc.recoverable if isinstance(exc, _RunFailure) else _recoverable(exc)
        try:
            run = self.store.transition_run(
                self.run_id, WORKED, "failed", error=message,
                outbox=self.settings.notices.run_finished(self.run_id, "failed", error=message))
        except Exception:
            log.exception("marking run %s failed did not work", self.run_id)
            return
        try:
            reporter = self.reporter_for(run)
            reporter.progress("error", f"Run failed: {message}",
                              data={"success": False, "error": message})
            reporter.error("run_failed", message, recoverable=recoverable)
        except Exception:
            log.exception("reporting the failure of run %s did not work", self.run_id)

    # ------------------------------------------------------------------------------------------
    # One item: skip it when published, start it, process, publish, record the result.

    def _do_item(self, run: Run, automation: Automation, generator: Any,
                 reporter: ProgressReporter, lane: Lane, share: RunPercent, total: int) -> None:
        """One item on its lane: generate, wait for a turn at the site, publish, record."""
        item = lane.item
        label = item.label or item.key
        base: dict[str, Any] = {"item": label, "index": item.position, "total": total}
        label_field = getattr(automation, "label_field", None)
        if label_field:
            base[label_field] = label
        turn = _Turn(run, item, label, base, total, lane, share)
        if self._skip_if_published(turn, reporter):
            return
        workdir = self._start_item(turn, reporter)
        stage = "processing"
        try:
            article = self._process(turn, automation, generator, reporter, workdir)
            with lane.publishing():             # the next item may generate from here on
                lane.check(strict=True)
                self.store.transition_item(run.id, item.position, ["processing"],
                                           "publishing")
                stage = "publishing"
                result = self._publish(turn, reporter, article)
        except StopRequested:
            share.drop(item.position)
            if stage == "processing":
                with contextlib.suppress(ConflictError):
                    self.store.transition_item(run.id, item.position, ["processing"], "pending")
            raise
        except Exception as exc:
            if isinstance(exc, StoreError) and not isinstance(exc, DailyLimitReached):
                raise                                   # the store is in trouble: whole run
            self._record_failure(turn, reporter, exc)
            return
        self._record_published(turn, automation, reporter, article, result, workdir)

    def _skip_if_published(self, turn: _Turn, reporter: ProgressReporter) -> bool:
        """An item whose slug the site's ledger already holds is not made again: published
        when this run made it (a crash after publishing), else skipped."""
        run, item = turn.run, turn.item
        entry = self.publishing.already_published(run.user_id, run.site_id, item.key,
                                                  run_id=run.id, mode=run_mode(run.options))
        if entry is None:
            return False
        post = {"post_id": _str(entry.post_id), "post_url": entry.post_url}
        if entry.run_id == run.id:
            self.store.transition_item(run.id, item.position, [item.status], "published",
                                       error=None, **post)
            reporter.progress("processing", f"✓ {turn.label} published", turn.finished(),
                              {**turn.base, "success": True, **post})
        else:
            self.store.transition_item(run.id, item.position, [item.status], "skipped",
                                       error=ALREADY_PUBLISHED, **post)
            reporter.progress("processing", f"{turn.label} skipped: {ALREADY_PUBLISHED}",
                              turn.finished(), {**turn.base, "success": True,
                                                "skipped": True, **post})
        return True

    def _start_item(self, turn: _Turn, reporter: ProgressReporter) -> Path:
        """The item becomes ``processing`` (one more attempt); returns its fresh workdir."""
        run, item = turn.run, turn.item
        turn.item = item = self.store.transition_item(
            run.id, item.position, ["pending", "failed", "processing", "publishing"],
            "processing", attempts=item.attempts + 1, error=None)
        reporter.progress("processing",
                          f"Processing {turn.label} ({item.position + 1}/{turn.total})",
                          turn.percent(0), turn.base, force=True)
        workdir = self.settings.workdirs.for_item(run.id, item.position, item.key)
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def _process(self, turn: _Turn, automation: Automation, generator: Any,
                 reporter: ProgressReporter, workdir: Path) -> Article:
        """The automation makes the article (in this thread or a generation process); its
        progress maps into the first 90 % of the item's share of the run."""
        run, item = turn.run, turn.item

        def item_progress(stage: str, message: str, percent: float | None = None,
                          data: Mapping[str, Any] | None = None) -> None:
            # The runner owns item results: an automation's own "success" is not one.
            extra = {k: v for k, v in (data or {}).items() if k != "success"}
            stage = stage if stage in ("processing", "publishing") else "processing"
            reporter.progress(stage, str(message),
                              None if percent is None else turn.percent(0.9 * float(percent)),
                              {**turn.base, **extra})

        prepared = PreparedItem(item.key, item.input, item.label)
        ctx = ItemContext(run_id=run.id, user_id=run.user_id, index=item.position,
                          total=turn.total, options=dict(run.options), workdir=workdir,
                          progress=item_progress, checkpoint=turn.lane.check,
                          services=self.settings.services,
                          site=self.site_links.context_for(prepared))
        return generator.process(automation, prepared, ctx)

    def _publish(self, turn: _Turn, reporter: ProgressReporter, article: Article
                 ) -> PublishResult:
        run = turn.run
        reporter.progress("publishing", f"Publishing {turn.label}", turn.percent(90), turn.base)
        return self.publishing.publish(run.user_id, run.site_id, article, run_id=run.id,
                                       kind=run.kind, options=dict(run.options))

    def _record_published(self, turn: _Turn, automation: Automation,
                          reporter: ProgressReporter, article: Article, result: PublishResult,
                          workdir: Path) -> None:
        """The item becomes ``published`` with what the portal shows of it: title, status,
        its workdir and files, and its report file when the automation left one."""
        run, item = turn.run, turn.item
        post = {"post_id": _str(result.post_id), "post_url": result.post_url}
        files = sorted(p.name for p in workdir.iterdir()) if workdir.exists() else []
        recorded: dict[str, Any] = {
            "title": article.title, "excerpt": article.excerpt, "status": result.status,
            "existed": result.existed, "workdir": str(workdir), "files": files,
            "updated": result.updated, "writer": article.writer,
            "writer_note": article.writer_note}
        report_file = getattr(automation, "report_file", None)
        if report_file and (workdir / report_file).is_file():
            recorded["report"] = report_file
        self.store.transition_item(run.id, item.position, ["publishing"], "published",
                                   result=recorded, **post)
        reporter.progress("processing", f"✓ {turn.label} published", turn.finished(),
                          {**turn.base, "success": True, **post, "writer": article.writer,
                           "writer_note": article.writer_note})

    def _record_failure(self, turn: _Turn, reporter: ProgressReporter,
                        exc: Exception) -> None:
        """The item becomes ``failed`` with a readable error; the run goes on."""
        run, item = turn.run, turn.item
        message = readable(exc)
        log.warning("run %s item %s failed: %s", run.id, item.key, message,
                    exc_info=not _expected(exc))
        self.store.transition_item(run.id, item.position, ["processing", "publishing"],
                                   "failed", error=message,
                                   outbox=self.settings.notices.item_failed(run.id, exc))
        reporter.progress("error", f"✗ {turn.label} failed: {message}", turn.finished(),
                          {**turn.base, "success": False, "error": message})
        reporter.error("item_failed", f"{turn.label}: {message}", recoverable=True,
                       data={**turn.base, "error": message})
