"""Warm the forecasting stack once per process, so that the first API call that forecasts does not pay
for the stack's one-time start-up work (first calls into statsforecast's models and pandas' date and
group-by machinery, the calibration's sampling).

    from analytics.forecast.warm import warm_up
    seconds = warm_up()     # well under 0.1 s of CPU; idempotent (later calls return 0.0 at once)

The hub calls it in a background thread at start (``processors.analytics.warm_up``, on by default; see
docs/analytics_service.md), so it never delays ``/readyz``.
"""

from __future__ import annotations

import threading
import time

__all__ = ["warm_up"]

_done = threading.Event()
_lock = threading.Lock()


def warm_up() -> float:
    """Forecast a small synthetic hourly series once, the way budgets do (the bulk ensemble scored on
    totals, then sample paths and their quantiles); returns the seconds it took (0.0 when this process is
    already warm). Thread-safe; errors propagate (the caller logs them)."""
    if _done.is_set():
        return 0.0
    with _lock:
        if _done.is_set():
            return 0.0
        started = time.perf_counter()
        import numpy as np
        import pandas as pd

        from analytics.forecast.ensemble import EnsembleConfig, EnsembleForecaster

        n = 24 * 4  # four days of hours: enough for the daily-seasonal models to run
        hours = np.arange(n)
        y = 10.0 + 3.0 * np.sin(hours * 2 * np.pi / 24) + 0.1 * (hours % 7)
        df = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=n, freq="h"), "y": y})
        fc = EnsembleForecaster(freq="h", config=EnsembleConfig.totals(95.0))
        fc.forecast(df, h=24)
        np.quantile(np.cumsum(next(iter(fc.results_.values())).sample_paths(200), axis=1), 0.975, axis=0)
        _done.set()
        return time.perf_counter() - started
