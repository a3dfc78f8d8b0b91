"""The low-priority work of :class:`analytics.service.AnalyticsService` between its passes.

:class:`WarmPassMixin` recomputes the forecasts the API was asked for recently as their queries complete a
bucket (:meth:`~WarmPassMixin.warm_forecasts`), giving way as soon as a model run falls due; ``_warm_up``
warms the forecasting stack in the start hook's thread. The first warm pass also loads what the last run
asked for (:mod:`analytics.service.warm_file`) and the configured ``forecast_warm.preload``
(:mod:`analytics.service.warm_config`), both due at once; each pass that changed the entries writes the
file again, and so does ``shutdown``. Used through the service::

    svc = AnalyticsService(AnalyticsConfig(), store)
    svc.warm_forecasts(yield_to_runs=False)   # "done", "deferred" (a run fell due first) or "stopped"
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from prometheus_client import Counter

from analytics.service.warm import ForecastKey, WarmEntry, WarmForecasts
from analytics.service.warm_file import WarmFile
from hubcore.errors import PermanentError

if TYPE_CHECKING:
    from analytics.service.config import AnalyticsConfig

#: the logger of :mod:`analytics.service.service`, where this code was first: its records keep their logger name
log = logging.getLogger("hub.analytics")


def _warm_up() -> None:
    """Warm the forecasting stack (the start hook's thread); logs when done, or why it failed."""
    from analytics.forecast.warm import warm_up

    try:
        seconds = warm_up()
    except Exception:  # a failed warm-up costs only the first request's latency
        log.exception("forecast warm-up failed")
        return
    log.info("forecast warm-up done", extra={"seconds": round(seconds, 3)})


def _described(key: tuple[Hashable, ...]) -> dict[str, object]:
    """The log fields of a forecast key (:class:`~analytics.service.warm.ForecastKey`)."""
    if len(key) != len(ForecastKey._fields):
        return {"tenant": key[0]}
    fields = dict(zip(ForecastKey._fields, key, strict=True))
    # ("level" is the log record's own field in the hub's JSON lines)
    return {**{f: fields[f] for f in ("tenant", "query", "horizon", "step")}, "interval_level": fields["level"]}


class WarmPassMixin:
    """Warm forecast recomputes between passes (see the module docstring)."""

    config: AnalyticsConfig
    warm: WarmForecasts
    warm_file: WarmFile
    clock: Callable[[], float]
    m_warm: Counter
    _stop: threading.Event
    _next_run_at: float
    #: whether the file and the preload were loaded (the first warm pass); the file is written only after
    _warm_loaded = False
    _warm_saved = -1

    def _runs_due(self, now: float) -> bool:
        """Whether a model run of the last full pass's work list (tenants with data, models, queries) is due
        again (its ``infer_every`` passed): the scheduler's next pass would run it."""
        return now >= self._next_run_at

    def _warm_compute(self, key: ForecastKey) -> Callable[[], object]:
        """How to compute the forecast ``key`` again, now, as ``GET /api/v1/forecast`` did."""
        from analytics.service.handlers import forecast_computer  # (handlers imports the service)

        at = forecast_computer(self, key)  # type: ignore[arg-type]  # (self is the AnalyticsService)
        return lambda: at(self.clock())

    def load_warm(self, now: float | None = None) -> int:
        """Add the configured ``forecast_warm.preload`` entries (pinned) and the entries the file of the last
        run holds (those asked for within ``keep``), all due at once; once (later calls return 0). Returns
        how many entries were added. Nothing with ``forecast_warm.enabled: false``."""
        if self._warm_loaded:
            return 0
        self._warm_loaded = True
        cfg = self.config
        if not cfg.forecast_warm.enabled:
            return 0
        from analytics.service.warm_config import preload_step_s

        for spec in cfg.forecast_warm.preload:  # (checked with the config: a failure here is a config changed since)
            try:
                self.warm.pin(spec.key(), preload_step_s(cfg, spec), self._warm_compute(spec.key()))
            except Exception:
                log.warning("forecast preload refused", extra=_described(spec.key()), exc_info=True)
        saved = self.warm_file.load()
        restored = self.warm.restore([(k, s, a, self._warm_compute(k)) for k, s, a in saved],
                                     self.clock() if now is None else now)  # fmt: skip
        if saved or cfg.forecast_warm.preload:
            log.info("forecast warm entries loaded", extra={"preload": len(cfg.forecast_warm.preload),
                                                            "restored": restored, "in_file": len(saved)})  # fmt: skip
        self._warm_saved = -1 if saved or self.warm.snapshot() else self.warm.version  # (written at the pass's end)
        return len(cfg.forecast_warm.preload) + restored

    def save_warm(self) -> bool:
        """Write the file of the entries asked for through the API, when they changed since the last write
        and the file was loaded first (:meth:`load_warm`); a failed write is logged. Whether it wrote."""
        version = self.warm.version
        if not self._warm_loaded or version == self._warm_saved or not self.config.forecast_warm.enabled:
            return False
        try:
            self.warm_file.save(self.warm.snapshot())
        except OSError:
            log.exception("forecast warm file not written", extra={"path": str(self.warm_file.path)})
            return False
        self._warm_saved = version
        return True

    def warm_forecasts(self, now: float | None = None, *, yield_to_runs: bool = True) -> str:
        """Recompute, one at a time, the forecasts asked for through the API whose query completed a bucket
        since (:class:`analytics.service.warm.WarmForecasts`), filling ``self.forecasts``. Low priority:
        with ``yield_to_runs`` it stops as soon as a model run is due (the scheduler runs it first) or the
        service is stopping. Returns ``"done"``, ``"deferred"`` (stopped for a due run) or ``"stopped"``.
        The first call loads the preload and the file (:meth:`load_warm`); each writes the file when the
        entries changed (:meth:`save_warm`)."""
        self.load_warm(now)
        try:
            return self._warm_pass(now, yield_to_runs)
        finally:
            self.save_warm()

    def _warm_pass(self, now: float | None, yield_to_runs: bool) -> str:
        for entry in self.warm.due(self.clock() if now is None else now):
            if self._stop.is_set():
                return "stopped"
            at = self.clock() if now is None else now
            if yield_to_runs and self._runs_due(at):
                self.m_warm.labels("deferred").inc()
                return "deferred"
            started = time.perf_counter()
            try:
                result = entry.compute()
            except PermanentError:  # the request would now fail too (its query's data is gone, ...)
                self._failed(entry, at)
                continue
            except Exception:  # (a query timeout, ...): tried again when the next bucket completes
                log.exception("forecast warm recompute failed", extra=_described(entry.key))
                self.warm.computed(entry.key, at)
                self.m_warm.labels("error").inc()
                continue
            first = not entry.warmed
            self.warm.computed(entry.key, at)
            self.m_warm.labels("ok").inc()
            if first and entry.origin != "asked":  # (a preload, or an entry of the last run: once per start)
                answer = result[0] if isinstance(result, tuple) and result and isinstance(result[0], dict) else {}
                log.info(f"forecast {'preload' if entry.origin == 'preload' else 'restored'} warmed",
                         extra={**_described(entry.key), "series": len(answer.get("series") or ()),
                                "seconds": round(time.perf_counter() - started, 3)})  # fmt: skip
        return "done"

    def _failed(self, entry: WarmEntry, at: float) -> None:
        """A recompute refused as the request would be now: an asked entry is forgotten; a configured one
        (preload) stays, logged, and is tried again at its query's next bucket."""
        self.m_warm.labels("error").inc()
        if not entry.pinned:
            self.warm.forget(entry.key)
            return
        log.warning("forecast preload refused", extra=_described(entry.key), exc_info=True)
        self.warm.computed(entry.key, at)
