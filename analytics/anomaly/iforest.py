"""Isolation Forest over causal window features, for one series or several aligned ones.

Usage::

    import numpy as np
    from analytics.anomaly.iforest import IsolationForestDetector

    values = np.random.default_rng(0).normal(size=(3_000, 3))   # three related series, column 0 = target
    out = IsolationForestDetector().score(values)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._rolling import adaptive_threshold, as_2d, normalised_score, refit_schedule, trailing_center_scale
from .model import DetectorOutput


def window_features(values: np.ndarray, short: int = 6, long: int = 500) -> np.ndarray:
    """Causal per-point features of every column: robust level z, first difference z, short-mean z, and
    short-window volatility relative to the long-window scale. Shape ``(n, 4 * k)``; NaN during warm-up."""
    arr = as_2d(values)
    cols = []
    for j in range(arr.shape[1]):
        x = arr[:, j]
        med, scale = trailing_center_scale(x, long, max(10, long // 10))
        s = pd.Series(x)
        short_mean = s.rolling(short, min_periods=1).mean().to_numpy()
        short_std = s.rolling(short, min_periods=2).std().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            cols += [
                (x - med) / scale,
                s.diff().to_numpy() / scale,
                (short_mean - med) / scale,
                np.log1p(np.nan_to_num(short_std) / scale),
            ]
    return np.column_stack(cols)


@dataclass
class IsolationForestDetector:
    """Isolation Forest refitted every ``fit_every`` points on the trailing ``fit_window`` points.

    The raw isolation score is centred on its median over the training window and divided by the
    spread up to its ``train_quantile``; that statistic then gets the same self-normalising threshold
    as the statistical detectors. A 2-D input adds the features of the related series, so a joint
    anomaly (each series unremarkable alone) can stand out.
    """

    n_estimators: int = 60
    max_samples: int = 256
    warmup: int = 300
    fit_every: int = 1000
    fit_window: int = 3000
    train_quantile: float = 0.99
    k: float = 1.5
    margin: float = 1.0
    quantile: float = 0.995
    history: int = 3000
    random_state: int = 0
    name: str = "iforest"

    @property
    def available(self) -> bool:
        try:
            import sklearn.ensemble  # noqa: F401
        except ImportError:
            return False
        return True

    def score(self, values: np.ndarray, timestamps: np.ndarray | None = None) -> DetectorOutput:
        from sklearn.ensemble import IsolationForest

        feats = window_features(values)
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
                out[ok] = (-model.score_samples(seg[ok]) - centre) / spread
                stat[start:end] = out
        stat = np.fmax(stat, 0.0)
        thr = adaptive_threshold(stat, self.history, 50, self.quantile, self.k, self.margin)
        nan = np.full(n, np.nan)
        return DetectorOutput(normalised_score(stat, thr), nan, nan.copy(), nan.copy())
