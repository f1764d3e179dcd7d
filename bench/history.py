"""History at campaign scale: what the portal's pages cost with 100, 10,000 and 50,000 runs.

    .venv/bin/python bench/history.py [--sizes 100,10000,50000] [--repeat 15] [--keep DIR]

One user on SQLite (the default store), the portal in-process (Flask's test client and
Socket.IO test client, no network). First one real 20-ticker stock run (demo data, the local
archive) is made through the API; every seeded run is a copy of it: its 20 items with their
results, its ~80 stored events, its 20 ledger entries, under a new id and slugs, one run every
6 minutes back from an hour ago (ten campaigns firing hourly: the history grows into the past,
from 10,000 runs on, the last 30 days hold 7,200 of them), some pairs at one instant. Written
with ``Store.seed_runs`` (storage/sqlite/seed.py: one transaction per 1,000 runs, executemany
per table; a bench/test fast path that stores what the real writes leave behind). The three
oldest runs of each size are paused, so the active-run look-ups must find them at the far end.

At each size it times (median of ``--repeat`` after two warm-ups; ms): ``/`` (the dashboard;
also its own look-ups without the 30-day charts), ``/history`` first page,
``/history?page=last`` (the jump to the oldest), a filter that matches nothing
(``kind=earnings``: the user runs stock only), ``/api/runs`` first
page and deep (``cursor`` of the 51st-oldest run), the socket snapshot (connect until
``automation_snapshot`` arrives), ``/account``, the oldest page of posts, and a 5-ticker
stock run (POST until completed; median of 3 after one untimed, new tickers each time). Each
figure is kept as its median and its best (the shared machine's load moves the median).
In the same run, the approach this replaces: the old ``_filtered_runs`` (offset batches of
200 from the top, kind matched in Python) for the last page and the empty filter,
``/api/runs?offset=N-50`` (OFFSET paging, still accepted), and the old active-run query (one
``status IN (...)`` walk of the user's runs by time).

``TICKZEN_RETENTION_DAYS=0`` in the bench: the seeded runs are older than 90 days and must keep
their events. Prints a table with each figure's growth 100 -> largest; writes
bench/results/history.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, write_results  # noqa: E402 - after the path set-up

from main_portal_app import create_app, socketio_of  # noqa: E402
from storage.base import RUN_ACTIVE, Item, LedgerEntry, Run, Site, utcnow  # noqa: E402
from storage.housekeeping import SeededRun  # noqa: E402
from storage.paging import Cursor  # noqa: E402
from tests.conftest import AuthActions  # noqa: E402
from tests.conftest import _close_services as close_services  # noqa: E402

SPACING = timedelta(minutes=6)          # ten campaigns firing hourly: 240 runs a day
SEED_CHUNK = 1000
TEMPLATE_TICKERS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "KO", "PEP", "JPM",
                    "V", "MA", "XOM", "CVX", "WMT", "COST", "DIS", "NFLX", "ORCL", "INTC"]
TARGET_MS = 100.0
TARGET_GROWTH = 2.0
DASHBOARD_ACTIVE = (*RUN_ACTIVE, "paused", "interrupted")


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.app = create_app({
            "ENV_NAME": "testing", "INSTANCE_PATH": str(workdir / "instance"),
            "TICKZEN_STORE": f"sqlite:///{workdir / 'history.db'}",
            "TICKZEN_WORKDIR": str(workdir / "runs"),
            "TICKZEN_ARCHIVE_DIR": str(workdir / "archive"),
            "TICKZEN_RETENTION_DAYS": 0, "TICKZEN_START_RUNNER": True,
            "PROGRESS_MAX_PER_SECOND": 2.0})
        self.services = self.app.extensions["tickzen"]
        self.store = self.services.store
        self.client = self.app.test_client()
        self.auth = AuthActions(self.client)
        self.user_id = self.auth.signed_in("history-bench@example.com")
        self.token = self.auth.csrf_token()
        self.site_id = self.store.list_sites(self.user_id)[0].id
        self.second_site = self.store.create_site(self.user_id, Site(
            id="", user_id=self.user_id, name="Second archive", kind="local")).id
        self.built = 0
        self.fresh_tickers = (f"Z{a}{b}" for a in "ABCDEFGHIJKLMNOPQRSTUVWXY"
                              for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        self.template: dict[str, Any] = {}

    def close(self) -> None:
        close_services(self.app)

    # -- a real run, then copies of it ----------------------------------------------------------
    def start_run(self, tickers: list[str]) -> str:
        answer = self.client.post("/api/runs", json={
            "kind": "stock", "site_id": self.site_id, "items": tickers,
            "options": {"data_source": "demo", "status": "publish"}},
            headers={"X-CSRFToken": self.token})
        assert answer.status_code == 202, answer.get_json()
        return answer.get_json()["run_id"]

    def wait(self, run_id: str, timeout: float = 600.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.client.get(f"/api/runs/{run_id}").get_json()
            if run["status"] in ("completed", "failed", "cancelled"):
                return run
            time.sleep(0.01)
        raise RuntimeError(f"run {run_id} did not finish")

    def make_template(self) -> dict[str, Any]:
        started = time.perf_counter()
        run_id = self.start_run(TEMPLATE_TICKERS)
        answer = self.wait(run_id)
        assert answer["status"] == "completed", answer
        self.services.runs.join(run_id)
        run = self.store.get_run(run_id)
        self.template = {"run": run, "items": self.store.list_items(run_id),
                         "events": self.store.list_events(run_id),
                         "posts": [p for p in self.store.list_posts(self.user_id, limit=100)
                                   if p.run_id == run_id],
                         "seconds": time.perf_counter() - started}
        return self.template

    def copy_of_template(self, number: int, created: Any, status: str = "completed"
                         ) -> SeededRun:
        t = self.template
        run_id = uuid.uuid4().hex
        site = (self.site_id, self.second_site)[number % 2]
        source: Run = t["run"]
        run = Run(**{**source.__dict__, "id": run_id, "site_id": site, "status": status,
                     "campaign_id": f"campaign-{number % 10}", "fire_id": None, "owner": None,
                     "lease_until": None, "created_at": created,
                     "updated_at": created + timedelta(minutes=2)})
        items = []
        for item in t["items"]:
            result = dict(item.result)
            result["workdir"] = str(result.get("workdir", "")).replace(source.id, run_id)
            items.append(Item(**{**item.__dict__, "run_id": run_id, "result": result,
                                 "key": f"{item.key}-{number}", "updated_at": created}))
        events = [{**e, "run_id": run_id} for e in t["events"]]
        for e in events:
            e.pop("seq", None)
        posts = [LedgerEntry(**{**p.__dict__, "site_id": site, "slug": f"{p.slug}-{number}",
                                "item_key": f"{p.item_key}-{number}", "run_id": run_id,
                                "created_at": created, "published_at": created,
                                "day": created.date().isoformat()})
                 for p in t["posts"]]
        return SeededRun(run, items, events, posts)

    def grow(self, total: int, newest: Any) -> float:
        """Seed runs until ``total`` exist (beside the template and timed runs): the history
        grows into the past from ``newest``, one run every 6 minutes, some pairs at one
        instant; the three oldest of each size are paused (the far end for active look-ups)."""
        started = time.perf_counter()
        while self.built < total:
            batch = []
            for number in range(self.built, min(total, self.built + SEED_CHUNK)):
                created = newest - SPACING * (number - number % 7 // 6)
                status = "paused" if total - 3 <= number < total else "completed"
                batch.append(self.copy_of_template(number, created, status))
            self.store.seed_runs(batch)
            self.built += len(batch)
        return time.perf_counter() - started

    # -- timing -------------------------------------------------------------------------------
    def get_ms(self, url: str, repeat: int) -> Timing:
        def once() -> None:
            response = self.client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        return timed(once, repeat)

    def snapshot_ms(self, repeat: int) -> Timing:
        socketio = socketio_of(self.app)

        def once() -> None:
            socket = socketio.test_client(self.app, flask_test_client=self.client)
            received = socket.get_received()
            assert any(m["name"] == "automation_snapshot" for m in received)
            socket.disconnect()

        return timed(once, repeat)

    def five_ticker_run_ms(self, repeat: int) -> Timing:
        times = []
        for attempt in range(repeat + 1):             # the first one warms up, untimed
            tickers = [next(self.fresh_tickers) for _ in range(5)]
            started = time.perf_counter()
            answer = self.wait(self.start_run(tickers))
            if attempt:
                times.append(1000 * (time.perf_counter() - started))
            assert answer["status"] == "completed", answer
            self.services.runs.join(answer["id"])
        return Timing(statistics.median(times), min(times))

    # -- the approach this replaces -------------------------------------------------------------
    def old_filtered_runs(self, kind: str, page: int | None) -> None:
        """portal/run_pages.py's former ``_filtered_runs``: offset batches of 200 from the top,
        kind matched in Python, until the page (None: the last one) is filled."""
        size = 20
        matched: list[Run] = []
        offset, batch = 0, 200
        want_to = None if page is None else page * size + 1
        while want_to is None or len(matched) < want_to:
            chunk = self.store.list_runs(self.user_id, limit=batch, offset=offset)
            matched.extend(r for r in chunk if not kind or r.kind == kind)
            if len(chunk) < batch:
                break
            offset += batch

    def old_active_query(self) -> None:
        """The former active-run look-up: one ``status IN (...)`` query ordered by time,
        which walks the user's runs by time (SQLite picks the user's time index)."""
        marks = ", ".join("?" for _ in DASHBOARD_ACTIVE)
        self.store._all(f"SELECT * FROM runs WHERE user_id = ? AND status IN ({marks}) "
                        "ORDER BY created_at DESC, id DESC LIMIT 50",
                        [self.user_id, *DASHBOARD_ACTIVE])

    def dashboard_lookups(self) -> None:
        """The dashboard's own reads (portal/pages.py) without its 30-day charts: sites,
        active runs, recent runs, recent posts, campaigns."""
        self.store.list_sites(self.user_id)
        self.store.list_runs(self.user_id, statuses=DASHBOARD_ACTIVE, limit=50)
        self.store.list_runs(self.user_id, limit=10)
        self.store.list_posts(self.user_id, limit=5)
        self.services.campaigns.list(self.user_id)

    def measure(self, repeat: int) -> dict[str, Timing]:
        runs = self.store.list_runs(self.user_id, limit=51, oldest_first=True)
        deep = Cursor.of_run(runs[-1]).encode()
        count = self.built + 1
        figures = {
            "dashboard /": self.get_ms("/", repeat),
            "dashboard lookups, no 30-day charts": timed(self.dashboard_lookups, repeat),
            "/history first page": self.get_ms("/history", repeat),
            "/history oldest page": self.get_ms("/history?page=last", repeat),
            "/history kind=earnings (no match)": self.get_ms("/history?kind=earnings", repeat),
            "/history oldest posts page": self.get_ms("/history?posts_page=last", repeat),
            "/api/runs first page": self.get_ms("/api/runs", repeat),
            "/api/runs deep (cursor)": self.get_ms(f"/api/runs?cursor={deep}", repeat),
            "socket snapshot": self.snapshot_ms(repeat),
            "/account": self.get_ms("/account", repeat),
            "5-ticker run": self.five_ticker_run_ms(3),
        }
        baseline_repeat = max(3, repeat // 5)
        figures.update({
            "old: /history last page, store part": timed(
                lambda: self.old_filtered_runs("", None), baseline_repeat),
            "old: kind filter, no match, store part": timed(
                lambda: self.old_filtered_runs("earnings", 1), baseline_repeat),
            "old: /api/runs deep (offset)": self.get_ms(
                f"/api/runs?offset={max(0, count - 50)}", baseline_repeat),
            "old: active runs query": timed(self.old_active_query, repeat),
        })
        return figures


def timed(fn: Callable[[], Any], repeat: int) -> Timing:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return Timing(statistics.median(times), min(times))


@dataclass(frozen=True)
class Timing:
    """Milliseconds: the median, and the best (what the work costs when the shared machine
    lets it run)."""

    median: float
    best: float


def db_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,50000")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="tickzen-history-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(workdir)
    results: dict[str, Any] = {"machine": machine(), "sizes": sizes, "stages": []}
    try:
        template = bench.make_template()
        print(f"template: a real 20-ticker run, {len(template['items'])} items, "
              f"{len(template['events'])} events, {len(template['posts'])} posts, "
              f"{template['seconds']:.1f} s", flush=True)
        newest = utcnow() - timedelta(hours=1)
        for size in sizes:
            seconds = bench.grow(size, newest)
            measured = time.perf_counter()
            bench.services.retention.record_usage(utcnow())     # what the daily pass does
            usage_seconds = time.perf_counter() - measured
            mb = db_mb(workdir / "history.db")
            print(f"\n{size} runs: built in {seconds:.1f} s, database {mb:.0f} MB "
                  f"({1024 * mb / max(1, size):.0f} KB per run); the daily disk measurement "
                  f"took {usage_seconds:.2f} s", flush=True)
            figures = bench.measure(args.repeat)
            for name, ms in figures.items():
                print(f"  {name:42s} {ms.median:9.1f} ms  (best {ms.best:.1f})", flush=True)
            results["stages"].append({"runs": size, "build_seconds": round(seconds, 1),
                                      "db_mb": round(mb, 1),
                                      "usage_measure_seconds": round(usage_seconds, 2),
                                      "load_average": list(os.getloadavg()),
                                      "ms": {k: round(v.median, 2) for k, v in figures.items()},
                                      "best_ms": {k: round(v.best, 2)
                                                  for k, v in figures.items()}})
    finally:
        bench.close()
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    write_results("history", results)


def report(results: dict[str, Any]) -> None:
    """The table: each cell ``median (best)``; growth and the target for both."""
    stages = results["stages"]
    if not stages:
        return
    first, last = stages[0], stages[-1]
    header = " | ".join(f"{s['runs']:,} runs" for s in stages)
    print(f"\n| figure, ms: median (best) | {header} | growth {first['runs']:,} -> "
          f"{last['runs']:,}: median (best) | target met: median / best |")
    print("|---|" + "---:|" * len(stages) + "---:|---|")
    for name in first["ms"]:
        medians = [s["ms"][name] for s in stages]
        bests = [s["best_ms"][name] for s in stages]
        grow_m, grow_b = (v[-1] / v[0] if v[0] else float("inf") for v in (medians, bests))

        cells = " | ".join(f"{m:.1f} ({b:.1f})" for m, b in zip(medians, bests, strict=True))
        print(f"| {name} | {cells} | x{grow_m:.2f} (x{grow_b:.2f}) | "
              f"{_met(name, medians, grow_m)} / {_met(name, bests, grow_b)} |")


def _met(name: str, values: list[float], growth: float) -> str:
    if name.startswith("old:"):
        return "-"
    if name == "5-ticker run":           # the automation's CPU: its growth only
        return "yes" if growth <= TARGET_GROWTH else "NO"
    return "yes" if values[-1] < TARGET_MS and growth <= TARGET_GROWTH else "NO"


if __name__ == "__main__":
    main()
