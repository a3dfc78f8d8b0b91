"""Isolation Forest over causal window features, for one series or several aligned ones.

Usage::

    import numpy as np
    from analytics.anomaly.iforest import IsolationForestDetector

    values = np.random.default_rng(0).normal(size=(3_000, 3))   # three related series, column 0 = target
    out = IsolationForestDetector().score(values)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from ._rolling import (
    adaptive_threshold,
    as_2d,
    candidate_periods,
    median_step_seconds,
    normalised_score,
    refit_schedule,
    trailing_center_scale,
)
from .model import DetectorOutput
from .statistical import seasonal_forecast


def window_features(
    values: np.ndarray, period: int | None = None, short: int = 6, long: int = 500
) -> np.ndarray:
    """Causal per-point features of every column: robust level z, short-mean z,
    short-window volatility relative to the long-window scale, and (with a ``period``) the z of the
    residual from a seasonal forecast; with related columns (``k > 1``), also the robust z of the
    target's residual from its trailing linear fit on each related column (see
    :func:`relationship_z`). Shape ``(n, 3 * k + k - 1)`` or ``(n, 4 * k + k - 1)``; NaN during warm-up."""
    arr = as_2d(values)
    cols = [relationship_z(arr[:, 0], arr[:, j], long) for j in range(1, arr.shape[1])]
    for j in range(arr.shape[1]):
        x = arr[:, j]
        med, scale = trailing_center_scale(x, long, max(10, long // 10))
        if period is not None:
            resid = x - seasonal_forecast(x, period, 3)
            r_med, r_scale = trailing_center_scale(resid, long, max(10, long // 10))
            with np.errstate(invalid="ignore", divide="ignore"):
                cols.append((resid - r_med) / r_scale)
        s = pd.Series(x)
        short_mean = s.rolling(short, min_periods=1).mean().to_numpy()
        short_std = s.rolling(short, min_periods=2).std().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            cols += [
                (x - med) / scale,
                (short_mean - med) / scale,
                np.log1p(np.nan_to_num(short_std) / scale),
            ]
    return np.column_stack(cols)


def relationship_z(y: np.ndarray, x: np.ndarray, window: int) -> np.ndarray:
    """Robust z of ``y``'s residual from ``a + b * x``, fitted by least squares on the ``window`` points
    before ``t`` (causal): large when the usual relationship between the two series breaks, even with
    each series inside its own range (latency up while the tokens that usually explain it are not)."""
    ys, xs = pd.Series(y), pd.Series(x)
    minp = max(10, window // 10)
    r = xs.shift(1).rolling(window, min_periods=minp)
    mean_x, var_x = r.mean(), r.var()
    mean_y = ys.shift(1).rolling(window, min_periods=minp).mean()
    cov = ys.shift(1).rolling(window, min_periods=minp).cov(xs.shift(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(var_x.to_numpy() > 0, (cov / var_x).to_numpy(), 0.0)
    resid = y - (mean_y.to_numpy() + b * (x - mean_x.to_numpy()))
    med, scale = trailing_center_scale(resid, window, minp)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (resid - med) / scale


@dataclass
class IsolationForestDetector:
    """Isolation Forest refitted every ``fit_every`` points on the trailing ``fit_window`` points.

    The raw isolation score is centred on its median over the training window and divided by the
    spread up to its ``train_quantile``; that statistic then gets the same self-normalising threshold
    as the statistical detectors. Points beyond the training range, which the forest cannot rank, get
    their distance outside it added (see :func:`_beyond_range`). A 2-D input adds the features of the related series, so a joint
    anomaly (each series unremarkable alone) can stand out. With timestamps, the residual from a
    daily seasonal forecast is one more feature, so contextual anomalies are visible too.
    """

    n_estimators: int = 60
    max_samples: int = 256
    warmup: int = 300
    fit_every: int = 1000
    fit_window: int = 3000
    train_quantile: float = 0.99
    k: float = 2.5
    margin: float = 1.0
    quantile: float = 0.995
    history: int = 3000
    short_history_boost: float = 0.25
    random_state: int = 0
    name: str = "iforest"
    #: It uses the related columns of a 2-D input (the ensemble lets it alert alone when there are some).
    multivariate: ClassVar[bool] = True

    @property
    def available(self) -> bool:
        try:
            import sklearn.ensemble  # noqa: F401
        except ImportError:
            return False
        return True

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        from sklearn.ensemble import IsolationForest

        periods = candidate_periods(median_step_seconds(timestamps))
        feats = window_features(values, periods[0] if periods else None)
        n = feats.shape[0]
        stat = np.full(n, np.nan)
        valid = np.isfinite(feats).all(axis=1)
        for start, end in refit_schedule(n, self.warmup, self.fit_every):
            lo = max(0, start - self.fit_window)
            train = feats[lo:start][valid[lo:start]]
            if train.shape[0] < 50:
                continue
            model = IsolationForest(
                n_estimators=self.n_estimators,
                max_samples=min(self.max_samples, train.shape[0]),
                random_state=self.random_state,
            ).fit(train)
            raw_train = -model.score_samples(train)
            centre = float(np.median(raw_train))
            spread = max(float(np.quantile(raw_train, self.train_quantile)) - centre, 1e-6)
            seg = feats[start:end]
            ok = valid[start:end]
            if ok.any():
                out = np.full(end - start, np.nan)
                out[ok] = (-model.score_samples(seg[ok]) - centre) / spread + _beyond_range(train, seg[ok])
                stat[start:end] = out
        stat = np.fmax(stat, 0.0)
        thr = adaptive_threshold(
            stat, self.history, 50, self.quantile, self.k, self.margin, self.short_history_boost
        )
        nan = np.full(n, np.nan)
        return DetectorOutput(normalised_score(stat, thr), nan, nan.copy(), nan.copy())


def _beyond_range(train: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """How far ``rows`` fall outside the training hull, in training IQRs (summed over features).

    Isolation Forest splits inside the training range, so every point beyond it gets the same score as
    the most extreme training point; this term restores the ordering out there. A feature whose IQR is
    smaller than its standard deviation (mostly one value: sparse counts, a series that is usually
    zero) is measured in standard deviations instead, so one unit beyond its range is not a
    thousand-fold outlier.
    """
    lo, hi = train.min(axis=0), train.max(axis=0)
    iqr = np.subtract(*np.quantile(train, [0.75, 0.25], axis=0))
    iqr = np.maximum(iqr, np.maximum(train.std(axis=0), 1e-9 + 1e-6 * (hi - lo)))
    excess = np.maximum(rows - hi, 0.0) + np.maximum(lo - rows, 0.0)
    return (excess / iqr).sum(axis=1)
