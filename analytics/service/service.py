"""``AnalyticsService``: the scheduler that turns configured queries into derived series.

Every ``infer_every`` of its scheduler, each model runs on each of its queries for each tenant with
events in the last ``fit_window``: the query's series are read through the unified query layer, scored
(anomaly) or forecast (forecast, refreshed every ``fit_every``), and the derived rows are written to
``derived_series`` and handed to every ``on_series`` listener (stack mode: the VictoriaMetrics
exporter). Budgets are re-evaluated every ``budget_every``, which writes their ``budget_*`` series;
reading a budget's status (:meth:`AnalyticsService.budget_status`) writes nothing.

    svc = AnalyticsService(AnalyticsConfig(), store, metrics.registry, on_series=vm_exporter.write_rows)
    svc.start()                     # background thread "hub-analytics" (and, with ``warm_up``, a one-off
                                    # "hub-analytics-warm-up" that warms the forecasting stack)
    svc.run_once(force=True)        # one synchronous pass (tests, `hub analytics run-once`)
    svc.shutdown()                  # idempotent; safe without start

Between passes the scheduler also recomputes the forecasts the API was asked for recently, as their
queries' buckets complete (``forecast_warm``; :meth:`AnalyticsService.warm_forecasts`), so that the next
call is answered from the forecast cache.

Counters: ``hub_analytics_runs_total{model,result}``, ``hub_analytics_derived_rows_total{name}``,
``hub_analytics_run_seconds``, ``hub_analytics_forecast_warm_total{result}`` (warm recomputes: ok, error,
deferred when an anomaly or forecast run fell due first), ``hub_analytics_forecast_warm_entries``, and the
forecast cache's ``hub_analytics_forecast_cache_{hits,misses}_total`` (a miss is a fit) and
``hub_analytics_forecast_cache_{entries,bytes}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics.anomaly import FeedbackState
from analytics.anomaly.raw_cache import RawScoreCache
from analytics.forecast.cache import QUERY_MANTISSA_BITS, ForecastCache
from analytics.service.budgets import BUDGET_SERIES, Budget, BudgetRepository, budget_rows, evaluate_budget
from analytics.service.config import AnalyticsConfig, config_from_dict, default_config, parse_duration
from analytics.service.derived import DerivedRepository, DerivedRow
from analytics.service.feedback import FeedbackStore, mark_time_iso, state_answer
from analytics.service.models import alert_state_rows, build_detector, run_anomaly, run_forecast, score_series
from analytics.service.models import anomaly_id as anomaly_id_of
from analytics.service.related import related_columns
from analytics.service.series import Series, labels_key, load_series, tenants_with_data
from analytics.service.teams import check_team, series_team, team_dimensions
from analytics.service.warm import WarmForecasts
from hubcore.errors import InvalidParameter, PermanentError
from hubcore.security.rbac import ForbiddenError
from hubcore.storage.embedded import EmbeddedStore

__all__ = ["AnalyticsService", "NotFound", "SeriesListener"]

log = logging.getLogger("hub.analytics")
#: A series whose ``anomaly_alert`` stays 0 gets a row this often (the alert rules look back 10 minutes).
ALERT_REFRESH_S = 300.0
#: The newest points of a series whose values a run remembers: a written bucket among them whose value has
#: changed by the next run (late data, e.g. a backfill that had sent part of it) is scored and written again.
RESCORE_POINTS = 12
SeriesListener = Callable[[Sequence[DerivedRow]], None]


def first_changed(before: tuple[np.ndarray, np.ndarray] | None, ts: np.ndarray, values: np.ndarray) -> float | None:
    """The earliest time of ``before`` (times, values a run saw) whose value ``values`` now holds otherwise
    (an empty bucket that got a value counts; the last bits of a sum read twice do not), or None.

    >>> first_changed((np.array([0.0, 60.0, 120.0]), np.array([1.0, np.nan, 5.0])),
    ...               np.array([60.0, 120.0, 180.0]), np.array([2.0, 5.0 + 1e-13, 7.0]))
    60.0
    >>> first_changed(None, np.array([60.0]), np.array([2.0])) is None
    True
    """
    if before is None or not ts.size:
        return None
    old_ts, old_values = before
    common, i, j = np.intersect1d(old_ts, ts.astype(float), return_indices=True)
    differs = ~np.isclose(old_values[i], values[j].astype(float), rtol=1e-9, atol=0.0, equal_nan=True)
    return float(common[differs].min()) if differs.any() else None


class NotFound(PermanentError):
    """An id that does not exist for the caller's tenant (HTTP 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="not_found")


