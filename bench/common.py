"""Shared pieces of the Socket.IO benchmarks (bench/progress.py, bench/capacity.py).

- ``Server``: a gunicorn server in its own process group (startup.sh for the portal, the same
  gunicorn settings for the bare baseline), stopped by its process-group id, never by name;
- ``ProcStats``: CPU seconds and RSS of a server's process tree, read from /proc;
- ``Recorder``/``connect_clients``: python-socketio clients over websocket that timestamp
  every event on receipt (same machine clock as the server's ``timestamp`` field);
- ``make_portal_users``: accounts in the portal's SQLite store and signed session cookies;
- ``machine``, ``percentile``, ``write_results``.

Not a benchmark itself: ``python bench/common.py`` only prints the machine description.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"
BENCH_SECRET = "bench-secret-key-not-for-production"
BENCH_FERNET = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="

if str(ROOT) not in sys.path:           # `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM and load: the figures mean nothing without them."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    return {"cpu_model": model, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 2**20, 1),
            "loadavg_at_start": list(os.getloadavg()), "python": platform.python_version(),
            "kernel": platform.release(), "when": datetime.now().astimezone().isoformat()}


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (``p`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def latency_summary(ms: Sequence[float]) -> dict[str, Any]:
    return {"count": len(ms), "p50_ms": _r(percentile(ms, 50)), "p95_ms": _r(percentile(ms, 95)),
            "p99_ms": _r(percentile(ms, 99)), "max_ms": _r(max(ms) if ms else None)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Servers and their resource use.


@dataclass
class Server:
    """A command in its own process group, listening on ``port``."""

    name: str
    args: list[str]
    env: dict[str, str]
    port: int
    cwd: Path = ROOT
    log: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> Server:
        out: Any = subprocess.DEVNULL
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.proc = subprocess.Popen(self.args, env=self.env, cwd=str(self.cwd), stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            if self.log is not None:
                out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"log: {self.log}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on {self.port} within {timeout}s")

    def stop(self) -> None:
        """TERM then KILL the process group, by its id."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)      # any straggler of the group
        self.proc = None


def gunicorn_env(threads: int, **extra: str) -> dict[str, str]:
    """The environment startup.sh and the baseline get: the venv's gunicorn on PATH."""
    env = {**os.environ, "GUNICORN_BIND_HOST": "127.0.0.1", "GUNICORN_THREADS": str(threads),
           "PYTHONUNBUFFERED": "1",
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(extra)
    return env


def portal_server(port: int, threads: int, workdir: Path, **extra: str) -> Server:
    """The portal exactly as Azure starts it (``bash startup.sh``), on SQLite under ``workdir``."""
    env = gunicorn_env(
        threads, PORT=str(port), TICKZEN_ENV="testing", SECRET_KEY=BENCH_SECRET,
        TICKZEN_SECRETS_KEY=BENCH_FERNET, TICKZEN_STORE=f"sqlite:///{workdir / 'bench.db'}",
        TICKZEN_ARCHIVE_DIR=str(workdir / "archive"), TICKZEN_WORKDIR=str(workdir / "runs"),
        TICKZEN_EXTRA_AUTOMATIONS="tests.support.test_automations", **extra)
    env.pop("SOCKETIO_MESSAGE_QUEUE", None)
    return Server("portal", ["bash", str(ROOT / "startup.sh")], env, port,
                  log=workdir / "portal.log")


def baseline_server(port: int, threads: int, workdir: Path) -> Server:
    """The bare Flask-SocketIO app under startup.sh's gunicorn settings."""
    args = [str(VENV_BIN / "gunicorn"), "--worker-class", "gthread", "--workers", "1",
            "--threads", str(threads), "--timeout", "120", "--bind", f"127.0.0.1:{port}",
            "--no-control-socket", "--chdir", str(ROOT / "bench"), "baseline_app:create_app()"]
    return Server("baseline", args, gunicorn_env(threads), port, log=workdir / "baseline.log")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


class ProcStats:
    """CPU seconds (user+system) and RSS of a process and its descendants (gunicorn master +
    worker; startup.sh execs gunicorn, so the group leader is the master)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self._start_cpu = 0.0
        self._start_wall = 0.0

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in process_tree(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / self.tick
        return total

    def rss_mb(self) -> float:
        total = 0
        for pid in process_tree(self.pid):
            with contextlib.suppress(OSError, IndexError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return round(total / 1024, 1)

    def threads(self) -> int:
        total = 0
        for pid in process_tree(self.pid):
            with contextlib.suppress(OSError):
                total += len(list(Path(f"/proc/{pid}/task").iterdir()))
        return total

    def begin(self) -> None:
        self._start_cpu, self._start_wall = self.cpu_seconds(), time.monotonic()

    def end(self) -> dict[str, float]:
        cpu, wall = self.cpu_seconds() - self._start_cpu, time.monotonic() - self._start_wall
        return {"cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
                "cpu_percent": round(100 * cpu / wall, 1) if wall else 0.0,
                "rss_mb": self.rss_mb(), "threads": self.threads()}


# ---------------------------------------------------------------------------------------------
# Clients.


@dataclass
class Recorder:
    """One python-socketio client; every ``event`` payload is kept with its receipt time."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    query: str = ""
    event: str = "automation_progress"
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    client: Any = None

    def connect(self) -> None:
        import socketio

        self.client = socketio.Client(reconnection=False)
        lock = threading.Lock()

        def on_event(payload: Any) -> None:
            now = time.time()
            with lock:
                self.received.append((now, payload if isinstance(payload, dict) else {}))

        self.client.on(self.event, on_event)
        url = f"{self.url}?{self.query}" if self.query else self.url
        self.client.connect(url, headers=self.headers, transports=["websocket"],
                            wait_timeout=30)

    def disconnect(self) -> None:
        with contextlib.suppress(Exception):
            if self.client is not None and self.client.connected:
                self.client.disconnect()

    def mark(self) -> int:
        return len(self.received)


def connect_clients(recorders: Iterable[Recorder], workers: int = 16) -> list[str]:
    """Connect every recorder (a few at a time); returns the errors, one per failed client."""
    errors: list[str] = []

    def one(recorder: Recorder) -> None:
        try:
            recorder.connect()
        except Exception as exc:  # noqa: BLE001 - counted and reported, never fatal
            errors.append(f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, recorders))
    return errors


