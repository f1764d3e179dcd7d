"""The scheduler: one daemon thread per instance that fires due campaigns every tick.

Every instance ticks; none is the leader. Which instance fires a due campaign is decided by the
store (``CampaignService.fire`` ends in a compare-and-set), so with any number of instances
each fire makes exactly one run. The thread holds no state the store does not: killing it (or
the process) at any moment loses nothing, and the next tick anywhere picks up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from runner.background import BackgroundThread
from runner.campaigns import CampaignService, FireResult
from storage.base import utcnow

log = logging.getLogger(__name__)

STALL_TICKS = 30            # a tick this many periods old means the thread is stuck
MIN_STALL = timedelta(seconds=60)


class PeriodicJob(Protocol):
    """A job the scheduler's thread polls every tick (e.g. ``runner.retention.RetentionJob``):
    ``poll`` must return at once; the job does its work elsewhere."""

    def poll(self, now: datetime | None = None) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...


class Scheduler(BackgroundThread):
    """Ticks ``campaigns.fire_due`` every ``tick_seconds`` on a daemon thread, and polls
    ``jobs``."""

    thread_name = "tickzen-campaign-scheduler"

    def __init__(self, campaigns: CampaignService, *, tick_seconds: float = 1.0,
                 clock: Callable[[], datetime] = utcnow, jobs: Sequence[PeriodicJob] = ()
                 ) -> None:
        self.campaigns = campaigns
        self.jobs = tuple(jobs)
        self.tick_seconds = max(0.05, float(tick_seconds))
        self.clock = clock
        super().__init__()
        self.last_tick: datetime | None = None
        self.ticks = 0

    def tick(self, now: datetime | None = None) -> list[FireResult]:
        """One tick: fire what is due at ``now`` (the clock's now by default)."""
        now = now or self.clock()
        results = self.campaigns.fire_due(now)
        self.last_tick = now
        self.ticks += 1
        return results

    def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking, wait for a tick under way to finish, and stop the jobs."""
        super().stop(timeout)
        for job in self.jobs:
            job.stop(timeout)

    def health(self) -> dict[str, Any]:
        """``{status, last_tick}`` (BackgroundThread.beat_health)."""
        return self.beat_health("last_tick", self.last_tick, self.clock(), max(
            MIN_STALL, timedelta(seconds=self.tick_seconds * STALL_TICKS)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:        # the scheduler must outlive a store hiccup
                log.exception("campaign scheduler tick failed")
            for job in self.jobs:
                try:
                    job.poll()
                except Exception:
                    log.exception("periodic job poll failed")
            self._stop.wait(self.tick_seconds)