def _warm_up() -> None:
    """Warm the forecasting stack (the start hook's thread); logs when done, or why it failed."""
    from analytics.forecast.warm import warm_up

    try:
        seconds = warm_up()
    except Exception:  # a failed warm-up costs only the first request's latency
        log.exception("forecast warm-up failed")
        return
    log.info("forecast warm-up done", extra={"seconds": round(seconds, 3)})


class _ForecastCacheCollector(Collector):
    """The forecast cache's counts as hub metrics, read at scrape time."""

    def __init__(self, cache: ForecastCache) -> None:
        self.cache = cache

    def collect(self) -> list[Metric]:
        stats = self.cache.stats()
        hits = CounterMetricFamily("hub_analytics_forecast_cache_hits", "Forecasts answered from the cache")
        misses = CounterMetricFamily("hub_analytics_forecast_cache_misses", "Forecasts not in the cache (fitted)")
        entries = GaugeMetricFamily("hub_analytics_forecast_cache_entries", "Forecasts held in the cache")
        size = GaugeMetricFamily("hub_analytics_forecast_cache_bytes", "Bytes the cached forecasts hold")
        for family, value in ((hits, stats["hits"]), (misses, stats["misses"]), (entries, stats["entries"]),
                              (size, stats["bytes"])):  # fmt: skip
            family.add_metric([], float(value))
        return [hits, misses, entries, size]


