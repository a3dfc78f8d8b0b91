"""Causal, vectorised building blocks: trailing robust statistics, score normalisation, refit schedules.

Every function here is causal: the value at index ``t`` uses inputs at indices ``<= t`` only (most use
``< t`` so that a point never explains itself away).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

IQR_TO_SIGMA = 1.349
EPS = 1e-12
#: Scores are capped here: beyond it "how anomalous" carries no information (a step in a flat line).
MAX_SCORE = 1000.0


def as_2d(values: np.ndarray) -> np.ndarray:
    """Return ``values`` as a float ``(n, k)`` array (a 1-D series becomes one column)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"values must be 1-D or 2-D, got {arr.ndim}-D")
    return arr


def target(values: np.ndarray) -> np.ndarray:
    """Column 0 (the target series) as a 1-D float array."""
    return as_2d(values)[:, 0]


#: Trailing statistics are recomputed every ``STRIDE`` points and held in between (vmanomaly's
#: ``fit_every`` in miniature): ~10x less work, still causal and prefix-consistent.
STRIDE = 10


def _strided(frame: pd.DataFrame | pd.Series, window: int, min_periods: int, stride: int, how: str) -> np.ndarray:
    """Rolling statistic ``how`` (``median``, ``std``, ``count`` or ``q<quantile>``) evaluated every
    ``stride`` rows and carried forward; rows are aligned with the input."""
    r = frame.rolling(window, min_periods=min(min_periods, window), step=stride if stride > 1 else None)
    out = r.quantile(float(how[1:])) if how.startswith("q") else getattr(r, how)()
    if stride <= 1:
        return out.to_numpy()
    return np.repeat(out.to_numpy(), stride)[: len(frame)]


def trailing_center_scale(
    x: np.ndarray, window: int, min_periods: int, *, include_current: bool = False, stride: int = STRIDE
) -> tuple[np.ndarray, np.ndarray]:
    """Trailing median and robust sigma (IQR / 1.349, floored by a fraction of the std) of ``x``.

    By default the statistics at ``t`` use ``x[t - window : t]`` (the current point excluded),
    refreshed every ``stride`` points.
    """
    s = pd.Series(x)
    if not include_current:
        s = s.shift(1)
    med = _strided(s, window, min_periods, stride, "median")
    iqr = (_strided(s, window, min_periods, stride, "q0.75") - _strided(s, window, min_periods, stride, "q0.25"))
    std = _strided(s, window, min_periods, stride, "std")
    floor = np.maximum(0.25 * np.nan_to_num(std), 1e-6 * (1.0 + np.abs(np.nan_to_num(med))))
    scale = np.fmax(iqr / IQR_TO_SIGMA, floor)
    return med, scale


