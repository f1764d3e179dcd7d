"""ItemPipeline: a run's items with several in flight, generation overlapping publishing.

Item n+1 is generated while item n publishes: each item goes through its own lane (a thread of
the run) doing the worker's item steps, and two kinds of slots keep the run within bounds. At
most ``generating`` items make their article at once (one in the run's thread; the generation
pool's processes for a CPU-bound automation), and at most ``publishing`` items talk to the site
at once (the site's ``concurrency``). Lanes are handed out in the run's item order, and the
site's slots are served in arrival order, so one slot means publishing in item order.

Stops (pause, cancel, a lost lease, shutdown) are latched: once any checkpoint of the run has
seen one, every lane stops at its next checkpoint, and ``run`` returns only after every lane
has settled (an item stopped while generating or waiting for the site goes back to pending; an
item already publishing finishes). A failure of the whole run (the store in trouble) halts the
other lanes the same way and is raised once they have settled.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from automation_scripts.base import StopRequested
from storage.base import Item, Site

DEFAULT_CONCURRENCY = 2
MAX_CONCURRENCY = 8
HALTED = "lost"                 # the reason lanes see when the run failed as a whole

Check = Callable[..., None]     # check(strict=False): raises StopRequested


def publishing_slots(site: Site | None) -> int:
    """How many items may publish to ``site`` at once: its ``concurrency`` (default 2, at most
    8) for WordPress; one for the local archive, whose writes take milliseconds."""
    if site is None or site.kind != "wordpress":
        return 1
    value = (site.defaults or {}).get("concurrency", DEFAULT_CONCURRENCY)
    try:
        return max(1, min(MAX_CONCURRENCY, int(value)))
    except (TypeError, ValueError):
        return DEFAULT_CONCURRENCY


class Slots:
    """At most ``count`` holders; waiters are served in arrival order. A waiter calls its
    ``check`` every ``poll`` seconds, so a stop reaches it while it waits."""

    def __init__(self, count: int, poll: float) -> None:
        self._free = max(1, count)
        self.poll = poll
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()

    def acquire(self, check: Check) -> None:
        self.wait(self.enqueue(), check)

    def enqueue(self) -> object:
        """A place in the queue (``wait`` with it): the order is taken here."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
        return ticket

    def wait(self, ticket: object, check: Check) -> None:
        """Until ``ticket`` is first and a slot is free; leaves the queue on a stop."""
        try:
            while True:
                with self._cond:
                    if self._queue[0] is ticket and self._free > 0:
                        self._queue.popleft()
                        self._free -= 1
                        self._cond.notify_all()
                        return
                    self._cond.wait(self.poll)
                check()
        except BaseException:
            with self._cond:
                with contextlib.suppress(ValueError):
                    self._queue.remove(ticket)
                self._cond.notify_all()
            raise

    def release(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()


class Lane:
    """One item's way through the pipeline, handed to the worker's item steps: it holds a
    generation slot until ``generated()``, and takes a turn at the site with ``publishing()``."""

    def __init__(self, pipeline: ItemPipeline, item: Item) -> None:
        self.pipeline = pipeline
        self.item = item
        self._generating = True

    def check(self, strict: bool = False) -> None:
        """The item's checkpoint: the run's, latched (see ItemPipeline.check)."""
        self.pipeline.check(strict)

    def generated(self) -> None:
        """The article is made (or will not be): the next item may start generating."""
        if self._generating:
            self._generating = False
            self.pipeline.generate_slots.release()

    @contextlib.contextmanager
    def publishing(self) -> Iterator[None]:
        """Wait (checkpointing) for one of the site's slots and hold it for the block. The
        place in the site's queue is taken before the next item may start generating, so
        items reach the site in the order their articles were made."""
        ticket = self.pipeline.publish_slots.enqueue()
        self.generated()
        self.pipeline.publish_slots.wait(ticket, self.check)
        try:
            yield
        finally:
            self.pipeline.publish_slots.release()


class ItemPipeline:
    """Works a list of items with ``generating + publishing`` in flight at most."""

    def __init__(self, *, check: Check, generating: int, publishing: int, poll: float,
                 name: str = "run") -> None:
        self._check = check
        self.generating = max(1, generating)
        self.publishing = max(1, publishing)
        self.generate_slots = Slots(self.generating, poll)
        self.publish_slots = Slots(self.publishing, poll)
        self.name = name
        self._lock = threading.Lock()
        self._stopping: str | None = None
        self._fatal: BaseException | None = None

    @property
    def in_flight(self) -> int:
        """The most items a run has started and not finished at once."""
        return self.generating + self.publishing

    def check(self, strict: bool = False) -> None:
        """The run's checkpoint for every lane: once a stop is seen, every later check raises
        it at once, without reading the store."""
        if self._stopping is not None:
            raise StopRequested(self._stopping)
        try:
            self._check(strict)
        except StopRequested as stop:
            self._latch(stop.reason)
            raise

    def _latch(self, reason: str) -> None:
        with self._lock:
            if self._stopping is None:
                self._stopping = reason

    def run(self, items: Iterable[Item], work: Callable[[Lane], None]) -> None:
        """``work(lane)`` for each item, in order, several at once. Returns when every item is
        done; raises StopRequested (after the lanes settled) when the run must stop, or the
        first failure of the whole run."""
        lanes = Slots(self.in_flight, self.generate_slots.poll)
        with ThreadPoolExecutor(self.in_flight,
                                thread_name_prefix=f"tickzen-{self.name}-item") as executor:
            try:
                for item in items:
                    self.check(strict=True)
                    lanes.acquire(self.check)
                    try:
                        self.generate_slots.acquire(self.check)
                    except BaseException:
                        lanes.release()
                        raise
                    executor.submit(self._lane, Lane(self, item), work, lanes)
            except StopRequested:
                pass                        # latched: the lanes stop at their checkpoints
        if self._fatal is not None:
            raise self._fatal
        if self._stopping is not None:
            raise StopRequested(self._stopping)

    def _lane(self, lane: Lane, work: Callable[[Lane], None], lanes: Slots) -> None:
        try:
            work(lane)
        except StopRequested as stop:
            self._latch(stop.reason)
        except BaseException as exc:        # the whole run fails; the other lanes stop
            with self._lock:
                if self._fatal is None:
                    self._fatal = exc
            self._latch(HALTED)
        finally:
            lane.generated()
            lanes.release()