def disconnect_all(recorders: Iterable[Recorder]) -> None:
    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(lambda r: r.disconnect(), recorders))


def event_latency_ms(received_at: float, payload: dict[str, Any], key: str = "timestamp"
                     ) -> float | None:
    """Receipt time minus the ISO-8601 ``timestamp`` the server put in the event."""
    stamp = payload.get(key)
    if not isinstance(stamp, str):
        return None
    try:
        sent = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
    return 1000.0 * (received_at - sent)


# ---------------------------------------------------------------------------------------------
# Portal accounts.


def make_portal_users(db_path: Path, count: int, with_sites: int) -> list[dict[str, str]]:
    """``count`` accounts (each its own user) in the portal's SQLite store, a local site for the
    first ``with_sites``, and a signed Flask session cookie for each.

    The cookie is exactly what a login would set (Flask's own session serializer with the
    server's SECRET_KEY, Flask-Login's ``_user_id``): 500 real logins would spend a minute of
    server CPU on password hashing before the benchmark even starts.
    """
    from flask import Flask
    from flask.sessions import SecureCookieSessionInterface
    from werkzeug.security import generate_password_hash

    from storage.base import Site
    from storage.sqlite import SQLiteStore

    signer = Flask("bench-cookies")
    signer.secret_key = BENCH_SECRET
    serializer = SecureCookieSessionInterface().get_signing_serializer(signer)
    assert serializer is not None
    hashed = generate_password_hash("bench-password-1")
    store = SQLiteStore(str(db_path))
    users: list[dict[str, str]] = []
    try:
        for index in range(count):
            email = f"bench{index:04d}@example.com"
            user = store.get_user_by_email(email) or store.create_user(email, hashed)
            site_id = ""
            if index < with_sites:
                sites = store.list_sites(user.id)
                site_id = sites[0].id if sites else store.create_site(
                    user.id, Site(id="", user_id=user.id, name="Bench archive",
                                  kind="local")).id
            cookie = serializer.dumps({"_user_id": user.id, "_fresh": True})
            users.append({"user_id": user.id, "email": email, "site_id": site_id,
                          "cookie": f"session={cookie}"})
    finally:
        store.close()
    return users


def csrf_session(base_url: str, cookie: str) -> Any:
    """A requests.Session for a forged-cookie user, with the page's X-CSRFToken."""
    import re

    import requests

    session = requests.Session()
    session.headers["Cookie"] = cookie
    page = session.get(f"{base_url}/", timeout=30)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    if page.status_code != 200 or not match:
        raise RuntimeError(f"the bench session is not signed in ({page.status_code})")
    new = page.cookies.get("session")
    if new:
        session.headers["Cookie"] = f"session={new}"
    session.headers["X-CSRFToken"] = match.group(1)
    return session


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


if __name__ == "__main__":
    print(json.dumps(machine(), indent=1))


@contextlib.contextmanager
def portal_app(root: Path, processes: str) -> Iterator[Any]:
    """The portal's app as it serves (runner started), on a fresh SQLite store under ``root``;
    closed as tests/conftest.py closes one."""
    from main_portal_app import create_app

    config = {"ENV_NAME": "development", "SECRET_KEY": BENCH_SECRET,
              "TICKZEN_SECRETS_KEY": BENCH_FERNET, "INSTANCE_PATH": str(root / "instance"),
              "TICKZEN_STORE": f"sqlite:///{root / 'tickzen.db'}",
              "TICKZEN_START_RUNNER": True, "TICKZEN_GENERATION_PROCESSES": processes,
              "TICKZEN_MAX_ITEMS": 1000}
    app = create_app(config)
    try:
        yield app
    finally:      # as tests/conftest.py closes an app: its threads, then the store
        services = app.extensions["tickzen"]
        for name in ("scheduler", "delivery"):
            with contextlib.suppress(Exception):
                getattr(services, name).stop()
        services.runs.shutdown()
        services.store.close()