class AnalyticsService:
    """Scheduler + stores of the analytic processors (see the module docstring)."""

    def __init__(
        self, config: AnalyticsConfig | dict[str, Any] | None, store: EmbeddedStore,
        metrics_registry: CollectorRegistry | None = None,
        *, on_series: SeriesListener | None = None, data_dir: str | None = None, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if isinstance(config, dict):  # the raw ``processors.analytics`` mapping of the hub config
            config = config_from_dict(config) if config else None
        self.config = (config or default_config()).validate()
        self.store = store
        self.repo = DerivedRepository(store)
        self.budgets = BudgetRepository(store)
        self.feedback = FeedbackStore(data_dir or store.data_dir)
        self.clock = clock
        self._listeners: list[SeriesListener] = [on_series] if on_series else []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pass_lock = threading.RLock()
        # a budget's series are written (and deleted with it) under this lock, after a check that the budget
        # is still stored as evaluated: a pass that read it before a DELETE or PUT does not bring back, or
        # overwrite, its series
        self._budget_writes = threading.Lock()
        self._warm_thread: threading.Thread | None = None
        self._last_run: dict[tuple[str, str, str], float] = {}
        self._next_run_at = float("inf")  # (run_once: when a run of its work list is due again)
        self._last_fit: dict[tuple[str, str, str], float] = {}
        self._alert_written: dict[tuple[str, str], tuple[float, float]] = {}
        # the labels of the series whose anomaly_alert is up, by (tenant, model, query)
        self._announced: dict[tuple[str, str, str], dict[str, dict[str, str]]] = {}
        self._written: dict[tuple[str, str, str], dict[str, float]] = {}
        # the newest RESCORE_POINTS (times, values) of each series a run scored, by (tenant, model, query)
        self._inputs: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        # The detectors' raw outputs by detectors and exact data: the rescoring of a false-positive mark
        # (a new threshold, the same data) reuses those of the last run instead of recomputing them.
        self.raw_scores = RawScoreCache()
        # Forecasts by series, horizon and config: a forecast, what-if or budget asked again of the same
        # data (before the query's next bucket completes) is not fitted again. Values are keyed by their
        # leading bits: a sum read twice differs in its last bits (DuckDB adds in parallel, in no fixed order).
        self.forecasts = ForecastCache(mantissa_bits=QUERY_MANTISSA_BITS)
        # The forecasts asked for through the API recently: recomputed between passes as their buckets
        # complete (warm_forecasts), so that the next call finds them in self.forecasts.
        warm = self.config.forecast_warm
        keep_s, settle_s = warm.seconds("processors.analytics.forecast_warm")
        self.warm = WarmForecasts(keep_s, warm.max_entries if warm.enabled else 0, settle_s)
        self._last_budgets = float("-inf")
        self._last_prune = float("-inf")
        reg = metrics_registry if metrics_registry is not None else CollectorRegistry()
        self.registry = reg
        self.m_runs = Counter(
            "hub_analytics_runs", "Model runs on one query and tenant", ["model", "result"], registry=reg
        )
        self.m_rows = Counter("hub_analytics_derived_rows", "Derived samples written", ["name"], registry=reg)
        self.m_seconds = Histogram("hub_analytics_run_seconds", "Seconds per model run", registry=reg)
        self.m_warm = Counter("hub_analytics_forecast_warm", "Forecasts recomputed for the API between passes",
                              ["result"], registry=reg)  # fmt: skip
        Gauge("hub_analytics_forecast_warm_entries", "Forecasts kept warm (asked for recently)",
              registry=reg).set_function(lambda: len(self.warm))  # fmt: skip
        reg.register(_ForecastCacheCollector(self.forecasts))

    # -- lifecycle ------------------------------------------------------------------------------------
    def add_series_listener(self, listener: SeriesListener) -> None:
        """Also send every batch of derived rows to ``listener`` (e.g. the VictoriaMetrics exporter)."""
        self._listeners.append(listener)

    def start(self) -> None:
        """Start the scheduler thread (no-op when disabled or already started) and, with ``warm_up`` (also
        when disabled: the API still forecasts), the forecasting stack's warm-up in a thread of its own."""
        if self.config.warm_up and self._warm_thread is None:
            self._warm_thread = threading.Thread(target=_warm_up, name="hub-analytics-warm-up", daemon=True)
            self._warm_thread.start()
        if self._thread is not None or not self.config.enabled:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="hub-analytics", daemon=True)
        self._thread.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the scheduler, waiting for a pass in progress up to ``timeout``. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _tick(self) -> float:
        infer = [s.seconds(f"schedulers.{a}")[1] for a, s in self.config.schedulers.items()]
        return max(1.0, min(10.0, *infer))

    def _loop(self) -> None:
        # the first pass at once, then one per tick (it waited 0 for as long as no model had run: a hub
        # with no data yet, or none in the fit window, spun a core on passes that found nothing to do)
        delay = 0.0
        while not self._stop.wait(delay):
            if not self.store.ready:
                delay = 0.1
                continue
            delay = self._tick()
            try:
                self.run_once()
            except Exception:  # a failed pass is logged and retried at the next tick
                log.exception("analytics pass failed")
                continue
            # the API's recent forecasts, after the pass and only while no run is due (low priority); one
            # that gave way to a due run: that run at once
            if self.warm_forecasts() == "deferred":
                delay = 0.0

    # -- one pass -------------------------------------------------------------------------------------
    def window(self, model: str) -> tuple[float, float, float]:
        """``(fit_every, infer_every, fit_window)`` seconds of a model's scheduler."""
        name = self.config.model_scheduler(model)
        return self.config.schedulers[name].seconds(f"schedulers.{name}")

    def fit_window(self, model: str, query: str) -> float:
        """Seconds of ``query`` that ``model`` reads: its scheduler's ``fit_window``, or ``min_fit_steps``
        of the query's steps when that is longer (an hourly query needs more than 4 days)."""
        name = self.config.model_scheduler(model)
        spec = self.config.queries.get(query)
        step = spec.step_seconds if spec is not None else 0.0
        return self.config.schedulers[name].window_for(step, f"schedulers.{name}")

    def run_once(
        self, now: float | None = None, *, force: bool = False, tenants: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Run every due model (all with ``force``) and due budget checks; returns counts."""
        now = self.clock() if now is None else now
        stats = {"runs": 0, "rows": 0, "anomalies": 0, "budgets": 0}
        with self._pass_lock:
            longest = max((self.fit_window(m, q) for m in self.config.models for q in self.config.model_queries(m)),
                          default=86_400.0)  # fmt: skip
            next_due = float("inf")  # when the earliest run of this pass's work list falls due again
            for tenant in tenants if tenants is not None else tenants_with_data(self.store, now - longest):
                for model in self.config.models:
                    _, infer_every, _ = self.window(model)
                    for query in self.config.model_queries(model):
                        key = (tenant, model, query)
                        if not force and now - self._last_run.get(key, float("-inf")) < infer_every:
                            next_due = min(next_due, self._last_run[key] + infer_every)
                            continue
                        next_due = min(next_due, now + infer_every)
                        self._last_run[key] = now
                        if self._stop.is_set():
                            return stats
                        rows, anomalies = self.run_model(tenant, model, query, now, refit=force)
                        stats["runs"] += 1
                        stats["rows"] += rows
                        stats["anomalies"] += anomalies
            if tenants is None:
                self._next_run_at = next_due
            if force or now - self._last_budgets >= parse_duration(self.config.budget_every, "budget_every"):
                self._last_budgets = now
                stats["budgets"] = self.run_budgets(now, tenants)
            if now - self._last_prune >= 3600:
                self._last_prune = now
                self.repo.prune(now - self.config.retention_days * 86_400)
                self._forget_stale(now)
        return stats

    def _runs_due(self, now: float) -> bool:
        """Whether a model run of the last full pass's work list (tenants with data, models, queries) is due
        again (its ``infer_every`` passed): the scheduler's next pass would run it."""
        return now >= self._next_run_at

    def warm_forecasts(self, now: float | None = None, *, yield_to_runs: bool = True) -> str:
        """Recompute, one at a time, the forecasts asked for through the API whose query completed a bucket
        since (:class:`analytics.service.warm.WarmForecasts`), filling ``self.forecasts``. Low priority:
        with ``yield_to_runs`` it stops as soon as a model run is due (the scheduler runs it first) or the
        service is stopping. Returns ``"done"``, ``"deferred"`` (stopped for a due run) or ``"stopped"``."""
        for entry in self.warm.due(self.clock() if now is None else now):
            if self._stop.is_set():
                return "stopped"
            at = self.clock() if now is None else now
            if yield_to_runs and self._runs_due(at):
                self.m_warm.labels("deferred").inc()
                return "deferred"
            try:
                entry.compute()
            except PermanentError:  # the request would now fail too (its query's data is gone, ...)
                self.warm.forget(entry.key)
                self.m_warm.labels("error").inc()
                continue
            except Exception:  # (a query timeout, ...): tried again when the next bucket completes
                log.exception("forecast warm recompute failed", extra={"tenant": entry.key[0]})
                self.warm.computed(entry.key, at)
                self.m_warm.labels("error").inc()
                continue
            self.warm.computed(entry.key, at)
            self.m_warm.labels("ok").inc()
        return "done"

    def _forget_stale(self, now: float) -> None:
        """Drop the bookkeeping of series that are gone (relabelled, retired), so that it does not grow
        with every series ever seen: alert state not written for a day, and the last-written point of a
        series with no point inside its model's fit window (a run could not load it any more; if it comes
        back, its new points are all unwritten)."""
        self._alert_written = {k: v for k, v in self._alert_written.items() if now - v[1] < 86_400}
        self._announced = {k: v for k, v in self._announced.items() if v}
        for key in list(self._written):
            model = key[1]
            horizon = self.fit_window(model, key[2]) if model in self.config.models else 0.0
            kept = {s: ts for s, ts in self._written[key].items() if now - ts <= max(horizon, 86_400)}
            if kept:
                self._written[key] = kept
            else:
                del self._written[key]
        self._inputs = {
            k: {s: v for s, v in seen.items() if s in self._written.get(k, {})} for k, seen in self._inputs.items()
        }

    def run_model(self, tenant: str, model: str, query: str, now: float, *, refit: bool = False) -> tuple[int, int]:
        """Run one model on one query for one tenant; returns ``(rows written, anomalies)``."""
        spec = self.config.models[model]
        fit_every, _, _ = self.window(model)
        fit_window = self.fit_window(model, query)
        started = time.perf_counter()
        try:
            series = self.load(tenant, query, now - fit_window, now)
            key = (tenant, model, query)
            if spec.model_class == "anomaly":
                written = self._written.setdefault(key, {})
                if not written:
                    last = self.repo.last_ts(tenant, query, model)
                    written.update({s.key: last for s in series if last is not None})
                feedback = self.feedback.load(tenant, query)
                related = self.load_related(tenant, model, query, now - fit_window, now)
                seen = self._inputs.setdefault(key, {})
                write_from = dict(written)
                for s in series:  # a written bucket whose value changed since the last run is written again
                    changed = first_changed(seen.get(s.key), s.ts, s.values)
                    if changed is not None and s.key in write_from and changed <= write_from[s.key]:
                        write_from[s.key] = float(np.nextafter(changed, -np.inf))
                rows, records, scored_from = run_anomaly(
                    tenant,
                    query,
                    model,
                    spec,
                    series,
                    feedback,
                    write_from=write_from,
                    bulk_threshold=self.config.bulk_threshold,
                    related=related,
                    alert_on=self.config.queries[query].alert_on,
                    series_feedback=self._team_feedback(tenant, query, series),
                    raw_cache=self.raw_scores,
                )
                if scored_from is not None:
                    self.repo.replace_anomalies(tenant, query, model, scored_from, records)
                if "anomaly_alert" in spec.series():  # (nothing scored: nothing announced)
                    state = alert_state_rows(tenant, query, model, series, records, now)
                    rows += self._alert_rows(state + self._vanished(key, state, now))
                for s in series:
                    if s.ts.size:
                        written[s.key] = max(written.get(s.key, float("-inf")), float(s.ts[-1]))
                        seen[s.key] = (s.ts[-RESCORE_POINTS:].astype(float), s.values[-RESCORE_POINTS:].astype(float))
                n_anomalies = len(records)
            else:
                rows = self._breaches(tenant, model, query, series)
                n_anomalies = 0
                if refit or now - self._last_fit.get(key, float("-inf")) >= fit_every:
                    self._last_fit[key] = now
                    forecast_rows, _ = run_forecast(tenant, query, model, spec, series,
                                                    bulk_threshold=self.config.bulk_threshold)  # fmt: skip
                    if forecast_rows:
                        first = min(r.ts for r in forecast_rows)
                        self.repo.delete(tenant, query=query, model_alias=model, names=("yhat", "yhat_lower", "yhat_upper"),
                                         since_s=first)  # fmt: skip
                    rows += forecast_rows
            self.emit(rows)
            self.m_runs.labels(model, "ok").inc()
            return len(rows), n_anomalies
        except Exception:
            self.m_runs.labels(model, "error").inc()
            log.exception("analytics model failed", extra={"tenant": tenant, "model": model, "query": query})
            return 0, 0
        finally:
            self.m_seconds.observe(time.perf_counter() - started)

    def load(self, tenant: str, query: str, start_s: float, end_s: float) -> list[Series]:
        spec = self.config.queries[query]
        return load_series(self.store, spec, tenant, start_s, end_s, timeout_s=self.config.query_timeout_s,
                           max_series=self.config.max_series)  # fmt: skip

    def load_related(
        self, tenant: str, model: str, query: str, start_s: float, end_s: float
    ) -> dict[str, list[Series]]:
        """The series of ``model``'s related queries (but ``query`` itself) over the same window."""
        return {q: self.load(tenant, q, start_s, end_s) for q in self.config.models[model].related if q != query}

    def _alert_rows(self, rows: list[DerivedRow]) -> list[DerivedRow]:
        """The ``anomaly_alert`` rows worth storing: every run while a series is announced (the alert rules
        hold on them), the run that ends it, and otherwise one 0 per :data:`ALERT_REFRESH_S` (so that a
        quiet series costs one row per five minutes, not one per run, and its rule still has data)."""
        keep = []
        for r in rows:
            key = (r.tenant_id, labels_key(r.labels))
            last_value, last_ts = self._alert_written.get(key, (0.0, float("-inf")))
            if r.value > 0 or last_value > 0 or r.ts - last_ts >= ALERT_REFRESH_S:
                keep.append(r)
                self._alert_written[key] = (r.value, r.ts)
        return keep

    def _vanished(self, key: tuple[str, str, str], state: list[DerivedRow], now: float) -> list[DerivedRow]:
        """A 0 for each series whose ``anomaly_alert`` was up and that this run did not find (its query no
        longer yields it): the run withdraws its announcement, as it would a scored one's."""
        announced = self._announced.get(key, {})
        found = {labels_key(r.labels) for r in state}
        gone = [DerivedRow(key[0], now, "anomaly_alert", 0.0, labels, "anomaly")
                for k, labels in announced.items() if k not in found]  # fmt: skip
        self._announced[key] = {labels_key(r.labels): r.labels for r in state if r.value > 0}
        return gone

    def _breaches(self, tenant: str, model: str, query: str, series: Sequence[Series]) -> list[DerivedRow]:
        """``forecast_breach`` (1 outside the stored band, else 0) for actual points not yet checked."""
        if "forecast_breach" not in self.config.models[model].series() or not series:
            return []
        key = (tenant, model, query)
        done = self._written.setdefault(key, {})
        since = min((done.get(s.key, float(s.ts[0]) - 1) for s in series if s.ts.size), default=0.0)
        stored = self.repo.read_series(tenant, None, query=query, model_alias=model, start_s=since + 1)
        bands: dict[tuple[str, float], dict[str, float]] = {}
        for r in stored:
            if r["name"] in ("yhat_lower", "yhat_upper"):
                labels = {k: v for k, v in r["labels"].items() if k not in ("for", "model_alias")}
                bands.setdefault((labels_key(labels), r["ts"]), {})[r["name"]] = r["value"]
        rows: list[DerivedRow] = []
        for s in series:
            last = done.get(s.key, float("-inf"))
            labels = {**s.labels, "for": query, "model_alias": model}
            for t, v in zip(s.ts.astype(float), s.values, strict=True):
                band = bands.get((s.key, t))
                if t <= last or band is None or len(band) < 2 or v != v:
                    continue
                rows.append(DerivedRow(tenant, t, "forecast_breach",
                                       float(v < band["yhat_lower"] or v > band["yhat_upper"]), labels, "forecast"))  # fmt: skip
            if s.ts.size:
                done[s.key] = max(last, float(s.ts[-1]))
        return rows

    def emit(self, rows: Sequence[DerivedRow]) -> None:
        """Write rows to ``derived_series`` and hand them to the listeners (a failing listener is logged)."""
        if not rows:
            return
        self.repo.write(rows)
        for name in {r.name for r in rows}:
            self.m_rows.labels(name).inc(sum(1 for r in rows if r.name == name))
        for listener in self._listeners:
            try:
                listener(rows)
            except Exception:
                log.exception("analytics series listener failed")

    # -- budgets --------------------------------------------------------------------------------------
    # Reads are pure: the ``budget_*`` series are written by the scheduler (every ``budget_every``) and
    # when a budget is created or replaced (:meth:`refresh_budget`), never by ``GET /budgets``, so that a
    # read needs no write capacity, concurrent readers do not race on the same rows, and a viewer writes
    # nothing.
    def run_budgets(self, now: float, tenants: Sequence[str] | None = None) -> int:
        """Evaluate every budget (of ``tenants``) and write its derived series; returns how many."""
        count = 0
        for budget in self.budgets.list():
            if tenants is not None and budget.tenant_id not in tenants:
                continue
            try:
                self.refresh_budget(budget, now)
                count += 1
            except Exception:
                log.exception("budget evaluation failed", extra={"budget_id": budget.id})
        return count

    def budget_status(self, budget: Budget, now: float | None = None) -> dict[str, Any]:
        """Evaluate one budget now: spend, forecast, predicted exhaustion. Writes nothing; the forecast of
        the same spend series is fitted once (``self.forecasts``; the answer does not change)."""
        now = self.clock() if now is None else now
        return evaluate_budget(self.store, budget, now_s=now, cache=self.forecasts)

    def refresh_budget(self, budget: Budget, now: float | None = None) -> dict[str, Any]:
        """Evaluate one budget and write its ``budget_*`` series (its newest exhaustion time replaces the
        stored one); returns the status. Nothing is written when the budget was deleted or replaced since
        it was read (the series of a deleted budget would come back; a replaced one's would go back to the
        old definition)."""
        now = self.clock() if now is None else now
        status = self.budget_status(budget, now)
        with self._budget_writes:
            if self.budgets.get(budget.tenant_id, budget.id) != budget:
                return status
            self.repo.delete_named(budget.tenant_id, "budget_exhaustion_timestamp_seconds", "budget_id", budget.id)
            self.emit(budget_rows(budget, status, now))
        return status

    def delete_budget(self, tenant: str, budget_id: str) -> bool:
        """Delete a budget and every ``budget_*`` series of it from the embedded store (a remote backend keeps
        the samples it was sent; no new ones come); False when there was none."""
        with self._budget_writes:
            existed = self.budgets.delete(tenant, budget_id)
            for name in BUDGET_SERIES:
                self.repo.delete_named(tenant, name, "budget_id", budget_id)
        return existed

    # -- feedback -------------------------------------------------------------------------------------
    # The learned state is kept per (tenant, query, team): a mark on a team's series teaches that team's
    # state (its series are scored with the query-wide marks plus their own); a series naming no team, or
    # a mark made with scope "query", teaches the query-wide state, which every series falls back to (the
    # API lets only callers with teams:all teach it where the query also holds teams' series).
    def _team_feedback(self, tenant: str, query: str, series: Sequence[Series]) -> dict[str, FeedbackState]:
        """The state of each series whose team has marks of its own, by series key (the others are scored
        with the query-wide state)."""
        teams = self.feedback.teams(tenant, query)
        if not teams:
            return {}
        spec = self.config.queries.get(query)
        dims = team_dimensions(spec, tenant)
        states = {team: self.feedback.effective(tenant, query, team) for team in teams}
        out = {}
        for s in series:
            team = series_team(spec, s.labels, tenant, dims)
            if team is not None and team in states:
                out[s.key] = states[team]
        return out

    def _anomaly(self, tenant: str, anomaly_id: str, *, marked: bool = False) -> tuple[dict[str, Any], str | None]:
        """The anomaly record and the team whose state scores its series (None: query-wide).

        ``marked``: a point a mark made no longer anomalous has no record after the rescoring; its mark
        still names it (:meth:`_marked_point`: query, model, labels and time only), so it can be undone by
        the id it was marked with."""
        rec = self.find_anomaly(tenant, anomaly_id, marked=marked)
        if rec is None:
            raise NotFound(f"anomaly {anomaly_id!r} does not exist for tenant {tenant!r}")
        return rec, series_team(self.config.queries.get(rec["query"]), rec["labels"], tenant)

    def find_anomaly(self, tenant: str, anomaly_id: str, *, marked: bool = False) -> dict[str, Any] | None:
        """The stored anomaly record, or (``marked``) the point a false-positive mark names under that id
        once the mark has made it no longer anomalous (query, model alias, labels and time only); None."""
        rec = self.repo.get_anomaly(tenant, anomaly_id)
        return self._marked_point(tenant, anomaly_id) if rec is None and marked else rec

    def _marked_point(self, tenant: str, anomaly_id: str) -> dict[str, Any] | None:
        """The point (query, model alias, series, time) a recorded false-positive mark of ``tenant`` names
        under ``anomaly_id`` (the id is a digest of them: :func:`anomaly_id`), or None."""
        for query in self.config.queries:
            models = [m for m in self.config.models if self.config.models[m].model_class == "anomaly"
                      and query in self.config.model_queries(m)]  # fmt: skip
            scopes: list[str | None] = [None, *self.feedback.teams(tenant, query)]
            for scope in scopes if models else []:
                for fp in self.feedback.load(tenant, query, scope).history:
                    if fp.series is None or not fp.timestamp:
                        continue
                    ts = float(pd.Timestamp(fp.timestamp).tz_localize(None).timestamp())
                    for model in models:
                        if anomaly_id_of(tenant, query, model, fp.series, ts) == anomaly_id:
                            return {"query": query, "model_alias": model, "timestamp": fp.timestamp,
                                    "labels": json.loads(fp.series)}  # fmt: skip
        return None

    def _check_query(self, query: str, team: str | None, tenant: str) -> None:
        """422 unless ``query`` is a configured alias and ``team`` (if any) can hold one of its series."""
        spec = self.config.queries.get(query)
        if spec is None:
            raise InvalidParameter(f"query: unknown query alias {query!r}; configured: "
                                   f"{', '.join(sorted(self.config.queries))}")  # fmt: skip
        if team is not None:
            check_team(query, spec, team, tenant)

    def holds_team(self, query: str, team: str, tenant: str) -> bool:
        """Whether some series of ``query`` can belong to ``team`` (an unknown query: True, for the 422)."""
        spec = self.config.queries.get(query)
        try:
            return spec is None or check_team(query, spec, team, tenant) == team
        except InvalidParameter:
            return False

    def _rerun(self, tenant: str, query: str) -> None:
        for model in self.config.models:
            if self.config.models[model].model_class == "anomaly" and query in self.config.model_queries(model):
                self.run_model(tenant, model, query, self.clock(), refit=True)

    def undo_false_positive(self, tenant: str, anomaly_id: str, *, query_wide: bool = True) -> dict[str, Any]:
        """Forget the marks recorded for an anomaly (its series and time) in its team's state and in the
        query-wide one: each is learned again from its other marks, as they were recorded, persisted, and
        the model rerun. ``query_wide`` False (a caller limited to a team): the query-wide marks of a team's
        series (made with scope "query") are left, and a 403 when they are the only ones."""
        rec, team = self._anomaly(tenant, anomaly_id, marked=True)
        query, model = rec["query"], rec["model_alias"]
        stamp, series = str(pd.Timestamp(rec["timestamp"]).tz_localize(None)), labels_key(rec["labels"])
        removed = blocked = 0
        for scope in ([team] if team is not None else []) + [None]:
            state = self.feedback.load(tenant, query, scope)
            kept = state.replayed(lambda fp: not (fp.timestamp == stamp and fp.series in (series, None)))
            n = len(state.history) - len(kept.history)
            if n and scope is None and team is not None and not query_wide:
                blocked += n
            elif n:
                self.feedback.save(tenant, query, kept, scope)
                removed += n
        if not removed:
            if blocked:
                raise ForbiddenError(f"anomaly {anomaly_id!r}: its mark is query-wide (made with scope \"query\", it "
                                     "teaches every team's series); undoing it needs teams:all")  # fmt: skip
            raise NotFound(f"anomaly {anomaly_id!r} has no false-positive mark to undo")
        if model in self.config.models and query in self.config.queries:
            self.run_model(tenant, model, query, self.clock(), refit=True)
        return {"anomaly": anomaly_id, "query": query, "team": team, "removed_marks": removed,
                "feedback": state_answer(self.feedback.effective(tenant, query, team))}  # fmt: skip

    def feedback_state(self, tenant: str, query: str, team: str | None = None) -> dict[str, Any]:
        """What the (tenant, query) ensemble has learned from feedback (thresholds, weights, marks): the
        query-wide state and the number of marks of each team with its own (``teams``), or with ``team``
        the state that scores that team's series (``marks``: the team's own; ``query_marks``: the
        query-wide ones it also learns from)."""
        self._check_query(query, team, tenant)
        shared = self.feedback.load(tenant, query)
        if team is None:
            teams = {t: len(self.feedback.load(tenant, query, t).history) for t in self.feedback.teams(tenant, query)}
            return {"query": query, "team": None, "marks": len(shared.history), "feedback": state_answer(shared),
                    "teams": teams, "marked": self._marked(tenant, query, shared)}  # fmt: skip
        own = self.feedback.load(tenant, query, team)
        return {"query": query, "team": team, "marks": len(own.history), "query_marks": len(shared.history),
                "feedback": state_answer(self.feedback.effective(tenant, query, team)),
                "marked": self._marked(tenant, query, own)}  # fmt: skip

    def _marked(self, tenant: str, query: str, state: FeedbackState) -> list[dict[str, Any]]:
        """The marked points of ``state`` as a user finds them: time, series labels, and the anomaly id of the
        point under each anomaly model of the query (``DELETE /api/v1/anomalies/{id}/feedback`` takes it, also
        once the mark has made the point no longer anomalous)."""
        models = [m for m in self.config.models if self.config.models[m].model_class == "anomaly"
                  and query in self.config.model_queries(m)]  # fmt: skip
        out = []
        for fp in state.history:
            ids: dict[str, str] = {}
            if fp.series is not None and fp.timestamp:
                ts = float(pd.Timestamp(fp.timestamp).tz_localize(None).timestamp())
                ids = {m: anomaly_id_of(tenant, query, m, fp.series, ts) for m in models}
            out.append({"timestamp": mark_time_iso(fp.timestamp), "labels": json.loads(fp.series) if fp.series else None,
                        "detector": fp.detector, "ensemble_score": fp.ensemble_score, "anomaly_ids": ids})  # fmt: skip
        return out

    def reset_feedback(self, tenant: str, query: str, team: str | None = None) -> dict[str, Any]:
        """Forget every mark of the (tenant, query) ensemble, query-wide and every team's (``team``: only
        that team's own marks); its models rerun."""
        self._check_query(query, team, tenant)
        scopes: list[str | None] = [team] if team is not None else [None, *self.feedback.teams(tenant, query)]
        removed: dict[str | None, int] = {}
        for scope in scopes:
            removed[scope] = len(self.feedback.load(tenant, query, scope).history)
            self.feedback.save(tenant, query, FeedbackState(), scope)
        self._rerun(tenant, query)
        out: dict[str, Any] = {"query": query, "team": team, "removed_marks": sum(removed.values())}
        if team is None:
            out["teams"] = {t: n for t, n in removed.items() if t is not None}
        return out

    def mark_false_positive(
        self, tenant: str, anomaly_id: str, detector: str | None = None, scope: str | None = None
    ) -> dict[str, Any]:
        """Teach the ensemble that an anomaly was a false positive, persist, rescore. ``scope`` ``team``
        (the default when the series names a team) teaches its team's state, ``query`` the query-wide one
        (every series of the query)."""
        rec, team = self._anomaly(tenant, anomaly_id)
        query, model = rec["query"], rec["model_alias"]
        if model not in self.config.models or query not in self.config.queries:
            raise NotFound(f"anomaly {anomaly_id!r} belongs to query {query!r} / model {model!r}, no longer configured")
        if scope not in (None, "team", "query"):
            raise InvalidParameter(f'scope: must be "team", "query" or null, got {scope!r}', reason="invalid_feedback")
        if scope == "team" and team is None:
            raise InvalidParameter(f"scope: the series of anomaly {anomaly_id!r} names no team; its feedback is "
                                   'query-wide ("query" or null)', reason="invalid_feedback")  # fmt: skip
        learner = None if scope == "query" else team
        spec = self.config.models[model]
        ts = pd.Timestamp(rec["timestamp"]).tz_localize(None)
        state = self.feedback.effective(tenant, query, team)  # what scored the series
        now: float | None = None
        if rec["detected_by"] == ["bulk_robust"]:
            state.record_false_positive(str(ts), {"bulk_robust": rec["anomaly_score"]}, rec["anomaly_score"], None,
                                        labels_key(rec["labels"]))  # fmt: skip
        else:
            now = self.clock()
            fit_window = self.fit_window(model, query)
            t = ts.timestamp()
            start, end = (now - fit_window, now) if t >= now - fit_window else (t - fit_window, t + 86_400)
            match = [s for s in self.load(tenant, query, start, end) if s.labels == rec["labels"]]
            if not match:
                raise NotFound(f"the series of anomaly {anomaly_id!r} has no data any more")
            det = build_detector(spec.params, state, self.raw_scores)
            if detector is not None and detector not in det.weights:
                raise PermanentError(f"detector: unknown detector {detector!r}; known: {sorted(det.weights)}",
                                     reason="bad_detector")  # fmt: skip
            related = self.load_related(tenant, model, query, start, end)
            score_series(det, match[0], related_columns(match[0], related))
            det.mark_false_positive(ts, detector)
            state = det.feedback
        mark = state.history[-1]
        own = self.feedback.load(tenant, query, learner)
        own.record_false_positive(mark.timestamp, dict(mark.detector_scores), mark.ensemble_score, mark.detector,
                                  mark.series)  # fmt: skip
        self.feedback.save(tenant, query, own, learner)
        # rescored over the window the mark was scored on (``now``): its raw detector outputs are reused
        self.run_model(tenant, model, query, now if now is not None else self.clock(), refit=True)
        return {"anomaly": anomaly_id, "query": query, "model_alias": model, "team": learner,
                "scope": "query" if learner is None else "team",
                "feedback": state_answer(self.feedback.effective(tenant, query, team))}  # fmt: skip
