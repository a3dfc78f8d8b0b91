"""Vectorised fast paths for thousands of series at once (one numpy pass over a matrix of series).

``bulk_score`` scores the newest points of every series (rows of a matrix) against a trailing window:
a robust z-score ``(x - median) / (1.4826 MAD)`` divided by a self-normalising threshold
``max(k, margin * q) * (1 + 0.25 * max(0, sqrt(1000 / n) - 1))``, ``q`` the ``quantile`` of the window's
own |z| and ``n`` its length — the rule of the ensemble's ``robust`` detector, computed once per
inference instead of at every point.

``bulk_forecast`` is a seasonal window average (the mean of the last ``cycles`` seasons at the same
phase) with split-conformal intervals from a held-out last stretch of each series.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(100, 5, size=(3, 500)); x[1, -1] = 200
    >>> out = bulk_score(x, new=1)
    >>> bool(out.anomaly_score[1, -1] > 1), bool(out.anomaly_score[0, -1] > 1)
    (True, False)
    >>> fc = bulk_forecast(np.tile(np.arange(24.0), (2, 30)), h=48, season=24)
    >>> fc.yhat.shape, float(fc.yhat[0, 5])
    ((2, 48), 5.0)
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

__all__ = ["BulkForecast", "BulkScores", "bulk_forecast", "bulk_score"]

_MAD_SIGMA = 1.4826


class BulkScores(NamedTuple):
    """``(series, new)`` arrays for the ``new`` newest points of each series."""

    anomaly_score: np.ndarray
    yhat: np.ndarray
    yhat_lower: np.ndarray
    yhat_upper: np.ndarray


class BulkForecast(NamedTuple):
    """``(series, h)`` arrays."""

    yhat: np.ndarray
    yhat_lower: np.ndarray
    yhat_upper: np.ndarray


def bulk_score(
    values: np.ndarray, new: int, *, window: int = 1000, k: float = 4.0, margin: float = 1.2, quantile: float = 0.999,
    min_periods: int = 30,
) -> BulkScores:  # fmt: skip
    """Score the last ``new`` points of each row against the ``window`` points before them."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"values must be 2-D (series, points), got shape {x.shape}")
    new = max(1, min(new, x.shape[1]))
    ref = x[:, max(0, x.shape[1] - new - window) : x.shape[1] - new]
    cur = x[:, x.shape[1] - new :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(ref, axis=1, keepdims=True) if ref.shape[1] else np.full((x.shape[0], 1), np.nan)
        mad = np.nanmedian(np.abs(ref - med), axis=1, keepdims=True) if ref.shape[1] else med
        std = np.nanstd(ref, axis=1, keepdims=True) if ref.shape[1] else med
        scale = np.fmax(_MAD_SIGMA * mad, 0.1 * std)
        scale = np.fmax(scale, 1e-9 * (1.0 + np.abs(np.nan_to_num(med))))
        ref_z = np.abs(ref - med) / scale
        q = np.nanquantile(ref_z, quantile, axis=1, keepdims=True) if ref.shape[1] else med
        n_ref = np.sum(np.isfinite(ref), axis=1, keepdims=True)
        enough = n_ref >= min_periods
        # a short history raises the bar (as the ensemble's short_history_boost does)
        boost = 1.0 + 0.25 * np.maximum(0.0, np.sqrt(1000.0 / np.maximum(n_ref, 1)) - 1.0)
        thr = np.fmax(k, margin * np.nan_to_num(q, nan=k)) * boost
        score = np.where(enough, np.abs(cur - med) / (thr * scale), np.nan)
    score = np.minimum(score, 1000.0)
    band = np.broadcast_to(thr * scale, cur.shape)
    yhat = np.broadcast_to(med, cur.shape)
    lower = yhat - band
    # a series that has never been negative (latency, counts, cost) is not expected to go below 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        nonneg = ~(np.nanmin(x[:, : x.shape[1] - new], axis=1, initial=0.0, keepdims=True) < 0)
    lower = np.where(nonneg, np.maximum(lower, 0.0), lower)
    return BulkScores(score, yhat.copy(), lower, (yhat + band).copy())


def _swa(x: np.ndarray, h: int, season: int, cycles: int) -> np.ndarray:
    """Seasonal window average of the rows of ``x`` for ``h`` steps (NaN-aware)."""
    n = x.shape[1]
    usable = min(cycles, n // season) if season > 1 else 0
    if usable < 1:
        last = x[:, -min(n, 24) :]
        return np.repeat(np.nanmean(last, axis=1, keepdims=True), h, axis=1)
    tail = x[:, n - usable * season :].reshape(x.shape[0], usable, season)
    profile = np.nanmean(tail, axis=1)  # (series, season)
    # phase of step t (t = 0 is the first future point) is (n + t) mod season relative to the tail start
    phases = np.arange(h) % season
    return profile[:, phases]


def bulk_forecast(
    values: np.ndarray, h: int, *, season: int = 24, cycles: int = 7, level: float = 95.0, holdout: int | None = None,
) -> BulkForecast:  # fmt: skip
    """Seasonal-window-average forecasts of every row, with conformal intervals at ``level`` %.

    The interval half-width of a row is the ``level`` quantile of its absolute errors when the same
    method forecast its last ``holdout`` points (default ``min(h, season * 7, n / 4)``) from the data
    before them, scaled by ``sqrt(t / holdout)`` beyond the validated horizon.
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"values must be 2-D with at least 2 points per series, got shape {x.shape}")
    if not 0 < level < 100:
        raise ValueError(f"level must be between 0 and 100, got {level}")
    n = x.shape[1]
    hv = holdout or max(1, min(h, season * 7, n // 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = x[:, : n - hv]
        val = _swa(fit, hv, season, cycles) if fit.shape[1] >= 2 else np.repeat(fit[:, -1:], hv, axis=1)
        err = np.abs(x[:, n - hv :] - val)
        q = np.nanquantile(err, level / 100.0, axis=1, method="higher", keepdims=True)
        q = np.nan_to_num(q, nan=0.0)
        yhat = _swa(x, h, season, cycles)
        yhat = np.where(np.isfinite(yhat), yhat, np.nanmean(x, axis=1, keepdims=True))
    growth = np.sqrt(np.maximum(1.0, (np.arange(1, h + 1)) / hv))[None, :]
    half = q * growth
    lower, upper = yhat - half, yhat + half
    nonneg = np.nanmin(x, axis=1, keepdims=True) >= 0
    lower = np.where(nonneg, np.maximum(lower, 0.0), lower)
    yhat = np.where(nonneg, np.maximum(yhat, 0.0), yhat)
    return BulkForecast(yhat, lower, upper)
