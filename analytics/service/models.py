"""Run a configured model on the series of one query: derived rows and anomaly records.

    from analytics.service.models import run_anomaly, run_forecast
    rows, anomalies, scored_from = run_anomaly("acme", "latency_p95", "anomaly_ensemble", spec, series, feedback,
                                  write_from=t0, bulk_threshold=200)
    rows, results = run_forecast("acme", "requests_rate", "forecast_ensemble", spec, series, bulk_threshold=200)

Small batches use the library ensembles (:class:`analytics.anomaly.AnomalyDetector`,
:class:`analytics.forecast.EnsembleForecaster`); a query yielding ``bulk_threshold`` series or more uses
the vectorised fast paths of :mod:`analytics.service.bulk`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.anomaly import AnomalyDetector, FeedbackState
from analytics.anomaly.ensemble import explain
from analytics.anomaly.model import severities
from analytics.anomaly.raw_cache import RawScoreCache
from analytics.anomaly.registry import make_detectors
from analytics.forecast import EnsembleConfig, EnsembleForecaster, ForecastInputError, SeriesForecast
from analytics.forecast.cache import ForecastCache
from analytics.service.bulk import bulk_forecast, bulk_score
from analytics.service.config import DEFAULT_DETECTORS, ModelSpec, parse_duration
from analytics.service.derived import AnomalyRecord, DerivedRow
from analytics.service.related import related_columns
from analytics.service.series import Series, labels_key

__all__ = [
    "anomaly_id",
    "build_detector",
    "first_finite",
    "forecast_frame",
    "horizon_steps",
    "run_anomaly",
    "run_forecast",
    "score_series",
]

#: Fewest non-empty points a series needs before it is scored or forecast.
MIN_POINTS = 16


def build_detector(
    params: dict[str, Any], feedback: FeedbackState | None = None, raw_cache: RawScoreCache | None = None
) -> AnomalyDetector:
    """An :class:`AnomalyDetector` from model ``params`` (see :class:`ModelSpec`); ``raw_cache``: where the
    detectors' raw outputs of data scored before are found (see :mod:`analytics.anomaly.raw_cache`)."""
    names = params.get("detectors") or list(DEFAULT_DETECTORS)
    detectors = make_detectors(names, **{k: params[k] for k in ("min_periods", "window") if k in params})
    ens = {k: params[k] for k in ("quorum", "vote_window") if k in params}
    return AnomalyDetector(detectors, feedback=feedback, raw_cache=raw_cache, **ens)


def anomaly_id(tenant: str, query: str, model_alias: str, key: str, ts: float) -> str:
    """Stable id of an anomalous point (the same point scored again keeps its id)."""
    return hashlib.sha1(f"{tenant}|{query}|{model_alias}|{key}|{int(ts)}".encode()).hexdigest()[:20]


def _labels(series: Series, query: str, model_alias: str) -> dict[str, str]:
    return {**series.labels, "for": query, "model_alias": model_alias}


def _usable(series: Series) -> bool:
    return int(np.isfinite(series.values).sum()) >= MIN_POINTS


