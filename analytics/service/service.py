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

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from analytics.anomaly.raw_cache import RawScoreCache
from analytics.forecast.cache import QUERY_MANTISSA_BITS, ForecastCache
from analytics.service.alert_state import ALERT_REFRESH_S, RESCORE_POINTS, AlertStateMixin, first_changed
from analytics.service.budget_runs import BudgetRunsMixin
from analytics.service.budgets import BudgetRepository
from analytics.service.cache_metrics import _ForecastCacheCollector
from analytics.service.config import AnalyticsConfig, config_from_dict, default_config, parse_duration
from analytics.service.derived import DerivedRepository, DerivedRow
from analytics.service.errors import NotFound
from analytics.service.feedback import FeedbackStore
from analytics.service.feedback_ops import FeedbackOpsMixin
from analytics.service.models import alert_state_rows, run_anomaly, run_forecast
from analytics.service.run_state import RunStateStore
from analytics.service.series import Series, labels_key, load_series, tenants_with_data
from analytics.service.warm import WarmForecasts
from analytics.service.warm_file import WarmFile
from analytics.service.warm_pass import WarmPassMixin, _warm_up
from hubcore.storage.embedded import EmbeddedStore

# ALERT_REFRESH_S, RESCORE_POINTS, first_changed (alert_state), NotFound (errors), _ForecastCacheCollector
# (cache_metrics) and _warm_up (warm_pass) were defined here: still importable from this module
__all__ = ["ALERT_REFRESH_S", "RESCORE_POINTS", "AnalyticsService", "NotFound", "SeriesListener", "first_changed"]

log = logging.getLogger("hub.analytics")
SeriesListener = Callable[[Sequence[DerivedRow]], None]


class AnalyticsService(AlertStateMixin, WarmPassMixin, BudgetRunsMixin, FeedbackOpsMixin):
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
        # the newest RESCORE_POINTS (times, values) of each series a run scored, by (tenant, model, query);
        # saved in run_state after each run. A key's first run in this process restores it, _announced and
        # _alert_written (_restore): a restart loses neither an alert that is up nor the late-data check.
        self._inputs: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, np.ndarray]]] = {}
        self.run_state = RunStateStore(data_dir or store.data_dir)
        self._restored: set[tuple[str, str, str]] = set()
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
        self.warm_file = WarmFile.in_dir(data_dir or store.data_dir)  # (kept over restarts: warm_pass.load_warm)
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
            if not self._thread.is_alive():  # the entries asked for since its last pass (once it loaded the file)
                self.save_warm()
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
                self._restore(key, now)
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
            if spec.model_class == "anomaly":  # the points it saw, once its rows are written
                self.run_state.save(tenant, model, query, self._inputs[key])
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
