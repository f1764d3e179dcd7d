"""Where an item's article is made: in the item's own thread, or in a pool of worker processes
for a CPU-bound automation (three matplotlib charts a ticker hold the GIL, so two threads of
one process draw no faster than one, and the drawing slows the run's publishing threads).

A worker process rebuilds the automation once from its module's ``create(settings)`` (figures,
writers and clients do not pickle) and calls its ``process`` with an ItemContext of its own.
The run's lane waits for the result, polling, and in between:

- checkpoints in the parent (the run's own checkpoint, store and lease included); when that
  raises, it sets the task's stop flag in shared memory, which the child's ``ctx.checkpoint()``
  raises as the same StopRequested at the automation's next checkpoint (the lane waits for it:
  a pause waits for in-flight items to reach a checkpoint);
- forwards the child's latest ``ctx.progress(...)`` (coarse: the latest state at each poll,
  read from the task's slot in shared memory under a sequence number) to the lane's
  ``ctx.progress``, so the reporter numbers it like any other event.

Shared memory rather than a queue: a child killed while holding a queue's lock would block
every other child; a slot can only go stale. A child that dies fails its items with a
retryable error after one more try on a new pool.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields
from importlib import import_module
from typing import Any

from automation_scripts.base import (
    Article,
    Automation,
    AutomationError,
    ItemContext,
    PreparedItem,
    StopRequested,
)

log = logging.getLogger(__name__)

# Two processes keep a site's default two publishing lanes fed (an article takes ~65 ms of CPU
# to make, ~120 ms a lane to publish) and a 500-item run's process tree under 400 MB: each
# generation process costs ~90 MB of libraries (docs/benchmarks.md, Memory).
MAX_AUTO_PROCESSES = 2
SLOTS = 256                     # tasks submitted at once, across a manager's runs
SLOT_BYTES = 1024               # one progress update, as JSON
STOP_CODES = {"pause": 1, "cancel": 2, "lost": 3, "shutdown": 4}
STOP_REASONS = {code: reason for reason, code in STOP_CODES.items()}


def auto_processes(cores: int | None = None) -> int:
    """One process per core but one (the portal's own), at most two; none on one core."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(0, min(cores - 1, MAX_AUTO_PROCESSES))


def generation_processes(value: Any) -> int:
    """The ``TICKZEN_GENERATION_PROCESSES`` setting: unset -> ``auto_processes()``; 0 ->
    generation in the run's threads."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return auto_processes()
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = -1
    if count < 0 or isinstance(value, bool):
        raise ValueError("TICKZEN_GENERATION_PROCESSES must be a whole number >= 0 "
                         f"(0: generate in the run's threads), not {value!r}")
    return count


class InThread:
    """Generation in the item's own thread, one item of a run at a time (an automation's
    figures and clients are not shared between a run's items)."""

    slots = 1

    def process(self, automation: Automation, item: PreparedItem, ctx: ItemContext) -> Article:
        return automation.process(item, ctx)


IN_THREAD = InThread()


# ItemContext fields a worker process makes its own; every other one is plain data, copied.
_OWN_FIELDS = ("progress", "checkpoint", "services")


@dataclass(frozen=True)
class GenerationTask:
    """What a worker process needs to make one item's article (all of it pickles)."""

    module: str
    kind: str
    slot: int
    item: PreparedItem
    context: dict[str, Any]                 # the ItemContext's plain fields (run, site ...)

    @classmethod
    def of(cls, automation: Automation, slot: int, item: PreparedItem, ctx: ItemContext
           ) -> GenerationTask:
        context = {f.name: getattr(ctx, f.name) for f in fields(ctx)
                   if f.name not in _OWN_FIELDS}
        context["options"] = dict(context.get("options") or {})
        return cls(type(automation).__module__, automation.kind, slot, item, context)


@dataclass
class _Shared:
    """The pool's shared memory: a stop flag, a progress sequence number and a progress
    buffer per slot."""

    flags: Any
    seqs: Any
    buffer: Any

    def read_progress(self, slot: int, seen: int) -> tuple[int, Any]:
        """(seq, update) of the slot's latest progress; update None when nothing new."""
        for _ in range(3):
            before = self.seqs[slot]
            if before == seen or before % 2:
                return seen, None
            raw = bytes(self.buffer[slot * SLOT_BYTES:(slot + 1) * SLOT_BYTES])
            if self.seqs[slot] == before:
                with contextlib.suppress(ValueError):
                    return before, json.loads(raw.rstrip(b"\0") or b"null")
                return before, None
        return seen, None

    def write_progress(self, slot: int, update: Any) -> None:
        raw = json.dumps(update, default=str).encode()
        if len(raw) > SLOT_BYTES:
            update = {**update, "data": None, "message": str(update.get("message"))[:300]}
            raw = json.dumps(update, default=str).encode()[:SLOT_BYTES]
        self.seqs[slot] += 1                         # odd: being written
        start = slot * SLOT_BYTES
        self.buffer[start:start + SLOT_BYTES] = raw.ljust(SLOT_BYTES, b"\0")
        self.seqs[slot] += 1


@dataclass
class _Child:
    """A worker process's own state, set up once by ``_init_child``."""

    shared: _Shared
    settings: dict[str, Any]
    automations: dict[tuple[str, str], Automation] = field(default_factory=dict)

    def automation(self, module: str, kind: str) -> Automation:
        key = (module, kind)
        if key not in self.automations:
            made = import_module(module).create(self.settings)
            for automation in made if isinstance(made, (list, tuple)) else [made]:
                self.automations[(module, automation.kind)] = automation
        return self.automations[key]


_child: _Child | None = None                # set only inside pool processes


def _init_child(flags: Any, seqs: Any, buffer: Any, settings: dict[str, Any]) -> None:
    global _child
    _child = _Child(_Shared(flags, seqs, buffer), settings)


def _generate(task: GenerationTask) -> Article:
    """A worker process's task: the automation's ``process`` for one item."""
    child = _child
    assert child is not None, "not a generation process"
    shared, slot = child.shared, task.slot

    def checkpoint() -> None:
        code = shared.flags[slot]
        if code:
            raise StopRequested(STOP_REASONS.get(code, "lost"))

    def progress(stage: str, message: str, percent: float | None = None,
                 data: Mapping[str, Any] | None = None) -> None:
        shared.write_progress(slot, {"stage": stage, "message": str(message),
                                     "percent": percent, "data": dict(data or {})})

    ctx = ItemContext(**task.context, progress=progress, checkpoint=checkpoint)
    try:
        return child.automation(task.module, task.kind).process(task.item, ctx)
    except StopRequested:
        raise
    except Exception as exc:
        raise _portable(exc) from None


def _portable(exc: Exception) -> Exception:
    """The exception itself when it survives pickling, else a readable AutomationError."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return AutomationError(f"{type(exc).__name__}: {exc}")
    return exc


@dataclass
class _Task:
    slot: int
    future: Future[Article]
    seen: int = 0                   # the last progress sequence number forwarded


class GenerationPool:
    """Worker processes that make the articles of CPU-bound automations, shared by a manager's
    runs; started on first use, rebuilt when a process dies."""

    def __init__(self, processes: int, settings: Mapping[str, Any] | None = None, *,
                 poll: float = 0.05) -> None:
        self.processes = max(0, int(processes))
        self.settings = dict(settings or {})
        self.poll = poll
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._shared: _Shared | None = None
        self._free = list(range(SLOTS - 1, -1, -1))
        self._closed = False
        self._starts = itertools.count(1)

    @property
    def slots(self) -> int:
        """How many of one run's items may generate at once."""
        return max(1, self.processes)

    def accepts(self, automation: Automation, services: Mapping[str, Any] | None) -> bool:
        """Whether this automation's items go to the pool: it says it is CPU-bound, its module
        can rebuild it, and the run hands it no services (injected objects, e.g. a test's
        price provider, stay in the run's process)."""
        if self.processes <= 0 or self._closed or not getattr(automation, "cpu_bound", False):
            return False
        if services:
            return False
        module = sys.modules.get(type(automation).__module__)
        return callable(getattr(module, "create", None))

    def process(self, automation: Automation, item: PreparedItem, ctx: ItemContext) -> Article:
        """The article of ``item``, made in a worker process (see the module docstring)."""
        for attempt in (1, 2):
            try:
                executor, slot, seen = self._take_slot()
            except _NoSlot:
                return automation.process(item, ctx)
            try:
                try:
                    future = executor.submit(_generate,
                                             GenerationTask.of(automation, slot, item, ctx))
                except BaseException:
                    self._release(slot)
                    raise
                return self._wait(_Task(slot, future, seen), ctx)
            except BrokenProcessPool:
                log.warning("a generation process died while making %s (attempt %d)",
                            item.key, attempt)
                self._replace(executor)
        raise AutomationError("the generation process ended unexpectedly (out of memory?); "
                              "retry the item")

    def close(self, wait: bool = True) -> None:
        """Stop the worker processes (``wait``: after their current tasks)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------------------------------

    def _take_slot(self) -> tuple[ProcessPoolExecutor, int, int]:
        """The running executor, a free slot (its flag cleared) and the slot's current
        progress sequence number."""
        with self._lock:
            if self._closed:
                raise StopRequested("shutdown")
            executor, shared = self._running()
            if not self._free:
                raise _NoSlot
            slot = self._free.pop()
            shared.flags[slot] = 0
            if shared.seqs[slot] % 2:             # a process died writing it
                shared.seqs[slot] += 1
            return executor, slot, shared.seqs[slot]

    def _running(self) -> tuple[ProcessPoolExecutor, _Shared]:
        """The executor, started on first use (caller holds the lock)."""
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            # The fork server imports the main module and this one, so its children do not;
            # each worker process imports the automation's module itself (the idle fork
            # server does not keep a copy of matplotlib and pandas).
            context.set_forkserver_preload(["__main__", __name__])
            if self._shared is None:
                self._shared = _Shared(context.RawArray("b", SLOTS),
                                       context.RawArray("Q", SLOTS),
                                       context.RawArray("c", SLOTS * SLOT_BYTES))
            shared = self._shared
            self._executor = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=_init_child,
                initargs=(shared.flags, shared.seqs, shared.buffer, self.settings))
            log.info("generation pool started (%d processes, start %d)", self.processes,
                     next(self._starts))
        assert self._shared is not None
        return self._executor, self._shared

    def _wait(self, task: _Task, ctx: ItemContext) -> Article:
        shared = self._shared
        assert shared is not None
        stopping = False
        try:
            while True:
                try:
                    return task.future.result(timeout=self.poll)
                except FuturesTimeout:
                    pass
                task.seen, update = shared.read_progress(task.slot, task.seen)
                if isinstance(update, dict):
                    ctx.progress(str(update.get("stage") or "processing"),
                                 str(update.get("message") or ""), update.get("percent"),
                                 update.get("data") or None)
                if stopping:
                    continue
                try:
                    ctx.checkpoint()
                except StopRequested as stop:
                    if task.future.cancel():
                        raise
                    stopping = True
                    shared.flags[task.slot] = STOP_CODES.get(stop.reason, STOP_CODES["lost"])
        finally:
            if task.future.done():
                self._release(task.slot)
            else:               # the lane gives up (its reporter failed): stop the child
                shared.flags[task.slot] = STOP_CODES["lost"]
                task.future.add_done_callback(lambda _f: self._release(task.slot))

    def _release(self, slot: int) -> None:
        with self._lock:
            if self._shared is not None:
                self._shared.flags[slot] = 0
            self._free.append(slot)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Drop a broken executor (once, whichever lane sees it first): the next task starts
        a new one."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)


class _NoSlot(Exception):
    """Every slot is taken: the item is made in its own thread instead."""
