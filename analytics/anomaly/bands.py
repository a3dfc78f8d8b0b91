"""The expected range shown with each anomaly: which detector provides it, and its steady width.

Usage::

    import numpy as np
    from analytics.anomaly.bands import steady_band

    y = np.zeros(6); w = np.array([1.0, 1, 1, 1, 9, 9])
    lower, upper = steady_band(y, y - w, y + w, day=4)   # an incident does not widen the range at once

:class:`analytics.anomaly.AnomalyDetector` takes ``yhat``/``yhat_lower``/``yhat_upper`` from here;
these names are re-exported by :mod:`analytics.anomaly.ensemble`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .model import DetectorOutput


def _outside_any(x: np.ndarray, bands: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Where ``x`` lies outside any of ``bands`` (a NaN bound does not count)."""
    out = np.zeros(x.size, dtype=bool)
    with np.errstate(invalid="ignore"):
        for lo, hi in bands:
            out |= (x < lo) | (x > hi)
    return out


def _expected(outputs: Mapping[str, DetectorOutput], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected value and band: per point, the first detector (in order) that provides one."""
    yhat, lower, upper = (np.full(n, np.nan) for _ in range(3))
    for name in ("seasonal", "robust", *outputs):
        if name not in outputs:
            continue
        o = outputs[name]
        fill = ~np.isfinite(yhat) & np.isfinite(o.yhat)
        yhat[fill], lower[fill], upper[fill] = o.yhat[fill], o.yhat_lower[fill], o.yhat_upper[fill]
    return yhat, lower, upper


def steady_band(
    yhat: np.ndarray, lower: np.ndarray, upper: np.ndarray, day: int
) -> tuple[np.ndarray, np.ndarray]:
    """The expected range with each side's width replaced by its median over the last day of points
    (causal), so that an incident does not widen the range it is judged against.

    A detector's band is its forecast plus or minus its threshold times the trailing scale of its
    residuals; an incident's large residuals raise both within a few points (a daily cycle of 70-130
    showed the range [56, 204] 20 minutes into a 3-hour drop), so the incident looked "inside the
    expected range". The day's median of the width follows a lasting change of volatility within half
    a day and ignores shorter ones.

    >>> y = np.zeros(6); w = np.array([1.0, 1, 1, 1, 9, 9])
    >>> steady_band(y, y - w, y + w, 4)[1].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 5.0]
    """
    with np.errstate(invalid="ignore", over="ignore"):
        below, above = yhat - lower, upper - yhat
    width = max(1, int(day))
    below_s = pd.Series(below).rolling(width, min_periods=1).median().to_numpy()
    above_s = pd.Series(above).rolling(width, min_periods=1).median().to_numpy()
    keep = ~np.isfinite(yhat)
    with np.errstate(invalid="ignore", over="ignore"):
        lo = np.where(keep | ~np.isfinite(below_s), lower, yhat - below_s)
        hi = np.where(keep | ~np.isfinite(above_s), upper, yhat + above_s)
    return lo, hi
