"""Conformal calibration of forecast errors, interval breaches and exceedance probabilities.

Usage::

    from analytics.forecast.calibration import Calibration, breach_series

    cal = Calibration.from_errors(errors)          # errors: (n_windows, h_val) actual - forecast
    lower, upper = cal.interval(yhat, level=95)
    cal.exceedance_probability(yhat, threshold=100.0, start=24, stop=48)
    breach_series(actual_df, forecast_df)          # 0/1 per timestamp: actual outside the interval

Method (split-conformal on rolling-origin residuals, horizon-scaled):

- the validation horizon is cut into up to ``n_buckets`` consecutive buckets; ``s_b`` is the mean
  absolute error in bucket ``b``, made non-decreasing over the horizon; steps beyond the validation
  horizon grow as ``s_last * sqrt(t / h_val)``.
- normalised errors ``z = e / s_b(t)`` are pooled; the half-width at level ``L`` is
  ``q * s(t)`` where ``q`` is the ``ceil((n + 1) L) / n`` empirical quantile of ``|z|`` (the finite-sample
  conformal quantile), times ``inflation`` (default 1.0).
- the predictive distribution of ``y_t`` is ``yhat_t + s(t) * Z`` with ``Z`` drawn from the pooled ``z``;
  a window's exceedance probability ``P(max_{t in window} y_t > threshold)`` is estimated by simulating
  paths whose ranks follow a Gaussian AR(1) copula with the lag-1 autocorrelation ``rho`` of the
  validation error paths (``rho = 0`` gives independent steps, ``rho -> 1`` one shared draw), plus a
  component shared by all steps of a path with weight ``shared``: the share of the validation errors'
  mean square that their per-window means explain (a forecast's level error moves every step of a
  window the same way). The marginals stay those of the pooled ``z``; only the joint law changes, which
  is what sums over the horizon (a budget's spend to the period end) and exceedance windows depend on:
  without it, the 95 % interval of 9 days' total of a stationary series covered the actual total 1 time
  in 4 (independent steps average out; a level error does not).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter
from scipy.special import ndtr
from scipy.stats import norm

__all__ = ["Calibration", "breach_series", "standard_normals"]


#: Draws held by :func:`standard_normals` at most (the last few shapes: one forecast of 2,016 steps with
#: 1,984 paths needs 32 MiB).
NORMALS_MAX_BYTES = 64 * 1024 * 1024
#: Values per block of paths in :meth:`Calibration.exceedance_probability` (1 MiB of float64).
_BLOCK_VALUES = 1 << 17
_normals: OrderedDict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_normals_bytes = 0
_lock = threading.Lock()
#: Exceedance probabilities remembered by :meth:`Calibration.exceedance_probability` (the last ones asked).
EXCEEDANCE_MEMO_SIZE = 4096
_exceedances: OrderedDict[str, float] = OrderedDict()


def standard_normals(n_paths: int, h: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The draws of ``np.random.default_rng(seed)``: ``(n_paths, h)`` steps, then ``(n_paths, 1)`` levels.

    Read-only and memoised by ``(n_paths, h, seed)`` (least recently used first out, once
    :data:`NORMALS_MAX_BYTES` are held): every series' sampling with the same shape and seed starts from
    the same draws (a forecast's exceedance probabilities all use seed 0), and drawing them was most of
    the work: 4 million per series of a 7-day forecast on 5-minute steps.

    >>> steps, levels = standard_normals(3, 4, 0)
    >>> rng = np.random.default_rng(0)
    >>> np.array_equal(steps, rng.standard_normal((3, 4))), np.array_equal(levels, rng.standard_normal((3, 1)))
    (True, True)
    >>> standard_normals(3, 4, 0)[0] is steps, steps.flags.writeable
    (True, False)
    """
    global _normals_bytes
    key = (int(n_paths), int(h), int(seed))
    with _lock:
        held = _normals.get(key)
        if held is not None:
            _normals.move_to_end(key)
            return held
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal((n_paths, h))
    levels = rng.standard_normal((n_paths, 1))
    steps.setflags(write=False)
    levels.setflags(write=False)
    size = steps.nbytes + levels.nbytes
    if size <= NORMALS_MAX_BYTES:
        with _lock:
            if key not in _normals:
                _normals[key] = (steps, levels)
                _normals_bytes += size
            while _normals_bytes > NORMALS_MAX_BYTES and _normals:
                _, (a, b) = _normals.popitem(last=False)
                _normals_bytes -= a.nbytes + b.nbytes
    return steps, levels


