"""Configuration of the analytics service, in vmanomaly's words: queries, models, schedulers.

YAML (``processors.analytics`` of the hub config)::

    processors:
      analytics:
        queries:
          latency_p95:                     # alias; derived series get the label for="latency_p95"
            event_type: telemetry
            name: gen_ai.client.operation.duration
            field: value
            aggregation: p95
            group_by: [environment, model]
            step: 5m
          errors:                          # or a unified-query body (POST /api/v1/query), time range filled in
            query: {metric: error_rate, aggregation: {group_by: [model]}}
            step: 5m
        models:
          anomaly:
            class: anomaly                 # anomaly ensemble | forecast ensemble
            queries: [latency_p95, errors] # default: every query
            schedulers: [periodic]         # default: the first scheduler
            params: {detectors: [robust, seasonal], min_periods: 30}
            provide_series: [anomaly_score, yhat, yhat_lower, yhat_upper, anomaly_alert]
          joint:
            class: anomaly
            queries: [latency_p95]
            related: [errors]              # scored jointly: the iforest sees errors of the same model too
            params: {detectors: [robust, seasonal, iforest]}
        schedulers:
          periodic: {fit_every: 1h, infer_every: 1m, fit_window: 4d}

    >>> cfg = default_config()
    >>> sorted(cfg.queries)
    ['cost_usd_hourly', 'error_rate', 'latency_p95', 'requests_rate']
    >>> cfg.validate("processors.analytics") is cfg
    True
    >>> parse_duration("90m", "x")
    5400.0
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from analytics.anomaly.names import DETECTOR_NAMES
from analytics.service.warm_config import PreloadSpec, check_preload
from hubcore import durations
from hubcore.errors import ConfigError
from hubcore.query.composite import COMPOSITES
from hubcore.query.model import BUCKETS, FUNCTIONS

__all__ = [
    "ANOMALY_SERIES",
    "BUDGET_SERIES",
    "DERIVED_SERIES",
    "FORECAST_SERIES",
    "AnalyticsConfig",
    "ForecastWarmSpec",
    "ModelSpec",
    "QuerySpec",
    "SchedulerSpec",
    "default_config",
    "default_min_samples",
    "parse_duration",
]

#: ``anomaly_alert`` is written at each run (at the run's time, not a bucket's): see
#: :func:`analytics.service.models.alert_state_rows`.
ANOMALY_SERIES = ("anomaly_score", "yhat", "yhat_lower", "yhat_upper", "anomaly_alert")
FORECAST_SERIES = ("yhat", "yhat_lower", "yhat_upper", "forecast_breach")
BUDGET_SERIES = ("budget_limit_usd", "budget_spend_usd", "budget_exhaustion_alert", "budget_exhaustion_timestamp_seconds")
#: Every name the service writes to ``derived_series``.
DERIVED_SERIES = tuple(dict.fromkeys(ANOMALY_SERIES + FORECAST_SERIES + BUDGET_SERIES))
#: Every detector name ``params.detectors`` accepts (known without importing the detectors).
DETECTORS = DETECTOR_NAMES
#: The service's detectors when ``params.detectors`` is not given.
DEFAULT_DETECTORS = ("robust", "seasonal")
#: Detectors that use related series (the extra columns of a 2-D input).
MULTIVARIATE = ("iforest",)
#: Buckets per series read at once: 138 days of 1-minute buckets, 22 years of hourly ones. Every window
#: (a scheduler's fit_window, a forecast's or what-if's history, a budget period) is checked against it,
#: so that one request or setting cannot make the hub read and hold an unbounded grid.
MAX_SERIES_BUCKETS = 200_000
#: Fewest events a bucket of these aggregations needs before its value is scored (``min_samples``
#: unset): a quantile ``q`` needs ``1 / (1 - q)`` events for one of them to lie above it (a p95 of 2
#: requests is their maximum), a mean or an extreme a few. Counts, sums and rates have no floor: a
#: bucket with few events is a low count, which is data.
MIN_SAMPLES_DEFAULTS: dict[str, int] = {"p99": 100, "p95": 20, "p50": 5, "avg": 5, "min": 5, "max": 5, "stddev": 5}
#: The same for the composites, counted in their samples (the events of their denominator,
#: :attr:`hubcore.query.composite.Composite.samples`): an error rate needs 20 requests for one error to
#: be 5 % rather than 50 %; a cost per request or per 1k tokens is a mean over requests, as ``avg``.
#: ``error_adjusted_throughput`` (per second of the bucket: a rate) has none, and takes no ``min_samples``.
COMPOSITE_MIN_SAMPLES: dict[str, int] = {"error_rate": 20, "cost_per_request": 5, "cost_per_1k_tokens": 5}


def default_min_samples(aggregation: str | None) -> int:
    """``min_samples`` of a query of ``aggregation`` that does not set it.

    >>> default_min_samples("p95"), default_min_samples("count"), default_min_samples(None)
    (20, 0, 0)
    """
    return MIN_SAMPLES_DEFAULTS.get(aggregation or "", 0)


def _composite_samples(name: str) -> str | None:
    """What counts as a sample of composite ``name`` (its denominator's part), None if nothing does."""
    composite = COMPOSITES.get(name)
    return None if composite is None else composite.samples


def parse_duration(text: str | float | int, key: str) -> float:
    """Seconds in ``"30s"``, ``"5m"``, ``"1h"``, ``"7d"``, ``"2w"`` (or a number of seconds;
    :func:`hubcore.durations.parse_duration`)."""
    try:
        return durations.parse_duration(text)
    except durations.DurationError as exc:
        raise ConfigError(key, str(exc)) from None


class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class QuerySpec(_Base):
    """One input query: a simple metric spec, or ``query`` = a unified-query body.

    Simple spec: events of ``event_type`` named ``name``, ``field`` aggregated with ``aggregation``
    (``sum avg count min max p50 p95 p99 stddev``) per ``step`` bucket and ``group_by`` fields; or
    ``composite`` (``error_rate``, ``cost_per_request``...). ``per_second`` divides each bucket by its
    length (a rate). ``labels`` renames output labels; by default event fields get their Prometheus
    names (``model`` → ``gen_ai_request_model``, ``tags.team`` → ``team``), as the metric contract has.
    ``alert_on`` (``both``, ``high``, ``low``): which side of the expected value is an anomaly worth
    reporting. An error rate or a latency that drops is good news: with ``high`` a point at or below its
    expected value scores at most 0.999 and is never an anomaly (a run of zero error rates had scored 19,
    "critical").
    ``min_samples``: a bucket with fewer events is missing for the models (not scored, never an
    anomaly or an alert; see :data:`MIN_SAMPLES_DEFAULTS` for the default per aggregation, 0 for none);
    the query reads each bucket's event count alongside its value (one more function, the same scan).
    A ratio composite counts its denominator's events (an ``error_rate``'s requests; default
    :data:`COMPOSITE_MIN_SAMPLES`, read as a second column of the same scan); ``error_adjusted_throughput``
    (per second: a rate) has no floor and refuses ``min_samples``.

    >>> QuerySpec(aggregation="p95").sample_floor(), QuerySpec(aggregation="p95", min_samples=0).sample_floor()
    (20, 0)
    >>> QuerySpec(aggregation="sum").sample_floor(), QuerySpec(aggregation="sum", min_samples=3).sample_floor()
    (0, 3)
    >>> QuerySpec(composite="error_rate").sample_floor(), QuerySpec(composite="error_adjusted_throughput").sample_floor()
    (20, 0)
    """

    event_type: str | None = None
    name: str | None = None
    field: str | None = None
    composite: str | None = None
    aggregation: str = "sum"
    group_by: list[str] = []
    filters: list[dict[str, Any]] = []
    step: str = "1h"
    per_second: bool = False
    labels: dict[str, str] = {}
    prom_labels: bool = True
    query: dict[str, Any] | None = None
    alert_on: Literal["both", "high", "low"] = "both"
    min_samples: int | None = None

    @property
    def step_seconds(self) -> int:
        return BUCKETS[self.step]

    def _composite(self) -> str | None:
        """The composite the spec reads, by ``composite`` or in its ``query`` (by name or object), or None."""
        if self.query is None:
            return self.composite
        metric = self.query.get("metric")
        if isinstance(metric, str) and metric in COMPOSITES:
            return metric
        if isinstance(metric, dict) and "composite" in metric:
            return str(metric["composite"])
        return None

    def _function(self) -> str | None:
        """The one aggregation function of the spec (None: a composite, or not exactly one function)."""
        if self._composite() is not None:
            return None  # a composite by name or object: already an aggregate
        if self.query is not None:
            funcs = (self.query.get("aggregation") or {}).get("functions")
            funcs = ["count"] if funcs is None else funcs
            return str(funcs[0]) if isinstance(funcs, list) and len(funcs) == 1 else None
        return self.aggregation

    def sample_floor(self) -> int:
        """Fewest events a bucket needs to be scored: ``min_samples``, else the default of the aggregation
        or composite (a ratio's samples are its denominator's events); 0 (no floor, no count read) for
        ``error_adjusted_throughput`` or a spec that is not one function."""
        composite = self._composite()
        if composite is not None:
            if _composite_samples(composite) is None:
                return 0
            return self.min_samples if self.min_samples is not None else COMPOSITE_MIN_SAMPLES.get(composite, 0)
        fn = self._function()
        if fn is None:
            return 0
        return self.min_samples if self.min_samples is not None else default_min_samples(fn)

    def validate(self, key: str) -> None:
        ms = self.min_samples
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 0):
            raise ConfigError(f"{key}.min_samples", f"must be a whole number of events, 0 or more; got {ms!r}")
        if not isinstance(self.step, str) or self.step not in BUCKETS:  # a mapping is unhashable: not a 500
            raise ConfigError(f"{key}.step", f"must be one of {', '.join(BUCKETS)}; got {self.step!r}")
        composite = self._composite()
        if ms and composite in COMPOSITES and _composite_samples(composite) is None:
            raise ConfigError(f"{key}.min_samples", f"composite {composite!r} is a rate per second of the bucket, "
                              "with no events it is divided by (a bucket with few requests is a low rate, which "
                              "is data); remove min_samples")  # fmt: skip
        if self.query is not None:
            if not isinstance(self.query, dict) or not isinstance(self.query.get("aggregation") or {}, dict):
                raise ConfigError(f"{key}.query", "must be a unified-query body (a mapping, aggregation a mapping)")
            simple = [k for k in ("event_type", "name", "field", "composite") if getattr(self, k) is not None]
            if simple:
                raise ConfigError(key, f"give either query or {sorted(simple)}, not both")
            if ms and composite is None and self._function() is None:
                raise ConfigError(f"{key}.min_samples", "needs a query of one aggregation function or a ratio "
                                  "composite (several functions have no one event count per bucket); remove "
                                  "it")  # fmt: skip
            return
        if self.composite is None and self.aggregation not in FUNCTIONS:
            raise ConfigError(f"{key}.aggregation", f"must be one of {', '.join(FUNCTIONS)}; got {self.aggregation!r}")

    def body(self, start_s: float, end_s: float, *, with_count: bool = False) -> dict[str, Any]:
        """The unified-query body for ``[start_s, end_s)`` (epoch seconds). ``with_count``: each bucket's
        event count as a second function (after the value; nothing added to a ``count`` query, a
        composite — ``load_series`` asks the parsed query for its samples — or several functions)."""
        tr = {"start": start_s, "end": end_s}
        fn = self._function()
        extra = ["count"] if with_count and fn is not None and fn != "count" else []
        if self.query is not None:
            body = dict(self.query)
            agg = dict(body.get("aggregation") or {})
            if extra:
                agg["functions"] = [fn, *extra]
            agg["time_bucket"] = self.step
            body["aggregation"] = agg
            body["time_range"] = tr
            body.pop("limit", None)
            return body
        metric: Any
        if self.composite is not None:
            metric, functions = {"composite": self.composite}, None
        else:
            metric = {k: v for k, v in (("event_type", self.event_type), ("name", self.name),
                                        ("field", self.field)) if v is not None}  # fmt: skip
            functions = [self.aggregation, *extra]
        simple: dict[str, Any] = {"time_bucket": self.step, "group_by": list(self.group_by)}
        if functions:
            simple["functions"] = functions
        return {"time_range": tr, "metric": metric, "filters": list(self.filters), "aggregation": simple}