def scaled_z(series: np.ndarray, width: int, window: int, min_periods: int) -> np.ndarray:
    """Robust z-score of the trailing ``width``-point mean of ``series``.

    The reference (median and IQR-sigma) covers the ``max(window, 10 * width)`` points before the
    averaging window, so an anomaly never sits in its own reference. ``width=1`` is a plain robust z.
    """
    s = pd.Series(series)
    smooth = s if width <= 1 else s.rolling(width, min_periods=width).mean()
    span = max(window, 10 * width)
    med, scale = trailing_center_scale(smooth.to_numpy(), span, max(min_periods, span // 5))
    if width > 1:
        med = pd.Series(med).shift(width - 1).to_numpy()
        scale = pd.Series(scale).shift(width - 1).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return (smooth.to_numpy() - med) / scale


def log_volatility(x: np.ndarray, width: int) -> np.ndarray:
    """Log of the trailing ``width``-point standard deviation (floored so flat stretches stay finite)."""
    r = pd.Series(x).rolling(width, min_periods=width)
    sd = r.std().to_numpy()
    floor = 1e-9 * (1.0 + np.abs(r.mean().to_numpy()))
    return np.log(np.fmax(sd, 0.0) + floor)


def two_sided_cusum(r: np.ndarray, allowance: float) -> np.ndarray:
    """Page's two-sided CUSUM of standardised residuals ``r``: ``max(S+, S-)`` with
    ``S+_t = max(0, S+_{t-1} + r_t - allowance)`` (``S-`` on ``-r``), both starting at 0.

    Vectorised by the Lindley identity ``S_t = C_t - min(0, min_{s<=t} C_s)``, ``C`` the cumulative sum
    of ``r - allowance``. Causal. Small persistent shifts accumulate here long before any window mean
    notices them; a deviation smaller than ``allowance`` never does.
    """

    def reflected(y: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(y)])
        return (c - np.minimum.accumulate(c))[1:]

    r = np.nan_to_num(np.asarray(r, dtype=float))
    return np.maximum(reflected(r - allowance), reflected(-r - allowance))


def points_for(seconds: float, step_seconds: float | None, default: int, minimum: int = 2) -> int:
    """How many points cover ``seconds`` at the sampling interval (``default`` without timestamps)."""
    if step_seconds is None or step_seconds <= 0:
        return max(minimum, default)
    return max(minimum, round(seconds / step_seconds))


def adaptive_threshold(
    z: np.ndarray,
    history: int,
    min_periods: int,
    quantile: float,
    k_min: float,
    margin: float,
    short_history_boost: float = 0.0,
    stride: int = STRIDE,
) -> np.ndarray:
    """Per-point threshold: ``max(k_min, margin * q)`` where ``q`` is the ``quantile`` of past ``|z|``.

    Normalising a detector's raw statistic by its own history makes one threshold fit series with very
    different tails (a heavy-tailed series raises its own bar). NaN while the history is too short.
    """
    s = pd.Series(np.abs(z)).shift(1)
    past = _strided(s, history, min_periods, stride, f"q{quantile}")
    if short_history_boost > 0:
        # A high quantile of a short history is an unreliable bar: demand more until the history grows.
        count = np.fmax(np.nan_to_num(_strided(s, history, min_periods, stride, "count")), 1.0)
        past = past * (1.0 + short_history_boost * np.sqrt(1000.0 / count))
    return np.fmax(k_min, margin * past)


def normalised_score(z: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """``|z| / threshold`` with NaN (warm-up) mapped to 0, capped at :data:`MAX_SCORE`: the vmanomaly
    convention, > 1 is anomalous."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.abs(z) / threshold
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=MAX_SCORE), 0.0, MAX_SCORE)


def refit_schedule(n: int, first: int, every: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` segments scored with a model fitted on data before ``start``.

    Refit points are ``first, first + every, ...`` independently of ``n``, so a prefix of a series gets
    exactly the same fits (and scores) as the full series.
    """
    start = max(first, 1)
    while start < n:
        end = min(start + every, n)
        yield start, end
        start = end


def median_step_seconds(timestamps: np.ndarray | None, head: int = 200) -> float | None:
    """Median sampling interval in seconds over the first ``head`` points (so that a prefix of a
    series agrees with the whole), or None when timestamps are absent or unusable."""
    if timestamps is None or len(timestamps) < 3:
        return None
    ts = np.asarray(timestamps[: head + 1]).astype("datetime64[ns]").astype(np.int64)
    diffs = np.diff(ts)
    diffs = diffs[diffs > 0]
    if diffs.size == 0:
        return None
    return float(np.median(diffs)) / 1e9


def candidate_periods(step_seconds: float | None) -> list[int]:
    """Seasonal periods (in points) worth testing: one day and one week at the sampling interval."""
    if step_seconds is None or step_seconds <= 0:
        return []
    out = []
    for seconds in (86_400.0, 7 * 86_400.0):
        p = round(seconds / step_seconds)
        if 4 <= p <= 5_000:
            out.append(int(p))
    return out


def seasonal_strength(x: np.ndarray, period: int) -> float:
    """Autocorrelation at lag ``period`` of ``x`` after removing a trailing-median trend (0 if too short)."""
    x = x[np.isfinite(x)]
    if x.size < 3 * period:
        return 0.0
    trend = pd.Series(x).rolling(period, min_periods=1).median().to_numpy()
    d = x - trend
    d = d - d.mean()
    a, b = d[period:], d[:-period]
    denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / denom) if denom > EPS else 0.0


def acf_periods(x: np.ndarray, max_lag: int = 1000, top: int = 3) -> list[int]:
    """Lags of the highest local maxima of the autocorrelation of ``x`` (FFT, for series without time)."""
    x = x[np.isfinite(x)]
    max_lag = min(max_lag, x.size // 3)
    if max_lag < 8:
        return []
    d = x - x.mean()
    f = np.fft.rfft(d, 2 * x.size)
    acf = np.fft.irfft(f * np.conj(f))[: max_lag + 1]
    if acf[0] <= EPS:
        return []
    acf = acf / acf[0]
    lags = np.arange(4, max_lag)
    peaks = lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1])]
    return [int(p) for p in peaks[np.argsort(-acf[peaks])][:top]]


