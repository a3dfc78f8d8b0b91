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
    choose_period,
    normalised_score,
    refit_schedule,
    target,
    trailing_center_scale,
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
class RobustDeviationDetector:
    """MAD/IQR detector at several time scales, with a self-normalising threshold.

    For each scale ``w`` the series is smoothed by a trailing mean over ``w`` points (``w = 1`` finds
    spikes, larger ``w`` finds level shifts and collective anomalies), and the smoothed value is compared
    with the trailing median and IQR-sigma of the previous ``window`` points. The resulting robust
    z-score is divided by ``max(k, margin * q)``, ``q`` being a high quantile of its own past values,
    so that series with heavy tails raise their own bar. A trend term does the same with the slope over
    ``trend_window`` points. The score is the maximum over scales.
    """

    window: int = 1000
    min_periods: int = 150
    scales: tuple[int, ...] = (1, 6)
    trend_window: int = 24
    k: float = 4.0
    margin: float = 1.1
    quantile: float = 0.995
    history: int = 3000
    name: str = "robust"

    def __post_init__(self) -> None:
        _check_positive("window", self.window)
        _check_positive("k", self.k)
        if not self.scales or min(self.scales) < 1:
            raise ValueError("scales must be a non-empty tuple of positive integers")

    @property
    def available(self) -> bool:
        return True

    def _z(self, series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        med, scale = trailing_center_scale(series, self.window, self.min_periods)
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (series - med) / scale
        return z, med, scale

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        x = target(values)
        best = np.zeros_like(x)
        yhat = lower = upper = np.full_like(x, np.nan)
        statistics: list[np.ndarray] = []
        for w in self.scales:
            smooth = x if w == 1 else pd.Series(x).rolling(w, min_periods=w).mean().to_numpy()
            z, med, scale = self._z(smooth)
            statistics.append(z)
            if w == 1:
                thr = adaptive_threshold(
                    z, self.history, self.min_periods, self.quantile, self.k, self.margin
                )
                yhat, lower, upper = med, med - thr * scale, med + thr * scale
        if self.trend_window > 1:
            slope = pd.Series(x).diff(self.trend_window).to_numpy()
            statistics.append(self._z(slope)[0])
        for z in statistics:
            thr = adaptive_threshold(z, self.history, self.min_periods, self.quantile, self.k, self.margin)
            best = np.maximum(best, normalised_score(z, thr))
        return DetectorOutput(best, yhat, lower, upper)


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
class SeasonalResidualDetector:
    """Residuals of a causal seasonal decomposition, scored robustly.

    Every ``fit_every`` points (from ``warmup`` on) the detector re-chooses the season (a day or a week
    at the sampling interval, by autocorrelation on the trailing ``fit_window`` points; none if weak),
    then scores the next segment with the residual of :func:`seasonal_forecast`, normalised like
    :class:`RobustDeviationDetector`. Contextual anomalies (a normal value at the wrong time of day)
    show up here and nowhere else. Without timestamps or a clear season the forecast is the level only.
    """

    cycles: int = 3
    warmup: int = 300
    fit_every: int = 1000
    fit_window: int = 4000
    window: int = 1000
    min_periods: int = 150
    smooth: int = 3
    k: float = 4.0
    margin: float = 1.1
    quantile: float = 0.995
    history: int = 3000
    name: str = "seasonal"

    def __post_init__(self) -> None:
        _check_positive("fit_every", self.fit_every)
        _check_positive("cycles", self.cycles)

    @property
    def available(self) -> bool:
        return True

    def periods(self, values: np.ndarray, timestamps: np.ndarray | None) -> list[tuple[int, int, int | None]]:
        """The refit schedule: ``(start, end, period)`` for each scored segment."""
        x = target(values)
        out = []
        for start, end in refit_schedule(x.size, self.warmup, self.fit_every):
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
        if self.smooth > 1:
            resid_s = pd.Series(resid).rolling(self.smooth, min_periods=1).mean().to_numpy()
        else:
            resid_s = resid
        scores = np.zeros_like(x)
        thr1 = np.full_like(x, np.nan)
        scale1 = np.full_like(x, np.nan)
        for i, r in enumerate((resid, resid_s)):
            center, scale = trailing_center_scale(r, self.window, self.min_periods)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = (r - center) / scale
            thr = adaptive_threshold(z, self.history, self.min_periods, self.quantile, self.k, self.margin)
            scores = np.maximum(scores, normalised_score(z, thr))
            if i == 0:
                thr1, scale1 = thr, scale
        return DetectorOutput(scores, yhat, yhat - thr1 * scale1, yhat + thr1 * scale1)