def run_anomaly(
    tenant: str, query: str, model_alias: str, spec: ModelSpec, series: Sequence[Series],
    feedback: FeedbackState | None, *, write_from: dict[str, float] | float | None = None, bulk_threshold: int = 200,
    related: Mapping[str, Sequence[Series]] | None = None, alert_on: str = "both",
    series_feedback: Mapping[str, FeedbackState] | None = None, raw_cache: RawScoreCache | None = None,
) -> tuple[list[DerivedRow], list[AnomalyRecord], float | None]:  # fmt: skip
    """Score every series; rows for points after ``write_from`` (per series key, or one time), records for
    every anomalous point scored, and the time from which points were scored (None: nothing scored;
    the whole window on the ensemble path, the newest points on the bulk path). ``related``: the
    series of the model's related queries (see :mod:`analytics.service.related`; ensemble path only).
    ``series_feedback``: the state scoring a series, by series key (its team's), instead of ``feedback``.
    ``raw_cache``: the detectors' raw outputs of series scored before on the same data (ensemble path)."""
    provide = set(spec.series())
    rows: list[DerivedRow] = []
    records: list[AnomalyRecord] = []
    usable = [s for s in series if _usable(s)]
    if not usable:
        return rows, records, None
    if len(usable) >= bulk_threshold:
        return _bulk_run(tenant, query, model_alias, spec, usable, feedback, write_from, alert_on, series_feedback)
    own = series_feedback or {}
    frames = [one_sided(score_series(build_detector(spec.params, own.get(s.key, feedback), raw_cache), s,
                                     related_columns(s, related or {})), alert_on) for s in usable]  # fmt: skip
    for s, frame in zip(usable, frames, strict=True):
        labels = _labels(s, query, model_alias)
        since = write_from.get(s.key) if isinstance(write_from, dict) else write_from
        ts = s.ts.astype(float)
        new = ts > since if since is not None else np.ones(ts.size, dtype=bool)
        for name in ("anomaly_score", "yhat", "yhat_lower", "yhat_upper"):
            if name in provide:
                col = frame[name].to_numpy(dtype=float)
                # a bucket with no value (empty, or below the query's min_samples) has no score: a 0 would
                # read as "normal" (the bulk path leaves it out too); its expected range is still written
                keep = new & np.isfinite(s.values) if name == "anomaly_score" else new
                rows += [DerivedRow(tenant, float(t), name, float(v), labels, "anomaly")
                         for t, v in zip(ts[keep], col[keep], strict=True) if np.isfinite(v)]  # fmt: skip
        scores = frame["anomaly_score"].to_numpy(dtype=float)
        # an empty bucket (value carried forward by the detectors) is not reported as an anomaly
        for i in np.flatnonzero((np.nan_to_num(scores) > 1.0) & np.isfinite(s.values)):
            r = frame.iloc[int(i)]
            records.append(AnomalyRecord(
                anomaly_id(tenant, query, model_alias, s.key, ts[i]), tenant, query, model_alias, dict(s.labels),
                float(ts[i]), float(r["value"]), float(r["anomaly_score"]), str(r["severity"]),
                float(r["confidence"]), tuple(r["detected_by"]), float(r["yhat"]), float(r["yhat_lower"]),
                float(r["yhat_upper"]), str(r["explanation"]), bool(r["is_anomaly"]),
            ))  # fmt: skip
    return rows, records, min(float(s.ts[0]) for s in usable)


#: How long after its announcement an anomalous event keeps ``anomaly_alert`` up (the ensemble's
#: default refractory period: an event lasts until a day passes without an alert-worthy point).
ALERT_HOLD_S = 86_400.0


def alert_state_rows(
    tenant: str, query: str, model_alias: str, series: Sequence[Series], records: Sequence[AnomalyRecord],
    now_s: float,
) -> list[DerivedRow]:  # fmt: skip
    """``anomaly_alert`` at ``now_s`` for every scored series: the newest point's ``anomaly_score`` while
    that point is anomalous and its event was announced (an alert, ``is_alert``, at most
    :data:`ALERT_HOLD_S` before it), else 0.

    It carries the detector's event-level decisions (debounce, recovery, one alert per event) to the
    alert rules, at the time of the run rather than of a bucket that completed one step earlier: the
    built-in ``LLMAnomalyDetected`` rule and the stack's vmalert rule fire on it without depending on
    the query's step. The bulk path has the debounce only (an anomalous point is an alert when it is the
    third in a row or scores 1.5 or more), not the event rules.

    >>> s = Series({"model": "m"}, np.array([0.0, 60.0]), np.array([1.0, 9.0]), 60)
    >>> rec = AnomalyRecord("a", "t", "q", "anomaly", {"model": "m"}, 60.0, 9.0, 4.2, "critical", 1.0, (), 1.0,
    ...                     0.0, 2.0, "", True)
    >>> [(r.name, r.ts, r.value) for r in alert_state_rows("t", "q", "anomaly", [s], [rec], 100.0)]
    [('anomaly_alert', 100.0, 4.2)]

    The end of an incident is the detector's decision: once the value is back in its expected and
    long-run range, the points after an incident score below 1 (no record, so 0 here) even while
    trailing statistics (a 6-hour mean, a CUSUM) still hold the incident in their windows.
    """
    by_key: dict[str, list[AnomalyRecord]] = {}
    for r in records:
        by_key.setdefault(labels_key(r.labels), []).append(r)
    rows = []
    for s in series:
        if not s.ts.size:
            continue
        newest = float(s.ts[-1])
        recs = by_key.get(s.key, [])
        latest = next((r for r in recs if r.ts == newest), None)
        alerts = [r for r in recs if r.is_alert and newest - ALERT_HOLD_S <= r.ts <= newest]
        value = latest.anomaly_score if latest is not None and alerts else 0.0
        rows.append(DerivedRow(tenant, now_s, "anomaly_alert", value, _labels(s, query, model_alias), "anomaly"))
    return rows


