"""What the HTTP routers call: forecasts on demand, what-if scenarios, anomaly listings.

Each function takes the :class:`AnalyticsService`, the caller's tenant and plain values, and returns a
JSON-ready dict; bad input raises :class:`hubcore.errors.PermanentError` / ``QueryError`` with a message
that names the parameter.

    forecast(svc, "acme", "requests_rate", horizon="7d", level=95)
    what_if(svc, "acme", {"scenario": [{"type": "scale_traffic", "factor": 2}], "horizon": "7d"})
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from scipy.stats import norm

from analytics.forecast import EnsembleConfig, EnsembleForecaster, ForecastInputError
from analytics.service.config import ModelSpec, QuerySpec, parse_duration
from analytics.service.models import first_finite, horizon_steps, run_forecast
from analytics.service.series import check_window, load_series
from analytics.service.service import AnalyticsService
from analytics.service.warm import ForecastKey
from analytics.whatif import (
    AddInstances,
    Fleet,
    MoveTraffic,
    PriceChange,
    ScaleTraffic,
    Scenario,
    ScenarioError,
    what_if_result,
)
from hubcore.errors import ConfigError, InvalidParameter
from hubcore.query.executor import EmbeddedBackend
from hubcore.query.model import BUCKETS, parse_query
from hubcore.times import parse_time_s

__all__ = ["forecast", "forecast_computer", "parse_time_param", "resolve_query", "what_if"]

MAX_FORECAST_SERIES = 50
MAX_HORIZON_STEPS = 10_000
#: What-if simulates ``paths x steps x series`` values per scenario state at most (series: requests and cost
#: per model, the total cost, three per fleet).
MAX_PATH_VALUES = 8_000_000
SEVERITIES = ("low", "medium", "high", "critical")


def _bad(field: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"{field}: {message}")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), UTC).isoformat().replace("+00:00", "Z")


#: Epoch seconds of 10000-01-01: :func:`_iso_many` formats whole seconds before it at once.
_YEAR_10000_S = 253_402_300_800


def _iso_many(seconds: np.ndarray) -> list[str]:
    """:func:`_iso` of every value; whole seconds (a forecast's steps) in one numpy call, the same text.

    >>> _iso_many(np.array([0.0, 1_764_201_600.0])) == [_iso(0.0), _iso(1_764_201_600.0)]
    True
    """
    values = np.asarray(seconds, dtype=float)
    if values.size and bool(np.all((values == np.floor(values)) & (values >= 0) & (values < _YEAR_10000_S))):
        stamps = np.datetime_as_string(values.astype(np.int64).astype("datetime64[s]"), unit="s")
        return [f"{t}Z" for t in stamps.tolist()]
    return [_iso(v) for v in values.tolist()]


def parse_time_param(value: str | None, field: str, default: float) -> float:
    """Epoch seconds from a query parameter (:func:`hubcore.times.parse_time_s`: ISO-8601,
    epoch seconds, ``now`` or ``-24h``), ``default`` when it is missing; 422 ``bad_time`` otherwise."""
    seconds = parse_time_s(value, field)
    return default if seconds is None else seconds


def resolve_query(svc: AnalyticsService, query: str) -> tuple[str, QuerySpec]:
    """A configured alias, or a metric spec as JSON (``{"event_type": "cost", "aggregation": "sum", "step": "1h"}``)."""
    if query in svc.config.queries:
        return query, svc.config.queries[query]
    if not query.lstrip().startswith("{"):
        raise _bad("query", f"unknown query alias {query!r}; configured: {', '.join(sorted(svc.config.queries))} "
                   "(or pass a metric spec as JSON)")  # fmt: skip
    try:
        spec = msgspec.convert(json.loads(query), QuerySpec, strict=False)
        spec.validate("query")
    except (ValueError, msgspec.ValidationError, ConfigError) as exc:
        raise _bad("query", f"not a valid metric spec: {exc}") from None
    return "adhoc", spec


def _forecast_model(svc: AnalyticsService) -> tuple[str, ModelSpec]:
    for alias, spec in svc.config.models.items():
        if spec.model_class == "forecast":
            return alias, spec
    return "forecast", ModelSpec(model_class="forecast")


def _window_time(value: str | None, field: str, now: float) -> float | None:
    """A window bound: what :func:`parse_time_param` reads, or a time ahead of now (``+2h``; a bare ``2h``
    too, since an unencoded ``+`` in a query string arrives as a space); None when missing."""
    text = (value or "").strip()
    if text and not text.replace(".", "", 1).isdigit() and (text[0] == "+" or text[0].isdigit()):
        try:
            return now + parse_duration(text.lstrip("+"), field)
        except ConfigError:
            pass  # an ISO-8601 time (2026-11-27T10:00:00Z) starts with a digit too
    return parse_time_s(value, field, now=now)


def _exceedance(r: dict[str, Any], threshold: float, lo: int, hi: int, level: float) -> float:
    res = r.get("result")
    if res is not None:
        # 2,000 paths, fewer for long horizons (paths x steps at most 4 million: 10,000 steps held ~0.8 GB)
        n_paths = max(200, min(2000, 4_000_000 // max(hi, 1)))
        return float(res.calibration.exceedance_probability(res.yhat, threshold, lo, hi, n_paths=n_paths))
    # bulk path: independent normal steps with the band as the level-% interval
    z = float(norm.ppf(0.5 + level / 200.0))
    sd = np.maximum((r["yhat_upper"][lo:hi] - r["yhat"][lo:hi]) / z, 1e-12)
    p = norm.sf((threshold - r["yhat"][lo:hi]) / sd)
    return float(1.0 - np.prod(1.0 - p))


def _steps(horizon: Any, step_s: int) -> int:
    """``horizon`` in steps of ``step_s`` seconds; 422 for zero, a negative, or a duration under one step or
    not a whole number of them (``horizon=0`` and ``horizon=1s`` on 5-minute steps were forecast one step
    ahead, ``90m`` on hourly steps one hour, without a word)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | str):
        raise _bad("horizon", f"must be a duration such as 7d or 24h, or a number of steps; got {horizon!r}")
    if isinstance(horizon, int) or horizon.strip().isdigit():
        if int(horizon) < 1:
            raise _bad("horizon", f"must be at least one step, got {horizon!r}")
    else:
        try:
            seconds = parse_duration(horizon, "horizon")
        except ConfigError:
            raise _bad(
                "horizon", f"must be a duration such as 7d or 24h, or a number of steps; got {horizon!r}"
            ) from None
        if seconds < step_s:
            raise _bad("horizon", f"{horizon!r} is shorter than one step ({step_s} s); give at least one step")
        if seconds % step_s:  # 90m of 1h steps was 1 step, without a word
            raise _bad("horizon", f"{horizon!r} is not a whole number of steps of {step_s} s")
    return horizon_steps(horizon, step_s)