@dataclass(frozen=True)
class Calibration:
    """Calibrated error model of one series' forecast (see the module docstring)."""

    bucket_scale: np.ndarray  # s_b per bucket, non-decreasing
    bucket_len: int  # validation steps per bucket
    h_val: int  # validation horizon
    z: np.ndarray  # pooled normalised signed errors, sorted
    rho: float  # lag-1 autocorrelation of validation error paths
    inflation: float = 1.0
    shared: float = 0.0  # share of the errors' mean square explained by per-window means (level error)

    @classmethod
    def from_errors(cls, errors: np.ndarray, n_buckets: int = 4, inflation: float = 1.0) -> Calibration:
        """Build from a ``(n_windows, h_val)`` array of ``actual - forecast`` validation errors."""
        errors = np.atleast_2d(np.asarray(errors, dtype=float))
        h_val = errors.shape[1]
        n_b = max(1, min(n_buckets, h_val))
        bucket_len = math.ceil(h_val / n_b)
        n_b = math.ceil(h_val / bucket_len)
        scales = np.array(
            [np.mean(np.abs(errors[:, b * bucket_len : (b + 1) * bucket_len])) for b in range(n_b)]
        )
        floor = max(float(np.max(scales)) * 1e-3, 1e-12)
        scales = np.maximum.accumulate(np.maximum(scales, floor))
        steps = np.arange(h_val)
        z = errors / scales[steps // bucket_len]
        rho = 0.0
        if h_val > 2:
            centred = errors - errors.mean(axis=1, keepdims=True)
            num = float(np.sum(centred[:, 1:] * centred[:, :-1]))
            den = float(np.sum(centred**2))
            rho = float(np.clip(num / den, 0.0, 0.99)) if den > 0 else 0.0
        shared = 0.0
        if h_val > 1:
            total = float(np.mean(z**2))
            shared = float(np.clip(np.mean(z.mean(axis=1) ** 2) / total, 0.0, 0.99)) if total > 0 else 0.0
        return cls(
            bucket_scale=scales, bucket_len=bucket_len, h_val=h_val, z=np.sort(z.ravel()), rho=rho,
            inflation=inflation, shared=shared,
        )

    def scale(self, h: int) -> np.ndarray:
        """The error scale ``s(t)`` for steps ``t = 1..h``."""
        steps = np.arange(h)
        idx = np.minimum(steps // self.bucket_len, len(self.bucket_scale) - 1)
        s = self.bucket_scale[idx].astype(float)
        beyond = steps >= self.h_val
        s[beyond] *= np.sqrt((steps[beyond] + 1) / self.h_val)
        return s

    def quantile(self, level: float) -> float:
        """Conformal quantile of ``|z|`` at ``level`` percent (finite-sample corrected)."""
        n = len(self.z)
        abs_z = np.sort(np.abs(self.z))
        rank = min(n, math.ceil((n + 1) * level / 100.0))
        return float(abs_z[rank - 1]) * self.inflation

    def interval(self, yhat: np.ndarray, level: float = 95.0) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric calibrated interval ``yhat -/+ q * s(t)``."""
        width = self.quantile(level) * self.scale(len(yhat))
        return yhat - width, yhat + width

    def _copula(self, draws: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """Latent standard-normal paths from independent ``draws`` ``(paths, h)`` and ``levels`` ``(paths, 1)``:
        AR(1) steps, plus a shared level draw (the copula). Rows are independent: a block of rows gives
        the same values as those rows of the whole."""
        paths = draws
        if draws.shape[1] > 1 and self.rho > 0:
            # p_t = rho p_{t-1} + sqrt(1 - rho^2) e_t, p_0 = e_0, as one filter along time (a Python loop
            # over the steps took seconds for 2,000 paths of 1,440 steps)
            coef = math.sqrt(1.0 - self.rho**2)
            scaled = draws.copy()
            scaled[:, 0] /= coef
            paths = lfilter([coef], [1.0, -self.rho], scaled, axis=1)
        if self.shared > 0:
            paths = math.sqrt(self.shared) * levels + math.sqrt(1.0 - self.shared) * paths
        return np.asarray(paths, dtype=float)

    def _latent(self, h: int, n_paths: int, seed: int) -> np.ndarray:
        """``(n_paths, h)`` standard-normal paths: a shared level draw plus AR(1) steps (the copula)."""
        draws, levels = standard_normals(n_paths, h, seed)
        return self._copula(draws, levels)

    def _sorted_z(self) -> np.ndarray:
        return self.z if np.all(self.z[:-1] <= self.z[1:]) else np.sort(self.z)

    def sample_paths(self, yhat: np.ndarray, n_paths: int = 4000, seed: int = 0) -> np.ndarray:
        """Draw ``(n_paths, len(yhat))`` future paths ``yhat + s(t) * Z_t`` (Gaussian copula: a shared
        level draw plus AR(1) steps)."""
        yhat = np.asarray(yhat, dtype=float)
        zs = self._sorted_z()
        # the empirical quantile function of z (linear, as np.quantile), by interpolation on the sorted z;
        # ndtr is norm.cdf without scipy's per-call argument handling (the same values)
        u = ndtr(self._latent(len(yhat), n_paths, seed))
        z = np.interp(u * (len(zs) - 1), np.arange(len(zs)), zs) * self.inflation
        return yhat + self.scale(len(yhat)) * z

    def exceedance_probability(
        self,
        yhat: np.ndarray,
        threshold: float,
        start: int = 0,
        stop: int | None = None,
        n_paths: int = 4000,
        seed: int = 0,
    ) -> float:
        """Probability that ``y_t > threshold`` for at least one step ``start <= t < stop``.

        The paths of :meth:`sample_paths`, decided in the copula's space: the step's threshold is mapped
        once through the inverse of the (piecewise linear) empirical quantile function, instead of every
        path value through the quantile function (2,000 paths of 1,440 steps: seconds, now ~0.1 s). The
        draws are :func:`standard_normals` (shared by every series and call with the same shape and seed),
        and no path is simulated when the answer is certain: 1.0 when a step's threshold lies below every
        error seen, 0.0 when every step's lies above them all. The answer is remembered by all of its
        inputs (the calibration, ``yhat``, the threshold, the window, ``n_paths`` and ``seed``): the same
        question asked again (a forecast served from :mod:`analytics.forecast.cache`) is not simulated again.
        """
        yhat = np.asarray(yhat, dtype=float)
        stop = len(yhat) if stop is None else min(stop, len(yhat))
        if stop <= start:
            raise ValueError("exceedance window is empty: stop must be greater than start")
        if n_paths < 1:
            raise ValueError(f"n_paths must be at least 1, got {n_paths}")
        key = self._digest(yhat, f"{float(threshold)!r}|{start}|{stop}|{n_paths}|{seed}")
        with _lock:
            if key in _exceedances:
                _exceedances.move_to_end(key)
                return _exceedances[key]
        p = self._exceedance(yhat, float(threshold), start, stop, n_paths, seed)
        with _lock:
            _exceedances[key] = p
            while len(_exceedances) > EXCEEDANCE_MEMO_SIZE:
                _exceedances.popitem(last=False)
        return p

    def _digest(self, yhat: np.ndarray, extra: str) -> str:
        """Digest of every field of the calibration, ``yhat`` and ``extra``."""
        h = hashlib.blake2b(digest_size=20)
        h.update(f"{self.bucket_len}|{self.h_val}|{self.rho!r}|{self.inflation!r}|{self.shared!r}|{extra}".encode())
        for a in (self.bucket_scale, self.z, yhat):
            arr = np.ascontiguousarray(a, dtype=float)
            h.update(f"{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def _exceedance(self, yhat: np.ndarray, threshold: float, start: int, stop: int, n_paths: int, seed: int) -> float:
        zs = self._sorted_z()
        n = len(zs)
        with np.errstate(divide="ignore", invalid="ignore"):
            need = (threshold - yhat[start:stop]) / (self.scale(stop)[start:stop] * self.inflation)
        # z(x) = interp(x, 0..n-1, zs) exceeds `need` exactly for x > x*: zs[k] <= need < zs[k+1]
        k = np.searchsorted(zs, need, side="right") - 1
        inner = np.clip(k, 0, max(n - 2, 0))
        gap = zs[np.minimum(inner + 1, n - 1)] - zs[inner]
        with np.errstate(divide="ignore", invalid="ignore"):
            x_star = inner + np.where(gap > 0, (need - zs[inner]) / gap, 0.0)
        bound = norm.ppf(np.clip(x_star / max(n - 1, 1), 0.0, 1.0))
        bound = np.where(k < 0, -np.inf, np.where(k >= n - 1, np.inf, bound))
        # the answer without simulating where it is certain (latent paths are finite): a step that every
        # path exceeds, or no step that any path can exceed (beyond the largest error seen)
        if np.any(bound == -np.inf):
            return 1.0
        steps = np.flatnonzero(bound < np.inf) + start
        if steps.size == 0:
            return 0.0
        draws, levels = standard_normals(n_paths, stop, seed)
        hits = 0
        # a block of paths at a time, so that each block's steps stay in the CPU cache
        block = max(1, _BLOCK_VALUES // stop)
        for i in range(0, n_paths, block):
            latent = self._copula(draws[i : i + block], levels[i : i + block])
            hits += int(np.count_nonzero(np.any(latent[:, steps] > bound[steps - start], axis=1)))
        return hits / n_paths

    def step_exceedance(self, yhat: np.ndarray, threshold: float) -> np.ndarray:
        """Per-step ``P(y_t > threshold)`` from the empirical distribution of ``z``."""
        needed = (threshold - np.asarray(yhat, dtype=float)) / (self.scale(len(yhat)) * self.inflation)
        below = np.searchsorted(self.z, needed, side="right")
        return np.asarray(1.0 - below / len(self.z), dtype=float)


def breach_series(
    actual: pd.DataFrame,
    forecast: pd.DataFrame,
    *,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    lower_col: str = "yhat_lower",
    upper_col: str = "yhat_upper",
) -> pd.DataFrame:
    """Alert series: 1 where the actual value leaves ``[lower, upper]``, else 0.

    Joins ``actual`` and ``forecast`` on time (and ``id_col`` when both have it); returns the joined rows
    with a ``breach`` column of 0/1 integers and ``direction`` (+1 above, -1 below, 0 inside).
    """
    keys = [c for c in (id_col, time_col) if c in actual.columns and c in forecast.columns]
    merged = actual[[*keys, target_col]].merge(forecast[[*keys, lower_col, upper_col]], on=keys, how="inner")
    above = merged[target_col] > merged[upper_col]
    below = merged[target_col] < merged[lower_col]
    merged["breach"] = (above | below).astype(int)
    merged["direction"] = above.astype(int) - below.astype(int)
    return merged.sort_values(keys).reset_index(drop=True)
