"""Evaluate the forecasting ensemble against seasonal-naive baselines.

Usage::

    python benchmarks/forecast_eval.py            # all M4 hourly series + NYC taxi (a few minutes)
    python benchmarks/forecast_eval.py --quick    # a few series, < 60 s, for CI
    python benchmarks/forecast_eval.py --scale 1000   # bulk (fast-mode) rate on synthetic series

Each series' last 168 hours are held out. Metrics per series: MAPE (series without zeros in the
hold-out), sMAPE, MASE (scaled by the in-sample MAE of seasonal naive 24) and the coverage of the 95 %
interval; the baselines seasonal-naive-24 and -168 are scored in the same run. The last line printed
is one JSON object with the aggregates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.forecast.ensemble import EnsembleConfig, forecast_array

DATA = Path(os.environ.get("FORECAST_DATA", "/work/shared/data/forecast"))
HOLDOUT = 168
SEASONS = [24, 168]


def load_series(limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """M4 hourly (train and test joined) and the NYC taxi series, as arrays."""
    train = pd.read_csv(DATA / "m4" / "Hourly-train.csv", index_col=0)
    test = pd.read_csv(DATA / "m4" / "Hourly-test.csv", index_col=0)
    series = []
    for uid in train.index:
        y = np.concatenate([train.loc[uid].dropna().to_numpy(float), test.loc[uid].dropna().to_numpy(float)])
        series.append((str(uid), y))
    taxi = pd.read_csv(DATA / "nyc_taxi_hourly.csv")
    series.append(("nyc_taxi", taxi["y"].to_numpy(float)))
    if limit is not None:
        series = [*series[:limit - 1], series[-1]]
    return series


def _metrics(actual: np.ndarray, pred: np.ndarray, scale: float) -> dict[str, float]:
    err = np.abs(actual - pred)
    denom = np.abs(actual) + np.abs(pred)
    smape = float(np.mean(np.where(denom > 0, 2 * err / np.where(denom > 0, denom, 1), 0.0)) * 100)
    mape = float(np.mean(err / np.abs(actual)) * 100) if np.all(actual != 0) else float("nan")
    return {"mape": mape, "smape": smape, "mase": float(np.mean(err) / scale) if scale > 0 else float("nan")}


def snaive(history: np.ndarray, season: int, h: int) -> np.ndarray:
    return np.resize(history[-season:], h)


def evaluate_one(item: tuple[str, np.ndarray], config: EnsembleConfig) -> dict[str, Any]:
    uid, y = item
    history, actual = y[:-HOLDOUT], y[-HOLDOUT:]
    scale = float(np.mean(np.abs(history[24:] - history[:-24])))
    start = time.perf_counter()
    res = forecast_array(history, HOLDOUT, SEASONS, config)
    seconds = time.perf_counter() - start
    row: dict[str, Any] = {"id": uid, "seconds": seconds, "n": len(history)}
    row["ensemble"] = _metrics(actual, res.yhat, scale)
    row["coverage"] = float(np.mean((actual >= res.lower) & (actual <= res.upper)))
    row["snaive24"] = _metrics(actual, snaive(history, 24, HOLDOUT), scale)
    row["snaive168"] = _metrics(actual, snaive(history, 168, HOLDOUT), scale)
    row["weights"] = res.weights
    return row


def _chunk(items: list[tuple[str, np.ndarray]], config: EnsembleConfig) -> list[dict[str, Any]]:
    return [evaluate_one(item, config) for item in items]


def run_eval(series: list[tuple[str, np.ndarray]], config: EnsembleConfig, n_jobs: int) -> dict[str, Any]:
    start = time.perf_counter()
    if n_jobs > 1:
        chunks = [series[i :: n_jobs * 4] for i in range(n_jobs * 4)]
        with ProcessPoolExecutor(n_jobs) as pool:
            rows = [r for f in [pool.submit(_chunk, c, config) for c in chunks if c] for r in f.result()]
    else:
        rows = _chunk(series, config)
    wall = time.perf_counter() - start
    summary: dict[str, Any] = {"series": len(rows), "wall_seconds": round(wall, 1)}
    for name in ("ensemble", "snaive24", "snaive168"):
        for metric in ("mape", "smape", "mase"):
            values = np.array([r[name][metric] for r in rows], dtype=float)
            summary[f"{name}_{metric}_mean"] = round(float(np.nanmean(values)), 3)
            summary[f"{name}_{metric}_median"] = round(float(np.nanmedian(values)), 3)
    best_base = np.minimum([r["snaive24"]["mase"] for r in rows], [r["snaive168"]["mase"] for r in rows])
    ens = np.array([r["ensemble"]["mase"] for r in rows])
    summary["wins_vs_best_snaive"] = int(np.sum(ens < best_base))
    coverage = np.array([r["coverage"] for r in rows])
    summary["coverage95_mean"] = round(float(coverage.mean()), 4)
    summary["coverage95_median"] = round(float(np.median(coverage)), 4)
    mape = np.array([r["ensemble"]["mape"] for r in rows])
    summary["series_mape_below_15"] = int(np.sum(mape < 15))
    summary["series_with_mape"] = int(np.sum(np.isfinite(mape)))
    secs = np.array([r["seconds"] for r in rows])
    summary["fit_predict_seconds_mean"] = round(float(secs.mean()), 3)
    summary["fit_predict_seconds_p95"] = round(float(np.quantile(secs, 0.95)), 3)
    taxi = [r for r in rows if r["id"] == "nyc_taxi"]
    if taxi:
        summary["nyc_taxi"] = {k: round(v, 3) for k, v in taxi[0]["ensemble"].items()}
        summary["nyc_taxi"]["coverage95"] = round(taxi[0]["coverage"], 4)
    return summary


def synthetic(n: int, length: int = 24 * 60, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    t = np.arange(length + HOLDOUT)
    out = []
    for i in range(n):
        level = rng.uniform(50, 500)
        daily = 1 + 0.4 * np.sin(2 * np.pi * (t + rng.integers(24)) / 24)
        weekly = 1 + 0.15 * np.sin(2 * np.pi * t / 168)
        y = level * daily * weekly * (1 + 0.001 * rng.normal() * t / 24) + rng.normal(0, 0.05 * level, len(t))
        out.append((f"s{i}", np.maximum(y, 0)))
    return out


def run_scale(n: int, n_jobs: int) -> dict[str, Any]:
    series = [(uid, y[:-HOLDOUT]) for uid, y in synthetic(n)]
    config = EnsembleConfig.bulk()
    start = time.perf_counter()
    chunks = [series[i :: n_jobs * 4] for i in range(n_jobs * 4)]
    with ProcessPoolExecutor(n_jobs) as pool:
        futures = [pool.submit(_fit_chunk, c, config) for c in chunks if c]
        done = sum(f.result() for f in futures)
    wall = time.perf_counter() - start
    return {"scale_series": done, "scale_wall_seconds": round(wall, 1),
            "scale_series_per_second": round(done / wall, 1)}


def _fit_chunk(items: list[tuple[str, np.ndarray]], config: EnsembleConfig) -> int:
    for _, y in items:
        forecast_array(y, HOLDOUT, SEASONS, config)
    return len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few series only (CI)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N series")
    parser.add_argument("--scale", type=int, default=0, help="also time N synthetic series in fast mode")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--mode", choices=["full", "fast"], default="full")
    args = parser.parse_args(argv)
    limit = 6 if args.quick else args.limit
    config = EnsembleConfig.bulk() if args.mode == "fast" else EnsembleConfig()
    summary = run_eval(load_series(limit), config, args.n_jobs)
    if args.scale:
        summary.update(run_scale(args.scale, args.n_jobs))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
