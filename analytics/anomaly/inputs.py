"""The ensemble's input once normalised: timestamps, target values, all value columns with gaps filled.

Usage::

    import numpy as np
    from analytics.anomaly.inputs import fill_gaps

    values = fill_gaps(np.array([[1.0], [2.0], [np.nan]]), day=288)   # -> [[1.0], [2.0], [2.0]]

:meth:`analytics.anomaly.AnomalyDetector.score` builds a :class:`SeriesFrame` from a DataFrame, a Series
or an array; these names are re-exported by :mod:`analytics.anomaly.ensemble`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SeriesFrame:
    """The input once normalised: timestamps (or None), target values, all value columns."""

    timestamps: np.ndarray | None
    target: np.ndarray
    values: np.ndarray


def fill_gaps(values: np.ndarray, day: int) -> np.ndarray:
    """Stand-ins for missing values, causal: the value one day earlier where there is one (a gap keeps
    the series' daily shape and spread), else the last value seen; a leading gap takes the first value.

    A flat stand-in (the last value alone) made every gap look like a stalled sensor to the volatility
    statistics and the window models, and the first real points after it like a burst.

    >>> fill_gaps(np.array([[1.0], [2.0], [3.0], [np.nan], [np.nan], [4.0]]), day=2).ravel().tolist()
    [1.0, 2.0, 3.0, 2.0, 3.0, 4.0]
    """
    out = np.array(values, dtype=float, copy=True)
    for col in range(out.shape[1]):
        x = out[:, col]
        for i in np.flatnonzero(np.isnan(x)):  # (an infinite value is data: the detectors score it)
            if i >= day and not np.isnan(x[i - day]):
                x[i] = x[i - day]
            elif i > 0:
                x[i] = x[i - 1]
    return pd.DataFrame(out).bfill().fillna(0.0).to_numpy()


def _naive_utc(index: pd.DatetimeIndex) -> np.ndarray:
    """A DatetimeIndex as naive-UTC ``datetime64[ns]`` values (an aware index is converted to UTC)."""
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy(dtype="datetime64[ns]")