def forecast_step(
    spec: QuerySpec, horizon: str, step: str | None, max_train: int | None = None
) -> tuple[QuerySpec, int, str | None]:
    """The query at the step to forecast on, the horizon in steps, and a note when the step was changed.

    ``step`` (a bucket: 1m 5m 15m 1h 6h 1d) re-buckets the query explicitly. Without it the query's own
    step is used, unless the horizon would then exceed :data:`MAX_HORIZON_STEPS` (7 days of a 1-minute
    query): then the finest coarser bucket that fits is chosen and the note says so. So it is when the
    horizon is a day or more and the ``max_train`` points the forecast models fit would hold less than
    three days (a 1-minute query: 1,008 points are 17 hours): the daily cycle would be invisible to them
    and the forecast a flat line.
    """
    if step is not None:
        if step not in BUCKETS:
            raise _bad("step", f"must be one of {', '.join(BUCKETS)}; got {step!r}")
        spec = msgspec.structs.replace(spec, step=step)
    h = _steps(horizon, spec.step_seconds)
    span = h * spec.step_seconds
    if h <= MAX_HORIZON_STEPS:
        if step is not None or horizon.strip().isdigit() or not max_train or span < 86_400:
            return spec, h, None
        if 3 * 86_400 / spec.step_seconds <= max_train:
            return spec, h, None
        seeing = [b for b, sec in BUCKETS.items() if spec.step_seconds < sec and 3 * 86_400 / sec <= max_train]
        if not seeing:
            return spec, h, None
        wider = msgspec.structs.replace(spec, step=seeing[0])
        note = (f"the forecast models fit the last {max_train:,} points, under three days of {spec.step} steps: "
                f"the daily cycle would be invisible to them; forecast on {wider.step} steps instead "
                "(pass step= to choose)")  # fmt: skip
        return wider, horizon_steps(horizon, wider.step_seconds), note
    coarser = [b for b, sec in BUCKETS.items() if spec.step_seconds < sec and span / sec <= MAX_HORIZON_STEPS]
    if step is not None or horizon.strip().isdigit() or not coarser:
        raise _bad("horizon", f"{h} steps of {spec.step} is too long (at most {MAX_HORIZON_STEPS}); "
                   "pass a coarser step (step=1h) or a shorter horizon")  # fmt: skip
    wider = msgspec.structs.replace(spec, step=coarser[0])
    steps = horizon_steps(horizon, wider.step_seconds)
    note = (f"a {horizon} horizon is {h} steps of {spec.step} (at most {MAX_HORIZON_STEPS}); "
            f"forecast on {wider.step} steps instead (pass step= to choose)")  # fmt: skip
    return wider, steps, note


