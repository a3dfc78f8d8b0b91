"""Budget math: spend forecast to the end of a budget period and the predicted exhaustion time.

Usage::

    from analytics.budget import forecast_budget

    result = forecast_budget(spend_df, budget=5_000.0, period_end="2024-03-31 23:00",
                             period_start="2024-03-01")        # spend_df: ds, y (per-period spend)
    result.forecast_total, result.forecast_total_lower, result.forecast_total_upper
    result.exhaustion                   # Timestamp, or None when not exhausted within the period
    result.exhaustion_earliest, result.exhaustion_latest, result.probability_exhausted
    result.path                         # ds, spend, cumulative, cumulative_lower, cumulative_upper

Formulas (per-period spend ``s_t``; ``S_0`` = spend in the period so far; ``B`` = budget):

- a cumulative input ``c_t`` is turned into ``s_t = c_t - c_{t-1}``, a negative difference being a
  counter reset (``s_t = c_t``), as Prometheus' ``increase`` treats it;
- future spend is forecast with :class:`analytics.forecast.EnsembleForecaster` up to the period end
  (``h = ceil((period_end - last) / step)`` steps): the point forecast ``yhat_t``, clipped at 0 (spend is
  never negative), and ``n_paths`` paths ``p^(i)_t`` drawn from its calibrated predictive distribution;
- the paths give the spread, the point forecast the centre: ``s^(i)_t = yhat_t + p^(i)_t - mean_i p^(i)_t``.
  (Clipping each drawn path at 0 instead would turn the spread of far steps into spend: with errors
  that grow over the horizon, a noisy 3 USD/h series came out at 7 USD/h, and the central forecast fell
  outside its own interval);
- cumulative spend ``C^(i)_t = S_0 + sum_{u <= t} s^(i)_u``; the central forecast is
  ``C_t = S_0 + sum yhat_u`` (the paths' mean); its interval the ``(1 - L) / 2`` and ``(1 + L) / 2``
  quantiles of ``C^(i)_t``, the lower bound kept non-decreasing and at least ``S_0``;
- the exhaustion time of a path is the first ``t`` with ``C_t >= B``, placed inside the step by linear
  interpolation ``ds_{t-1} + (B - C_{t-1}) / s_t * step``; ``exhaustion`` uses the central path,
  ``exhaustion_earliest`` / ``_latest`` the interval's quantiles of the paths' times (``None`` where that
  quantile falls after the period end), ``probability_exhausted`` the share of paths that cross ``B``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.forecast.ensemble import EnsembleForecaster
from analytics.forecast.frequency import infer_frequency, regularize

__all__ = ["BudgetForecast", "exhaustion_time", "forecast_budget", "to_per_period"]


@dataclass(frozen=True)
class BudgetForecast:
    """Spend forecast to the period end, with the predicted budget exhaustion (see module docstring)."""

    budget: float
    period_end: pd.Timestamp
    spent_to_date: float
    forecast_total: float
    forecast_total_lower: float
    forecast_total_upper: float
    exhaustion: pd.Timestamp | None
    exhaustion_earliest: pd.Timestamp | None
    exhaustion_latest: pd.Timestamp | None
    probability_exhausted: float
    path: pd.DataFrame

    @property
    def remaining(self) -> float:
        """Budget left today (negative when already overspent)."""
        return self.budget - self.spent_to_date


def to_per_period(values: pd.Series) -> pd.Series:
    """Per-period increments of a cumulative series; a decrease is a counter reset."""
    diff = values.diff()
    diff.iloc[0] = 0.0
    reset = diff < 0
    diff[reset] = values[reset]
    return diff


def exhaustion_time(
    cumulative: np.ndarray, spend: np.ndarray, ds: pd.DatetimeIndex, budget: float, start_total: float,
    step: pd.Timedelta,
) -> pd.Timestamp | None:
    """First time the cumulative path reaches ``budget``, interpolated within the step; None if never."""
    hits = np.flatnonzero(cumulative >= budget)
    if len(hits) == 0:
        return None
    t = int(hits[0])
    before = start_total if t == 0 else float(cumulative[t - 1])
    fraction = (budget - before) / spend[t] if spend[t] > 0 else 1.0
    return pd.Timestamp(ds[t] - step + fraction * step)


def _path_times(paths_cum: np.ndarray, budget: float) -> np.ndarray:
    """Fractional step index at which each path crosses ``budget`` (inf when it does not)."""
    crossed = paths_cum >= budget
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    times = np.full(len(paths_cum), np.inf)
    for i in np.flatnonzero(first >= 0):
        t = first[i]
        before = paths_cum[i, t - 1] if t > 0 else np.nan
        step_spend = paths_cum[i, t] - before if t > 0 else np.nan
        frac = (budget - before) / step_spend if t > 0 and step_spend > 0 else 1.0
        times[i] = t + frac
    return times


def forecast_budget(
    spend: pd.DataFrame,
    budget: float,
    period_end: Any,
    *,
    period_start: Any = None,
    cumulative: bool = False,
    time_col: str = "ds",
    value_col: str = "y",
    level: float = 95.0,
    n_paths: int = 2000,
    forecaster: EnsembleForecaster | None = None,
) -> BudgetForecast:
    """Forecast spend to ``period_end`` and when ``budget`` runs out (formulas in the module docstring).

    ``spend``: per-period spend (or a cumulative total with ``cumulative=True``) at a regular frequency;
    ``period_start``: start of the budget period (default: the first timestamp).
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    frame = spend[[time_col, value_col]].copy()
    frame[time_col] = pd.to_datetime(frame[time_col])
    frame = frame.sort_values(time_col)
    freq = infer_frequency(frame[time_col])
    regular, _ = regularize(frame, freq, time_col=time_col, target_col=value_col)
    series = regular[value_col]
    if cumulative:
        first = float(series.iloc[0])
        series = to_per_period(series)
        series.iloc[0] = first if period_start is None else 0.0
    start = pd.Timestamp(period_start) if period_start is not None else regular[time_col].iloc[0]
    in_period = (regular[time_col] >= start).to_numpy()
    spent = float(series[in_period].sum())
    end = pd.Timestamp(period_end)
    last = pd.Timestamp(regular[time_col].iloc[-1])
    step = freq.step
    h = max(0, math.ceil((end - last) / step))
    alpha = (100.0 - level) / 200.0
    if h == 0:
        empty = pd.DataFrame(columns=[time_col, "spend", "cumulative", "cumulative_lower", "cumulative_upper"])
        hit = spent >= budget
        return BudgetForecast(budget, end, spent, spent, spent, spent, None, None, None, float(hit), empty)
    fc = forecaster or EnsembleForecaster(freq=freq.alias, level=level)
    hist = pd.DataFrame({time_col: regular[time_col], value_col: series.to_numpy(dtype=float)})
    fc.forecast(hist, h=h, time_col=time_col, target_col=value_col)
    result = next(iter(fc.results_.values()))
    yhat = np.maximum(result.yhat, 0.0)
    drawn = result.sample_paths(n_paths)
    paths = yhat + (drawn - drawn.mean(axis=0))
    cum_paths = spent + np.cumsum(paths, axis=1)
    central = spent + np.cumsum(yhat)
    lower = np.maximum.accumulate(np.maximum(np.quantile(cum_paths, alpha, axis=0), spent))
    upper = np.maximum(np.quantile(cum_paths, 1 - alpha, axis=0), central)
    ds = pd.DatetimeIndex(result.ds)
    times = _path_times(np.column_stack([np.full(n_paths, spent), cum_paths]), budget)

    def to_stamp(index: float) -> pd.Timestamp | None:
        if not np.isfinite(index):
            return None
        stamp = last + (index - 1.0) * step
        return stamp if stamp <= end else None

    if spent >= budget:
        exhausted_at = _historic_exhaustion(series[in_period], regular[time_col][in_period], budget, step)
        earliest = latest = exhausted_at
        probability = 1.0
    else:
        exhausted_at = exhaustion_time(central, yhat, ds, budget, spent, step)
        exhausted_at = exhausted_at if exhausted_at is not None and exhausted_at <= end else None
        earliest = to_stamp(float(np.quantile(times, alpha, method="lower")))
        latest = to_stamp(float(np.quantile(times, 1 - alpha, method="higher")))
        probability = float(np.mean(np.isfinite(times)))
    path = pd.DataFrame(
        {time_col: ds, "spend": yhat, "cumulative": central, "cumulative_lower": lower,
         "cumulative_upper": upper}
    )
    return BudgetForecast(
        budget=budget, period_end=end, spent_to_date=spent, forecast_total=float(central[-1]),
        forecast_total_lower=float(lower[-1]), forecast_total_upper=float(upper[-1]),
        exhaustion=exhausted_at, exhaustion_earliest=earliest, exhaustion_latest=latest,
        probability_exhausted=probability, path=path,
    )


def _historic_exhaustion(
    spend: pd.Series, ds: pd.Series, budget: float, step: pd.Timedelta
) -> pd.Timestamp | None:
    values = spend.to_numpy(dtype=float)
    cum = np.cumsum(values)
    return exhaustion_time(cum, values, pd.DatetimeIndex(ds), budget, 0.0, step)
