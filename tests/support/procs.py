"""Helpers for tests that start real servers: free ports, process groups, pid files.

``spawn`` starts a command in its own process group (``start_new_session``) and records its
pid in ``.services/<name>.pid``; ``stop`` ends that group by its id and removes the file.
``make test`` kills any group still recorded there after pytest, as a safety net.
``need`` skips a test with a reason, or fails it when ``CI=true`` (a missing service in CI is
a failure, not a skip).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = ROOT / ".services"


def in_ci() -> bool:
    """True when the run is CI's (``CI=true``): missing services must fail."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(available: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI=true) when a needed service is not available."""
    if available:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None,
                  host: str = "127.0.0.1") -> None:
    """Block until something accepts connections on ``port`` (or raise with the reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {host}:{port} within {timeout}s")


def spawn(args: list[str], name: str, log: Path | None = None,
          **popen: Any) -> subprocess.Popen[bytes]:
    """Start ``args`` in a new process group and record it as ``.services/<name>.pid``."""
    out: Any = subprocess.DEVNULL
    if log is not None:
        out = open(log, "ab")  # noqa: SIM115 - the child keeps it; closed below
    try:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, **popen)
    finally:
        if log is not None:
            out.close()
    SERVICES_DIR.mkdir(exist_ok=True)
    (SERVICES_DIR / f"{name}-{proc.pid}.pid").write_text(str(proc.pid))
    return proc


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """End ``proc``'s process group by its id (TERM, then KILL) and drop its pid file."""
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        else:  # the leader is gone; children of its group may not be
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
    finally:
        for pidfile in SERVICES_DIR.glob(f"*-{proc.pid}.pid"):
            pidfile.unlink(missing_ok=True)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60.0,
               step: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what``.

    A deadline, never a timing assertion: it only bounds how long a broken test hangs.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)