def choose_period(x: np.ndarray, timestamps: np.ndarray | None, min_strength: float = 0.3) -> int | None:
    """Pick the strongest daily/weekly season in ``x`` (None when no season is clear).

    Without timestamps the candidates are the autocorrelation peaks of ``x``.
    """
    best, best_strength = None, min_strength
    step = median_step_seconds(timestamps)
    for p in candidate_periods(step) if step is not None else acf_periods(x):
        strength = seasonal_strength(x, p)
        if strength > best_strength:
            best, best_strength = p, strength
    return best


def run_onsets(
    flags: np.ndarray,
    refractory: int,
    scores: np.ndarray | None = None,
    escalate: float | None = None,
    context: np.ndarray | None = None,
    growth: np.ndarray | None = None,
) -> np.ndarray:
    """Keep only the first flag of each event; an event lasts until ``refractory`` points pass unflagged.

    A collective anomaly is then reported once instead of at each of its points. With ``scores`` and
    ``escalate``, a flag inside an event is kept too when its score is at least ``escalate`` times the
    score of the event's last kept flag: the event has grown (a 1.2 blip that becomes a 40 outage is
    announced again); ``growth`` replaces ``scores`` in that comparison. ``context`` flags extend events
    without raising alerts themselves: an event whose first point is only a context flag raises no
    onset alert, only escalations. (The ensemble passes, as ``context`` and ``growth``, what it would
    flag and score without feedback: an event a user marked as a false positive stays silent while it
    lasts unless it grows, and a silenced detector does not split one event into several.) Causal.
    """
    flags = np.asarray(flags, dtype=bool)
    if refractory <= 0 or not flags.any():
        return flags.copy()
    span = flags if context is None else flags | np.asarray(context, dtype=bool)
    idx = np.flatnonzero(span)
    gaps = np.diff(idx, prepend=-(refractory + 2))
    starts = idx[gaps > refractory]  # the first point of each event
    out = np.zeros_like(flags)
    out[starts[flags[starts]]] = True  # an event that starts silenced (context only) raises no onset alert
    if scores is not None and escalate is not None and escalate > 0:
        s = np.nan_to_num(np.asarray(scores if growth is None else growth, dtype=float))
        event = np.cumsum(gaps > refractory)
        last, current = 0.0, 0
        for i, ev in zip(idx, event, strict=True):
            if ev != current:  # a new event: growth is measured from its first point
                current, last = ev, s[i]
            elif flags[i] and s[i] >= escalate * last > 0:
                out[i] = True
                last = s[i]
    return out


def points_per_day(step_seconds: float | None, default: int = 288) -> int:
    """Points in one day at the sampling interval (``default`` without timestamps), at least 4."""
    if step_seconds is None or step_seconds <= 0:
        return default
    return max(4, round(86_400.0 / step_seconds))


def persistent(flags: np.ndarray, scores: np.ndarray, persist: int, extreme: float) -> np.ndarray:
    """Debounce: a flag stands when the last ``persist`` points were all flagged, or its score is at
    least ``extreme`` (one isolated, marginal exceedance is noise; a strong one is not). Causal."""
    flags = np.asarray(flags, dtype=bool)
    if persist <= 1:
        return flags.copy()
    run = pd.Series(flags.astype(float)).rolling(persist, min_periods=1).sum().to_numpy()
    return flags & ((run >= persist) | (np.nan_to_num(np.asarray(scores, dtype=float)) >= extreme))


