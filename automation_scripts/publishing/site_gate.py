"""One site's shared wait: when WordPress says how long to wait, every request to it waits.

A 429 or 503 with ``Retry-After`` answers one request, but it speaks for the site: with
several items publishing at once (the site's ``concurrency``), the other requests would
otherwise keep arriving during the wait WordPress asked for. Each client of a site holds the
same gate; a request first waits until the gate opens, and a Retry-After closes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SiteGate:
    """Until when requests to one site wait (a monotonic instant), shared by its clients."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._open_at = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """The site asked for ``seconds`` of quiet (a later hold never shortens an earlier)."""
        with self._lock:
            self._open_at = max(self._open_at, self.clock() + max(0.0, seconds))

    def wait(self, sleep: Callable[[float], None]) -> float:
        """Sleep until the gate opens; the seconds slept (0 when it is open)."""
        with self._lock:
            left = self._open_at - self.clock()
        if left <= 0:
            return 0.0
        sleep(left)
        return left
