"""One daemon thread that loops until stopped: the shape the delivery worker and the campaign
scheduler share (started once, a stopped one stays stopped; stop joins the loop's current
turn; ``running`` and a health figure from the loop's last beat for ``/healthz``)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any


class BackgroundThread:
    """Subclasses give ``thread_name`` and ``_loop`` (which returns once ``_stop`` is set)."""

    thread_name = "tickzen-background"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (once; a stopped one stays stopped)."""
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=self.thread_name)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop looping and wait (up to ``timeout``) for the turn under way."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and \
            not self._stop.is_set()

    def beat_health(self, key: str, last: datetime | None, now: datetime,
                    stall_after: timedelta) -> dict[str, Any]:
        """``{status, <key>}``: ``ok`` while the loop beats, ``stalled`` when its last beat is
        more than ``stall_after`` old, ``stopped`` when it is not running (e.g. a test app)."""
        if not self.running:
            status = "stopped"
        elif last is not None and now - last > stall_after:
            status = "stalled"
        else:
            status = "ok"
        return {"status": status, key: last.isoformat() if last else None}

    def _loop(self) -> None:
        raise NotImplementedError
