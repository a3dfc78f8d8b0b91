"""Data characteristics that drive model selection, and outlier handling.

Usage::

    from analytics.forecast.profile import profile_series, clean_outliers

    profile = profile_series(y, seasons=[24, 168])
    profile.seasonal_strength     # {24: 0.93, 168: 0.41}, 0 (none) .. 1 (pure seasonal)
    profile.intermittency         # share of zero values
    profile.level_shift_at        # index where the most recent level shift starts, or None
    y_clean, n = clean_outliers(y, season=24)

Formulas (all robust, O(n)):

- seasonal strength for a season ``s`` (Hyndman's F_s on a cheap decomposition): trend ``T`` = centred
  rolling median of width ``s``; seasonal ``S`` = per-phase median of ``y - T``; remainder
  ``R = y - T - S``; ``F_s = max(0, 1 - var(R) / var(S + R))``.
- outliers: ``|R| > k * 1.4826 * MAD(R)`` (Hampel rule, k = 5 by default) are replaced by ``T + S``
  (near the ends, where the centred trend is one-sided, only spikes beyond 3k: isolated, or a run of at
  most ``MAX_EDGE_RUN`` the series has come back from; a run reaching the end may be a new level).
- level shift: the remainder-free level ``T`` is compared across adjacent windows of width
  ``max(s, 24)``; a jump larger than ``4 * 1.4826 * MAD(diff(y))``-scaled noise and larger than
  20 % of the level is a shift; the latest one is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["SeriesProfile", "clean_outliers", "decompose", "profile_series"]


@dataclass(frozen=True)
class SeriesProfile:
    """Characteristics of one series, as used by :func:`analytics.forecast.selection.select_models`."""

    length: int
    seasons: list[int]
    seasonal_strength: dict[int, float] = field(default_factory=dict)
    intermittency: float = 0.0
    level_shift_at: int | None = None
    non_negative: bool = True
    constant: bool = False

    def strong_seasons(self, threshold: float = 0.3) -> list[int]:
        """Seasons with strength above ``threshold`` that the series covers at least twice."""
        return [s for s in self.seasons if self.seasonal_strength.get(s, 0.0) >= threshold]


def _mad(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def decompose(y: np.ndarray, season: int, window: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cheap robust decomposition ``y = trend + seasonal + remainder`` (see the module docstring);
    ``window``: the trend's width (default: the season)."""
    series = pd.Series(y)
    width = max(3, (window or season) | 1)
    trend = series.rolling(width, center=True, min_periods=1).median().to_numpy()
    detrended = y - trend
    if season > 1 and len(y) >= 2 * season:
        phase = np.arange(len(y)) % season
        profile = pd.Series(detrended).groupby(phase).median().to_numpy()
        seasonal = profile[phase]
    else:
        seasonal = np.zeros_like(y)
    return trend, seasonal, detrended - seasonal


def _seasonal_strength(y: np.ndarray, season: int) -> float:
    if len(y) < 2 * season:
        return 0.0
    _, seasonal, remainder = decompose(y, season)
    total = np.var(seasonal + remainder)
    if total <= 0:
        return 0.0
    return float(max(0.0, 1.0 - np.var(remainder) / total))


def _level_shift(y: np.ndarray, window: int) -> int | None:
    if len(y) < 4 * window:
        return None
    noise = _mad(np.diff(y)) / np.sqrt(2.0)
    means = pd.Series(y).rolling(window).median().to_numpy()
    # compare the window ending at i with the window starting at i + 1
    before = means[window - 1 : len(y) - window]
    after = means[2 * window - 1 :]
    jump = np.abs(after - before)
    scale = np.maximum(np.abs(before), 1e-12)
    # a shift must dwarf the seasonal swing between equal-phase windows as well as the noise
    swing = _mad(np.diff(means[window - 1 :: window])) if len(y) >= 6 * window else 0.0
    threshold = np.maximum(4.0 * max(noise, swing), 0.2 * scale)
    hits = np.flatnonzero(jump > threshold)
    if len(hits) == 0:
        return None
    return int(hits[-1] + window)


def profile_series(y: np.ndarray, seasons: list[int]) -> SeriesProfile:
    """Measure length, per-season strength, intermittency and the latest level shift of ``y``."""
    y = np.asarray(y, dtype=float)
    usable = [s for s in seasons if len(y) >= 2 * s]
    strength = {s: _seasonal_strength(y, s) for s in usable}
    window = max(usable[0] if usable else 1, 24 if len(y) >= 96 else max(2, len(y) // 8))
    return SeriesProfile(
        length=len(y),
        seasons=usable,
        seasonal_strength=strength,
        intermittency=float(np.mean(y == 0)) if len(y) else 0.0,
        level_shift_at=_level_shift(y, window),
        non_negative=bool(np.all(y >= 0)),
        constant=bool(np.ptp(y) == 0) if len(y) else True,
    )


#: The longest run of outliers near the ends of a series that is replaced, once the series is back to
#: normal after it: a one-hour incident straddles two hourly buckets.
MAX_EDGE_RUN = 2


def clean_outliers(y: np.ndarray, season: int, k: float = 5.0, *, window: int | None = None) -> tuple[np.ndarray, int]:
    """Replace Hampel outliers of the remainder by ``trend + seasonal``; return (cleaned, count).

    ``window``: the trend's width (default: the season; a series too short for a season is cleaned with
    ``season=1`` and a window of its own).
    """
    y = np.asarray(y, dtype=float)
    if len(y) < max(8, 2 * season):
        return y.copy(), 0
    trend, seasonal, remainder = decompose(y, season, window)
    scale = _mad(remainder)
    if scale <= 0:
        return y.copy(), 0
    deviation = np.abs(remainder - np.median(remainder))
    big = deviation > k * scale
    mask = big.copy()
    # near the ends the centred trend is one-sided and lags a trend, which makes runs of large
    # remainders there: replace only spikes in those stretches, extreme values that are isolated or
    # in a short run the series has come back from (a run that reaches the end may be a new level)
    edge = max(3, (window or season) | 1) // 2 + 1
    spikes = _spikes(big, deviation > 3 * k * scale)
    mask[:edge] = spikes[:edge]
    mask[-edge:] = spikes[-edge:]
    cleaned = y.copy()
    cleaned[mask] = (trend + seasonal)[mask]
    return cleaned, int(mask.sum())


def _spikes(big: np.ndarray, extreme: np.ndarray) -> np.ndarray:
    """Runs of ``big`` with an ``extreme`` value: one alone, or up to MAX_EDGE_RUN inside the series."""
    out = np.zeros(len(big), dtype=bool)
    idx = np.flatnonzero(big)
    if len(idx) == 0:
        return out
    breaks = np.diff(idx) > 1
    for first, last in zip(idx[np.r_[True, breaks]], idx[np.r_[breaks, True]], strict=True):
        run = last - first + 1
        if not extreme[first : last + 1].any():
            continue
        if run == 1 or (run <= MAX_EDGE_RUN and first > 0 and last < len(big) - 1):
            out[first : last + 1] = True
    return out