def forecast(
    svc: AnalyticsService, tenant: str, query: str, *, horizon: str = "7d", level: float = 95.0,
    history: str | None = None, threshold: float | None = None, window_start: str | None = None,
    window_end: str | None = None, step: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Forecast every series of ``query`` ``horizon`` ahead with ``level`` % intervals, plus the
    probability that each series exceeds ``threshold`` (default: its history's 99th percentile) at
    least once in ``[window_start, window_end]`` (default: the whole horizon). ``step`` re-buckets the
    query (see :func:`forecast_step`).

    The call is remembered (``svc.warm``, :mod:`analytics.service.warm`): when the query's next bucket
    completes, the scheduler computes it again, the same way, so that the next call finds its forecasts
    (and exceedance probabilities) computed. The answer depends on the tenant and these parameters only
    (every series of the query, whoever asks: no team scope), so they are the key."""

    key = ForecastKey(tenant, query, horizon, float(level), history, threshold, window_start, window_end, step)
    at = forecast_computer(svc, key)
    now = svc.clock()
    answer, step_s, cached = at(now)
    if cached:  # (the bulk path caches nothing: fast anyway)
        svc.warm.remember(key, step_s, now, lambda: at(svc.clock()))
    return answer


def forecast_computer(svc: AnalyticsService, key: ForecastKey) -> Callable[[float], tuple[dict[str, Any], int, bool]]:
    """The forecast ``key`` names (what :func:`forecast` was called with), at a given time: ``at(now)``
    returns the answer, the seconds of the step forecast on and whether it went through ``svc.forecasts``.
    The warm pass computes the remembered, restored and configured (``preload``) entries with it."""

    def at(now: float) -> tuple[dict[str, Any], int, bool]:
        return _forecast(svc, key.tenant, key.query, now, horizon=key.horizon, level=key.level, history=key.history,
                         threshold=key.threshold, window_start=key.window_start, window_end=key.window_end,
                         step=key.step)  # fmt: skip

    return at


def _forecast(
    svc: AnalyticsService, tenant: str, query: str, now: float, *, horizon: str, level: float,
    history: str | None, threshold: float | None, window_start: str | None, window_end: str | None,
    step: str | None,
) -> tuple[dict[str, Any], int, bool]:  # fmt: skip
    """:func:`forecast` at ``now``; also the seconds of the step forecast on and whether the forecasts
    went through ``svc.forecasts`` (not the bulk path)."""
    if not 0 < level < 100:
        raise _bad("level", f"must be between 0 and 100 (exclusive), got {level}")
    if threshold is not None and not math.isfinite(threshold):
        raise _bad("threshold", f"must be a finite number, got {threshold}")
    # the window is read before the (costly) forecast: a bad one was reported after it, or never without series
    w_start, w_end = _window_time(window_start, "window_start", now), _window_time(window_end, "window_end", now)
    if w_start is not None and w_end is not None and w_end < w_start:
        raise _bad("window_end", f"{_iso(w_end)} is before window_start {_iso(w_start)}")
    alias, spec = resolve_query(svc, query)
    model_alias, model = _forecast_model(svc)
    mode_config = EnsembleConfig() if model.params.get("mode", "bulk") == "full" else EnsembleConfig.bulk()
    spec, h, step_note = forecast_step(spec, horizon, step, mode_config.max_train)
    try:
        span_given = parse_duration(history, "history") if history else None
    except ConfigError as exc:
        raise InvalidParameter(str(exc)) from None
    span = span_given if span_given is not None else max(svc.fit_window(model_alias, alias) if model_alias in
                                                                   svc.config.models else 14 * 86_400, 2.0 * h * spec.step_seconds)  # fmt: skip
    check_window(span, spec.step_seconds, "history")
    series = load_series(svc.store, spec, tenant, now - span, now, max_series=MAX_FORECAST_SERIES)
    _, results = run_forecast(tenant, alias, model_alias, model, series, horizon=h, level=level,
                              bulk_threshold=svc.config.bulk_threshold, cache=svc.forecasts, rows=False)  # fmt: skip
    hist = {s.key: s for s in series}
    out = []
    for key, r in results.items():
        ds = r["ds"]
        w0 = float(ds[0]) if w_start is None else w_start
        w1 = float(ds[-1]) if w_end is None else w_end
        # the steps whose bucket [ds, ds + step) meets [w0, w1]
        lo, hi = int(np.searchsorted(ds, w0 - spec.step_seconds, "right")), int(np.searchsorted(ds, w1, "right"))
        if hi <= lo:  # a window in the past or beyond the horizon had a probability of 0
            raise _bad("window_start" if w_start is not None else "window_end",
                       f"the window [{_iso(w0)}, {_iso(w1)}] holds no step of the forecast, which covers "
                       f"[{_iso(ds[0])}, {_iso(float(ds[-1]) + spec.step_seconds)})")  # fmt: skip
        values = hist[key].values[np.isfinite(hist[key].values)]
        thr = float(threshold) if threshold is not None else float(np.quantile(values, 0.99))
        prob = _exceedance(r, thr, lo, hi, level)
        # (one numpy call per column, not a float() and a datetime per value: 36,000 of them took ~1 s)
        columns = (_iso_many(ds), *(np.asarray(r[c], dtype=float).tolist() for c in ("yhat", "yhat_lower", "yhat_upper")))
        points = [{"timestamp": t, "yhat": y, "yhat_lower": a, "yhat_upper": b}
                  for t, y, a, b in zip(*columns, strict=True)]  # fmt: skip
        out.append({"labels": r["labels"], "model": r["model"], "points": points,
                    "anomaly_probability": {"threshold": thr, "window_start": _iso(ds[min(lo, len(ds) - 1)]),
                                            "window_end": _iso(ds[max(hi - 1, 0)]), "probability": prob}})  # fmt: skip
    skipped = len(series) - len(results)
    notes = [n for n in (step_note, None if out else "no series with at least 16 points of history in the window") if n]
    answer = {"query": alias, "step": spec.step, "horizon_steps": h, "level": level, "model_alias": model_alias,
              "series": out, "skipped_series": skipped, "note": "; ".join(notes) or None}  # fmt: skip
    return answer, spec.step_seconds, any(r["result"] is not None for r in results.values())


_TRANSFORMS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "scale_traffic": (ScaleTraffic, ("factor", "model")),
    "price_change": (PriceChange, ("percent", "model")),
    "move_traffic": (MoveTraffic, ("source", "target", "share")),
    "add_instances": (AddInstances, ("model", "count")),
}
#: What each transform field takes: every error about one says so, as ``scenario[i].<field>: must be ...``.
_FIELD_TAKES = {
    "factor": "a number >= 0 (the traffic multiplier)",
    "percent": "a number >= -100 (the price change in percent)",
    "share": "a number from 0 to 1 (the share of source's traffic moved)",
    "source": "a model name (a model with traffic)",
    "target": "a model name other than source (a model with a price)",
    "model": "a model name",
    "count": "a whole number of instances to add (negative removes; at least 1 must remain)",
}
#: The transforms whose ``model`` is optional (null or absent: every model).
_MODEL_OPTIONAL = ("scale_traffic", "price_change")


def _takes(kind: str) -> str:
    """What transform ``kind`` takes, in words: ``scale_traffic takes factor (a number >= 0 ...), model ...``."""
    fields = _TRANSFORMS[kind][1]
    parts = [f"{k} ({_FIELD_TAKES[k]}{', or null for every model' if k == 'model' and kind in _MODEL_OPTIONAL else ''})"
             for k in fields]  # fmt: skip
    return f"{kind} takes {', '.join(parts)}"


def _scenario(raw: Any) -> Scenario:
    """The scenario of a what-if body; each error names ``scenario[i].<field>`` and what the field takes."""
    if not isinstance(raw, list) or not raw:
        raise _bad("scenario", f"must be a non-empty list of transforms ({', '.join(_TRANSFORMS)}), got {raw!r}")
    out = []
    for i, t in enumerate(raw):
        if not isinstance(t, dict):
            raise _bad(f"scenario[{i}]", f'must be an object such as {{"type": "scale_traffic", "factor": 2}}, got {t!r}')
        if "type" not in t:
            raise _bad(f"scenario[{i}].type", f"missing; one of {', '.join(_TRANSFORMS)}")
        if t["type"] not in _TRANSFORMS:
            raise _bad(f"scenario[{i}].type", f"must be one of {', '.join(_TRANSFORMS)}, got {t['type']!r}")
        kind = t["type"]
        cls, fields = _TRANSFORMS[kind]
        extra = sorted(set(t) - {"type", *fields})
        if extra:
            raise _bad(f"scenario[{i}].{extra[0]}", f"unknown field; {_takes(kind)}")
        for k in fields:
            v = t.get(k)
            if k not in t and not (k == "model" and kind in _MODEL_OPTIONAL):
                raise _bad(f"scenario[{i}].{k}", f"missing; {_takes(kind)}")
            want_str = k in ("model", "source", "target")
            ok = (v is None and k == "model" and kind in _MODEL_OPTIONAL) or (
                isinstance(v, str) and bool(v)
                if want_str
                else isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            )
            if k == "count" and (not isinstance(v, int) or isinstance(v, bool)):
                ok = False
            if not ok:
                raise _bad(f"scenario[{i}].{k}", f"must be {_FIELD_TAKES[k]}, got {v!r}")
        try:
            out.append(cls(**{k: t[k] for k in fields if k in t}))
        except (TypeError, ValueError) as exc:  # a range the transform checks: "factor must be ..., got -2"
            field = next((k for k in fields if str(exc).startswith(f"{k} ")), None)
            if field is None:
                raise _bad(f"scenario[{i}]", str(exc)) from None
            raise _bad(f"scenario[{i}].{field}", f"must be {_FIELD_TAKES[field]}, got {t[field]!r}") from None
    return Scenario(out)


def what_if(svc: AnalyticsService, tenant: str, body: Any) -> dict[str, Any]:
    """Baseline vs scenario forecasts of cost, requests, latency, utilisation and capacity.

    Body: ``scenario`` (list of ``{"type": scale_traffic|price_change|move_traffic|add_instances, ...}``),
    ``horizon`` (``7d``), ``history`` (``14d``), ``step`` (``1h``), ``level`` (95), ``prices`` (USD per
    request by model; default: the history's cost / requests), ``fleet`` (``{model: {instances,
    service_rate}}``), ``include_series`` (false).
    """
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    known = {"scenario", "horizon", "history", "step", "level", "prices", "fleet", "include_series"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise _bad(unknown[0], f"unknown field; the body takes {', '.join(sorted(known))}")
    scenario = _scenario(body.get("scenario"))
    step = body.get("step", "1h")
    level = body.get("level", 95)
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 100:
        raise _bad("level", f"must be between 0 and 100, got {level!r}")
    usage_spec = QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", aggregation="count",
                           group_by=["model"], step=step, prom_labels=False)  # fmt: skip
    try:
        usage_spec.validate("step")
        h = _steps(body.get("horizon", "7d"), usage_spec.step_seconds)
        if h > MAX_HORIZON_STEPS:
            raise _bad("horizon", f"{h} steps of {step} is too long (at most {MAX_HORIZON_STEPS})")
        span = parse_duration(body.get("history", "14d"), "history")
    except ConfigError as exc:  # its message names the key already ("history: history: ..." before)
        raise InvalidParameter(str(exc) if exc.key else f"horizon: {exc}") from None
    check_window(span, usage_spec.step_seconds, "history")
    now = svc.clock()
    usage = [s for s in load_series(svc.store, usage_spec, tenant, now - span, now) if s.labels.get("model")]
    # (buckets before the hub's first data are NaN: no data, not zero requests)
    usable = [s for s in usage if np.isfinite(s.values).sum() >= 16 and np.nansum(s.values) > 0]
    if not usable:
        raise _bad("history", "no model has 16 or more steps of request history in the window; widen history or "
                   "use a smaller step")  # fmt: skip
    frame = pd.concat([_usage_frame(s) for s in usable], ignore_index=True)
    for key in ("prices", "fleet"):
        if not isinstance(body.get(key) or {}, dict):
            raise _bad(key, "must be an object keyed by model")
    prices = dict(_history_prices(svc, tenant, usable, now - span, now))
    # a model without cost events has price 0: a price change on it changes nothing, and says so
    unpriced = sorted(m for m, p in prices.items() if p == 0 and m not in (body.get("prices") or {}))
    for m, p in (body.get("prices") or {}).items():
        if isinstance(p, bool) or not isinstance(p, int | float) or p < 0:
            raise _bad(f"prices.{m}", f"must be a non-negative USD amount per request, got {p!r}")
        prices[str(m)] = float(p)
    fleet: dict[str, Fleet] = {}
    for m, f in (body.get("fleet") or {}).items():
        # (int(2.7) was 2 instances, float("nan") a service rate that made every latency null)
        ok = isinstance(f, dict) and not set(f) - {"instances", "service_rate"}
        instances: Any = f.get("instances") if isinstance(f, dict) else None
        rate: Any = f.get("service_rate") if isinstance(f, dict) else None
        ok = ok and isinstance(instances, int) and not isinstance(instances, bool) and instances >= 1
        ok = ok and isinstance(rate, int | float) and not isinstance(rate, bool) and math.isfinite(rate) and rate > 0
        if not ok:
            raise _bad(f"fleet.{m}", "must be {\"instances\": a whole number >= 1, \"service_rate\": requests/s "
                       f"per instance > 0}}, got {f!r}")  # fmt: skip
        fleet[str(m)] = Fleet(int(instances), float(rate))
    # memory grows with paths x steps x models (one what-if of 10,000 steps for 6 models held 5.6 GB with
    # 500 paths): fewer paths for long horizons, and a clear refusal where even 100 would not fit
    series_count = 2 * len(usable) + 1 + 3 * len(fleet)  # requests and cost per model, total cost, fleets
    n_paths = min(500, MAX_PATH_VALUES // (h * series_count))
    if n_paths < 100:
        raise _bad("horizon", f"{h} steps for {len(usable)} model{'s' * (len(usable) != 1)} is too much to simulate (at most "
                   f"{MAX_PATH_VALUES // (100 * series_count):,} steps); shorten it or use a coarser step")  # fmt: skip
    fc = EnsembleForecaster(freq=f"{usage_spec.step_seconds}s", config=EnsembleConfig.totals(float(level)),
                            cache=svc.forecasts)  # fmt: skip
    try:
        result = what_if_result(frame, prices, scenario, h, fleet=fleet, level=float(level), n_paths=n_paths, forecaster=fc)
    except KeyError as exc:
        raise _bad("scenario", str(exc.args[0] if exc.args else exc)) from None
    except ScenarioError as exc:  # before ValueError: a transform's error is the scenario's, not the history's
        raise _bad(exc.where, str(exc)) from None
    except (ForecastInputError, ValueError) as exc:
        raise _bad("history", str(exc)) from None
    table = result.table
    summary = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in result.summary.sort_values(["model", "metric"]).to_dict(orient="records")
    ]
    notes = [_short_history_note(usable, span, now, body.get("history", "14d"))]
    if unpriced:
        notes.append(f"no cost events for {', '.join(unpriced)} in the history: price 0 USD per request, so its cost "
                     "and any price_change on it are 0; pass prices to set one")  # fmt: skip
    answer: dict[str, Any] = {"horizon_steps": h, "step": step, "level": level, "prices": prices, "summary": summary,
                              "note": "; ".join(n for n in notes if n) or None}  # fmt: skip
    if body.get("include_series"):
        t = table.assign(ds=table["ds"].map(lambda d: d.isoformat() + "Z"))
        answer["series"] = json.loads(t.to_json(orient="records"))
    return answer


def _short_history_note(usage: list[Any], span: float, now: float, asked: Any) -> str | None:
    """A note when the request history the what-if rests on covers under 90 % of the ``history`` asked for
    (``"14d"`` on a hub with one day of data had been answered without a word), else ``None``.

        >>> from types import SimpleNamespace
        >>> s = SimpleNamespace(ts=np.array([0, 3600, 7200]), values=np.array([np.nan, 1.0, 2.0]))
        >>> _short_history_note([s], 86_400.0, 10_800.0, "1d")
        'history: 1d asked, the request data covers 2.0 h of it (from 1970-01-01T01:00:00Z): the forecasts rest on that'
    """
    firsts = [float(s.ts[i]) for s in usage if (i := first_finite(s.values)) < len(s.values)]
    if not firsts:
        return None
    covered = now - min(firsts)
    if covered >= 0.9 * span:
        return None
    amount = f"{covered / 86_400:.1f} d" if covered >= 86_400 else f"{covered / 3600:.1f} h"
    return (f"history: {asked} asked, the request data covers {amount} of it (from {_iso(min(firsts))}): "
            "the forecasts rest on that")


def _usage_frame(s: Any) -> pd.DataFrame:
    """``ds, model, requests`` of one model's request series, from its first value on."""
    i = first_finite(s.values)
    return pd.DataFrame(
        {"ds": pd.to_datetime(s.ts[i:], unit="s"), "model": s.labels["model"], "requests": s.values[i:]}
    )


def _history_prices(svc: AnalyticsService, tenant: str, usage: list[Any], start: float, end: float) -> dict[str, float]:
    """USD per request by model over ``[start, end)``: cost events' sum / request count."""

    def totals(metric: dict[str, Any], fn: str) -> dict[str, float]:
        body = {"time_range": {"start": start, "end": end}, "metric": metric,
                "aggregation": {"functions": [fn], "group_by": ["model"]}}  # fmt: skip
        query = parse_query(body, tenant=tenant, now_us=int(end * 1e6), paged=False)
        rows = EmbeddedBackend(svc.store).run(query, timeout_s=svc.config.query_timeout_s).rows
        return {str(m): float(v or 0.0) for m, v in rows if m is not None}

    cost = totals({"event_type": "cost", "field": "value"}, "sum")
    requests = totals({"event_type": "telemetry", "name": "gen_ai.client.operation.duration"}, "count")
    models = {s.labels["model"] for s in usage}
    return {m: cost.get(m, 0.0) / requests[m] if requests.get(m) else 0.0 for m in models}
