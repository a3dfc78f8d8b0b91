"""The budgets of :class:`analytics.service.AnalyticsService`: evaluated by the scheduler (every
``budget_every``) and on a change, their ``budget_*`` series written under a lock that a DELETE or PUT takes.

:class:`BudgetRunsMixin` holds what the service does with budgets; used through the service::

    svc = AnalyticsService(AnalyticsConfig(), store)
    svc.budget_status(budget)          # spend, forecast, predicted exhaustion; writes nothing
    svc.refresh_budget(budget)         # the same, and writes its budget_* series
    svc.delete_budget("acme", budget.id)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from analytics.forecast.cache import ForecastCache
from analytics.service.budgets import BUDGET_SERIES, Budget, BudgetRepository, budget_rows, evaluate_budget
from analytics.service.derived import DerivedRepository, DerivedRow
from hubcore.storage.embedded import EmbeddedStore

#: the logger of :mod:`analytics.service.service`, where this code was first: its records keep their logger name
log = logging.getLogger("hub.analytics")


class BudgetRunsMixin:
    """Budget evaluation and the ``budget_*`` series (see the module docstring)."""

    store: EmbeddedStore
    repo: DerivedRepository
    budgets: BudgetRepository
    forecasts: ForecastCache
    clock: Callable[[], float]
    _budget_writes: threading.Lock

    if TYPE_CHECKING:

        def emit(self, rows: Sequence[DerivedRow]) -> None: ...

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