class ModelSpec(_Base):
    """A model: ``class`` (``anomaly`` ensemble | ``forecast`` ensemble), its inputs and outputs.

    ``params`` for ``anomaly``: ``detectors`` (names), ``quorum``, ``vote_window``, ``min_periods``,
    ``window`` (passed to the detectors that have them). For ``forecast``: ``horizon`` (duration or
    steps, default 1d), ``level`` (95), ``mode`` (``bulk`` | ``full``, default bulk).

    ``related`` (anomaly only): queries scored jointly with each of the model's queries — every series
    gets, as extra columns, the series of those queries that carry the same values on the labels they
    share (``error_rate`` of the same model next to its ``latency_p95``), so the multivariate detectors
    (``iforest``, which must then be among ``detectors``) see joint anomalies. A query is never its
    own related series; the bulk path (``bulk_threshold`` series or more) scores series alone.
    """

    model_class: Literal["anomaly", "forecast"] = msgspec.field(name="class", default="anomaly")
    queries: list[str] | None = None
    schedulers: list[str] | None = None
    params: dict[str, Any] = {}
    provide_series: list[str] | None = None
    related: list[str] = []

    def series(self) -> tuple[str, ...]:
        allowed = ANOMALY_SERIES if self.model_class == "anomaly" else FORECAST_SERIES
        return tuple(self.provide_series) if self.provide_series is not None else allowed

    def validate(self, key: str) -> None:
        allowed = ANOMALY_SERIES if self.model_class == "anomaly" else FORECAST_SERIES
        for i, name in enumerate(self.provide_series or []):
            if name not in allowed:
                raise ConfigError(f"{key}.provide_series.{i}", f"{name!r} is not an output of {self.model_class}; "
                                  f"use {', '.join(allowed)}")  # fmt: skip
        if self.model_class == "anomaly":
            for i, det in enumerate(self.params.get("detectors", [])):
                if det not in DETECTORS:
                    raise ConfigError(
                        f"{key}.params.detectors.{i}", f"unknown detector {det!r}; use {', '.join(DETECTORS)}"
                    )
            if self.related and not set(self.params.get("detectors") or DEFAULT_DETECTORS) & set(MULTIVARIATE):
                raise ConfigError(f"{key}.related", f"related series are used by the {', '.join(MULTIVARIATE)} "
                                  "detector; add it to params.detectors")  # fmt: skip
        else:
            if self.related:
                raise ConfigError(f"{key}.related", "only anomaly models score related series")
            level = self.params.get("level", 95)
            if not isinstance(level, int | float) or not 0 < level < 100:
                raise ConfigError(f"{key}.params.level", f"must be between 0 and 100; got {level!r}")
            if self.params.get("mode", "bulk") not in ("bulk", "full"):
                raise ConfigError(f"{key}.params.mode", "must be bulk or full")


