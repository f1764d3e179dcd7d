"""Connection capacity of one portal instance served by startup.sh.

    .venv/bin/python bench/capacity.py [--threads 100,600] [--levels 25,50,...]

For each GUNICORN_THREADS setting (600 is startup.sh's default), clients (each its own account,
python-socketio over websocket) are added level by level. At each level ``--runs`` runs emit
progress to their owners while a plain page (``GET /login``) is fetched every 0.25 s. A level is
held when every client connected, the progress p99 (emit-to-receipt) is under 100 ms, and no page
request waited more than 1 s. The capacity is the last level held; the ramp stops at the first
level that is not.

Prints a table; writes bench/results/capacity.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path set-up for `python bench/capacity.py`
    ProcStats,
    Recorder,
    csrf_session,
    disconnect_all,
    event_latency_ms,
    free_port,
    latency_summary,
    machine,
    make_portal_users,
    portal_server,
    wait_until,
    write_results,
)

P99_LIMIT_MS = 100.0
PAGE_LIMIT_S = 1.0
CONNECT_TIMEOUT_S = 5


class PageProbe:
    """Fetches a plain page every ``every`` seconds; keeps how long each one took."""

    def __init__(self, url: str, every: float = 0.25, timeout: float = 10.0) -> None:
        self.url, self.every, self.timeout = url, every, timeout
        self.waits: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import requests

        while not self._stop.is_set():
            started = time.monotonic()
            try:
                ok = requests.get(self.url, timeout=self.timeout).status_code == 200
            except requests.RequestException:
                ok = False
            self.waits.append(time.monotonic() - started)
            self.failures += 0 if ok else 1
            self._stop.wait(self.every)

    def __enter__(self) -> PageProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 1)


def ramp(threads: int, levels: list[int], runs: int, items: int, workdir: Path,
         users: list[dict[str, str]]) -> dict[str, Any]:
    import requests

    server = portal_server(free_port(), threads, workdir, TICKZEN_MAX_RUNS=str(runs))
    server.start()
    connected: list[Recorder] = []
    rows: list[dict[str, Any]] = []
    held = 0
    try:
        owners = [csrf_session(server.url, u["cookie"]) for u in users[:runs]]
        stats = ProcStats(server.proc.pid)          # type: ignore[union-attr]
        for level in levels:
            new = [Recorder(server.url, headers={"Cookie": u["cookie"]})
                   for u in users[len(connected):level]]
            errors = _connect(new)
            connected += new
            marks = [r.mark() for r in connected]
            stats.begin()
            run_ids = []
            with PageProbe(f"{server.url}/login") as probe:
                for j, session in enumerate(owners):
                    try:
                        response = session.post(f"{server.url}/api/runs", timeout=10, json={
                            "kind": "test", "site_id": users[j]["site_id"],
                            "items": [f"t{threads}l{level}r{j}i{k}" for k in range(items)],
                            "options": {"steps": 4, "delay": 0.1}})
                    except requests.RequestException as exc:   # no thread free to answer
                        errors.append(f"POST /api/runs: {type(exc).__name__}")
                        break
                    if response.status_code == 202:
                        run_ids.append((j, response.json()["run_id"]))

                def complete(ids: list = run_ids, clients: list = connected,
                             start: list = marks) -> bool:
                    return all(any(p.get("run_id") == rid and p.get("stage") == "complete"
                                   for _, p in clients[j].received[start[j]:])
                               for j, rid in ids)

                finished = run_ids and wait_until(complete, timeout=30 + items * 5,
                                                  step=0.05)
            usage = stats.end()
            latencies = [v for i, r in enumerate(connected) for at, p in r.received[marks[i]:]
                         if (v := event_latency_ms(at, p)) is not None]
            lat = latency_summary(latencies)
            worst_page = max(probe.waits) if probe.waits else None
            ok = (not errors and len(run_ids) == runs and bool(finished)
                  and lat["p99_ms"] is not None and lat["p99_ms"] < P99_LIMIT_MS
                  and worst_page is not None and worst_page <= PAGE_LIMIT_S
                  and probe.failures == 0)
            row = {"clients": level, "connect_errors": len(errors),
                   "connect_error_sample": errors[:2], "runs_started": len(run_ids),
                   "runs_completed": bool(finished), "latency": lat,
                   "page_requests": len(probe.waits), "page_failures": probe.failures,
                   "page_max_wait_s": None if worst_page is None else round(worst_page, 3),
                   "held": ok, **usage}
            rows.append(row)
            print(f"  threads={threads} clients={level:>4}: p99 {lat['p99_ms']} ms, "
                  f"page max {row['page_max_wait_s']} s, connect errors {len(errors)}, "
                  f"CPU {usage['cpu_percent']}%, RSS {usage['rss_mb']} MB -> "
                  f"{'held' if ok else 'NOT held'}", flush=True)
            if not ok:
                break
            held = level
    finally:
        disconnect_all(connected)
        server.stop()
    return {"gunicorn_threads": threads, "capacity": held, "levels": rows}


def _connect(recorders: list[Recorder]) -> list[str]:
    """Connect with a short wait: a client the server cannot seat is an error, not a hang."""
    import socketio

    errors: list[str] = []
    for recorder in recorders:
        recorder.client = None

    def connect(recorder: Recorder) -> None:
        client = socketio.Client(reconnection=False)
        lock = threading.Lock()

        def on_event(payload: Any) -> None:
            now = time.time()
            with lock:
                recorder.received.append((now, payload if isinstance(payload, dict) else {}))

        client.on("automation_progress", on_event)
        recorder.client = client
        try:
            client.connect(recorder.url, headers=recorder.headers, transports=["websocket"],
                           wait_timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - counted as "not held"
            errors.append(f"{type(exc).__name__}: {exc}")

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(connect, recorders))
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="100,600",
                        help="GUNICORN_THREADS settings to ramp (600 = startup.sh default)")
    parser.add_argument("--levels",
                        default="25,50,75,90,100,150,200,300,400,500,550,600")
    parser.add_argument("--runs", type=int, default=10, help="runs emitting at each level")
    parser.add_argument("--items", type=int, default=6, help="items per run at each level")
    args = parser.parse_args(argv)
    levels = sorted({int(x) for x in args.levels.split(",") if x.strip()})
    settings = [int(x) for x in args.threads.split(",") if x.strip()]
    info = machine()
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['ram_gb']} GB RAM, "
          f"load {info['loadavg_at_start']}")
    results = []
    for threads in settings:
        workdir = Path(tempfile.mkdtemp(prefix="tickzen-bench-capacity-"))
        try:
            users = make_portal_users(workdir / "bench.db", max(levels), with_sites=args.runs)
            results.append(ramp(threads, levels, args.runs, args.items, workdir, users))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'GUNICORN_THREADS':>16} | {'clients held':>12} (p99 < {P99_LIMIT_MS:.0f} ms, "
          f"page wait <= {PAGE_LIMIT_S:.0f} s, every client connected)")
    for result in results:
        print(f"{result['gunicorn_threads']:>16} | {result['capacity']:>12}")
    path = write_results("capacity", {"machine": info, "argv": sys.argv[1:],
                                      "limits": {"p99_ms": P99_LIMIT_MS,
                                                 "page_wait_s": PAGE_LIMIT_S},
                                      "results": results})
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
