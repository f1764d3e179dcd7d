"""CPU per ticker of the stock pipeline, stage by stage, new chart code beside the old.

    .venv/bin/python bench/stock_report.py [--repeat 7] [--tickers GOOG KVUE AAPL ...]

Each ticker: 10 years of daily prices (the real GOOG and KVUE series from ../shared/data/prices
when present, plus deterministic demo tickers), then analysis, forecast, three PNG charts and
the article, exactly as ``StockAutomation.process`` runs them (``build_report``, its stages
read from the ``step`` callback it already reports progress through), plus writing the files
to a temporary workdir. Every run is done twice in a row on the same data: once with the
current charts (``automation_scripts/stock/charts.py``) and once with the chart code as it was
before (the baseline, ``tests/support/baseline_charts.py``), alternating which goes first.

Reported per stage, as medians over all runs of all tickers: CPU milliseconds
(``time.process_time``) for market data (reading the recorded CSV or generating demo prices;
not part of the article), analysis, forecast, each chart, the writer and the files, and the
article's total (everything but market data). Also: wall-clock totals, the one-off cost of a
thread's first charts (figures are built once per thread), PNG sizes, peak traced Python memory
(a separate untimed pass) and max RSS. Target: new article total at most 60 ms CPU per ticker.
Results also go to bench/results/stock_report.json.
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
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation_scripts.stock.automation import StockReport, build_report  # noqa: E402
from automation_scripts.stock.charts import StockCharts  # noqa: E402
from automation_scripts.stock.market_data import (  # noqa: E402
    DemoProvider,
    PriceHistory,
    RecordedProvider,
)
from automation_scripts.writing import TemplateWriter  # noqa: E402
from tests.support import baseline_charts  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "prices"
TARGET_MS = 60.0
STAGES = ("analysis", "forecast", "price chart", "momentum chart", "volume chart",
          "other", "writer", "files")
# build_report's progress messages, in order, and the stage each one starts.
STEP_STAGES = {"Analysing": "analysis", "Forecasting": "forecast", "Drawing charts": "other",
               "Writing the article": "writer"}


class Clock:
    """CPU time per stage of one run: ``mark(stage)`` closes the open stage, opens another."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self.stage: str | None = None
        self.since = time.process_time()

    def mark(self, stage: str | None) -> None:
        now = time.process_time()
        if self.stage is not None:
            self.ms[self.stage] += (now - self.since) * 1000
        self.stage, self.since = stage, now

    def step(self, message: str, _percent: int) -> None:
        self.mark(STEP_STAGES[message])


class TimedCharts:
    """Charts (new or baseline) that charge each chart to its own stage of ``clock``."""

    def __init__(self, price: Any, momentum: Any, volume: Any) -> None:
        self.draw = {"price": price, "momentum": momentum, "volume": volume}
        self.clock: Clock | None = None

    def _timed(self, name: str, *args: Any) -> bytes:
        assert self.clock is not None
        self.clock.mark(f"{name} chart")
        data = self.draw[name](*args)
        self.clock.mark("other")
        return data

    def price(self, *args: Any) -> bytes:
        return self._timed("price", *args)

    def momentum(self, *args: Any) -> bytes:
        return self._timed("momentum", *args)

    def volume(self, *args: Any) -> bytes:
        return self._timed("volume", *args)


def new_charts() -> TimedCharts:
    charts = StockCharts()
    return TimedCharts(charts.price, charts.momentum, charts.volume)


def old_charts() -> TimedCharts:
    return TimedCharts(baseline_charts.price_chart, baseline_charts.momentum_chart,
                       baseline_charts.volume_chart)


