"""The ensemble: runs the detectors, combines their scores by weighted voting, explains each anomaly.

Usage::

    import pandas as pd
    from analytics.anomaly import AnomalyDetector

    df = pd.read_csv("series.csv", parse_dates=["timestamp"])      # columns: timestamp, value
    detector = AnomalyDetector()
    scored = detector.score(df)                                      # one row per input row
    alerts = scored[scored.is_anomaly]
    detector.mark_false_positive(alerts.timestamp.iloc[0])           # learn from feedback
    state_json = detector.feedback.to_json()                         # persist; AnomalyDetector(feedback=...)

The pieces it uses live beside it: :mod:`.voting` (default detectors and weights, vote windows, the events
a mark silences), :mod:`.inputs` (the normalised input, gap filling), :mod:`.bands` (the expected range)
and :mod:`.explain` (the explanation line); their names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analytics.timestamps import parse_timestamps

from ._rolling import (
    beyond_history,
    holding,
    long_run_range,
    median_step_seconds,
    persistent,
    points_per_day,
    recovering,
    run_onsets,
    settled,
    since_alert,
)
from .bands import _expected, _outside_any, steady_band
from .explain import explain, number
from .feedback import FeedbackState
from .inputs import SeriesFrame, _naive_utc, fill_gaps
from .model import AnomalyScore, Detector, DetectorOutput, Severity, severities
from .raw_cache import RawScoreCache
from .voting import DEFAULT_WEIGHTS, _trailing_max, default_detectors, marked_events, weights_from_accuracy

#: Moved to their own modules (bands, explain, inputs, voting); still importable from here.
__all__ = [
    "DEFAULT_WEIGHTS",
    "OUTPUT_COLUMNS",
    "AnomalyDetector",
    "SeriesFrame",
    "default_detectors",
    "explain",
    "fill_gaps",
    "marked_events",
    "number",
    "steady_band",
    "weights_from_accuracy",
]

OUTPUT_COLUMNS = [
    "timestamp",
    "value",
    "anomaly_score",
    "is_anomaly",
    "severity",
    "confidence",
    "detected_by",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "explanation",
]


class AnomalyDetector:
    """Ensemble anomaly detector with weighted voting and feedback.

    Each detector's score is divided by its learned threshold (feedback). Voting rule: a detector
    votes when its score exceeded 1 within the last ``vote_window`` points; its vote weighs its
    weight (by default its F1 measured on NAB, times what feedback taught). When the detectors voting
    hold at least ``quorum`` of the total weight and one of them exceeds 1 now, the ensemble score is
    the highest current score (with the default weights, the robust detector alone or any two others
    make the quorum). The result is divided by the ensemble threshold learned from feedback; above 1
    is anomalous. ``is_anomaly`` marks the first point of each event (an event ends after
    ``refractory`` points without an alert-worthy one; ``None``: one day of points at the sampling
    interval, 300 without timestamps), so a collective anomaly raises one alert — plus any point where
    the event escalates to ``escalate`` times the score of its last alert (``None``: never) — and
    ``anomaly_score`` still shows every anomalous point. An anomalous point is alert-worthy when it is
    the ``persist``-th anomalous point in a row or scores at least ``extreme`` (debounce), when the
    series is not merely moving back into its long-run range after an excursion (``recovery``), and,
    in the first ``warmup`` points (``None``: one day of points, at least 100), only when it is both:
    the ``persist``-th point in a row scoring at least ``extreme``, the run's values all beyond every
    value before them. With ``recovery`` the
    aftermath of an announced incident is not anomalous either (``anomaly_score`` capped below 1): the
    points of its event whose value is back inside the expected range after an alert outside it, and
    the points moving back into the long-run range (see :func:`settled`). ``raw_cache`` (a
    :class:`~analytics.anomaly.raw_cache.RawScoreCache`): the detectors' raw outputs are looked up there
    by detectors and data, and computed only for data not scored before (they do not depend on feedback).
    """

    def __init__(
        self,
        detectors: Sequence[Detector] | None = None,
        *,
        weights: Mapping[str, float] | None = None,
        quorum: float = 0.3,
        vote_window: int = 6,
        refractory: int | None = None,
        persist: int = 3,
        extreme: float = 1.5,
        recovery: bool = True,
        warmup: int | None = None,
        escalate: float | None = 3.0,
        feedback: FeedbackState | None = None,
        timestamp_col: str = "timestamp",
        value_col: str = "value",
        series: str | None = None,
        raw_cache: RawScoreCache | None = None,
    ) -> None:
        if not 0 < quorum <= 1:
            raise ValueError(f"quorum must be in (0, 1], got {quorum!r}")
        if vote_window < 1:
            raise ValueError(f"vote_window must be >= 1, got {vote_window!r}")
        if refractory is not None and refractory < 0:
            raise ValueError(f"refractory must be >= 0, got {refractory!r}")
        if persist < 1:
            raise ValueError(f"persist must be >= 1, got {persist!r}")
        if warmup is not None and warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup!r}")
        if escalate is not None and escalate <= 1:
            raise ValueError(f"escalate must be > 1 (or None), got {escalate!r}")
        chosen = list(detectors) if detectors is not None else default_detectors()
        names = [d.name for d in chosen]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique, got {names}")
        self.detectors: list[Detector] = [d for d in chosen if d.available]
        self.skipped: list[str] = [d.name for d in chosen if not d.available]
        base = dict(DEFAULT_WEIGHTS)
        base.update(weights or {})
        self.weights = {d.name: float(base.get(d.name, 1.0)) for d in self.detectors}
        self.quorum, self.vote_window, self.refractory = quorum, vote_window, refractory
        self.persist, self.extreme, self.recovery, self.warmup = persist, extreme, recovery, warmup
        self.escalate = escalate
        self._day = 300  # points per day of the last scored series (300 before any)
        self.feedback = feedback if feedback is not None else FeedbackState()
        self.timestamp_col, self.value_col = timestamp_col, value_col
        #: The series being scored, when one feedback state serves several: marks are recorded for it,
        #: and the events of marks recorded for other series are not silenced in it.
        self.series = series
        self._last: pd.DataFrame | None = None
        self._last_scores: dict[str, np.ndarray] = {}
        #: Raw detector outputs already computed for the same data (they do not depend on feedback).
        self.raw_cache = raw_cache

    # -- input -------------------------------------------------------------------------------------
    def _frame(self, data: pd.DataFrame | pd.Series | np.ndarray) -> SeriesFrame:
        ts: np.ndarray | None = None
        if isinstance(data, pd.Series):
            if isinstance(data.index, pd.DatetimeIndex):
                ts = _naive_utc(data.index)
            values = data.to_numpy(dtype=float)[:, None]
        elif isinstance(data, pd.DataFrame):
            cols = [
                c for c in data.columns
                if c != self.timestamp_col and (c == self.value_col or pd.api.types.is_numeric_dtype(data[c]))
            ]
            if self.value_col in cols:
                cols.remove(self.value_col)
                cols.insert(0, self.value_col)
            if not cols:
                raise ValueError("the DataFrame has no value column")
            if self.timestamp_col in data.columns:
                ts = parse_timestamps(data[self.timestamp_col]).to_numpy()
            elif isinstance(data.index, pd.DatetimeIndex):
                ts = _naive_utc(data.index)
            values = data[cols].to_numpy(dtype=float)
        else:
            arr = np.asarray(data, dtype=float)
            values = arr[:, None] if arr.ndim == 1 else arr
        target = values[:, 0].copy()
        return SeriesFrame(ts, target, fill_gaps(values, points_per_day(median_step_seconds(ts), default=300)))

    # -- scoring -----------------------------------------------------------------------------------
    def detector_scores(self, data: pd.DataFrame | pd.Series | np.ndarray) -> dict[str, DetectorOutput]:
        """Raw causal outputs of each available detector (before feedback thresholds)."""
        return self._run(self._frame(data))

    def _run(self, frame: SeriesFrame) -> dict[str, DetectorOutput]:
        def compute() -> dict[str, DetectorOutput]:
            # Values near the float range (1e300) overflow in bands and scales; the scores stay usable.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return {d.name: d.score(frame.values, frame.timestamps) for d in self.detectors}

        if self.raw_cache is None:
            return compute()
        return self.raw_cache.get_or_compute(self.detectors, frame.values, frame.timestamps, compute)

    def score(self, data: pd.DataFrame | pd.Series | np.ndarray) -> pd.DataFrame:
        """Score every point; returns the columns in :data:`OUTPUT_COLUMNS` (one row per input row).

        ``data`` is a DataFrame with ``timestamp`` and ``value`` columns (extra numeric columns are
        related series, used by multivariate detectors), a Series (DatetimeIndex optional) or an array.
        """
        frame = self._frame(data)
        n = frame.target.size
        outputs = self._run(frame)
        names = list(outputs)
        # A missing value is not anomalous, and its carried-forward stand-in (a flat stretch) casts no vote:
        # gaps in a sparse series (a latency percentile with no requests) raised "flat line" alerts.
        missing = np.isnan(frame.target)
        scores = {nm: np.where(missing, 0.0, outputs[nm].anomaly_score / self.feedback.calibration(nm).threshold)
                  for nm in names}  # fmt: skip
        w = np.array([self.weights[nm] for nm in names])
        if frame.values.shape[1] > 1:
            w = self._joint_weights(names, w)
        w = w * np.array([self.feedback.calibration(nm).weight for nm in names])
        combined, votes = self._combine([scores[nm] for nm in names], w, n)
        combined = combined / self.feedback.ensemble_threshold
        anomalous = combined > 1.0
        self._day = points_per_day(median_step_seconds(frame.timestamps), default=300)
        recovering_now = recovering(frame.target, self._day) if self.recovery else np.zeros(n, dtype=bool)
        worthy = anomalous & ~recovering_now
        context = untaught = None
        marked = self._marked_points(frame.timestamps, n)
        if marked.size:
            # An event a user marked as a false positive stays silent while it lasts (as it would have
            # been flagged without feedback), unless it grows: its later points are not new alerts.
            base = np.array([self.weights[nm] for nm in names])
            if frame.values.shape[1] > 1:
                base = self._joint_weights(names, base)
            untaught, _ = self._combine([outputs[nm].anomaly_score for nm in names], base, n)
            flagged = persistent((untaught > 1.0) & ~recovering_now, untaught, self.persist, self.extreme)
            context = marked_events(flagged, marked, self.refractory if self.refractory is not None else self._day)
        is_anomaly = self.alerts(worthy, combined, context, untaught)
        # During warm-up (bars and ranges learned from less than a day) an event is announced only when it
        # is sure: ``persist`` points in a row that each score at least ``extreme`` (both halves of the
        # debounce, not either) and whose values all lie beyond every value seen before them (a run of
        # 1s in a sparse count, or a trailing statistic's run, is not); a 5x latency spike in the first
        # day of a series had not paged at all. An event already under way when the warm-up ends is not
        # announced late.
        warm = self.warmup if self.warmup is not None else max(100, self._day)
        if warm > 0:
            sure = persistent(worthy & (combined >= self.extreme), np.zeros(n), self.persist, np.inf)
            sure &= beyond_history(frame.target, self.persist)
            is_anomaly[:warm] = self.alerts(sure, combined, context, untaught)[:warm]

        yhat, raw_lower, raw_upper = _expected(outputs, n)
        # the expected range shown and held against: an incident does not widen it (see steady_band)
        lower, upper = steady_band(yhat, raw_lower, raw_upper, self._day)
        # A series that has never been negative so far (latency, counts, cost) is not expected below 0.
        with np.errstate(invalid="ignore"):
            nonneg = np.fmin.accumulate(np.where(np.isfinite(frame.target), frame.target, np.inf)) >= 0
        lower = np.where(nonneg & np.isfinite(lower), np.maximum(lower, 0.0), lower)
        raw_lower = np.where(nonneg & np.isfinite(raw_lower), np.maximum(raw_lower, 0.0), raw_lower)
        if self.recovery:
            # The aftermath of an announced incident is not anomalous: trailing windows still hold the
            # incident, but the value is back in its expected range and in the series' long-run range
            # (widened by a quarter on each side). The expected range alone can follow an incident
            # within minutes (without a season it is centred on the last hour's median), and the
            # self-normalising bars take the incident in within ten points, so "back to normal" is
            # judged against the long-run range too, which ends a quarter of a day earlier.
            lo, _, hi = long_run_range(frame.target, self._day)
            with np.errstate(over="ignore", invalid="ignore"):  # values near the float range
                lo, hi = lo - (hi - lo) / 4, hi + (hi - lo) / 4
            # An alert left its range when its value was outside the steady expected range or the
            # long-run one; a later point is back when it is inside the long-run range and inside
            # either expected range (the raw one is centred on the last hour's median without a season
            # and widens with an incident: it holds a non-seasonal series' normal values after a spike).
            left = _outside_any(frame.target, [(lower, upper), (lo, hi)])
            outside = left & _outside_any(frame.target, [(raw_lower, raw_upper), (lo, hi)])
            flags = persistent(worthy, combined, self.persist, self.extreme)
            refractory = self.refractory if self.refractory is not None else self._day
            after = settled(anomalous, flags, is_anomaly, outside, recovering_now, refractory, left)
            before, combined = combined, np.where(after, np.minimum(combined, 0.999), combined)
            # ... and an incident under way stays anomalous while its value stays beyond the long-run
            # range on the side it left by, with no point back inside it since the alert (noise beyond
            # that range later in the event is not held): the self-normalising bars take an incident's first points
            # into their own history within ten points, and a 3-hour outage had stopped scoring after 50
            # minutes (its anomaly_alert ended mid-outage). It keeps the score of the event's last alert.
            last = since_alert(flags, is_anomaly, refractory)
            held = holding(frame.target, last, lo, hi, combined > 1.0) | holding(
                frame.target, last, lower, upper, combined > 1.0
            )
            held &= ~is_anomaly & ~missing
            combined = np.where(held, np.maximum(before, before[np.maximum(last, 0)]), combined)
            anomalous = combined > 1.0
        confidence = np.where(
            anomalous, np.clip(0.5 * votes + 0.5 * np.clip((combined - 1) / 2, 0, 1), 0, 1), 0.0
        )
        detected_by: list[list[str]] = [[] for _ in range(n)]
        for i in np.flatnonzero(anomalous):
            detected_by[i] = [nm for nm in names if scores[nm][i] > 1.0] or [max(names, key=lambda nm: scores[nm][i])]
        sev = severities(combined)
        ts = frame.timestamps if frame.timestamps is not None else np.arange(n)
        explanation = np.full(n, "", dtype=object)
        for i in np.flatnonzero(anomalous):
            explanation[i] = explain(
                frame.target[i], lower[i], upper[i], str(sev[i]), combined[i], detected_by[i]
            )
        out = pd.DataFrame(
            {
                "timestamp": ts,
                "value": frame.target,
                "anomaly_score": combined,
                "is_anomaly": is_anomaly,
                "severity": sev,
                "confidence": confidence,
                "detected_by": detected_by,
                "yhat": yhat,
                "yhat_lower": lower,
                "yhat_upper": upper,
                "explanation": explanation,
            }
        )
        self._last, self._last_scores = out, scores
        return out

    def anomalies(self, data: pd.DataFrame | pd.Series | np.ndarray) -> list[AnomalyScore]:
        """The alerts (``is_anomaly`` rows) of :meth:`score` as :class:`AnomalyScore` objects."""
        scored = self.score(data)
        rows = scored[scored["is_anomaly"]]
        return [
            AnomalyScore(
                timestamp=pd.Timestamp(r.timestamp)
                if not isinstance(r.timestamp, int | np.integer)
                else pd.Timestamp(int(r.timestamp), unit="s"),
                value=float(r.value),
                anomaly_score=float(r.anomaly_score),
                severity=Severity(r.severity),
                confidence=float(r.confidence),
                detected_by=tuple(r.detected_by),
                expected_range=(float(r.yhat_lower), float(r.yhat_upper)),
                explanation=str(r.explanation),
            )
            for r in rows.itertuples(index=False)
        ]

    @property
    def last_detector_scores(self) -> dict[str, np.ndarray]:
        """Per-detector scores (feedback thresholds applied) from the last :meth:`score` call."""
        return dict(self._last_scores)

    def alerts(
        self,
        anomalous: np.ndarray,
        scores: np.ndarray | None = None,
        context: np.ndarray | None = None,
        growth: np.ndarray | None = None,
    ) -> np.ndarray:
        """Reduce per-point anomalous flags to alerts: the first point of each event (see ``refractory``).

        With ``scores`` the flags are debounced first (see ``persist`` and ``extreme``). ``context``
        flags extend events without raising alerts, ``growth`` scores decide escalation (see
        :func:`run_onsets`). The default refractory period is one day of points of the last scored series.
        """
        flags = np.asarray(anomalous, dtype=bool)
        if scores is not None:
            flags = persistent(flags, scores, self.persist, self.extreme)
        refractory = self.refractory if self.refractory is not None else self._day
        return run_onsets(flags, refractory, scores, self.escalate, context, growth)

    def _joint_weights(self, names: Sequence[str], w: np.ndarray) -> np.ndarray:
        """With related series, a multivariate detector makes the quorum alone: only it sees them, so a
        joint anomaly (each series unremarkable alone) must not need a second voter."""
        multi = np.array([getattr(d, "multivariate", False) for d in self.detectors if d.name in names], dtype=bool)
        if not multi.any() or multi.all() or self.quorum >= 1:
            return w
        need = self.quorum / (1.0 - self.quorum) * float(w[~multi].sum())
        return np.where(multi, np.maximum(w, need * 1.000001), w)

    def _marked_points(self, timestamps: np.ndarray | None, n: int) -> np.ndarray:
        """Indices of the points of this series that feedback marked as false positives."""
        history = [h for h in self.feedback.history if h.series is None or h.series == self.series]
        if not history:
            return np.zeros(0, dtype=np.int64)
        if timestamps is None or not np.issubdtype(np.asarray(timestamps).dtype, np.datetime64):
            rows = {int(h.timestamp) for h in history if h.timestamp.isdigit()}  # positions, without timestamps
            return np.array(sorted(i for i in rows if i < n), dtype=np.int64)
        stamps = []
        for h in history:
            try:
                t = pd.Timestamp(h.timestamp)
            except ValueError:
                continue
            stamps.append(t.tz_convert("UTC").tz_localize(None) if t.tz is not None else t)
        if not stamps:
            return np.zeros(0, dtype=np.int64)
        wanted = np.array(stamps, dtype="datetime64[ns]")
        return np.flatnonzero(np.isin(np.asarray(timestamps, dtype="datetime64[ns]"), wanted))

    def _combine(self, rows: Sequence[np.ndarray], w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Weighted voting over the detectors' scores (one row each): ``(combined score, vote share)``."""
        if not rows:
            return np.zeros(n), np.zeros(n)
        mat = np.vstack(rows)
        total = max(float(w.sum()), 1e-12)
        now = mat.max(axis=0)
        # A vote lasts ``vote_window`` points, so detectors that react a few points apart still agree.
        recent = _trailing_max(mat, self.vote_window)
        votes = (w[:, None] * (recent > 1.0)).sum(axis=0) / total
        # Below the quorum the strongest score is shown, capped just under 1 (not anomalous).
        return np.where(votes >= self.quorum - 1e-12, now, np.minimum(now, 0.999)), votes

    # -- feedback ----------------------------------------------------------------------------------
    def mark_false_positive(self, timestamp: object, detector: str | None = None) -> None:
        """Mark the point at ``timestamp`` (from the last :meth:`score` call) as a false positive.

        With ``detector`` only that detector is penalised; otherwise every detector that voted and the
        ensemble threshold are. The learned state is in :attr:`feedback` (JSON via ``to_json``).
        """
        if self._last is None:
            raise RuntimeError("call score() before mark_false_positive()")
        if detector is not None and detector not in self.weights:
            raise ValueError(f"unknown detector {detector!r}; known: {sorted(self.weights)}")
        ts = self._last["timestamp"]
        key: object = timestamp
        if np.issubdtype(ts.dtype, np.datetime64):
            stamp = pd.Timestamp(timestamp)  # type: ignore[arg-type]
            key = stamp.tz_convert("UTC").tz_localize(None) if stamp.tz is not None else stamp  # scored as naive UTC
        hits = np.flatnonzero((ts == key).to_numpy())
        if hits.size == 0:
            raise KeyError(f"timestamp {timestamp!r} is not in the last scored series")
        i = int(hits[0])
        shown = {nm: float(s[i]) for nm, s in self._last_scores.items()}
        self.feedback.record_false_positive(
            str(timestamp), shown, float(self._last["anomaly_score"].iat[i]), detector, self.series
        )
