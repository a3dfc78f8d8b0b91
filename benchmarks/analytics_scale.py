"""Scale of the analytics service: anomaly scoring per minute and bulk forecasting, against the targets.

Targets (issue 5): score 10,000 series a minute; forecast 1,000 hourly series (60 days of history,
7-day horizon). What is timed is the service's own path, minus reading the input from the store:

* **scoring** — ``analytics.service.models.run_anomaly`` on the bulk path (vectorised robust scoring of
  the 12 newest points of every series against a 1,000-point window, derived rows and anomaly records
  built) plus writing the derived rows to ``derived_series`` in a temporary DuckDB; next to it the
  per-series ensemble path (``AnomalyDetector([robust, seasonal])`` on 1,000 points) on a sample,
  extrapolated;
* **forecasting** — ``run_forecast`` on the bulk path (seasonal window average + conformal intervals,
  168 steps, rows built), its interval coverage and MAE on a held-out week, and the statsforecast
  bulk ensemble (``EnsembleConfig.bulk()``) on a sample, extrapolated to 1,000 series on one core.

Synthetic series: daily seasonality, noise, a few level shifts and spikes. The last line printed is
one JSON object.

    .venv/bin/python benchmarks/analytics_scale.py            # full targets (~1-2 min on 2 shared cores)
    .venv/bin/python benchmarks/analytics_scale.py --quick    # smaller sizes, < 60 s (CI)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.anomaly import AnomalyDetector, RobustDeviationDetector, SeasonalResidualDetector
from analytics.forecast import EnsembleConfig, EnsembleForecaster
from analytics.service.config import ModelSpec
from analytics.service.derived import DerivedRepository
from analytics.service.models import run_anomaly, run_forecast
from analytics.service.series import Series
from hubcore.storage.embedded import EmbeddedStore

T0 = 1_760_000_000


def synthetic(n_series: int, n_points: int, step: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per_day = 86_400 // step
    t = np.arange(n_points)
    level = rng.uniform(10, 1000, size=(n_series, 1))
    amp = rng.uniform(0.05, 0.4, size=(n_series, 1)) * level
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    x = level + amp * np.sin(2 * np.pi * t / per_day + phase) + rng.normal(0, 0.05, size=(n_series, n_points)) * level
    spikes = rng.integers(0, n_points, size=n_series // 50)
    x[np.arange(spikes.size), spikes] *= 4
    return np.maximum(x, 0.0)


def as_series(x: np.ndarray, step: int) -> list[Series]:
    ts = T0 + step * np.arange(x.shape[1], dtype=np.int64)
    return [Series({"series": str(i)}, ts, x[i], step) for i in range(x.shape[0])]


def bench_scoring(n_series: int, sample: int) -> dict[str, float]:
    x = synthetic(n_series, 1012, 60, 1)
    series = as_series(x, 60)
    spec = ModelSpec(model_class="anomaly")
    start = time.perf_counter()
    rows, records, _ = run_anomaly("bench", "q", "anomaly", spec, series, None, bulk_threshold=1)
    score_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(tmp, wal_fsync=False)
        store.start()
        try:
            start = time.perf_counter()
            DerivedRepository(store).write(rows)
            write_s = time.perf_counter() - start
        finally:
            store.shutdown()
    start = time.perf_counter()
    for s in series[:sample]:
        AnomalyDetector([RobustDeviationDetector(), SeasonalResidualDetector()]).score(
            pd.DataFrame({"timestamp": pd.to_datetime(s.ts, unit="s"), "value": s.values})
        )
    ensemble_per_series = (time.perf_counter() - start) / sample
    total = score_s + write_s
    return {
        "series": n_series, "points_per_series": 1012, "new_points_scored": 12,
        "bulk_score_s": round(score_s, 3), "derived_rows": len(rows), "write_rows_s": round(write_s, 3),
        "anomalies": len(records), "bulk_series_per_minute": round(n_series / total * 60),
        "ensemble_s_per_series": round(ensemble_per_series, 4),
        "ensemble_series_per_minute_one_core": round(60 / ensemble_per_series),
    }  # fmt: skip


def bench_forecast(n_series: int, sample: int) -> dict[str, float]:
    h, days = 168, 60
    x = synthetic(n_series, days * 24 + h, 3600, 2)
    train, test = x[:, :-h], x[:, -h:]
    series = as_series(train, 3600)
    spec = ModelSpec(model_class="forecast", params={"horizon": h})
    start = time.perf_counter()
    rows, results = run_forecast("bench", "q", "forecast", spec, series, bulk_threshold=1)
    bulk_s = time.perf_counter() - start
    yhat = np.vstack([results[s.key]["yhat"] for s in series])
    lower = np.vstack([results[s.key]["yhat_lower"] for s in series])
    upper = np.vstack([results[s.key]["yhat_upper"] for s in series])
    scale = np.mean(np.abs(train), axis=1, keepdims=True)
    coverage = float(np.mean((test >= lower) & (test <= upper)))
    bulk_mae = float(np.mean(np.abs(test - yhat) / scale))
    frame = pd.concat([pd.DataFrame({"unique_id": s.key, "ds": pd.to_datetime(s.ts, unit="s"), "y": s.values})
                       for s in series[:sample]])  # fmt: skip
    fc = EnsembleForecaster(freq="h", config=EnsembleConfig.bulk())
    fc.forecast(frame.iloc[:1500], h=h)  # warm numba up on one series
    start = time.perf_counter()
    out = fc.forecast(frame, h=h)
    ens_per_series = (time.perf_counter() - start) / sample
    ens = out["yhat"].to_numpy().reshape(sample, h)
    ens_mae = float(np.mean(np.abs(test[:sample] - ens) / scale[:sample]))
    ens_cov = float(np.mean((test[:sample] >= out["yhat_lower"].to_numpy().reshape(sample, h))
                            & (test[:sample] <= out["yhat_upper"].to_numpy().reshape(sample, h))))  # fmt: skip
    return {
        "series": n_series, "history_hours": days * 24, "horizon_hours": h, "bulk_s": round(bulk_s, 3),
        "derived_rows": len(rows), "bulk_coverage_95": round(coverage, 3), "bulk_relative_mae": round(bulk_mae, 4),
        "bulk_relative_mae_same_sample": round(float(np.mean(np.abs(test[:sample] - yhat[:sample]) / scale[:sample])), 4),
        "ensemble_sample": sample, "ensemble_s_per_series": round(ens_per_series, 3),
        "ensemble_1000_series_s_one_core": round(1000 * ens_per_series, 1),
        "ensemble_relative_mae": round(ens_mae, 4), "ensemble_coverage_95": round(ens_cov, 3),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes for CI (< 60 s)")
    args = ap.parse_args(argv)
    n_score, n_fc = (2_000, 200) if args.quick else (10_000, 1_000)
    scoring = bench_scoring(n_score, 5 if args.quick else 20)
    print(f"scoring: {scoring}", file=sys.stderr)
    forecasting = bench_forecast(n_fc, 3 if args.quick else 10)
    print(f"forecasting: {forecasting}", file=sys.stderr)
    result = {
        "benchmark": "analytics_scale", "quick": args.quick, "scoring": scoring, "forecasting": forecasting,
        "targets": {"scoring_series_per_minute": 10_000, "forecast_series": 1_000, "forecast_history_days": 60,
                    "forecast_horizon_days": 7},
        "meets": {"scoring": scoring["bulk_series_per_minute"] >= 10_000,
                  "forecast_1000_within_a_minute": forecasting["bulk_s"] * 1000 / n_fc <= 60},
    }  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
