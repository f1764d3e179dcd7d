"""A 100-ticker stock run as fast as WordPress itself can take it: the floor, then the run.

    .venv/bin/python bench/throughput.py [--tickers 100] [--floor-articles 20]
        [--concurrency 2] [--processes auto|N] [--status publish] [--compare-processes 0]

One command, one machine, one WordPress. It starts the real WordPress the tests use
(tests/support/wordpress.py: MariaDB + PHP's built-in server), then:

1. **The floor**: what WordPress itself needs to receive one article, measured with a real
   stock article (its three charts and its HTML): three media uploads and one post, over REST,
   nothing else (no look-ups, no terms), first one article after another, then at the site's
   concurrency (that many articles at once). ms per article.
2. **The run**: the portal as it serves (``create_app`` with its run manager, generation
   processes, publishing service and SQLite store; emits go to its Socket.IO server), a demo
   run of ``--tickers`` tickers into the local archive, then the same tickers into the
   WordPress site (``concurrency`` as given), timed from submit to ``completed``. A 2-ticker
   run first starts the generation processes (reported as the cold start, not in the figures).

Printed: ms per ticker for the local archive and for WordPress, the floor (sequential and at
the site's concurrency), the ratio of the WordPress run to the sequential floor, the target
(the run within 1.2 x tickers x the sequential floor), requests per article by route, CPU
seconds of the portal process and its generation processes, and the load average (the figures
mean little on a busy machine). ``--compare-processes 0`` repeats the WordPress run with
generation in the run's threads. Results also go to bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.common import machine, portal_app, write_results  # noqa: E402

TARGET_RATIO = 1.2


# ---------------------------------------------------------------------------------------------
# Counting requests (bench instrumentation only: one counter per request).


class RequestCounter:
    """Counts every requests.Session request of this process by (method, REST route)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        original = requests.Session.request
        self._original = original
        counter = self

        def counted(session: requests.Session, method: str, url: str, *args: Any,
                    **kwargs: Any) -> Any:
            route = url.split("/wp-json/wp/v2/", 1)[-1].split("?", 1)[0]
            route = "posts/<id>" if route.startswith("posts/") else route
            with counter._lock:
                counter.counts[f"{method.upper()} {route}"] += 1
            return original(session, method, url, *args, **kwargs)

        requests.Session.request = counted  # type: ignore[method-assign]

    def take(self) -> Counter[str]:
        with self._lock:
            taken, self.counts = self.counts, Counter()
        return taken


# ---------------------------------------------------------------------------------------------
# The floor.


def sample_article() -> Any:
    """One real stock article (demo prices): its three charts and its HTML."""
    from automation_scripts.base import ItemContext
    from automation_scripts.stock.automation import create

    automation = create({})
    [item], _ = automation.prepare(["FLOOR"], {"data_source": "demo"}, date.today())
    with tempfile.TemporaryDirectory() as work:
        ctx = ItemContext(run_id="bench", user_id="bench", index=0, total=1,
                          options={"data_source": "demo"}, workdir=Path(work),
                          progress=lambda *a, **k: None, checkpoint=lambda: None)
        return automation.process(item, ctx)


def floor_ms(wordpress: Any, article: Any, articles: int, concurrency: int) -> tuple[float, float]:
    """(ms per article, WordPress CPU ms per article) WordPress needs for three uploads and one
    post, ``concurrency`` articles at once (one session per thread)."""
    from automation_scripts.publishing.safety import replace_image_placeholders

    auth = wordpress.admin_auth
    api = wordpress.api
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def one(_: int) -> None:
        s = session()
        media = []
        for image in article.images:
            response = s.post(api("media"), auth=auth, timeout=60,
                              files={"file": (image.filename, image.data, image.mime)},
                              data={"alt_text": image.alt})
            response.raise_for_status()
            media.append(response.json())
        html = replace_image_placeholders(article.html, {
            image.filename: uploaded["source_url"]
            for image, uploaded in zip(article.images, media, strict=True)})
        response = s.post(api("posts"), auth=auth, timeout=60, json={
            "title": article.title, "slug": f"floor-{uuid.uuid4().hex[:12]}",
            "status": "publish", "content": html, "excerpt": article.excerpt,
            "featured_media": media[0]["id"]})
        response.raise_for_status()

    one(0)                                           # warm WordPress's opcache
    wordpress_pids = sorted(_descendants(os.getpid()))
    cpu = _cpu_of(wordpress_pids)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(articles)))
    wall = time.perf_counter() - started
    return (round(1000 * wall / articles, 1),
            round(1000 * (_cpu_of(wordpress_pids) - cpu) / articles, 1))


