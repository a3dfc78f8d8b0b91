"""How often the 95 % interval of a forecast *total* (a budget's spend to the period end) holds the
actual total.

Usage::

    python benchmarks/budget_eval.py            # 120 M4 hourly series + 90 simulated ones (a few minutes)
    python benchmarks/budget_eval.py --quick    # 20 + 15, about 30 s

Each series' last ``--horizon`` hours (168) are held out; ``analytics.budget.forecast_budget`` forecasts
their sum with its 95 % interval, as a budget does. Three methods, in the same run:

* ``hub``: what budgets use: ``EnsembleConfig.totals()`` (three validation windows) and paths that share
  a level draw (``Calibration.shared``);
* ``independent``: the same fit with every step of a path drawn independently (``shared = 0``);
* ``one_window``: the bulk configuration (one validation window), independent steps: the code before
  27 Nov 2026, except that its paths were also clipped at zero.

Data: M4 hourly (``FORECAST_DATA``, the first series in file order, strictly positive values taken as
an hourly spend), and simulated spend: stationary noise, a daily cycle and gamma-distributed hours.
The last line printed is one JSON object: coverage (target 0.95), median interval width relative to the
actual total, and seconds per series, per method and data set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.budget import forecast_budget
from analytics.forecast import EnsembleConfig, EnsembleForecaster
from analytics.forecast.calibration import Calibration

DATA = Path(os.environ.get("FORECAST_DATA", "/work/shared/data/forecast"))
HISTORY = 24 * 21


def m4_series(limit: int) -> list[np.ndarray]:
    """M4 hourly series (train and test joined) with at least three weeks of history and no zeros."""
    train = pd.read_csv(DATA / "m4" / "Hourly-train.csv", index_col=0)
    test = pd.read_csv(DATA / "m4" / "Hourly-test.csv", index_col=0)
    out = []
    for sid in train.index:
        y = np.concatenate([train.loc[sid].dropna().to_numpy(float), test.loc[sid].dropna().to_numpy(float)])
        if len(y) >= HISTORY + 168 and (y > 0).all():
            out.append(y[-(HISTORY + 168) :])
        if len(out) >= limit:
            break
    return out


def simulated_series(per_kind: int, seed: int = 7) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = HISTORY + 168
    t = np.arange(n)
    kinds: dict[str, list[np.ndarray]] = {"stationary": [], "daily": [], "gamma": []}
    for _ in range(per_kind):
        kinds["stationary"].append(np.maximum(0.0, 5 + rng.normal(0, 1.5, n)))
        kinds["daily"].append(np.maximum(0.0, 5 + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, n)))
        kinds["gamma"].append(rng.gamma(4.0, 1.25, n))
    return kinds


@contextmanager
def independent_steps() -> Iterator[None]:
    """Every calibration fitted inside draws the steps of a path independently (``shared = 0``)."""
    original = Calibration.from_errors.__func__  # type: ignore[attr-defined]

    def without_level(cls: type[Calibration], *args: Any, **kwargs: Any) -> Calibration:
        return dataclasses.replace(original(cls, *args, **kwargs), shared=0.0)

    with mock.patch.object(Calibration, "from_errors", classmethod(without_level)):
        yield


def interval(y: np.ndarray, horizon: int, config: EnsembleConfig) -> tuple[float, float]:
    """The 95 % interval of the sum of the last ``horizon`` values, forecast from the values before."""
    ds = pd.date_range("2026-01-01", periods=len(y), freq="h")
    past = pd.DataFrame({"ds": ds[:-horizon], "y": y[:-horizon]})
    # the period ends when the last held-out hour does (bucket labels are starts; the end is exclusive)
    result = forecast_budget(past, 1e18, ds[-1] + pd.Timedelta(hours=1), period_start=ds[-horizon], n_paths=1000,
                             forecaster=EnsembleForecaster(freq="h", config=config))  # fmt: skip
    return result.forecast_total_lower, result.forecast_total_upper


METHODS = {
    "hub": (EnsembleConfig.totals, False),
    "independent": (EnsembleConfig.totals, True),
    "one_window": (EnsembleConfig.bulk, True),
}


def evaluate(series: list[np.ndarray], horizon: int) -> dict[str, Any]:
    out: dict[str, Any] = {"series": len(series)}
    for name, (make, independent) in METHODS.items():
        hits, widths, started = 0, [], time.perf_counter()
        with independent_steps() if independent else _nothing():
            for y in series:
                lo, hi = interval(y, horizon, make(95.0))
                actual = float(y[-horizon:].sum())
                hits += lo <= actual <= hi
                widths.append((hi - lo) / actual if actual > 0 else np.nan)
        out[name] = {"coverage": round(hits / len(series), 3), "median_width": round(float(np.nanmedian(widths)), 4),
                     "s_per_series": round((time.perf_counter() - started) / len(series), 3)}  # fmt: skip
    return out


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 M4 and 15 simulated series")
    parser.add_argument("--m4", type=_positive, default=120, help="M4 hourly series (default 120)")
    parser.add_argument("--simulated", type=_positive, default=30, help="simulated series per kind (default 30)")
    parser.add_argument("--horizon", type=_positive, default=168, help="hours summed, at most 168 (default 168)")
    args = parser.parse_args(argv)
    if args.horizon > 168:  # the series hold three weeks of history and one week held out
        parser.error(f"--horizon must be at most 168, got {args.horizon}")
    m4_n, sim_n = (20, 5) if args.quick else (args.m4, args.simulated)
    sets: dict[str, list[np.ndarray]] = {}
    if (DATA / "m4" / "Hourly-train.csv").is_file():
        sets["m4"] = m4_series(m4_n)
    else:
        print(f"budget_eval: no M4 data under {DATA}; simulated series only", file=sys.stderr)
    sets.update(simulated_series(sim_n))
    report: dict[str, Any] = {"benchmark": "budget_eval", "horizon_h": args.horizon, "level": 95}
    for name, series in sets.items():
        report[name] = evaluate(series, args.horizon)
        row = report[name]
        print(f"{name:<11} n={row['series']:<4} " + "  ".join(
            f"{m} {row[m]['coverage']:.2f} (width {row[m]['median_width']:.3f})" for m in METHODS), flush=True)  # fmt: skip
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