class SchedulerSpec(_Base):
    """vmanomaly's periodic scheduler: refit every ``fit_every`` on ``fit_window``, infer every ``infer_every``.

    ``min_fit_steps``: the window read for a query is at least this many of its steps, so that a coarse
    query (hourly cost) gets as many points as the detectors need: the seasonal detector chooses a daily
    season after three days and 150 points, which a 4-day window of an hourly query (96 points) never
    reaches. 400 steps are 16.7 days of an hourly query, under 7 hours of a 1-minute one.

    >>> SchedulerSpec(fit_window="4d").window_for(3600.0, "s")
    1440000.0
    >>> SchedulerSpec(fit_window="4d").window_for(300.0, "s")
    345600.0
    """

    fit_every: str = "1h"
    infer_every: str = "1m"
    fit_window: str = "2d"
    min_fit_steps: int = 400

    def window_for(self, step_seconds: float, key: str) -> float:
        """Seconds of a query of ``step_seconds`` to read: ``fit_window`` or ``min_fit_steps`` steps."""
        return max(self.seconds(key)[2], self.min_fit_steps * step_seconds)

    def seconds(self, key: str) -> tuple[float, float, float]:
        """``(fit_every, infer_every, fit_window)`` in seconds (validated)."""
        return (parse_duration(self.fit_every, f"{key}.fit_every"), parse_duration(self.infer_every, f"{key}.infer_every"),
                parse_duration(self.fit_window, f"{key}.fit_window"))  # fmt: skip


