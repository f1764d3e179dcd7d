"""Rolling-origin back-test of forecast models on real prices (../shared/data/prices).

    .venv/bin/python bench/forecast.py [--tickers GOOG KVUE] [--step 63] [--no-prophet]

For each ticker, origins every ``--step`` trading days over the last three years (at least
one year of training data before each); every model is fitted on the prices up to the origin
and predicts 90 trading days. Reported per model and ticker: median fit+predict time, MAPE over
days 1..30 and 1..90, the share of actual prices inside the 80 % and 95 % intervals over days
1..90, and the time and MAPE ratios to Prophet (the model the old system used). JSON goes to
bench/results/forecast.json. Prophet is a bench-only dependency (requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automation_scripts.stock.forecast import rw_drift_paths  # noqa: E402
from automation_scripts.stock.market_data import RecordedProvider  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "prices"
STEPS = 90
LEVELS = (80, 95)
Result = tuple[np.ndarray, dict[int, np.ndarray], dict[int, np.ndarray]]
Model = Callable[[pd.Series], Result]


def ours(close: pd.Series) -> Result:
    mean, lo, hi, _, _ = rw_drift_paths(close.to_numpy(), STEPS, LEVELS)
    return mean, lo, hi


def naive(close: pd.Series) -> Result:
    mean, lo, hi, _, _ = rw_drift_paths(close.to_numpy(), STEPS, LEVELS, drift_shrink=1.0,
                                        vol_window=10_000)
    return mean, lo, hi


def sm_ets(close: pd.Series) -> Result:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = pd.Series(np.log(close.to_numpy()))
    res = ETSModel(y, error="add", trend="add", damped_trend=True).fit(disp=False)
    pred = res.get_prediction(start=len(y), end=len(y) + STEPS - 1)
    mean = np.exp(pred.predicted_mean.to_numpy())
    lo, hi = {}, {}
    for lvl in LEVELS:
        frame = pred.summary_frame(alpha=1 - lvl / 100)
        lo[lvl] = np.exp(frame["pi_lower"].to_numpy())
        hi[lvl] = np.exp(frame["pi_upper"].to_numpy())
    return mean, lo, hi


def sm_arima(close: pd.Series) -> Result:
    from statsmodels.tsa.arima.model import ARIMA

    y = np.log(close.to_numpy())
    res = ARIMA(y, order=(1, 1, 1), trend="t").fit()
    fc = res.get_forecast(STEPS)
    mean = np.exp(fc.predicted_mean)
    lo, hi = {}, {}
    for lvl in LEVELS:
        ci = fc.conf_int(alpha=1 - lvl / 100)
        lo[lvl], hi[lvl] = np.exp(ci[:, 0]), np.exp(ci[:, 1])
    return mean, lo, hi


def _statsforecast(model_name: str) -> Model:
    def run(close: pd.Series) -> Result:
        from statsforecast.models import AutoARIMA, AutoETS

        model = AutoETS(season_length=1) if model_name == "AutoETS" else AutoARIMA()
        out = model.forecast(y=np.log(close.to_numpy()), h=STEPS, level=list(LEVELS))
        lo = {lvl: np.exp(out[f"lo-{lvl}"]) for lvl in LEVELS}
        hi = {lvl: np.exp(out[f"hi-{lvl}"]) for lvl in LEVELS}
        return np.exp(out["mean"]), lo, hi

    return run


def prophet(close: pd.Series) -> Result:
    from prophet import Prophet

    df = pd.DataFrame({"ds": close.index, "y": close.to_numpy()})
    model = Prophet(interval_width=0.80)
    model.fit(df)
    future = model.make_future_dataframe(STEPS, freq="B", include_history=False)
    samples = model.predictive_samples(future)["yhat"]          # (STEPS, n_samples)
    mean = model.predict(future)["yhat"].to_numpy()
    lo = {lvl: np.percentile(samples, 50 - lvl / 2, axis=1) for lvl in LEVELS}
    hi = {lvl: np.percentile(samples, 50 + lvl / 2, axis=1) for lvl in LEVELS}
    return mean, lo, hi


def candidates(with_prophet: bool) -> tuple[dict[str, Model], list[str]]:
    models: dict[str, Model] = {"ours: RW+drift (log)": ours, "naive RW": naive,
                                "statsmodels ETS(A,Ad,N) log": sm_ets,
                                "statsmodels ARIMA(1,1,1)+t log": sm_arima}
    notes: list[str] = []
    try:
        import statsforecast  # noqa: F401

        models["statsforecast AutoETS log"] = _statsforecast("AutoETS")
        models["statsforecast AutoARIMA log"] = _statsforecast("AutoARIMA")
    except ImportError:
        notes.append("statsforecast is not installed here: not compared")
    if with_prophet:
        try:
            import prophet as _p  # noqa: F401

            logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
            logging.getLogger("prophet").setLevel(logging.WARNING)
            models["Prophet (old system)"] = prophet
        except ImportError as exc:
            notes.append(f"PROPHET COULD NOT BE IMPORTED HERE ({exc}); ratios to Prophet "
                         f"are not available")
    return models, notes


def backtest(close: pd.Series, model: Model, origins: list[int]) -> dict[str, float]:
    times, ape30, ape90 = [], [], []
    cover = {lvl: [] for lvl in LEVELS}
    for o in origins:
        train = close.iloc[:o]
        actual = close.iloc[o:o + STEPS].to_numpy()
        t0 = time.perf_counter()
        mean, lo, hi = model(train)
        times.append(time.perf_counter() - t0)
        ape = np.abs(mean[:len(actual)] - actual) / actual
        ape30.append(float(np.mean(ape[:30])))
        ape90.append(float(np.mean(ape)))
        for lvl in LEVELS:
            inside = (actual >= lo[lvl][:len(actual)]) & (actual <= hi[lvl][:len(actual)])
            cover[lvl].append(float(np.mean(inside)))
    return {"seconds": statistics.median(times), "mape30": float(np.mean(ape30)),
            "mape90": float(np.mean(ape90)),
            **{f"cover{lvl}": float(np.mean(cover[lvl])) for lvl in LEVELS},
            "origins": len(origins)}


def origins_for(n: int, step: int) -> list[int]:
    first = max(252, n - 3 * 252)
    return list(range(first, n - STEPS + 1, step))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tickers", nargs="+", default=["GOOG", "KVUE"])
    ap.add_argument("--step", type=int, default=63)
    ap.add_argument("--no-prophet", action="store_true")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no price data at {DATA.resolve()}: nothing to benchmark")
        return 1
    warnings.filterwarnings("ignore")
    models, notes = candidates(not args.no_prophet)
    for note in notes:
        print("NOTE:", note)
    provider = RecordedProvider(DATA)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for ticker in args.tickers:
        close = provider.history(ticker, years=10).frame["Close"]
        origins = origins_for(len(close), args.step)
        results[ticker] = {}
        for name, model in models.items():
            model(close.iloc[:origins[0]])        # warm-up (imports, JIT), not timed
            results[ticker][name] = backtest(close, model, origins)
            print(f"  {ticker:5} {name:32} done", file=sys.stderr)
    print()
    header = (f"{'ticker':6} {'model':32} {'fit+pred ms':>11} {'MAPE30':>7} {'MAPE90':>7} "
              f"{'cov80':>6} {'cov95':>6} {'x faster':>9} {'MAPE90/P':>8}")
    print(header)
    print("-" * len(header))
    for ticker, per_model in results.items():
        ref = per_model.get("Prophet (old system)")
        for name, r in per_model.items():
            speed = f"{ref['seconds'] / r['seconds']:9.0f}" if ref else f"{'n/a':>9}"
            err = f"{r['mape90'] / ref['mape90']:8.2f}" if ref else f"{'n/a':>8}"
            r["speedup_vs_prophet"] = ref["seconds"] / r["seconds"] if ref else None
            r["mape90_ratio_vs_prophet"] = r["mape90"] / ref["mape90"] if ref else None
            r["mape30_ratio_vs_prophet"] = r["mape30"] / ref["mape30"] if ref else None
            print(f"{ticker:6} {name:32} {r['seconds'] * 1000:11.2f} {r['mape30']:7.2%} "
                  f"{r['mape90']:7.2%} {r['cover80']:6.0%} {r['cover95']:6.0%} "
                  f"{speed} {err}")
        print(f"{'':6} ({per_model[next(iter(per_model))]['origins']} origins, "
              f"every {args.step} trading days)")
    out = ROOT / "bench" / "results" / "forecast.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "machine":
                               platform.machine(), "step": args.step, "horizon": STEPS,
                               "notes": notes, "results": results}, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
