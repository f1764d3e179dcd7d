"""End-to-end time per ticker of the stock pipeline, network excluded.

    .venv/bin/python bench/stock_report.py [--repeat 7] [--tickers GOOG KVUE DEMO1 ...]

Each ticker: 10 years of daily prices already in memory (the real GOOG and KVUE series from
../shared/data/prices when present, plus deterministic demo tickers), then analysis, forecast,
three PNG charts and the article, exactly as ``StockAutomation.process`` runs them
(``build_report``), plus writing the files to a temporary workdir. Prints median and p90 per
ticker (wall clock, and the process CPU time, which a busy machine inflates less), the peak
Python memory (tracemalloc, in a separate untimed pass) and the process's max RSS. Target: median
under 1 s per ticker. Results also go to bench/results/stock_report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation_scripts.stock.automation import build_report  # noqa: E402
from automation_scripts.stock.market_data import DemoProvider, RecordedProvider  # noqa: E402
from automation_scripts.writing import TemplateWriter  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "prices"


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--tickers", nargs="+", default=None)
    args = ap.parse_args(argv)
    histories = []
    recorded = RecordedProvider(DATA) if DATA.is_dir() else None
    if recorded is None:
        print(f"NOTE: {DATA} is absent; benchmarking demo tickers only")
    names = args.tickers or (["GOOG", "KVUE"] if recorded else []) + ["AAPL", "MSFT", "TSLA"]
    demo = DemoProvider()
    for name in names:
        provider = recorded if recorded and (DATA / f"{name}.csv").is_file() else demo
        histories.append(provider.history(name, years=10))
    writer = TemplateWriter()
    build_report(histories[0], writer)                  # warm-up: imports, font cache
    rows = []
    all_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for history in histories:
            times, cpu = [], []
            for i in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                report = build_report(history, writer)
                out = Path(tmp) / f"{history.ticker}-{i}"
                out.mkdir()
                for image in report.images:
                    (out / image.filename).write_bytes(image.data)
                (out / "report.json").write_text(json.dumps(report.report_json(),
                                                            default=str))
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            all_times += times
            size = sum(len(i.data) for i in report.images)
            rows.append({"ticker": history.ticker, "source": history.source,
                         "rows": len(history.frame), "median_s": statistics.median(times),
                         "p90_s": p90(times), "cpu_median_s": statistics.median(cpu),
                         "png_bytes": size})
    # Memory in a separate pass: tracemalloc slows allocation-heavy code several times over.
    tracemalloc.start()
    for history in histories:
        build_report(history, writer)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'ticker':8} {'source':18} {'rows':>5} {'median ms':>10} {'p90 ms':>8} "
          f"{'CPU ms':>7} {'PNG KB':>7}")
    for r in rows:
        print(f"{r['ticker']:8} {r['source']:18} {r['rows']:5d} {r['median_s'] * 1000:10.0f} "
              f"{r['p90_s'] * 1000:8.0f} {r['cpu_median_s'] * 1000:7.0f} "
              f"{r['png_bytes'] / 1024:7.0f}")
    overall = statistics.median(all_times)
    print(f"\nall tickers: median {overall * 1000:.0f} ms, p90 {p90(all_times) * 1000:.0f} ms "
          f"over {len(all_times)} runs (target: median < 1000 ms) -> "
          f"{'OK' if overall < 1.0 else 'MISSED'}")
    print(f"peak traced Python memory {peak / 2**20:.1f} MB; max RSS {rss_mb:.0f} MB; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    out = ROOT / "bench" / "results" / "stock_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "rows": rows,
                               "median_s": overall, "p90_s": p90(all_times),
                               "peak_traced_mb": peak / 2**20, "max_rss_mb": rss_mb,
                               "loadavg": os.getloadavg()[0]}, indent=2))
    return 0 if overall < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
