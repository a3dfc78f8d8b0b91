"""Statistical detectors: rolling z-score, robust (median/IQR) multi-scale deviation, seasonal residuals.

All are vectorised with pandas rolling windows and causal (the score at ``t`` uses points ``<= t``).

Usage::

    import numpy as np
    from analytics.anomaly.statistical import RobustDeviationDetector

    out = RobustDeviationDetector().score(np.random.default_rng(0).normal(size=2_000))
    flagged = out.anomaly_score > 1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._rolling import (
    adaptive_threshold,
    candidate_periods,
    choose_period,
    log_volatility,
    median_step_seconds,
    normalised_score,
    points_for,
    refit_schedule,
    scaled_z,
    target,
    trailing_center_scale,
    two_sided_cusum,
)
from .model import DetectorOutput


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


@dataclass
class RollingZScoreDetector:
    """Classic rolling z-score: ``|x - mean| / std`` over the previous ``window`` points, divided by ``k``.

    The benchmark baseline (``k=6``). Not robust: one outlier inflates the std for a whole window.
    """

    window: int = 200
    k: float = 6.0
    min_periods: int = 30
    name: str = "zscore"

    def __post_init__(self) -> None:
        _check_positive("window", self.window)
        _check_positive("k", self.k)

    @property
    def available(self) -> bool:
        return True

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        x = target(values)
        r = pd.Series(x).shift(1).rolling(self.window, min_periods=self.min_periods)
        mean, std = r.mean().to_numpy(), r.std().to_numpy()
        std = np.fmax(std, 1e-9 * (1.0 + np.abs(np.nan_to_num(mean))))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (x - mean) / std
        return DetectorOutput(
            normalised_score(z, np.full_like(z, self.k)), mean, mean - self.k * std, mean + self.k * std
        )


@dataclass
class SelfNormalisedDetector:
    """Shared settings of the detectors whose statistics are robust z-scores over a trailing ``window``
    (at least ``min_periods`` points), each divided by ``max(k, margin * q)``, ``q`` being its
    ``quantile`` over the previous ``history`` points (raised further while that history is short:
    ``short_history_boost``). Subclasses set ``name`` and :meth:`score`."""

    window: int = 1000
    min_periods: int = 75
    k: float = 4.0
    margin: float = 1.2
    quantile: float = 0.999
    history: int = 10_000
    short_history_boost: float = 0.25
    name: str = "self-normalised"

    def __post_init__(self) -> None:
        _check_positive("window", self.window)
        _check_positive("k", self.k)
        _check_positive("history", self.history)

    @property
    def available(self) -> bool:
        return True

    def _threshold(self, z: np.ndarray, floor: float | None = None) -> np.ndarray:
        """The per-point bar of statistic ``z`` (``floor`` replaces ``k`` for statistics on another scale)."""
        return adaptive_threshold(
            z, self.history, self.min_periods, self.quantile, self.k if floor is None else floor, self.margin,
            self.short_history_boost,
        )  # fmt: skip


@dataclass
class RobustDeviationDetector(SelfNormalisedDetector):
    """MAD/IQR detector of point, level and volatility anomalies, with a self-normalising threshold.

    Statistics (each a robust z-score against the trailing median and IQR-sigma):

    * the value itself (spikes and dips);
    * the trailing mean over ``trend_seconds`` (drifts, trends and level shifts too small to see
      point by point), compared with the points before that span — only when ``trend_seconds > 0``;
    * a two-sided CUSUM (Page) of the value's robust z against the median and IQR-sigma of the window
      that ends ``trend_seconds`` earlier, each z clipped to ``±cusum_clip`` (one spike does not make
      a shift) less the allowance ``cusum_allowance``: persistent shifts of half a sigma or more build
      up here (level shifts, slow ramps, a level that stays a little off) — ``cusum_allowance <= 0``
      drops it. Its bar is floored at ``cusum_k`` (the CUSUM sums z-scores, so its scale is that of a
      run, not of one point);
    * the log of the standard deviation over ``volatility_seconds`` and over
      ``short_volatility_seconds`` (a series that becomes erratic, or goes flat, for a day or for an
      hour), compared with the points before that span (``0`` drops a scale).

    Each z-score is divided by ``max(k, margin * q)``, ``q`` being its ``quantile`` over the previous
    ``history`` points, so a heavy-tailed series raises its own bar and only deviations beyond what it
    has already shown score above 1. Without timestamps, spans in points are used (``*_points``).
    """

    volatility_seconds: float = 86_400.0
    volatility_points: int = 288
    short_volatility_seconds: float = 3_600.0
    short_volatility_points: int = 12
    trend_seconds: float = 21_600.0
    trend_points: int = 72
    cusum_allowance: float = 0.5
    cusum_clip: float = 4.0
    cusum_k: float = 25.0
    name: str = "robust"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive("cusum_k", self.cusum_k)
        _check_positive("cusum_clip", self.cusum_clip)

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        x = target(values)
        step = median_step_seconds(timestamps)
        med, scale = trailing_center_scale(x, self.window, self.min_periods)
        with np.errstate(invalid="ignore", divide="ignore"):
            level_z = (x - med) / scale
        thr = self._threshold(level_z)
        best = normalised_score(level_z, thr)
        extra: list[np.ndarray] = []
        for seconds, points in (
            (self.volatility_seconds, self.volatility_points),
            (self.short_volatility_seconds, self.short_volatility_points),
        ):
            if seconds > 0:
                width = points_for(seconds, step, points, minimum=4)
                extra.append(scaled_z(log_volatility(x, width), 1, max(self.window, 10 * width), self.min_periods))
        width = points_for(self.trend_seconds, step, self.trend_points)
        if self.trend_seconds > 0:
            extra.append(scaled_z(x, width, self.window, self.min_periods))
        for z in extra:
            best = np.maximum(best, normalised_score(z, self._threshold(z)))
        if self.cusum_allowance > 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                r = (x - _shift(med, width)) / _shift(scale, width)
            s = two_sided_cusum(np.clip(r, -self.cusum_clip, self.cusum_clip), self.cusum_allowance)
            best = np.maximum(best, normalised_score(s, self._threshold(s, self.cusum_k)))
        return DetectorOutput(best, med, med - thr * scale, med + thr * scale)


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """``a`` delayed by ``k`` points (NaN first)."""
    return pd.Series(a).shift(k).to_numpy()


def seasonal_forecast(x: np.ndarray, period: int, cycles: int) -> np.ndarray:
    """One-step-ahead causal forecast ``level + seasonal`` (an STL-like robust decomposition).

    The level is the median of the previous ``period`` points; the seasonal term at ``t`` is the median,
    over the last ``cycles`` seasons, of the detrended value at the same phase (``t - j * period``).
    """
    s = pd.Series(x)
    trend_incl = s.rolling(period, min_periods=max(2, period // 2)).median()
    level = trend_incl.shift(1).to_numpy()
    detrended = (s - trend_incl).to_numpy()
    lags = np.full((cycles, x.size), np.nan)
    for j in range(1, cycles + 1):
        shift = j * period
        if shift < x.size:
            lags[j - 1, shift:] = detrended[:-shift]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            seasonal = np.nanmedian(lags, axis=0)
    return level + np.nan_to_num(seasonal, nan=0.0)


@dataclass
class SeasonalResidualDetector(SelfNormalisedDetector):
    """Residuals of a causal seasonal decomposition, scored robustly.

    Every ``fit_every`` points (from ``warmup`` on, or three days in when that is later) the detector re-chooses the season (a day or a week
    at the sampling interval, by autocorrelation on the trailing ``fit_window`` points; none if weak),
    then scores the next segment with the residual of :func:`seasonal_forecast`: its robust z-score
    averaged over ``smooth`` points or fewer, spanning at most ``smooth_seconds`` (point and contextual
    anomalies: three 5-minute points, one hourly point, whose spike must not be diluted by the next
    hours), over ``collective_seconds``
    and over ``long_seconds`` (collective anomalies: an hour, or a quarter of a day, that runs low;
    ``long_seconds=0`` drops that scale), each normalised like :class:`RobustDeviationDetector`. Contextual anomalies (a normal value at the wrong time of day)
    show up here and nowhere else. Without timestamps or a clear season the forecast is the level only.
    """

    cycles: int = 3
    warmup: int = 150
    fit_every: int = 1000
    fit_window: int = 4000
    smooth: int = 3
    smooth_seconds: float = 900.0
    collective_seconds: float = 3_600.0
    collective_points: int = 12
    long_seconds: float = 21_600.0
    long_points: int = 72
    name: str = "seasonal"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive("fit_every", self.fit_every)
        _check_positive("cycles", self.cycles)

    def periods(self, values: np.ndarray, timestamps: np.ndarray | None) -> list[tuple[int, int, int | None]]:
        """The refit schedule: ``(start, end, period)`` for each scored segment."""
        x = target(values)
        out = []
        # Decide on a season only once three days are in (a day is the shortest candidate season).
        days = candidate_periods(median_step_seconds(timestamps))
        warmup = max(self.warmup, 3 * days[0]) if days and 3 * days[0] <= self.fit_window else self.warmup
        for start, end in refit_schedule(x.size, warmup, self.fit_every):
            lo = max(0, start - self.fit_window)
            ts = None if timestamps is None else np.asarray(timestamps)[lo:start]
            out.append((start, end, choose_period(x[lo:start], ts)))
        return out

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        x = target(values)
        yhat = np.full_like(x, np.nan)
        cache: dict[int | None, np.ndarray] = {}
        for start, end, period in self.periods(values, timestamps):
            if period not in cache:
                if period is None:
                    cache[period] = pd.Series(x).shift(1).rolling(12, min_periods=1).median().to_numpy()
                else:
                    cache[period] = seasonal_forecast(x, period, self.cycles)
            yhat[start:end] = cache[period][start:end]
        resid = x - yhat
        center, scale = trailing_center_scale(resid, self.window, self.min_periods)
        with np.errstate(invalid="ignore", divide="ignore"):
            point_z = (resid - center) / scale
        thr = self._threshold(point_z)
        step = median_step_seconds(timestamps)
        point_width = min(self.smooth, points_for(self.smooth_seconds, step, self.smooth, minimum=1))
        widths = [point_width, points_for(self.collective_seconds, step, self.collective_points)]
        if self.long_seconds > 0:
            widths.append(points_for(self.long_seconds, step, self.long_points))
        scores = np.zeros_like(x)
        for width in widths:
            z = scaled_z(resid, width, self.window, self.min_periods)
            scores = np.maximum(scores, normalised_score(z, self._threshold(z)))
        # no expected value until the residuals have a scale (their first min_periods points after the
        # season is chosen): before, the scale's floor (1e-6) made a band of a single point, "above the
        # expected range [124.1, 124.1]"; with NaN here the ensemble takes the robust detector's band
        unknown = ~np.isfinite(center)
        yhat[unknown] = np.nan
        return DetectorOutput(scores, yhat, yhat - thr * scale, yhat + thr * scale)