def measure_floor(wordpress: Any, article: Any, articles: int, concurrency: int
                  ) -> dict[str, Any]:
    sequential, sequential_cpu = floor_ms(wordpress, article, articles, 1)
    concurrent, concurrent_cpu = floor_ms(wordpress, article, articles, concurrency)
    return {"sequential_ms": sequential, "concurrent_ms": concurrent,
            "wordpress_cpu_ms_per_article": sequential_cpu,
            "wordpress_cpu_ms_per_article_concurrent": concurrent_cpu,
            "loadavg": list(os.getloadavg())}


# ---------------------------------------------------------------------------------------------
# The run.




def run_once(app: Any, user_id: str, site_id: str, tickers: list[str], status: str,
             wordpress_pids: set[int]) -> dict[str, Any]:
    """Submit a demo run and wait for it to end: wall seconds, counts, CPU seconds."""
    services = app.extensions["tickzen"]
    started = time.perf_counter()
    cpu0 = _cpu(wordpress_pids)
    run, _ = services.runs.submit(user_id, "stock", site_id, tickers,
                                  {"data_source": "demo", "status": status})
    while True:
        current = services.store.get_run(run.id)
        if current.status in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.01)
    wall = time.perf_counter() - started
    cpu1 = _cpu(wordpress_pids)
    return {"run_id": run.id, "status": current.status, "seconds": round(wall, 3),
            "pss_mb": _pss_mb(wordpress_pids),
            "ms_per_ticker": round(1000 * wall / len(tickers), 1),
            "counts": dict(current.counts or {}), "events": current.last_seq,
            "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1}}


def _cpu(wordpress_pids: set[int]) -> dict[str, float]:
    """CPU seconds so far: this process (the portal), its other descendants (the generation
    processes: the fork server's children), and WordPress's processes (PHP, MariaDB)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    ours = [p for p in _descendants(os.getpid()) if p not in wordpress_pids]
    return {"portal": me.ru_utime + me.ru_stime, "generation_processes": _cpu_of(ours),
            "wordpress": _cpu_of(sorted(wordpress_pids))}


def _pss_mb(wordpress_pids: set[int]) -> dict[str, float]:
    """Memory now, as PSS (shared pages split between the processes sharing them): the
    portal process, and its generation processes (fork server and workers) together."""
    ours = [p for p in _descendants(os.getpid()) if p not in wordpress_pids]
    return {"portal": round(_pss_of([os.getpid()]), 1),
            "generation_processes": round(_pss_of(ours), 1)}


def _pss_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
    return total


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            for child in map(int, children):
                found += [child, *_descendants(child)]
    return found


def tickers_for(count: int, prefix: str) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [f"{prefix}{letters[i // 26 % 26]}{letters[i % 26]}" for i in range(count)]


def make_sites(app: Any, wordpress: Any, concurrency: int) -> tuple[str, str, str, str]:
    """A user with a local archive, a warm-up archive and the WordPress site."""
    from storage.base import Site

    services = app.extensions["tickzen"]
    store = services.store
    user = store.create_user(f"bench-{uuid.uuid4().hex[:6]}@example.com", "x")
    local = store.create_site(user.id, Site(id="", user_id=user.id, name="Archive",
                                            kind="local"))
    warm = store.create_site(user.id, Site(id="", user_id=user.id, name="Warm-up",
                                           kind="local"))
    wp = store.create_site(user.id, Site(
        id="", user_id=user.id, name="WordPress", kind="wordpress", url=wordpress.base_url,
        username=wordpress.admin_user,
        app_password_enc=services.secrets.encrypt(wordpress.admin_app_password),
        defaults={"default_status": "publish", "concurrency": concurrency,
                  "gap_minutes": [30, 90]}))
    return user.id, local.id, warm.id, wp.id


@dataclass
class Portal:
    """One portal app (one generation setting) with its user and sites."""

    name: str
    app: Any
    user_id: str
    local: str
    wordpress_site: str
    processes: int
    cold_start: dict[str, Any]


def open_portal(stack: contextlib.ExitStack, root: Path, name: str, wordpress: Any,
                concurrency: int, processes: str, status: str, wordpress_pids: set[int]
                ) -> Portal:
    app = stack.enter_context(portal_app(root / name, processes))
    user_id, local, warm, wp = make_sites(app, wordpress, concurrency)
    pool = app.extensions["tickzen"].runs.generation
    cold = run_once(app, user_id, warm, tickers_for(2, "W"), status, wordpress_pids)
    return Portal(name, app, user_id, local, wp, pool.processes if pool is not None else 0,
                  cold)


def wordpress_run(where: Portal, wordpress: Any, counter: RequestCounter, names: list[str],
                  status: str, wordpress_pids: set[int]) -> dict[str, Any]:
    """A run into the WordPress site, with the requests it made and what it left there."""
    before_posts = posts_total(wordpress)
    counter.take()
    result = run_once(where.app, where.user_id, where.wordpress_site, names, status,
                      wordpress_pids)
    made = counter.take()
    result["requests_per_article"] = {k: round(v / len(names), 2) for k, v in sorted(made.items())}
    result["new_posts_on_wordpress"] = posts_total(wordpress) - before_posts
    ledger = where.app.extensions["tickzen"].store.list_posts(
        where.user_id, where.wordpress_site, limit=10_000)
    result["ledger_published"] = sum(1 for p in ledger if p.status == "published")
    return result


def posts_total(wordpress: Any) -> int:
    response = requests.get(wordpress.api("posts"), auth=wordpress.admin_auth, timeout=60,
                            params={"status": "any", "per_page": 1, "context": "edit"})
    response.raise_for_status()
    return int(response.headers["X-WP-Total"])



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1,
                        help="floor + run pairs, back to back (the machine's load moves)")
    parser.add_argument("--floor-articles", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2, help="the site's concurrency")
    parser.add_argument("--processes", default="", help="TICKZEN_GENERATION_PROCESSES "
                        "(empty: the default, min(cores - 1, 2))")
    parser.add_argument("--compare-processes", default=None,
                        help="also run into WordPress with this many generation processes")
    parser.add_argument("--status", default="publish", choices=("publish", "draft"))
    args = parser.parse_args()

    from tests.support.wordpress import missing_packages, running_wordpress

    missing = missing_packages()
    if missing:
        sys.exit(f"WordPress is not installed here: missing {', '.join(missing)}")
    counter = RequestCounter()
    counter.install()
    results: dict[str, Any] = {"machine": machine(), "tickers": args.tickers,
                               "status": args.status, "concurrency": args.concurrency,
                               "rounds": []}
    with tempfile.TemporaryDirectory(prefix="tickzen-throughput-") as tmp, \
            running_wordpress(Path(tmp) / "wordpress") as wordpress, \
            contextlib.ExitStack() as stack:
        article = sample_article()
        results["article"] = {"images": len(article.images),
                              "image_bytes": [len(i.data) for i in article.images],
                              "html_chars": len(article.html)}
        wordpress_pids = set(_descendants(os.getpid()))     # before any portal starts
        modes = [("run", args.processes)]
        if args.compare_processes is not None:
            modes.append(("compare", args.compare_processes))
        portals = [open_portal(stack, Path(tmp), name, wordpress, args.concurrency, processes,
                               args.status, wordpress_pids) for name, processes in modes]
        results["portals"] = {p.name: {"generation_processes": p.processes,
                                       "cold_start_2_tickers": p.cold_start} for p in portals}
        results["local_archive"] = run_once(
            portals[0].app, portals[0].user_id, portals[0].local,
            tickers_for(args.tickers, "L"), args.status, wordpress_pids)
        for number in range(args.rounds):
            floor = measure_floor(wordpress, article, args.floor_articles, args.concurrency)
            runs = {p.name: wordpress_run(p, wordpress, counter,
                                          tickers_for(args.tickers, f"{p.name[0].upper()}{number}"),
                                          args.status, wordpress_pids) for p in portals}
            results["rounds"].append({"floor": floor, "runs": runs})
            report_round(number, results["rounds"][-1], args.tickers)
    results["summary"] = summary(results)
    results["loadavg_at_end"] = list(os.getloadavg())
    report(results)
    path = write_results("throughput", results)
    print(f"\nresults: {path.relative_to(ROOT)}")


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """Medians over the rounds; the ratio is each round's run over that round's floor."""
    rounds = results["rounds"]
    out: dict[str, Any] = {
        "floor_sequential_ms": median(r["floor"]["sequential_ms"] for r in rounds),
        "floor_concurrent_ms": median(r["floor"]["concurrent_ms"] for r in rounds)}
    for name in results["portals"]:
        runs = [r["runs"][name] for r in rounds]
        ratios = [run["ms_per_ticker"] / r["floor"]["sequential_ms"]
                  for run, r in zip(runs, rounds, strict=True)]
        out[name] = {"ms_per_ticker": median(run["ms_per_ticker"] for run in runs),
                     "ratio_to_sequential_floor": round(median(ratios), 2),
                     "ratios": [round(x, 2) for x in ratios],
                     "target_met": median(ratios) <= TARGET_RATIO}
    return out


def median(values: Any) -> float:
    return round(statistics.median(list(values)), 1)


def report_round(number: int, round_: dict[str, Any], tickers: int) -> None:
    floor = round_["floor"]
    print(f"round {number + 1}: floor {floor['sequential_ms']} ms/article sequential, "
          f"{floor['concurrent_ms']} at the site's concurrency (WordPress CPU "
          f"{floor['wordpress_cpu_ms_per_article']} ms/article; load {floor['loadavg'][0]:.2f})",
          flush=True)
    for name, run in round_["runs"].items():
        cpu = ", ".join(f"{k} {round(1000 * v / tickers)}" for k, v in run["cpu_seconds"].items())
        ratio = run["ms_per_ticker"] / floor["sequential_ms"]
        print(f"  [{name}] {tickers} tickers into WordPress: {run['seconds']} s = "
              f"{run['ms_per_ticker']} ms/ticker, {ratio:.2f} x the floor ({run['status']}; "
              f"{run['new_posts_on_wordpress']} new posts, "
              f"{run['ledger_published']} in the ledger; CPU ms/article: {cpu}; "
              f"{round(sum(run['requests_per_article'].values()), 2)} requests/article)",
              flush=True)


def report(results: dict[str, Any]) -> None:
    m, tickers, out = results["machine"], results["tickers"], results["summary"]
    print(f"\nmachine: {m['cpu_model']}, {m['cores']} cores; load "
          f"{[round(x, 2) for x in m['loadavg_at_start']]} at start, "
          f"{[round(x, 2) for x in results['loadavg_at_end']]} at end")
    article = results["article"]
    print(f"article: {article['images']} images ({sum(article['image_bytes']) // 1024} KB), "
          f"{article['html_chars']} characters of HTML; status {results['status']}; site "
          f"concurrency {results['concurrency']}")
    local = results["local_archive"]
    print(f"local archive: {tickers} tickers in {local['seconds']} s = {local['ms_per_ticker']} "
          f"ms/ticker (CPU s {local['cpu_seconds']}; PSS MB {local['pss_mb']})")
    print(f"floor (3 uploads + 1 post), median of {len(results['rounds'])} rounds: "
          f"{out['floor_sequential_ms']} ms/article sequential, {out['floor_concurrent_ms']} "
          f"ms/article at the site's concurrency")
    for name, portal_ in results["portals"].items():
        figures = out[name]
        last = results["rounds"][-1]["runs"][name]
        print(f"[{name}] generation processes {portal_['generation_processes']} (cold start of "
              f"a 2-ticker run: {portal_['cold_start_2_tickers']['seconds']} s): WordPress "
              f"{figures['ms_per_ticker']} ms/ticker, {figures['ratio_to_sequential_floor']} x "
              f"the sequential floor (rounds {figures['ratios']}; target <= {TARGET_RATIO}: "
              f"{'met' if figures['target_met'] else 'NOT met'})")
        print(f"  requests per article (last round): {last['requests_per_article']}; "
              f"PSS MB {last['pss_mb']}")


if __name__ == "__main__":
    main()