def beyond_history(x: np.ndarray, persist: int, widen: float = 0.25) -> np.ndarray:
    """Where the last ``persist`` values all lie above the range of every value before them, or all
    below it, the range widened by ``widen`` of its width on each side (a run of new extremes: what a
    series with less than a day of history cannot have seen as normal). Causal.

    >>> beyond_history(np.array([5.0, 3.0, 4.0, 9.0, 8.0, 7.0, 2.0]), 3).tolist()
    [False, False, False, False, False, True, False]
    >>> beyond_history(np.array([5.0, 3.0, 4.0, 9.0, 8.0, 5.4, 2.0]), 3).tolist()  # 5.4 < 5 + 0.25 * (5 - 3)
    [False, False, False, False, False, False, False]
    """
    x = np.asarray(x, dtype=float)
    out = np.zeros(x.size, dtype=bool)
    if persist < 1 or x.size <= persist:
        return out
    high = np.fmax.accumulate(np.where(np.isnan(x), -np.inf, x))  # the largest value up to each point
    low = np.fmin.accumulate(np.where(np.isnan(x), np.inf, x))
    with np.errstate(invalid="ignore", over="ignore"):  # (no value yet: inf - inf)
        pad = widen * (high - low)
        high, low = high + np.nan_to_num(pad), low - np.nan_to_num(pad)
    run = pd.Series(x).rolling(persist, min_periods=persist)
    run_min, run_max = run.min().to_numpy(), run.max().to_numpy()
    with np.errstate(invalid="ignore"):  # a NaN in the run: not a run of extremes
        out[persist:] = (run_min[persist:] > high[:-persist]) | (run_max[persist:] < low[:-persist])
    return out