class ForecastWarmSpec(_Base):
    """``forecast_warm``: keep the forecasts asked for through ``GET /api/v1/forecast`` warm
    (:mod:`analytics.service.warm`). Each one asked for in the last ``keep`` (at most ``max_entries``, the
    least recently asked out first) is computed again by the scheduler, between its passes, ``settle``
    after its query's next bucket completes, so the next call is answered from the forecast cache.
    ``preload``: forecasts kept warm from the start, never forgotten (:mod:`analytics.service.warm_config`).

    >>> ForecastWarmSpec().seconds("forecast_warm")
    (3600.0, 30.0)
    >>> ForecastWarmSpec(max_entries=0).validate("forecast_warm")
    Traceback (most recent call last):
    hubcore.errors.ConfigError: forecast_warm.max_entries: must be between 1 and 1,000, got 0 (enabled: false turns it off)
    """

    enabled: bool = True
    keep: str = "1h"
    max_entries: int = 16
    settle: str = "30s"
    preload: list[PreloadSpec] = []

    def seconds(self, key: str) -> tuple[float, float]:
        """``(keep, settle)`` in seconds (validated)."""
        keep = parse_duration(self.keep, f"{key}.keep")
        if not 0 < keep <= 7 * 86_400:
            raise ConfigError(f"{key}.keep", f"must be more than 0 and at most 7d, got {self.keep!r}")
        zero = str(self.settle).strip() in ("0", "0s")  # (a duration is positive; no settle time is 0s)
        settle = 0.0 if zero else parse_duration(self.settle, f"{key}.settle")
        if not 0 <= settle <= 3600:
            raise ConfigError(f"{key}.settle", f"must be between 0s and 1h, got {self.settle!r}")
        return keep, settle

    def validate(self, key: str) -> None:
        self.seconds(key)
        if isinstance(self.max_entries, bool) or not 1 <= self.max_entries <= 1000:
            raise ConfigError(f"{key}.max_entries", f"must be between 1 and 1,000, got {self.max_entries} "
                              "(enabled: false turns it off)")  # fmt: skip


