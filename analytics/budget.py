"""Budget math: spend forecast to the end of a budget period and the predicted exhaustion time.

Usage::

    from analytics.budget import forecast_budget

    result = forecast_budget(spend_df, budget=5_000.0, period_end="2024-04-01",
                             period_start="2024-03-01")        # spend_df: ds, y (per-period spend)
    result.forecast_total, result.forecast_total_lower, result.forecast_total_upper
    result.exhaustion                   # Timestamp, or None when not exhausted within the period
    result.exhaustion_earliest, result.exhaustion_latest, result.probability_exhausted
    result.path                         # ds, spend, cumulative, cumulative_lower, cumulative_upper

Formulas (per-period spend ``s_t``; ``S_0`` = spend in the period so far; ``B`` = budget):

- a cumulative input ``c_t`` is turned into ``s_t = c_t - c_{t-1}``, a negative difference being a
  counter reset (``s_t = c_t``), as Prometheus' ``increase`` treats it;
- a row's timestamp is the *start* of its bucket: the row ``last`` covers ``[last, last + step)``, and
  ``period_end`` is exclusive (the instant the period ends);
- future spend is forecast with :class:`analytics.forecast.EnsembleForecaster` for the buckets that
  start before the period end (``h = ceil((period_end - last - step) / step)`` steps): the point
  forecast ``yhat_t``, clipped at 0 (spend is never negative), and ``n_paths`` paths ``p^(i)_t`` drawn
  from its calibrated predictive distribution; each step counts pro rata for the part of its bucket
  inside ``[max(as_of, period_start), period_end)`` (``as_of``: the time spend is known up to; the spend of the current,
  incomplete bucket before it is ``partial_spend``, part of ``S_0``), so the forecast covers exactly the
  time left;
- the paths give the spread, the point forecast the centre: ``s^(i)_t = yhat_t + p^(i)_t - mean_i p^(i)_t``.
  (Clipping each drawn path at 0 instead would turn the spread of far steps into spend: with errors
  that grow over the horizon, a noisy 3 USD/h series came out at 7 USD/h, and the central forecast fell
  outside its own interval);
- cumulative spend ``C^(i)_t = S_0 + sum_{u <= t} s^(i)_u``; the central forecast is
  ``C_t = S_0 + sum yhat_u`` (the paths' mean); its interval the ``(1 - L) / 2`` and ``(1 + L) / 2``
  quantiles of ``C^(i)_t``, the lower bound kept non-decreasing and at least ``S_0``;
- the exhaustion time of a path is the first ``t`` with ``C_t >= B``, placed inside the step by linear
  interpolation ``ds_t + (B - C_{t-1}) / s_t * step`` (the bucket starting at its label; the current
  bucket's part from ``as_of``); ``exhaustion`` uses the central path,
  ``exhaustion_earliest`` / ``_latest`` the interval's quantiles of the paths' times (``None`` where that
  quantile falls after the period end), ``probability_exhausted`` the share of paths that cross ``B``;
- a budget already spent (``S_0 >= B``) is still forecast to the period end (the overrun); its
  exhaustion (and earliest/latest) is the historic one, when the period's cumulative spend crossed ``B``
  (:func:`historic_exhaustion`), and ``probability_exhausted`` is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.forecast.ensemble import EnsembleForecaster
from analytics.forecast.frequency import infer_frequency, regularize

__all__ = ["BudgetForecast", "exhaustion_time", "forecast_budget", "historic_exhaustion", "to_per_period"]


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
    """First time the cumulative path reaches ``budget``; None if never.

    ``ds`` are bucket starts: bucket ``t`` spends ``spend[t]`` evenly over ``[ds[t], ds[t] + step)``, so the
    crossing is ``ds[t] + (budget - C_{t-1}) / spend[t] * step``.
    """
    hits = np.flatnonzero(cumulative >= budget)
    if len(hits) == 0:
        return None
    t = int(hits[0])
    before = start_total if t == 0 else float(cumulative[t - 1])
    fraction = min(1.0, max(0.0, (budget - before) / spend[t])) if spend[t] > 0 else 1.0
    return pd.Timestamp(ds[t] + fraction * step)


def historic_exhaustion(
    spend: np.ndarray | pd.Series, ds: Any, budget: float, step: pd.Timedelta, *,
    partial_spend: float = 0.0, partial_from: Any = None, as_of: Any = None,
) -> pd.Timestamp | None:
    """When the spend so far reached ``budget``: ``spend`` per complete bucket of the period (``ds`` their
    starts), then ``partial_spend`` spread over ``[partial_from, as_of)`` (the current, incomplete bucket);
    None when it has not."""
    values = np.nan_to_num(np.asarray(spend, dtype=float))
    cum = np.cumsum(values)
    hit = exhaustion_time(cum, values, pd.DatetimeIndex(ds), budget, 0.0, step)
    before = float(cum[-1]) if len(cum) else 0.0
    if hit is not None or partial_spend <= 0 or before + partial_spend < budget:
        return hit
    lo, hi = pd.Timestamp(partial_from), pd.Timestamp(as_of)
    return pd.Timestamp(lo + (budget - before) / partial_spend * (hi - lo))


def _crossing_times(
    cum: np.ndarray, base: float, budget: float, starts: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Offset (in the unit of ``starts``/``lengths``) at which each row of ``cum`` first reaches ``budget``,
    interpolated inside the segment ``[starts[t], starts[t] + lengths[t])`` of the crossing (``cum`` is
    the total at each segment's end, ``base`` before the first); inf for a row that does not reach it."""
    crossed = cum >= budget
    reached = crossed.any(axis=1)
    first = crossed.argmax(axis=1)
    rows = np.arange(len(cum))
    before = np.where(first > 0, cum[rows, np.maximum(first - 1, 0)], base)
    incr = cum[rows, first] - before
    frac = np.clip(np.where(incr > 0, (budget - before) / np.where(incr > 0, incr, 1.0), 1.0), 0.0, 1.0)
    return np.where(reached, starts[first] + frac * lengths[first], np.inf)


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
    as_of: Any = None,
    partial_spend: float = 0.0,
) -> BudgetForecast:
    """Forecast spend to ``period_end`` and when ``budget`` runs out (formulas in the module docstring).

    ``spend``: per-period spend (or a cumulative total with ``cumulative=True``) at a regular frequency,
    each row labelled by the start of its bucket; ``period_start``: start of the budget period (default:
    the first timestamp); ``period_end``: the instant the period ends (exclusive: with hourly buckets,
    ``"2024-04-01"`` ends March with the bucket of 23:00). ``as_of``: the time the spend is known up to,
    within the bucket after the last row (default: that bucket's start, i.e. the end of the last row);
    ``partial_spend``: the period's spend in that incomplete bucket up to ``as_of``, counted as spent, and
    only the rest of the bucket is forecast.
    """
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    if not math.isfinite(partial_spend) or partial_spend < 0:
        raise ValueError(f"partial_spend must be a non-negative number, got {partial_spend}")
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
    end = pd.Timestamp(period_end)
    in_period = ((regular[time_col] >= start) & (regular[time_col] < end)).to_numpy()
    step = freq.step
    known = pd.Timestamp(regular[time_col].iloc[-1]) + step  # the end of the last (complete) bucket
    now = known if as_of is None else pd.Timestamp(as_of)
    if not known <= now <= known + step:
        raise ValueError(f"as_of must lie in the bucket after the last one, [{known}, {known + step}], got {now}")
    spent = float(series[in_period].sum()) + partial_spend
    alpha = (100.0 - level) / 200.0
    h = max(0, math.ceil((end - known) / step)) if now < end else 0
    historic = None
    if spent >= budget:
        historic = historic_exhaustion(series[in_period], regular[time_col][in_period], budget, step,
                                       partial_spend=partial_spend, partial_from=max(known, start), as_of=now)  # fmt: skip
    if h == 0:
        empty = pd.DataFrame(columns=[time_col, "spend", "cumulative", "cumulative_lower", "cumulative_upper"])
        hit = spent >= budget
        return BudgetForecast(budget, end, spent, spent, spent, spent, historic, historic, historic, float(hit), empty)
    fc = forecaster or EnsembleForecaster(freq=freq.alias, level=level)
    hist = pd.DataFrame({time_col: regular[time_col], value_col: series.to_numpy(dtype=float)})
    fc.forecast(hist, h=h, time_col=time_col, target_col=value_col)
    result = next(iter(fc.results_.values()))
    ds = pd.DatetimeIndex(result.ds)  # bucket starts: ds[0] == known
    # the part of each bucket still ahead and inside the period: [max(ds, now, start), min(ds + step, end));
    # a period that starts after ``now`` counts none of the spend before its start (it counted all of it)
    starts_ns = ds.as_unit("ns").asi8
    seg_start = np.maximum(starts_ns, max(now.value, start.value))
    seg_len = np.maximum(np.minimum(starts_ns + step.value, end.value) - seg_start, 0)
    share = seg_len / step.value
    yhat = np.maximum(result.yhat, 0.0) * share
    drawn = result.sample_paths(n_paths)
    paths = (np.maximum(result.yhat, 0.0) + (drawn - drawn.mean(axis=0))) * share
    cum_paths = spent + np.cumsum(paths, axis=1)
    central = spent + np.cumsum(yhat)
    lower = np.maximum.accumulate(np.maximum(np.quantile(cum_paths, alpha, axis=0), spent))
    upper = np.maximum(np.quantile(cum_paths, 1 - alpha, axis=0), central)
    offsets = (seg_start - now.value).astype(float)  # ns after ``now``
    lengths = seg_len.astype(float)

    def to_stamp(offset: float) -> pd.Timestamp | None:
        if not np.isfinite(offset):
            return None
        stamp = now + pd.Timedelta(round(offset), unit="ns")
        return stamp if stamp <= end else None

    if spent >= budget:
        exhausted_at = earliest = latest = historic
        probability = 1.0
    else:
        exhausted_at = to_stamp(float(_crossing_times(central[None, :], spent, budget, offsets, lengths)[0]))
        times = _crossing_times(cum_paths, spent, budget, offsets, lengths)
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
