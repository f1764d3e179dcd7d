"""Progress delivery under load: the portal against a bare Flask-SocketIO app.

    .venv/bin/python bench/progress.py [--sizes 50,200,500] [--runs 20]

For each size N: N users (each its own account, its own python-socketio client over websocket)
are connected to the portal, served exactly as Azure serves it (``bash startup.sh``: gunicorn,
one gthread worker), and M runs of the test automation kind start at once (owned by the first M
users, each run's events going to its owner's room only). Measured: emit-to-receipt latency
(the event's ``timestamp``, set when the reporter builds it, before it is stored, against the
client's clock on receipt: same machine), events delivered against the run's ``last_seq``
(missing ones are then asked for with ``replay``: after replay none may be missing), events a
user got about someone else's run (must be 0), and the server's CPU and RSS from /proc.

Then the same N clients connect to the bare baseline (bench/baseline_app.py, same gunicorn
settings), and M emitter threads send the same number of events per room over the same time
with a plain ``socketio.emit(..., to=room)``. Our latency and CPU are printed as ratios to it.

Prints a table; writes bench/results/progress.json. Minutes, not tens of minutes, by default.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402 - after the path set-up for `python bench/progress.py`
    ProcStats,
    Recorder,
    Server,
    baseline_server,
    connect_clients,
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

TARGET_P99_MS = 50.0
TARGET_RATIO = 1.3


def measure_portal(server: Server, users: list[dict[str, str]], runs: int, items: int,
                   options: dict[str, Any], tag: str) -> dict[str, Any]:
    recorders = [Recorder(server.url, headers={"Cookie": u["cookie"]}) for u in users]
    connect_started = time.monotonic()
    errors = connect_clients(recorders)
    connect_seconds = time.monotonic() - connect_started
    owners = users[:runs]
    sessions = [csrf_session(server.url, u["cookie"]) for u in owners]
    stats = ProcStats(server.proc.pid)          # type: ignore[union-attr]
    stats.begin()
    run_ids: list[str] = []
    for j, (user, session) in enumerate(zip(owners, sessions, strict=True)):
        response = session.post(f"{server.url}/api/runs", timeout=60, json={
            "kind": "test", "site_id": user["site_id"],
            "items": [f"{tag}r{j}i{k}" for k in range(items)], "options": options})
        if response.status_code != 202:
            raise RuntimeError(f"POST /api/runs: {response.status_code} {response.text[:300]}")
        run_ids.append(response.json()["run_id"])

    def completed() -> bool:
        return all(any(p.get("run_id") == run_id and p.get("stage") == "complete"
                       for _, p in list(recorders[j].received))
                   for j, run_id in enumerate(run_ids))

    finished = wait_until(completed, timeout=max(120.0, items * 10.0), step=0.05)
    usage = stats.end()

    expected: dict[str, int] = {}
    for run_id, session in zip(run_ids, sessions, strict=True):
        run = session.get(f"{server.url}/api/runs/{run_id}", timeout=60).json()
        expected[run_id] = int(run.get("last_seq") or 0)
    latencies: list[float] = []
    foreign = 0
    live_missing = 0
    for j, recorder in enumerate(recorders):
        mine = run_ids[j] if j < len(run_ids) else None
        for received_at, payload in list(recorder.received):
            if payload.get("run_id") != mine:
                foreign += 1
                continue
            value = event_latency_ms(received_at, payload)
            if value is not None:
                latencies.append(value)
    # Replay what a client missed live: afterwards every seq 1..last_seq must be there.
    missing_after: dict[str, int] = {}
    for j, run_id in enumerate(run_ids):
        recorder = recorders[j]
        seen = {p.get("seq") for _, p in list(recorder.received) if p.get("run_id") == run_id}
        want = set(range(1, expected[run_id] + 1))
        live_missing += len(want - seen)
        if want - seen:
            recorder.client.emit("replay", {"automation_id": run_id, "after_seq": 0})
            wait_until(lambda r=recorder, w=want, rid=run_id: w <= {
                p.get("seq") for _, p in list(r.received) if p.get("run_id") == rid}, 30)
            seen = {p.get("seq") for _, p in list(recorder.received)
                    if p.get("run_id") == run_id}
        missing_after[run_id] = len(want - seen)
    disconnect_all(recorders)
    total_expected = sum(expected.values())
    return {
        "clients": len(users), "runs": runs, "items_per_run": items, "options": options,
        "connect_errors": len(errors), "connect_error_sample": errors[:3],
        "connect_seconds": round(connect_seconds, 1), "all_runs_completed": bool(finished),
        "events_expected": total_expected, "events_received_live": len(latencies),
        "events_missing_live": live_missing,
        "events_missing_after_replay": sum(missing_after.values()),
        "events_to_wrong_user": foreign,
        "events_per_run": round(total_expected / runs, 1) if runs else 0,
        "latency": latency_summary(latencies), **usage,
    }


def measure_engine_only(server: Server, db_path: Path, users: list[dict[str, str]],
                        items: int, options: dict[str, Any], tag: str) -> dict[str, Any]:
    """The same runs with no client connected (completion read from the SQLite file, not over
    HTTP): the CPU the run engine itself costs, to tell it apart from delivering events."""
    from storage.sqlite import SQLiteStore

    sessions = [csrf_session(server.url, u["cookie"]) for u in users]
    stats = ProcStats(server.proc.pid)          # type: ignore[union-attr]
    stats.begin()
    run_ids = []
    for j, (user, session) in enumerate(zip(users, sessions, strict=True)):
        response = session.post(f"{server.url}/api/runs", timeout=60, json={
            "kind": "test", "site_id": user["site_id"],
            "items": [f"{tag}r{j}i{k}" for k in range(items)], "options": options})
        response.raise_for_status()
        run_ids.append(response.json()["run_id"])
    store = SQLiteStore(str(db_path))
    try:
        done = wait_until(lambda: all((r := store.get_run(i)) is not None
                                      and r.status == "completed" for i in run_ids),
                          timeout=max(120.0, items * 10.0), step=0.1)
        usage = stats.end()
        events = sum((store.get_run(i).last_seq or 0) for i in run_ids)   # type: ignore[union-attr]
    finally:
        store.close()
    return {"runs": len(run_ids), "all_runs_completed": bool(done), "events": events, **usage}


def measure_baseline(server: Server, clients: int, runs: int, count: int, duration: float
                     ) -> dict[str, Any]:
    import requests

    recorders = [Recorder(server.url, query=f"room=room{i}") for i in range(clients)]
    errors = connect_clients(recorders)
    interval = duration / max(1, count)
    stats = ProcStats(server.proc.pid)          # type: ignore[union-attr]
    stats.begin()
    response = requests.post(f"{server.url}/emit", timeout=60, json={
        "rooms": [f"room{i}" for i in range(runs)], "count": count, "interval": interval})
    response.raise_for_status()
    expected = runs * count

    def delivered() -> int:
        return sum(len(r.received) for r in recorders[:runs])

    wait_until(lambda: delivered() >= expected, timeout=duration + 60, step=0.05)
    usage = stats.end()
    latencies = [v for r in recorders for at, p in list(r.received)
                 if (v := event_latency_ms(at, p)) is not None]
    foreign = sum(1 for i, r in enumerate(recorders) for _, p in list(r.received)
                  if p.get("run_id") != f"room{i}")
    disconnect_all(recorders)
    return {"clients": clients, "rooms_emitting": runs, "events_per_room": count,
            "interval_s": round(interval, 4), "connect_errors": len(errors),
            "events_expected": expected, "events_received": delivered(),
            "events_lost": expected - min(expected, delivered()), "events_to_wrong_user": foreign,
            "latency": latency_summary(latencies), **usage}


def _ratio(ours: float | None, base: float | None) -> float | None:
    if ours is None or not base:
        return None
    return round(ours / base, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200,500", help="client counts, comma-separated")
    parser.add_argument("--runs", type=int, default=20, help="concurrent runs")
    parser.add_argument("--items", type=int, default=20, help="items per run")
    parser.add_argument("--steps", type=int, default=4, help="progress steps per item")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds per step")
    parser.add_argument("--threads", type=int, default=0,
                        help="GUNICORN_THREADS for both servers (default: largest size + 50)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    threads = args.threads or max(100, max(sizes) + 50)
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="tickzen-bench-progress-"))
    options = {"steps": args.steps, "delay": args.delay}
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, {info['ram_gb']} GB RAM, "
          f"load {info['loadavg_at_start']}; GUNICORN_THREADS={threads}; workdir {workdir}")
    users = make_portal_users(workdir / "bench.db", max(sizes), with_sites=args.runs)
    portal = portal_server(free_port(), threads, workdir, TICKZEN_MAX_RUNS=str(args.runs),
                           TICKZEN_MAX_RUNS_PER_USER="2")
    baseline = baseline_server(free_port(), threads, workdir)
    rows: list[dict[str, Any]] = []
    engine: dict[str, Any] = {}
    try:
        portal.start()
        baseline.start()
        print(f"-- no clients, {args.runs} runs: the run engine alone ...", flush=True)
        engine = measure_engine_only(portal, workdir / "bench.db", users[:args.runs],
                                     args.items, options, tag="engine")
        for size in sizes:
            print(f"-- {size} clients, {args.runs} runs: portal ...", flush=True)
            ours = measure_portal(portal, users[:size], args.runs, args.items, options,
                                  tag=f"n{size}")
            count = max(1, round(ours["events_per_run"]))
            print(f"-- {size} clients: baseline ({count} events/room over "
                  f"{ours['wall_seconds']} s) ...", flush=True)
            base = measure_baseline(baseline, size, args.runs, count, ours["wall_seconds"])
            ratios = {k: _ratio(ours["latency"][k], base["latency"][k])
                      for k in ("p50_ms", "p95_ms", "p99_ms")}
            ratios["cpu"] = _ratio(ours["cpu_percent"], base["cpu_percent"])
            # Delivery alone: the portal's CPU minus what the same runs cost with no client.
            ours["delivery_cpu_percent"] = round(ours["cpu_percent"] - engine["cpu_percent"], 1)
            ratios["delivery_cpu"] = _ratio(ours["delivery_cpu_percent"], base["cpu_percent"])
            rows.append({"clients": size, "portal": ours, "baseline": base, "ratios": ratios})
    finally:
        portal.stop()
        baseline.stop()
    header = (f"{'clients':>7} {'runs':>4} | {'p50':>6} {'p95':>6} {'p99':>6} ms | "
              f"{'events':>7} {'lost':>4} {'lost*':>5} | {'CPU%':>5} {'RSS MB':>6} || "
              f"{'base p50':>8} {'p95':>6} {'p99':>6} {'CPU%':>5} {'RSS':>5} | "
              f"{'x p50':>5} {'x p99':>5} {'x CPU':>5}")
    print(header)
    print("-" * len(header))
    for row in rows:
        o, b, r = row["portal"], row["baseline"], row["ratios"]
        print(f"{row['clients']:>7} {o['runs']:>4} | {o['latency']['p50_ms']:>6} "
              f"{o['latency']['p95_ms']:>6} {o['latency']['p99_ms']:>6}    | "
              f"{o['events_expected']:>7} {o['events_missing_live']:>4} "
              f"{o['events_missing_after_replay']:>5} | {o['cpu_percent']:>5} "
              f"{o['rss_mb']:>6} || {b['latency']['p50_ms']:>8} {b['latency']['p95_ms']:>6} "
              f"{b['latency']['p99_ms']:>6} {b['cpu_percent']:>5} {b['rss_mb']:>5} | "
              f"{r['p50_ms']!s:>5} {r['p99_ms']!s:>5} {r['cpu']!s:>5}")
    print("lost = missing live; lost* = missing after replay (must be 0); x = portal/baseline")
    print(f"the run engine alone (no client): CPU {engine['cpu_percent']}% over "
          f"{engine['wall_seconds']} s; delivery CPU (portal - engine alone) per size: "
          + ", ".join(f"{row['clients']}: {row['portal']['delivery_cpu_percent']}% "
                      f"(x{row['ratios']['delivery_cpu']})" for row in rows))
    at200 = next((row for row in rows if row["clients"] == 200), None)
    verdict = {
        "p99_under_50ms_at_200_clients_20_runs": None if at200 is None or args.runs != 20 else
        (at200["portal"]["latency"]["p99_ms"] or 1e9) < TARGET_P99_MS,
        "within_1_3x_of_baseline": all(
            (row["ratios"][k] or 1e9) <= TARGET_RATIO for row in rows
            for k in ("p50_ms", "p95_ms", "p99_ms", "cpu")),
        "zero_lost_after_replay": all(
            row["portal"]["events_missing_after_replay"] == 0
            and row["portal"]["all_runs_completed"]
            and row["portal"]["events_to_wrong_user"] == 0 for row in rows),
        "all_clients_connected": all(row["portal"]["connect_errors"] == 0 for row in rows),
    }
    print("targets:", verdict)
    path = write_results("progress", {"machine": info, "gunicorn_threads": threads,
                                      "argv": sys.argv[1:], "engine_only": engine,
                                      "rows": rows, "targets": verdict})
    print(f"written: {path}")
    if args.keep:
        print(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