class AnalyticsConfig(_Base):
    """``processors.analytics``: the scheduled analytic processors (see the module docstring).

    ``max_series`` caps the series one query may yield per tenant; ``bulk_threshold``: from that many
    series on, a query is scored/forecast with the vectorised bulk path; ``budget_every``: how often
    budgets are re-evaluated and their ``budget_*`` series written (a read of a budget writes nothing; 2
    minutes by default, so that Prometheus' 5-minute lookback always holds a sample for the budget alert
    rules); ``retention_days``: derived rows older than that are deleted; ``warm_up``: at start, in
    background threads, build the API's routes (the hub: FastAPI builds them on the first request) and
    forecast a small synthetic series (:func:`analytics.forecast.warm.warm_up`), so that the first budget
    or forecast request does not pay for either (on by default; the test hubs turn it off);
    ``forecast_warm``: the API's recent forecasts recomputed as their queries' buckets complete
    (:class:`ForecastWarmSpec`).
    """

    enabled: bool = True
    queries: dict[str, QuerySpec] = msgspec.field(default_factory=lambda: dict(DEFAULT_QUERIES))
    models: dict[str, ModelSpec] = msgspec.field(default_factory=lambda: dict(DEFAULT_MODELS))
    schedulers: dict[str, SchedulerSpec] = msgspec.field(default_factory=lambda: dict(DEFAULT_SCHEDULERS))
    max_series: int = 1000
    bulk_threshold: int = 200
    budget_every: str = "2m"
    retention_days: int = 30
    query_timeout_s: float = 30.0
    warm_up: bool = True
    forecast_warm: ForecastWarmSpec = msgspec.field(default_factory=ForecastWarmSpec)

    def validate(self, key: str = "processors.analytics") -> AnalyticsConfig:
        """Check every entry and the cross-references (models → queries, schedulers)."""
        for alias, q in self.queries.items():
            q.validate(f"{key}.queries.{alias}")
        if not self.schedulers:
            raise ConfigError(f"{key}.schedulers", "needs at least one scheduler")
        for alias, s in self.schedulers.items():
            s.seconds(f"{key}.schedulers.{alias}")
        for alias, m in self.models.items():
            mkey = f"{key}.models.{alias}"
            m.validate(mkey)
            for i, qname in enumerate(m.queries or []):
                if qname not in self.queries:
                    raise ConfigError(f"{mkey}.queries.{i}", f"references {qname!r}, which is not a query "
                                      f"(known: {sorted(self.queries)})")  # fmt: skip
            for i, qname in enumerate(m.related):
                if qname not in self.queries:
                    raise ConfigError(f"{mkey}.related.{i}", f"references {qname!r}, which is not a query "
                                      f"(known: {sorted(self.queries)})")  # fmt: skip
            for i, sname in enumerate(m.schedulers or []):
                if sname not in self.schedulers:
                    raise ConfigError(f"{mkey}.schedulers.{i}", f"references {sname!r}, which is not a scheduler "
                                      f"(known: {sorted(self.schedulers)})")  # fmt: skip
        for sname, sched in self.schedulers.items():
            if not 0 <= sched.min_fit_steps <= MAX_SERIES_BUCKETS // 2:
                raise ConfigError(f"{key}.schedulers.{sname}.min_fit_steps",
                                  f"must be between 0 and {MAX_SERIES_BUCKETS // 2:,}, got {sched.min_fit_steps}")  # fmt: skip
        for model in self.models:
            sname = self.model_scheduler(model)
            for qname in self.model_queries(model) + list(self.models[model].related):
                step = self.queries[qname].step_seconds
                window = self.schedulers[sname].window_for(step, f"{key}.schedulers.{sname}")
                if (window + 86_400) // step > MAX_SERIES_BUCKETS:  # (feedback rescoring reads a day more)
                    raise ConfigError(f"{key}.schedulers.{sname}.fit_window",
                                      f"{self.schedulers[sname].fit_window} is {int(window // step):,} steps of query "
                                      f"{qname!r} ({self.queries[qname].step}), more than {MAX_SERIES_BUCKETS:,}; "
                                      "use a shorter fit_window or a coarser step")  # fmt: skip
        if self.max_series < 1 or self.bulk_threshold < 1 or self.retention_days < 1:
            raise ConfigError(key, "max_series, bulk_threshold and retention_days must be positive")
        parse_duration(self.budget_every, f"{key}.budget_every")
        self.forecast_warm.validate(f"{key}.forecast_warm")
        check_preload(self, f"{key}.forecast_warm")
        return self

    def model_queries(self, model: str) -> list[str]:
        spec = self.models[model]
        return list(spec.queries) if spec.queries is not None else list(self.queries)

    def model_scheduler(self, model: str) -> str:
        spec = self.models[model]
        return spec.schedulers[0] if spec.schedulers else next(iter(self.schedulers))


