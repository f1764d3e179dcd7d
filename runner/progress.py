"""ProgressReporter: the one way a run talks to the outside world.

Each ``automation_progress`` event gets the run's next ``seq`` from the store (gap-free and
persisted, so a client that missed events can replay them), then goes to ``user_<id>`` only.
Intermediate ``processing`` updates are coalesced per run (not per process: one user's run must
not silence another's); stage changes, item results, errors and ``complete`` go out at once, after
the latest coalesced state. With several items in flight a stage change is an item's own (item
n publishing does not make item n+1's steps stage changes). ``percent`` never goes down within a
run: ``RunPercent`` computes it from the finished items and the in-flight items' shares, and the
reporter never sends less than it sent before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from storage.base import Run, Store, utcnow

log = logging.getLogger(__name__)

STAGES = ("initializing", "processing", "publishing", "paused", "resumed", "cancelled",
          "complete", "error")

Emit = Callable[[str, dict[str, Any], str], None]


class Timer(Protocol):
    def start(self) -> None: ...

    def cancel(self) -> None: ...


TimerFactory = Callable[[float, Callable[[], None]], Timer]


def _thread_timer(delay: float, callback: Callable[[], None]) -> Timer:
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    return timer


def user_room(user_id: str) -> str:
    """The only room anything about a user's runs is sent to."""
    return f"user_{user_id}"


def timestamp() -> str:
    """ISO-8601 UTC, as every payload carries it."""
    return utcnow().isoformat()


