"""Timestamp columns as users write them: ISO-8601 strings (with or without an offset) or epoch numbers.

Usage::

    import pandas as pd
    from analytics.timestamps import parse_timestamps

    parse_timestamps(pd.Series(["2024-01-01 00:00:00", "2024-01-01T00:05:00Z"]))   # naive UTC
    parse_timestamps(pd.Series([1704067200, 1704067500]))                         # epoch seconds
    parse_timestamps(pd.Series([1704067200000, 1704067500000]))                   # epoch milliseconds

Strings with an offset are converted to UTC and strings without one are taken as UTC, so the result
is always timezone-naive UTC (``datetime64[ns]``). Numbers are epoch time; the unit (s, ms, µs, ns) is
inferred from the magnitude of the median, which separates the four units for any date between 1973
and 2286. Without this, pandas reads epoch seconds as nanoseconds (1970-01-01 plus 1.7 s), and every
duration derived from the sampling interval (a day of points, a season) is absurd.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["epoch_unit", "parse_timestamps"]

#: Upper bounds of the median epoch value for each unit (2286-11-20 in seconds is 1e10).
_UNITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"), (float("inf"), "ns"))


def epoch_unit(values: np.ndarray) -> str:
    """The epoch unit (``s``, ``ms``, ``us`` or ``ns``) of numeric timestamps, from their median magnitude."""
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite)]
    median = float(np.median(finite)) if finite.size else 0.0
    return next(unit for bound, unit in _UNITS if median < bound)


def parse_timestamps(col: pd.Series) -> pd.Series:
    """``col`` as naive-UTC ``datetime64[ns]``; raises ``ValueError`` (or ``TypeError``) when unparseable."""
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = pd.to_datetime(col)
    elif pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        ts = pd.to_datetime(col, unit=epoch_unit(col.to_numpy(dtype=float)), utc=True)
    else:
        ts = pd.to_datetime(col, format="mixed", utc=True)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[ns]")