DEFAULT_QUERIES: dict[str, QuerySpec] = {
    # p95 latency (ms) per model; 5-minute buckets so that a short `hub simulate` run already has history
    "latency_p95": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", field="value",
                             aggregation="p95", group_by=["environment", "model"], step="5m", alert_on="high"),
    # USD per hour by team/project (the alias the Grafana/vmalert rules expect)
    "cost_usd_hourly": QuerySpec(event_type="cost", field="value", aggregation="sum",
                                 group_by=["environment", "team", "project"], step="1h"),
    "error_rate": QuerySpec(composite="error_rate", group_by=["environment", "model"], step="5m", alert_on="high"),
    # requests per second per model (the alias the rules expect)
    "requests_rate": QuerySpec(event_type="telemetry", name="gen_ai.client.operation.duration", aggregation="count",
                               group_by=["environment", "model"], step="1m", per_second=True),
}  # fmt: skip
DEFAULT_MODELS: dict[str, ModelSpec] = {
    "anomaly_ensemble": ModelSpec(model_class="anomaly", params={"detectors": ["robust", "seasonal"], "min_periods": 30}),
    "forecast_ensemble": ModelSpec(model_class="forecast", params={"horizon": "1d", "mode": "bulk"},
                                   schedulers=["forecast"]),
}  # fmt: skip
DEFAULT_SCHEDULERS: dict[str, SchedulerSpec] = {
    # 4 days: the seasonal detector chooses its season after three days of a 5-minute series (2 days, the
    # old default, left it idle on latency_p95 and error_rate: the robust detector alone scored them)
    "periodic": SchedulerSpec(fit_every="1h", infer_every="1m", fit_window="4d"),
    "forecast": SchedulerSpec(fit_every="15m", infer_every="15m", fit_window="14d"),
}


def default_config() -> AnalyticsConfig:
    """The built-in config: four queries, the anomaly ensemble on all, the forecast ensemble on all."""
    return AnalyticsConfig().validate()


def config_from_dict(data: dict[str, Any], key: str = "processors.analytics") -> AnalyticsConfig:
    """Build and validate from a mapping (errors name the YAML key)."""
    try:
        cfg = msgspec.convert(data, AnalyticsConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(key, str(exc)) from None
    return cfg.validate(key)