def long_run_range(
    x: np.ndarray, day: int, band: float = 0.05, stride: int = STRIDE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(low, median, high)``: the ``[band, 1 - band]`` quantile range and the median of the
    ``max(500, 3 days)`` points that end a quarter of a day before each point, so that a recent
    excursion is not part of it. Causal."""
    gap = max(1, day // 4)
    span = max(500, 3 * day)
    past = pd.Series(x).shift(gap)
    lo = _strided(past, span, span // 4, stride, f"q{band}")
    hi = _strided(past, span, span // 4, stride, f"q{1.0 - band}")
    mid = _strided(past, span, span // 4, stride, "median")
    return lo, mid, hi


def recovering(x: np.ndarray, day: int, band: float = 0.05, stride: int = STRIDE) -> np.ndarray:
    """True where the series is moving back into its long-run normal range after an excursion.

    The long-run range is the ``[band, 1 - band]`` quantile range of the ``max(500, 3 days)`` points
    that end a quarter of a day before ``t`` (so a recent excursion is not part of it); the recent
    baseline is the median of the quarter day before ``t``. A point is recovering when that baseline
    lies outside the range, the point lies inside it, and the point is closer to the long-run median
    than the baseline is: the *end* of an anomaly, which trailing detectors see as a jump, is not a
    new anomaly. Causal.
    """
    gap = max(1, day // 4)
    lo, mid, hi = long_run_range(x, day, band, stride)
    recent = pd.Series(x).shift(1).rolling(gap, min_periods=1).median().to_numpy()
    with np.errstate(invalid="ignore", over="ignore"):  # values near the float range: no recovery is judged
        inside = (x >= lo) & (x <= hi)
        away = (recent < lo) | (recent > hi)
        closer = np.abs(x - mid) < np.abs(recent - mid)
    return inside & away & closer


def settled(
    anomalous: np.ndarray,
    worthy: np.ndarray,
    alerts: np.ndarray,
    outside: np.ndarray,
    recovery: np.ndarray,
    refractory: int,
    left: np.ndarray | None = None,
) -> np.ndarray:
    """The anomalous points that are the aftermath of an announced incident rather than anomalies.

    Trailing statistics (a 6-hour mean, a day's volatility, a CUSUM) hold an incident in their
    windows after it ends, so normal points keep scoring above 1 for hours. A point is *settled* when
    it is anomalous but not an alert, and either the series is moving back into its long-run range
    (``recovery``) or the event's last alert was a value ``outside`` its expected range and this
    point's value is back inside it (``left``, where the alert is judged, defaults to ``outside``).
    An event ends when ``refractory`` points pass without an
    alert-worthy (``worthy``) point, as in :func:`run_onsets`. Causal.

    >>> a = np.array([0, 1, 1, 1, 0, 1], dtype=bool)
    >>> out = np.array([0, 1, 0, 0, 0, 0], dtype=bool)
    >>> settled(a, a, np.array([0, 1, 0, 0, 0, 0], dtype=bool), out, np.zeros(6, dtype=bool), 2).astype(int).tolist()
    [0, 0, 1, 1, 0, 1]
    >>> settled(a, a, np.array([0, 1, 0, 0, 0, 0], dtype=bool), out, np.zeros(6, dtype=bool), 1).astype(int).tolist()
    [0, 0, 1, 1, 0, 0]
    """
    anomalous, worthy, alerts = (np.asarray(v, dtype=bool) for v in (anomalous, worthy, alerts))
    outside, recovery = np.asarray(outside, dtype=bool), np.asarray(recovery, dtype=bool)
    last_alert = since_alert(worthy, alerts, refractory)
    left = outside if left is None else np.asarray(left, dtype=bool)
    after_outside = (last_alert >= 0) & left[np.maximum(last_alert, 0)]
    return anomalous & ~alerts & (recovery | (after_outside & ~outside))


def since_alert(worthy: np.ndarray, alerts: np.ndarray, refractory: int) -> np.ndarray:
    """For each point, the index of the last alert of the event it belongs to, -1 outside an announced
    event. An event is a run of ``worthy`` points at most ``refractory`` apart (as in :func:`run_onsets`)
    and lasts ``refractory`` points past its last one. Causal.

    >>> w = np.array([0, 1, 1, 0, 0, 0, 1], dtype=bool)
    >>> since_alert(w, np.array([0, 0, 1, 0, 0, 0, 0], dtype=bool), 2).tolist()
    [-1, -1, 2, 2, 2, -1, -1]
    """
    worthy, alerts = np.asarray(worthy, dtype=bool), np.asarray(alerts, dtype=bool)
    n = worthy.size
    if not n:
        return np.zeros(0, dtype=np.int64)
    pos = np.arange(n)
    refractory = max(refractory, 0)
    last_worthy = np.maximum.accumulate(np.where(worthy, pos, -1))
    idx = np.flatnonzero(worthy)
    gaps = np.diff(idx, prepend=-(refractory + 2))
    start_at = np.full(n, -1)
    if idx.size:
        start_at[idx] = np.maximum.accumulate(np.where(gaps > refractory, idx, -1))
    start_at = np.maximum.accumulate(start_at)  # the first point of the current event
    in_event = (last_worthy >= 0) & (pos - last_worthy <= refractory)
    last_alert = np.maximum.accumulate(np.where(alerts, pos, -1))
    return np.where(in_event & (last_alert >= 0) & (last_alert >= start_at), last_alert, -1)


#: How far beyond its range a point of an announced event must stay, as a share of the alert's own excess,
#: for the event to go on (:func:`holding`).
HOLD_SHARE = 0.25


def holding(
    x: np.ndarray, last_alert: np.ndarray, low: np.ndarray, high: np.ndarray, anomalous: np.ndarray
) -> np.ndarray:
    """Points of an announced event (``last_alert`` from :func:`since_alert`) whose value is still beyond
    the long-run range ``[low, high]`` on the side where the event's last alert was, with no point back
    inside it (and not ``anomalous``) since that alert: the incident goes on. Causal.

    >>> x = np.array([5.0, 30.0, 28.0, 6.0, 29.0])
    >>> holding(x, np.array([-1, 1, 1, 1, 1]), np.full(5, 0.0), np.full(5, 10.0), np.zeros(5, dtype=bool)).tolist()
    [False, True, True, False, False]

    A point must stay beyond the range by :data:`HOLD_SHARE` of the alert's own excess: after a burst to
    100 over a range ending at 10, values of 11 and 12 are the burst over, not going on.

    >>> x = np.array([5.0, 100.0, 12.0, 11.0, 40.0])
    >>> holding(x, np.array([-1, 1, 1, 1, 1]), np.full(5, 0.0), np.full(5, 10.0), np.zeros(5, dtype=bool)).tolist()
    [False, True, False, False, False]
    """
    x = np.asarray(x, dtype=float)
    if not x.size:
        return np.zeros(0, dtype=bool)
    at = np.maximum(last_alert, 0)
    with np.errstate(invalid="ignore", over="ignore"):
        # beyond the range by at least a quarter of what the alert's value was: a value back near the
        # range's edge is the incident ending, not going on
        above = (x[at] > high[at]) & (x - high >= HOLD_SHARE * (x[at] - high[at]))
        below = (x[at] < low[at]) & (low - x >= HOLD_SHARE * (low[at] - x[at]))
    beyond = (last_alert >= 0) & (above | below)
    going = beyond | np.asarray(anomalous, dtype=bool)
    pos = np.arange(x.size)
    run_start = np.maximum.accumulate(np.where(going, 0, pos + 1))  # first point of the current run
    return beyond & (last_alert >= run_start)
