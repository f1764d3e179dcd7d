"""Memory of a 500-item stock run: the peak RSS, against a baseline and a 50-item run.

    .venv/bin/python bench/memory.py [--items 500] [--small 50] [--processes auto|N]

One command. The portal's app as it serves (``create_app`` with its RunManager started,
generation processes as configured, the publishing service and a SQLite store; emits go to its
Socket.IO server), a user with a local archive site, and demo runs submitted as the API does
(``RunManager.submit``), each waited for until it ends:

1. **baseline**: this process's RSS once the app is built, then after a 2-item warm-up run
   (which starts the generation processes and draws the first charts);
2. a ``--small``-item run (default 50), then a ``--items``-item run (default 500), in the same
   process, one after the other.

Before each run the kernel's peak counters are reset (``/proc/<pid>/clear_refs`` ``5``), so
each run's peak (``VmHWM``) is its own; a sampler (every 50 ms) also records the current RSS
of this process and of its descendants (the generation processes and multiprocessing's fork
server), and the largest sums of their RSS and of their PSS (a page the fork server shares
with its children counts once in PSS, in every process in RSS). Printed per run: the portal
process's peak, each other process's peak, the largest sampled totals, and the portal's RSS
after the run. Target: the 500-item run's portal process under 400 MB peak RSS, and the whole
tree under 400 MB PSS. Results also go to bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import machine, portal_app, write_results  # noqa: E402

TARGET_MB = 400.0


def status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in kB (0 when the process is gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                for child in map(int, (task / "children").read_text().split()):
                    found += [child, *descendants(child)]
    return found


def process_name(pid: int) -> str:
    """What a descendant is: the fork server, a generation process (the fork server's child),
    multiprocessing's resource tracker, or its command line."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        parent_raw = Path(f"/proc/{parent}/cmdline").read_bytes().decode(errors="replace")
        if "resource_tracker" in raw:
            return "resource tracker"
        if "forkserver" in parent_raw:
            return "generation process"
        if "forkserver" in raw:
            return "fork server"
        return raw[:60]
    return "gone"


def pss_kb(pid: int) -> int:
    """Proportional set size: shared pages divided among the processes sharing them, so the
    sum over a process tree counts each page once (0 when the kernel does not say)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def reset_peaks(pids: list[int]) -> bool:
    """Reset each process's VmHWM to its current RSS; False when the kernel refuses."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


class Sampler:
    """The largest RSS seen of this process, and of it with its descendants, every 50 ms."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.max_self_kb = 0
        self.max_total_kb = 0
        self.max_total_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self) -> None:
        me = os.getpid()
        tree = descendants(me)
        own = status_kb(me, "VmRSS")
        total = own + sum(status_kb(p, "VmRSS") for p in tree)
        self.max_self_kb = max(self.max_self_kb, own)
        self.max_total_kb = max(self.max_total_kb, total)
        self.max_total_pss_kb = max(self.max_total_pss_kb,
                                    pss_kb(me) + sum(pss_kb(p) for p in tree))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def mb(kb: int) -> float:
    return round(kb / 1024, 1)




def make_site(app: Any) -> tuple[str, str]:
    from storage.base import Site

    store = app.extensions["tickzen"].store
    user = store.create_user(f"bench-{uuid.uuid4().hex[:6]}@example.com", "x")
    site = store.create_site(user.id, Site(id="", user_id=user.id, name="Archive",
                                           kind="local"))
    return user.id, site.id


def tickers_for(count: int, prefix: str) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [f"{prefix}{letters[i // 676 % 26]}{letters[i // 26 % 26]}{letters[i % 26]}"
            for i in range(count)]


def run_measured(app: Any, user_id: str, site_id: str, tickers: list[str]) -> dict[str, Any]:
    """Submit a demo run, wait for it to end; its peaks (see the module docstring)."""
    services = app.extensions["tickzen"]
    me = os.getpid()
    gc.collect()
    before_kb = status_kb(me, "VmRSS")
    reset = reset_peaks([me, *descendants(me)])
    started = time.perf_counter()
    with Sampler() as sampler:
        run, _ = services.runs.submit(user_id, "stock", site_id, tickers,
                                      {"data_source": "demo", "status": "publish"})
        while True:
            current = services.store.get_run(run.id)
            if current.status in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.05)
        others = {pid: (process_name(pid), status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS"))
                  for pid in descendants(me)}
    seconds = time.perf_counter() - started
    peak_kb = status_kb(me, "VmHWM") if reset else sampler.max_self_kb
    gc.collect()
    return {"items": len(tickers), "status": current.status,
            "counts": {k: v for k, v in (current.counts or {}).items() if v},
            "seconds": round(seconds, 1), "events": current.last_seq,
            "rss_before_mb": mb(before_kb), "peak_mb": mb(peak_kb),
            "peak_counter": "VmHWM" if reset else "sampled",
            "sampled_peak_mb": mb(sampler.max_self_kb),
            "sampled_total_peak_mb": mb(sampler.max_total_kb),
            "sampled_total_pss_peak_mb": mb(sampler.max_total_pss_kb),
            "rss_after_mb": mb(status_kb(me, "VmRSS")),
            "other_processes": [{"pid": pid, "name": name, "peak_mb": mb(hwm),
                                 "rss_mb": mb(rss)} for pid, (name, hwm, rss) in others.items()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--processes", default="", help="TICKZEN_GENERATION_PROCESSES "
                        "(empty: the default, min(cores - 1, 2))")
    args = parser.parse_args()
    me = os.getpid()
    results: dict[str, Any] = {"machine": machine(), "target_mb": TARGET_MB,
                               "rss_at_start_mb": mb(status_kb(me, "VmRSS"))}
    with tempfile.TemporaryDirectory(prefix="tickzen-memory-") as tmp, \
            portal_app(Path(tmp), args.processes) as app:
        pool = app.extensions["tickzen"].runs.generation
        results["generation_processes"] = pool.processes if pool is not None else 0
        user_id, site_id = make_site(app)
        gc.collect()
        results["baseline_app_built_mb"] = mb(status_kb(me, "VmRSS"))
        warm = run_measured(app, user_id, site_id, tickers_for(2, "W"))
        results["baseline_after_warmup_mb"] = warm["rss_after_mb"]
        results["small"] = run_measured(app, user_id, site_id, tickers_for(args.small, "S"))
        results["large"] = run_measured(app, user_id, site_id, tickers_for(args.items, "L"))
    large, small = results["large"], results["small"]
    results["growth_small_to_large_mb"] = round(large["peak_mb"] - small["peak_mb"], 1)
    results["target_met"] = (large["peak_mb"] < TARGET_MB
                             and large["sampled_total_pss_peak_mb"] < TARGET_MB)
    report(results)
    path = write_results("memory", results)
    print(f"\nresults: {path.relative_to(ROOT)}")


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"machine: {m['cpu_model']}, {m['cores']} cores, {m['ram_gb']} GB; load "
          f"{m['loadavg_at_start']}; generation processes: {results['generation_processes']}")
    print(f"baseline: {results['rss_at_start_mb']} MB at start, "
          f"{results['baseline_app_built_mb']} MB with the app built, "
          f"{results['baseline_after_warmup_mb']} MB after a 2-item warm-up run")
    for name in ("small", "large"):
        r = results[name]
        others = ", ".join(f"{o['name']} {o['peak_mb']} MB" for o in r["other_processes"]) \
            or "none"
        print(f"{r['items']}-item run ({r['status']}, {r['counts']}, {r['seconds']} s, "
              f"{r['events']} events): portal process peak {r['peak_mb']} MB "
              f"({r['peak_counter']}; {r['rss_before_mb']} MB before, {r['rss_after_mb']} MB "
              f"after); other processes' peaks: {others}; largest sampled total: "
              f"{r['sampled_total_peak_mb']} MB RSS, {r['sampled_total_pss_peak_mb']} MB PSS")
    print(f"growth of the portal's peak from {results['small']['items']} to "
          f"{results['large']['items']} items: {results['growth_small_to_large_mb']} MB")
    print(f"target: the {results['large']['items']}-item run under {TARGET_MB:.0f} MB "
          f"(the portal process's peak RSS, and the whole tree's PSS): "
          f"{'met' if results['target_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
