"""Keeping Yahoo Finance's price requests under its throttle.

Yahoo throttles at roughly 60 requests a minute per address and then delays, blocks or answers
"Too Many Requests". ``RequestWindow`` lets at most ``per_minute`` requests start in any 60
seconds, for every thread that shares it, and, given a ``ledger`` file, for every process that
names the same file (the generation processes each rebuild the automation, and Yahoo counts the
address, not the process). ``ThrottledProvider`` takes a slot before each download and, when
Yahoo refuses all the same, holds the whole window off with growing pauses before trying again.
Waits are handed to an ``on_wait(seconds, reason)`` callback, which reports them as progress
(and checkpoints, so a pause or cancel is not stuck behind a wait).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automation_scripts.stock.market_data import PriceHistory, PriceProvider, ProviderError

log = logging.getLogger(__name__)

OnWait = Callable[[float, str], None]
RATE_LIMIT_WORDS = ("too many requests", "rate limited", "rate limit")
BACKOFF_SECONDS = (15.0, 30.0, 60.0, 120.0)
MAX_HOLD_OFF = 600.0             # a longer hold-off in the ledger is a clock jump or corruption


def is_rate_limit_error(exc: BaseException | None) -> bool:
    """Whether an exception (or one it was raised from) is Yahoo's throttle: yfinance's
    ``YFRateLimitError`` by class name (older versions lack the class), or its message."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ == "YFRateLimitError":
            return True
        text = str(exc).lower()
        if any(word in text for word in RATE_LIMIT_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass
class _State:
    starts: list[float] = field(default_factory=list)   # when recent requests started
    blocked_until: float = 0.0                           # nobody starts before this


class RequestWindow:
    """At most ``per_minute`` request starts in any ``period`` seconds (a sliding window).

    Shared by the threads that hold the object; with ``ledger`` (a file path) also by every
    process that names the same file, under an exclusive ``flock`` of ``<ledger>.lock``. Where
    the file system refuses locks the window falls back to this process alone (logged once).
    ``clock`` and ``sleep`` are injectable; waits are slept in steps of at most ``max_step``
    seconds, each step reported to ``on_wait``.
    """

    def __init__(self, per_minute: int, *, period: float = 60.0,
                 ledger: str | Path | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, max_step: float = 1.0) -> None:
        if int(per_minute) < 1:
            raise ValueError("per_minute must be 1 or more")
        self.per_minute = int(per_minute)
        self.period = float(period)
        self.ledger = Path(ledger) if ledger else None
        self.clock = clock
        self.sleep = sleep
        self.max_step = max_step
        self._lock = threading.Lock()
        self._local = _State()

    # -- the shared state -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _state(self) -> Iterator[_State]:
        with self._lock:
            if self.ledger is None:
                yield self._local
                return
            try:
                self.ledger.parent.mkdir(parents=True, exist_ok=True)
                handle = open(f"{self.ledger}.lock", "a+b")  # noqa: SIM115 - closed below
            except OSError as exc:
                self._local_only(exc)
                yield self._local
                return
            try:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                except OSError as exc:
                    self._local_only(exc)
                    yield self._local
                    return
                state = self._read()
                yield state
                self._write(state)
            finally:
                handle.close()                   # also releases the lock

    def _local_only(self, exc: OSError) -> None:
        log.warning("the Yahoo request window cannot lock %s (%s): counting this process's "
                    "requests only", self.ledger, exc)
        self.ledger = None

    def _read(self) -> _State:
        assert self.ledger is not None
        try:
            raw = json.loads(self.ledger.read_text())
            return _State([float(t) for t in raw.get("starts", [])],
                          float(raw.get("blocked_until", 0.0)))
        except (OSError, ValueError, TypeError, AttributeError):
            return _State()                      # absent or unreadable: start afresh

    def _write(self, state: _State) -> None:
        assert self.ledger is not None
        tmp = self.ledger.with_name(f".{self.ledger.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"starts": state.starts,
                                       "blocked_until": state.blocked_until}))
            os.replace(tmp, self.ledger)
        except OSError as exc:
            log.warning("could not write the Yahoo request window %s: %s", self.ledger, exc)

    # -- taking a slot --------------------------------------------------------------------------

    def _try_start(self) -> tuple[float, str]:
        """Take a slot now (0, "") or say how long until one may be free, and why."""
        with self._state() as state:
            now = self.clock()
            # Starts older than the window are free again; ones "in the future" (a clock set
            # back, a corrupt file) are dropped rather than blocking for hours.
            state.starts = sorted(t for t in state.starts if now - self.period < t <= now)
            state.blocked_until = min(state.blocked_until, now + MAX_HOLD_OFF)
            if state.blocked_until > now:
                return state.blocked_until - now, "backoff"
            if len(state.starts) < self.per_minute:
                state.starts.append(now)
                return 0.0, ""
            oldest = state.starts[-self.per_minute]
            return max(oldest + self.period - now, 0.001), "window"

    def acquire(self, on_wait: OnWait | None = None) -> float:
        """Wait until a request may start and count it; returns the seconds waited.
        ``on_wait(seconds_left, reason)`` is called before every step of a wait ("window":
        the per-minute limit, "backoff": after Yahoo refused); it may raise to give up."""
        waited = 0.0
        while True:
            left, reason = self._try_start()
            if not left:
                return waited
            if on_wait is not None:
                on_wait(left, reason)
            step = min(left, self.max_step)
            self.sleep(step)
            waited += step

    def hold_off(self, seconds: float) -> None:
        """Nobody sharing the window starts a request for ``seconds`` (Yahoo said stop)."""
        with self._state() as state:
            state.blocked_until = max(state.blocked_until, self.clock() + seconds)


class ThrottledProvider:
    """A price provider whose downloads go through a ``RequestWindow``, retried with growing
    pauses (``backoff`` seconds) while Yahoo answers that it is rate limiting us."""

    def __init__(self, provider: PriceProvider, window: RequestWindow, *,
                 on_wait: OnWait | None = None,
                 backoff: Sequence[float] = BACKOFF_SECONDS) -> None:
        self.provider = provider
        self.name = provider.name
        self.window = window
        self.on_wait = on_wait
        self.backoff = tuple(backoff)

    def history(self, ticker: str, years: int = 10) -> PriceHistory:
        for attempt in range(len(self.backoff) + 1):
            self.window.acquire(self.on_wait)
            try:
                return self.provider.history(ticker, years)
            except ProviderError as exc:
                if not is_rate_limit_error(exc):
                    raise
                if attempt == len(self.backoff):
                    raise ProviderError(
                        f"Yahoo Finance kept refusing {ticker} as rate limited (Too Many "
                        f"Requests) after {attempt + 1} tries over "
                        f"{sum(self.backoff):.0f} s; retry the item later") from exc
                delay = self.backoff[attempt]
                log.warning("Yahoo Finance rate limited %s: holding requests off for %.0f s "
                            "(try %d)", ticker, delay, attempt + 1)
                self.window.hold_off(delay)
        raise AssertionError("unreachable")