class ProgressReporter:
    """Numbers, stores, throttles and emits the events of one run.

    Thread-safe: the worker thread, a flush timer and request threads (pause, resume) may all
    report; a lock keeps ``append_event`` and ``emit`` in the same order, so clients see seqs
    ascending.
    """

    def __init__(self, store: Store, emit: Emit, run: Run, *, max_per_second: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 timer_factory: TimerFactory = _thread_timer) -> None:
        self.store = store
        self._emit = emit
        self.run_id = run.id
        self.kind = run.kind
        self.user_id = run.user_id
        self.room = user_room(run.user_id)
        self.min_interval = 1.0 / max_per_second if max_per_second > 0 else 0.0
        self._clock = clock
        self._timer_factory = timer_factory
        self._lock = threading.RLock()
        self._percent = max(int(run.percent or 0), _last_sent_percent(store, run))
        self._stored_percent = int(run.percent or 0)
        self._last_stage: dict[Any, str] = {}     # per item (its index); None: the run's own
        self._last_intermediate_at: float | None = None
        self._pending: dict[str, Any] | None = None
        self._timer: Timer | None = None

    @property
    def percent(self) -> int:
        return self._percent

    # -- automation_progress -------------------------------------------------------------------

    def progress(self, stage: str, message: str, percent: float | None = None,
                 data: dict[str, Any] | None = None, *, force: bool = False) -> int | None:
        """Report one step. Returns the seq when the event went out now, None when coalesced.

        Coalesced: a ``processing`` update with no item result (``data.success``) following
        another ``processing`` event, inside the throttle interval (unless ``force``).
        """
        if stage not in STAGES:
            stage = "processing"
        with self._lock:
            intermediate = (stage == "processing" and not force
                            and not (data and "success" in data)
                            and self._last_stage.get(_item_of(data)) == "processing")
            if intermediate and self.min_interval > 0:
                now = self._clock()
                last = self._last_intermediate_at
                if last is not None and now - last < self.min_interval:
                    self._pending = {"stage": stage, "message": message, "percent": percent,
                                     "data": data}
                    self._arm_timer(last + self.min_interval - now)
                    return None
                self._pending = None
                self._last_intermediate_at = now
                return self._send(stage, message, percent, data)
            self._flush_locked()
            if stage == "processing":
                self._last_intermediate_at = self._clock()
            return self._send(stage, message, percent, data)

    def flush(self) -> int | None:
        """Send the coalesced update if one is waiting (timer callback; also before stops)."""
        try:
            with self._lock:
                return self._flush_locked()
        except Exception:   # a timer thread has nobody to raise to
            log.exception("flushing progress of run %s failed", self.run_id)
            return None

    def _flush_locked(self) -> int | None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        self._last_intermediate_at = self._clock()
        return self._send(**pending)

    def _arm_timer(self, delay: float) -> None:
        if self._timer is not None:
            return
        self._timer = self._timer_factory(max(delay, 0.0), self._timer_fired)
        self._timer.start()

    def _timer_fired(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def _send(self, stage: str, message: str, percent: float | None,
              data: dict[str, Any] | None) -> int:
        event: dict[str, Any] = {"run_id": self.run_id, "kind": self.kind, "stage": stage,
                                 "message": message, "timestamp": timestamp()}
        if percent is not None:
            self._percent = max(self._percent, min(100, max(0, int(percent))))
            event["percent"] = self._percent
        if data:
            event["data"] = dict(data)
        seq = self.store.append_event(self.run_id, event)
        event["seq"] = seq
        self._last_stage[_item_of(data)] = stage
        if self._percent != self._stored_percent:
            self.store.update_run(self.run_id, percent=self._percent)
            self._stored_percent = self._percent
        self._safe_emit("automation_progress", _ordered(event))
        return seq

    # -- other events --------------------------------------------------------------------------

    def error(self, error_type: str, message: str, *, recoverable: bool,
              data: dict[str, Any] | None = None) -> None:
        """``automation_error`` to the user's room (not numbered: the matching ``error`` stage
        event is the persisted record)."""
        payload: dict[str, Any] = {"run_id": self.run_id, "error_type": error_type,
                                   "message": message, "recoverable": recoverable,
                                   "timestamp": timestamp()}
        if data:
            payload["data"] = dict(data)
        with self._lock:
            self._safe_emit("automation_error", payload)

    def control(self, event: str, message: str, remaining_count: int) -> None:
        """``automation_paused`` / ``automation_resumed`` / ``automation_cancelled``."""
        with self._lock:
            self._safe_emit(event, {"automation_id": self.run_id, "message": message,
                                    "remaining_count": remaining_count})

    def _safe_emit(self, event: str, payload: dict[str, Any]) -> None:
        try:
            self._emit(event, payload, self.room)
        except Exception:   # a broken socket layer must not fail the run; the event is stored
            log.exception("emitting %s for run %s failed", event, self.run_id)


def _last_sent_percent(store: Store, run: Run) -> int:
    """The percent of the run's newest stored events: a process killed between storing an
    event and the run's percent leaves the run's figure behind the event's."""
    if not run.last_seq:
        return 0
    events = store.list_events(run.id, after_seq=max(0, run.last_seq - 1))
    return max((int(e["percent"]) for e in events if isinstance(e.get("percent"), int)),
               default=0)


def _item_of(data: dict[str, Any] | None) -> Any:
    return data.get("index") if data else None


class RunPercent:
    """The run's percent with several items in flight: the finished items plus each in-flight
    item's share, never less than an answer given before (items finish out of order, and an
    item sent back to pending by a pause gives its share back). Thread-safe."""

    def __init__(self, total: int, finished: int) -> None:
        self._lock = threading.Lock()
        self._total = max(1, total)
        self._finished = finished
        self._shares: dict[int, float] = {}         # position -> 0..1 of that item done
        self._last = 0.0

    def at(self, position: int, of_item: float) -> float:
        """The run's percent now that item ``position`` is ``of_item`` (0..100) percent done."""
        with self._lock:
            self._shares[position] = max(0.0, min(100.0, float(of_item))) / 100
            return self._value()

    def finish(self, position: int) -> float:
        """Item ``position`` is done (published, skipped or failed): the run's percent."""
        with self._lock:
            self._shares.pop(position, None)
            self._finished += 1
            return self._value()

    def drop(self, position: int) -> None:
        """Item ``position`` goes back to pending: its share no longer counts."""
        with self._lock:
            self._shares.pop(position, None)

    def _value(self) -> float:
        done = self._finished + sum(self._shares.values())
        self._last = max(self._last, min(100.0, 100 * done / self._total))
        return self._last


def _ordered(event: dict[str, Any]) -> dict[str, Any]:
    keys = ("run_id", "kind", "seq", "stage", "message", "timestamp", "percent", "data")
    return {k: event[k] for k in keys if k in event}
