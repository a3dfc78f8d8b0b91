"""The low-priority work of :class:`analytics.service.AnalyticsService` between its passes.

:class:`WarmPassMixin` recomputes the forecasts the API was asked for recently as their queries complete a
bucket (:meth:`~WarmPassMixin.warm_forecasts`), giving way as soon as a model run falls due; ``_warm_up``
warms the forecasting stack in the start hook's thread. Used through the service::

    svc = AnalyticsService(AnalyticsConfig(), store)
    svc.warm_forecasts(yield_to_runs=False)   # "done", "deferred" (a run fell due first) or "stopped"
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from prometheus_client import Counter

from analytics.service.warm import WarmForecasts
from hubcore.errors import PermanentError

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


class WarmPassMixin:
    """Warm forecast recomputes between passes (see the module docstring)."""

    warm: WarmForecasts
    clock: Callable[[], float]
    m_warm: Counter
    _stop: threading.Event
    _next_run_at: float

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