def _good_side(values: np.ndarray, yhat: np.ndarray, alert_on: str) -> np.ndarray:
    """Where a value lies on the side of its expected value that ``alert_on`` does not report."""
    with np.errstate(invalid="ignore"):
        if alert_on == "high":
            return np.isfinite(yhat) & (values <= yhat)
        if alert_on == "low":
            return np.isfinite(yhat) & (values >= yhat)
    return np.zeros(np.shape(values), dtype=bool)


def one_sided(frame: pd.DataFrame, alert_on: str) -> pd.DataFrame:
    """``frame`` (a scored series) with the points on the unreported side of their expected value capped
    below 1 and not anomalies (``alert_on`` ``high``: an error rate or a latency that drops is no alarm)."""
    if alert_on == "both":
        return frame
    good = _good_side(frame["value"].to_numpy(dtype=float), frame["yhat"].to_numpy(dtype=float), alert_on)
    if good.any():
        frame = frame.copy()
        frame.loc[good, "anomaly_score"] = np.minimum(frame.loc[good, "anomaly_score"], 0.999)
        frame.loc[good, "is_anomaly"] = False
    return frame


def score_series(detector: AnomalyDetector, s: Series, related: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """``detector.score`` on the series from its first value on (earlier empty buckets get no score);
    ``related`` columns (aligned on ``s``) go alongside for the multivariate detectors."""
    first = first_finite(s.values)
    frame = pd.DataFrame({"timestamp": pd.to_datetime(s.ts[first:], unit="s"), "value": s.values[first:]})
    detector.series = s.key  # the query's feedback state is shared: marks are per series
    for name, column in (related or {}).items():
        frame[name] = column[first:]
    scored = detector.score(frame)
    if first:  # the buckets before the series' first value are not scored
        head = pd.DataFrame({"timestamp": pd.to_datetime(s.ts[:first], unit="s"), "value": s.values[:first]})
        scored = pd.concat([head, scored], ignore_index=True)
        scored["is_anomaly"] = [bool(v) if isinstance(v, bool | np.bool_) else False for v in scored["is_anomaly"]]
        scored["detected_by"] = [d if isinstance(d, list) else [] for d in scored["detected_by"]]
    return scored


def first_finite(values: np.ndarray) -> int:
    """Index of the first finite value (``values.size`` when there is none)."""
    finite = np.isfinite(values)
    return int(np.argmax(finite)) if finite.any() else values.size


#: The bulk path's debounce, the ensemble's defaults (``AnomalyDetector(persist=3, extreme=1.5)``).
BULK_PERSIST, BULK_EXTREME = 3, 1.5


def _bulk_run(
    tenant: str, query: str, model_alias: str, spec: ModelSpec, series: Sequence[Series],
    feedback: FeedbackState | None, write_from: dict[str, float] | float | None, alert_on: str = "both",
    series_feedback: Mapping[str, FeedbackState] | None = None,
) -> tuple[list[DerivedRow], list[AnomalyRecord], float]:  # fmt: skip
    """The vectorised path: only the newest ``bulk_new_points`` (12) of every series, all at once; each
    series' score is divided by the ensemble threshold of its state (``series_feedback``, else ``feedback``)."""
    n = max(s.values.size for s in series)
    mat = np.full((len(series), n), np.nan)
    for i, s in enumerate(series):
        mat[i, n - s.values.size :] = s.values
    # gaps stay NaN: the reference statistics skip them and an empty bucket gets no score (a carried-
    # forward value repeated the last point's score, an anomaly with no value)
    new = max(1, min(n // 4, int(spec.params.get("bulk_new_points", 12))))
    out = bulk_score(mat, new, min_periods=int(spec.params.get("min_periods", 30)))
    own = series_feedback or {}
    states = [own.get(s.key, feedback) for s in series]
    score = out.anomaly_score / np.array([[st.ensemble_threshold if st is not None else 1.0] for st in states])
    score = np.where(_good_side(mat[:, -new:], out.yhat, alert_on), np.minimum(score, 0.999), score)
    provide = [name for name in ("anomaly_score", "yhat", "yhat_lower", "yhat_upper") if name in spec.series()]
    arrays = {"anomaly_score": score, "yhat": out.yhat, "yhat_lower": out.yhat_lower, "yhat_upper": out.yhat_upper}
    rows: list[DerivedRow] = []
    records: list[AnomalyRecord] = []
    # the ensemble's debounce (3 anomalous points in a row, or a score of at least 1.5), all series at
    # once over the newest points: an isolated marginal exceedance is an anomalous point, not an alert
    debounced = _debounce(np.nan_to_num(score[:, -new:]), BULK_PERSIST, BULK_EXTREME)
    for i, s in enumerate(series):
        labels = _labels(s, query, model_alias)
        since = write_from.get(s.key) if isinstance(write_from, dict) else write_from
        k = min(new, s.values.size)
        ts = s.ts[-k:].astype(float)
        keep = ts > since if since is not None else np.ones(k, dtype=bool)
        for name in provide:
            col = arrays[name][i, -k:]
            rows += [DerivedRow(tenant, float(t), name, float(v), labels, "anomaly")
                     for t, v, ok in zip(ts, col, keep, strict=True) if ok and np.isfinite(v)]  # fmt: skip
        newest, announced = np.nan_to_num(score[i, -k:]), debounced[i, -k:]
        for j in np.flatnonzero(newest > 1.0):
            sc, lo, up = float(score[i, -k + j]), float(out.yhat_lower[i, -k + j]), float(out.yhat_upper[i, -k + j])
            value = float(s.values[-k + j])
            sev = str(severities(np.array([sc]))[0])
            records.append(AnomalyRecord(
                anomaly_id(tenant, query, model_alias, s.key, ts[j]), tenant, query, model_alias, dict(s.labels),
                float(ts[j]), value, sc, sev, float(np.clip(0.5 + 0.25 * (sc - 1), 0, 1)), ("bulk_robust",),
                float(out.yhat[i, -k + j]), lo, up, explain(value, lo, up, sev, sc, ["bulk_robust"]), bool(announced[j]),
            ))  # fmt: skip
    return rows, records, min(float(s.ts[-min(new, s.ts.size)]) for s in series)


def _debounce(scores: np.ndarray, persist: int, extreme: float) -> np.ndarray:
    """:func:`analytics.anomaly._rolling.persistent` on every row of a (series, points) matrix."""
    flags = scores > 1.0
    counts = np.cumsum(flags.astype(np.int64), axis=1)
    run = counts.copy()
    run[:, persist:] = counts[:, persist:] - counts[:, :-persist]
    return flags & ((run >= persist) | (scores >= extreme))


def horizon_steps(horizon: str | int, step: int) -> int:
    """Steps in ``horizon`` (a duration such as ``7d``, or a number of steps); at least 1."""
    if isinstance(horizon, int) or str(horizon).strip().isdigit():
        return max(1, int(horizon))
    return max(1, int(parse_duration(str(horizon), "horizon") // step))


def forecast_frame(series: Sequence[Series]) -> pd.DataFrame:
    """``unique_id, ds, y`` for the forecaster (gaps interpolated, leading gaps dropped)."""
    frames = []
    for s in series:
        y = pd.Series(s.values).interpolate(limit_direction="forward")
        first = int(np.argmax(np.isfinite(y.to_numpy()))) if np.isfinite(y.to_numpy()).any() else y.size
        frames.append(pd.DataFrame({"unique_id": s.key, "ds": pd.to_datetime(s.ts[first:], unit="s"),
                                    "y": y.to_numpy()[first:]}))  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["unique_id", "ds", "y"])


def run_forecast(
    tenant: str, query: str, model_alias: str, spec: ModelSpec, series: Sequence[Series], *,
    horizon: str | int | None = None, level: float | None = None, bulk_threshold: int = 200,
    cache: ForecastCache | None = None, rows: bool = True,
) -> tuple[list[DerivedRow], dict[str, dict[str, Any]]]:  # fmt: skip
    """Forecast every usable series. Returns derived rows (future ``yhat*``; none with ``rows=False``,
    for callers that only answer with the forecasts) and, per series key, a dict with ``labels``, ``ds``
    (epoch s), ``yhat``, ``yhat_lower``, ``yhat_upper``, ``model`` and the library's
    :class:`SeriesForecast` (``result``, None on the bulk path). ``cache``: where the ensemble finds the
    forecasts of series it forecast before on the same data (see :mod:`analytics.forecast.cache`)."""
    usable = [s for s in series if _usable(s)]
    if not usable:
        return [], {}
    step = usable[0].step
    h = horizon_steps(horizon if horizon is not None else spec.params.get("horizon", "1d"), step)
    lvl = float(level if level is not None else spec.params.get("level", 95.0))
    results: dict[str, dict[str, Any]] = {}
    if len(usable) >= bulk_threshold:
        n = max(s.values.size for s in usable)
        mat = np.full((len(usable), n), np.nan)
        for i, s in enumerate(usable):
            mat[i, n - s.values.size :] = pd.Series(s.values).interpolate(limit_direction="both").to_numpy()
        season = max(1, 86_400 // step) if n >= 3 * 86_400 // step else 1
        fc = bulk_forecast(mat, h, season=season, level=lvl)
        for i, s in enumerate(usable):
            ds = s.ts[-1] + step * np.arange(1, h + 1)
            results[s.key] = {"labels": s.labels, "ds": ds.astype(float), "yhat": fc.yhat[i], "yhat_lower": fc.yhat_lower[i],
                              "yhat_upper": fc.yhat_upper[i], "model": f"bulk_swa{season}", "result": None}  # fmt: skip
    else:
        config = EnsembleConfig() if spec.params.get("mode", "bulk") == "full" else EnsembleConfig.bulk()
        fc_ = EnsembleForecaster(freq=f"{step}s", level=lvl, config=config, cache=cache)
        by_key = {s.key: s for s in usable}
        try:
            fc_.forecast(forecast_frame(usable), h=h)
        except (ForecastInputError, ValueError):
            return [], {}
        for key, res in fc_.results_.items():
            s = by_key[str(key)]
            results[s.key] = _result_dict(s, res)
    if not rows:
        return [], results
    derived: list[DerivedRow] = []
    provide = set(spec.series())
    for r in results.values():
        labels = {**r["labels"], "for": query, "model_alias": model_alias}
        for name in ("yhat", "yhat_lower", "yhat_upper"):
            if name in provide:
                derived += [DerivedRow(tenant, float(t), name, float(v), labels, "forecast")
                            for t, v in zip(r["ds"], r[name], strict=True)]  # fmt: skip
    return derived, results


def _result_dict(s: Series, res: SeriesForecast) -> dict[str, Any]:
    ds = (res.ds.asi8 // 1_000_000_000).astype(float)
    return {"labels": s.labels, "ds": ds, "yhat": res.yhat, "yhat_lower": res.lower, "yhat_upper": res.upper,
            "model": res.label, "result": res}  # fmt: skip
