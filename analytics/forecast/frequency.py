"""Frequency inference, regularisation and horizon parsing.

Usage::

    from analytics.forecast.frequency import infer_frequency, regularize, season_lengths

    freq = infer_frequency(df["ds"])            # Frequency(step=Timedelta('1h'), alias='h', ...)
    regular, report = regularize(df, freq)      # missing timestamps re-inserted and interpolated
    season_lengths(freq)                        # [24, 168] for hourly, [7] for daily
    parse_horizon("7d", freq)                   # 168 steps at hourly frequency
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.forecast.arguments import ForecastInputError, split_horizon

__all__ = [
    "ForecastInputError",
    "Frequency",
    "RegularizeReport",
    "infer_frequency",
    "parse_horizon",
    "regularize",
    "season_lengths",
]

#: Largest share of missing timestamps that is silently filled by interpolation.
MAX_MISSING_SHARE = 0.10


@dataclass(frozen=True)
class Frequency:
    """A regular sampling step: ``step`` as a Timedelta and ``alias`` as a pandas offset alias."""

    step: pd.Timedelta
    alias: str

    @property
    def steps_per_day(self) -> float:
        return pd.Timedelta(days=1) / self.step


@dataclass(frozen=True)
class RegularizeReport:
    """What :func:`regularize` changed: counts of inserted and averaged timestamps."""

    inserted: int
    duplicates: int

    def describe(self) -> str:
        parts = []
        if self.inserted:
            parts.append(f"{self.inserted} missing timestamp(s) re-inserted and linearly interpolated")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate timestamp(s) averaged")
        return "; ".join(parts) if parts else "series is regular"


def _alias(step: pd.Timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("D", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count}{unit}"
    raise ForecastInputError(f"unsupported sampling step {step}")


def infer_frequency(ds: pd.Series, *, max_missing_share: float = MAX_MISSING_SHARE) -> Frequency:
    """Infer the regular step of timestamps ``ds``, tolerating a few missing or duplicate stamps.

    The step is the most common positive difference; every difference must be a whole multiple of it
    and the gaps may account for at most ``max_missing_share`` of the reindexed length.
    Raises :class:`ForecastInputError` when the timestamps are irregular.
    """
    stamps = pd.DatetimeIndex(pd.to_datetime(ds)).sort_values().unique()
    if len(stamps) < 3:
        raise ForecastInputError("cannot infer the frequency from fewer than 3 distinct timestamps")
    diffs = np.diff(stamps.asi8)
    values, counts = np.unique(diffs, return_counts=True)
    step_ns = int(values[np.argmax(counts)])
    day_ns = 86_400 * 10**9
    if np.all((diffs >= 28 * day_ns) & (diffs <= 31 * day_ns)) or np.all((diffs >= 365 * day_ns) & (diffs <= 366 * day_ns)):
        # calendar months or years differ in length: "not whole multiples of the most common step 31 days" said
        # nothing of why
        raise ForecastInputError(
            "monthly or yearly timestamps are not supported: calendar months and years differ in length, and "
            "the forecaster needs a fixed step (seconds to weeks)"
        )
    if step_ns <= 0 or np.any(diffs % step_ns != 0):
        raise ForecastInputError(
            "irregular timestamps: differences are not whole multiples of the most common step "
            f"{pd.Timedelta(step_ns)}"
        )
    expected = (stamps.asi8[-1] - stamps.asi8[0]) // step_ns + 1
    missing = expected - len(stamps)
    if missing > max_missing_share * expected:
        raise ForecastInputError(
            f"irregular timestamps: {missing} of {expected} expected timestamps at step "
            f"{pd.Timedelta(step_ns)} are missing (more than {max_missing_share:.0%})"
        )
    step = pd.Timedelta(step_ns)
    return Frequency(step=step, alias=_alias(step))


def regularize(
    df: pd.DataFrame, freq: Frequency, *, time_col: str = "ds", target_col: str = "y"
) -> tuple[pd.DataFrame, RegularizeReport]:
    """Return ``df[[time_col, target_col]]`` on a complete regular grid.

    Duplicate timestamps are averaged; missing timestamps are inserted and filled by linear
    interpolation in time (the ends by the nearest value).
    """
    frame = df[[time_col, target_col]].copy()
    frame[time_col] = pd.to_datetime(frame[time_col])
    n_rows = len(frame)
    frame = frame.groupby(time_col, sort=True, as_index=True)[target_col].mean()
    duplicates = n_rows - len(frame)
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=freq.step)
    filled = frame.reindex(grid)
    inserted = int(filled.isna().sum() - frame.isna().sum())
    filled = filled.interpolate(method="linear", limit_direction="both")
    out = pd.DataFrame({time_col: grid, target_col: filled.to_numpy(dtype=float)})
    return out, RegularizeReport(inserted=inserted, duplicates=duplicates)


def season_lengths(freq: Frequency) -> list[int]:
    """Candidate season lengths in steps: daily and weekly cycles for sub-daily data, weekly for daily."""
    per_day = freq.steps_per_day
    if per_day > 1 and float(per_day).is_integer():
        return [int(per_day), int(per_day) * 7]
    if per_day == 1:
        return [7]
    return []


def parse_horizon(text: str | int, freq: Frequency) -> int:
    """Parse a horizon as a number of steps (``"48"``) or a duration (``"7d"``, ``"168h"``, ``"2w"``).

    A duration must be a whole positive number of steps of ``freq``.
    """
    if isinstance(text, int):
        steps = text
    else:
        count, unit = split_horizon(text)  # the syntax (analytics.forecast.arguments: hub forecast checks it early)
        if unit is None:
            steps = count
        else:
            ratio = count * pd.Timedelta(unit) / freq.step
            if not float(ratio).is_integer():
                raise ForecastInputError(f"horizon {text!r} is not a whole number of {freq.step} steps")
            steps = int(ratio)
    if steps < 1:
        raise ForecastInputError(f"horizon must be at least one step, got {text!r}")
    return steps