def run_once(history: PriceHistory, writer: TemplateWriter, charts: TimedCharts,
             out: Path) -> tuple[dict[str, float], float, StockReport]:
    """One article: CPU ms per stage and wall-clock seconds."""
    clock = Clock()
    charts.clock = clock
    t0 = time.perf_counter()
    report = build_report(history, writer, step=clock.step, charts=charts)
    clock.mark("files")
    out.mkdir()
    for image in report.images:
        (out / image.filename).write_bytes(image.data)
    (out / "report.json").write_text(json.dumps(report.report_json(), indent=1, default=str))
    clock.mark(None)
    wall = time.perf_counter() - t0
    stages = {stage: clock.ms.get(stage, 0.0) for stage in STAGES}
    stages["total"] = sum(stages.values())
    return stages, wall, report


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def load(names: list[str], repeat: int) -> tuple[list[PriceHistory], list[float]]:
    """The histories, and the CPU ms per ticker of obtaining them (median of ``repeat``)."""
    recorded = RecordedProvider(DATA) if DATA.is_dir() else None
    if recorded is None:
        print(f"NOTE: {DATA} is absent; benchmarking demo tickers only")
    demo = DemoProvider()
    histories, ms = [], []
    for name in names:
        provider = recorded if recorded and (DATA / f"{name}.csv").is_file() else demo
        times = []
        for _ in range(repeat):
            c0 = time.process_time()
            history = provider.history(name, years=10)
            times.append((time.process_time() - c0) * 1000)
        histories.append(history)
        ms.append(statistics.median(times))
    return histories, ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs per ticker and chart code")
    ap.add_argument("--tickers", nargs="+", default=None,
                    help="default: GOOG KVUE (recorded, when present) AAPL MSFT TSLA (demo)")
    args = ap.parse_args(argv)
    names = args.tickers or (["GOOG", "KVUE"] if DATA.is_dir() else []) + \
        ["AAPL", "MSFT", "TSLA"]
    histories, market_ms = load(names, args.repeat)
    writer = TemplateWriter()
    variants = {"old": old_charts(), "new": new_charts()}
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (imports, font cache), then a thread's first new charts, which build the
        # figures: measured once and kept out of the medians.
        run_once(histories[0], writer, variants["old"], Path(tmp) / "warm-up")
        first = run_once(histories[0], writer, variants["new"], Path(tmp) / "first")[0]
    per_stage: dict[str, dict[str, list[float]]] = {v: defaultdict(list) for v in variants}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for history, market in zip(histories, market_ms, strict=True):
            cpu: dict[str, list[float]] = {v: [] for v in variants}
            wall: dict[str, list[float]] = {v: [] for v in variants}
            size = {}
            for i in range(args.repeat):
                order = ("new", "old") if i % 2 else ("old", "new")
                for v in order:
                    out = Path(tmp) / f"{history.ticker}-{v}-{i}"
                    stages, seconds, report = run_once(history, writer, variants[v], out)
                    for stage, ms in stages.items():
                        per_stage[v][stage].append(ms)
                    cpu[v].append(stages["total"])
                    wall[v].append(seconds * 1000)
                    size[v] = sum(len(image.data) for image in report.images)
            rows.append({"ticker": history.ticker, "source": history.source,
                         "rows": len(history.frame), "market_data_ms": market,
                         **{f"{v}_cpu_ms": statistics.median(cpu[v]) for v in variants},
                         **{f"{v}_wall_ms": statistics.median(wall[v]) for v in variants},
                         **{f"{v}_wall_p90_ms": p90(wall[v]) for v in variants},
                         **{f"{v}_png_kb": size[v] / 1024 for v in variants}})
    tracemalloc.start()
    charts = StockCharts()
    for history in histories:
        build_report(history, writer, charts=charts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    runs = args.repeat * len(histories)
    print(f"CPU ms per ticker, median of {runs} runs ({args.repeat} x {len(histories)} "
          f"tickers) each; old = baseline chart code, same run, same data")
    print(f"{'stage':16} {'old':>7} {'new':>7} {'old/new':>8}")
    print(f"{'market data':16} {min(market_ms):.1f}..{max(market_ms):.1f} ms a ticker, the same "
          f"for both (recorded CSV or demo prices; not part of the article)")
    medians = {v: {s: statistics.median(per_stage[v][s]) for s in (*STAGES, "total")}
               for v in variants}
    for stage in (*STAGES, "total"):
        old, new = medians["old"][stage], medians["new"][stage]
        label = "article total" if stage == "total" else stage
        print(f"{label:16} {old:7.1f} {new:7.1f} {old / new if new else float('nan'):7.1f}x")
    print(f"(new code, first article on a fresh thread, figures built then: "
          f"{first['total']:.0f} ms; price {first['price chart']:.0f}, momentum "
          f"{first['momentum chart']:.0f}, volume {first['volume chart']:.0f})\n")
    print(f"{'ticker':8} {'source':18} {'rows':>5} {'data':>5} {'CPU old':>8} {'CPU new':>8} "
          f"{'wall old':>9} {'wall new':>9} {'p90 new':>8} {'PNG KB old/new':>15}")
    for r in rows:
        print(f"{r['ticker']:8} {r['source']:18} {r['rows']:5d} {r['market_data_ms']:5.1f} "
              f"{r['old_cpu_ms']:8.1f} {r['new_cpu_ms']:8.1f} {r['old_wall_ms']:9.1f} "
              f"{r['new_wall_ms']:9.1f} {r['new_wall_p90_ms']:8.1f} "
              f"{r['old_png_kb']:7.0f}/{r['new_png_kb']:<7.0f}")
    total = medians["new"]["total"]
    ok = total <= TARGET_MS
    print(f"\narticle CPU per ticker: old {medians['old']['total']:.1f} ms, new {total:.1f} ms "
          f"(target: new <= {TARGET_MS:.0f} ms) -> {'OK' if ok else 'MISSED'}")
    print(f"peak traced Python memory {peak / 2**20:.1f} MB; max RSS {rss_mb:.0f} MB; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    out = ROOT / "bench" / "results" / "stock_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "repeat": args.repeat,
                               "stages_ms": medians, "first_article_ms": first,
                               "market_data_ms": dict(zip(names, market_ms, strict=True)),
                               "rows": rows, "target_ms": TARGET_MS,
                               "peak_traced_mb": peak / 2**20, "max_rss_mb": rss_mb,
                               "loadavg": os.getloadavg()[0]}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
