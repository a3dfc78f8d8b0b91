"""Budgets per tenant / team / project / model: storage, period bounds and the exhaustion forecast.

    repo = BudgetRepository(store); repo.ensure()
    budget = Budget.from_body({"name": "search", "amount": 5000, "period": "monthly", "team": "search"}, "acme")
    repo.create(budget)  # BudgetNameTaken when another budget of the tenant has its name
    status = evaluate_budget(store, budget, now_s=time.time())
    status["exhaustion"], status["alert"], status["forecast_total"]

The spend is the sum of the tenant's ``cost`` events (USD) matching the budget's team/project/model,
read through the unified query layer. The forecast to the period end is
:func:`analytics.budget.forecast_budget` on hourly spend (bulk ensemble, calibrated paths) once 16 hours
of spend exist; before that a straight line at the period's average rate (``method: "linear"``).
Evaluating writes nothing: the service writes a budget's series (:func:`budget_rows`) on its schedule and
when the budget is created or replaced.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analytics.budget import forecast_budget, historic_exhaustion
from analytics.forecast import EnsembleConfig, EnsembleForecaster, ForecastInputError
from analytics.service.config import QuerySpec
from analytics.service.derived import DerivedRow
from analytics.service.errors import json_text
from analytics.service.series import load_series
from hubcore.errors import PermanentError
from hubcore.query.executor import EmbeddedBackend
from hubcore.query.model import parse_query
from hubcore.storage.embedded import EmbeddedStore

if TYPE_CHECKING:
    from analytics.forecast.cache import ForecastCache

__all__ = ["BUDGET_SERIES", "Budget", "BudgetNameTaken", "BudgetRepository", "budget_rows", "evaluate_budget",
           "period_bounds"]

PERIODS = ("monthly", "quarterly", "custom")
#: Spend history the forecast learns from (besides the period's own): four weeks, for weekly patterns.
HISTORY_S = 28 * 86_400.0
#: The longest custom period (a year, leap or not, with room): longer forecasts of spend mean little.
MAX_CUSTOM_DAYS = 400
#: A period ending further ahead than this is not forecast hour by hour (a custom period may start years
#: ahead); its spend is the recent average rate (``method: "linear"``).
MAX_FORECAST_AHEAD_S = 2 * MAX_CUSTOM_DAYS * 86_400.0
#: The derived series of a budget (label ``budget_id``): written by :func:`budget_rows` when the scheduler
#: re-evaluates the budgets (``budget_every``) and when a budget is created or replaced, never on a read;
#: deleted with the budget.
BUDGET_SERIES = ("budget_limit_usd", "budget_spend_usd", "budget_exhaustion_alert", "budget_exhaustion_timestamp_seconds")
BUDGETS_SQL = """CREATE TABLE IF NOT EXISTS analytics_budgets (
  tenant_id VARCHAR, id VARCHAR, body VARCHAR, updated_at TIMESTAMP
)"""


def _bad(field: str, message: str) -> PermanentError:
    return PermanentError(f"{field}: {message}", reason="invalid_budget")


def _time(value: Any, field: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise _bad(field, f"not an ISO-8601 time: {json_text(value)}") from None
        seconds = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    if not 0 <= seconds <= 4_102_444_800:
        raise _bad(field, "must be between 1970-01-01 and 2100-01-01")
    return seconds


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Budget:
    """One budget; ``start``/``end`` (epoch s) only for ``period == "custom"``."""

    id: str
    tenant_id: str
    name: str
    amount: float
    period: str = "monthly"
    team: str | None = None
    project: str | None = None
    model: str | None = None
    start: float | None = None
    end: float | None = None
    alert_within_days: float = 7.0
    created_by: str | None = None

    @classmethod
    def from_body(
        cls, body: Any, tenant: str, *, budget_id: str | None = None, created_by: str | None = None
    ) -> Budget:
        """Validate an API body (errors name the field)."""
        if not isinstance(body, dict):
            raise _bad("body", "must be a JSON object")
        known = {"name", "amount", "period", "team", "project", "model", "start", "end", "alert_within_days"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise _bad(unknown[0], f"unknown field; a budget takes {', '.join(sorted(known))}")
        amount = body.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) or amount <= 0:
            raise _bad("amount", f"must be a positive number of USD, got {json_text(amount)}")
        period = body.get("period", "monthly")
        if period not in PERIODS:
            raise _bad("period", f"must be one of {', '.join(PERIODS)}, got {json_text(period)}")
        start = end = None
        if period == "custom":
            if body.get("start") is None or body.get("end") is None:
                raise _bad("start", "a custom period needs start and end (ISO-8601)")
            start, end = _time(body["start"], "start"), _time(body["end"], "end")
            if end <= start:
                raise _bad("end", "must be after start")
            if end - start > MAX_CUSTOM_DAYS * 86_400:
                raise _bad("end", f"a custom period spans at most {MAX_CUSTOM_DAYS} days, got {(end - start) / 86_400:.0f}")
        elif body.get("start") is not None or body.get("end") is not None:
            raise _bad("start", f"start/end are only for period 'custom' (period is {period!r})")
        within = body.get("alert_within_days", 7)
        if isinstance(within, bool) or not isinstance(within, int | float) or not 0 <= within <= 366:
            raise _bad("alert_within_days", f"must be a number of days between 0 and 366, got {json_text(within)}")
        for key in ("name", "team", "project", "model"):
            v = body.get(key)
            if v is not None and (not isinstance(v, str) or not v or len(v) > 200):
                raise _bad(key, "must be a non-empty string of at most 200 characters")
        scope = "/".join(str(body.get(k)) for k in ("team", "project", "model") if body.get(k))
        return cls(
            id=budget_id or uuid.uuid4().hex[:16], tenant_id=tenant, name=body.get("name") or scope or "tenant",
            amount=float(amount), period=period, team=body.get("team"), project=body.get("project"),
            model=body.get("model"), start=start, end=end, alert_within_days=float(within), created_by=created_by,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = _iso(self.start), _iso(self.end)
        return d


def period_bounds(budget: Budget, now_s: float) -> tuple[float, float]:
    """``(start, end)`` epoch seconds of the budget period containing ``now_s`` (custom: as given)."""
    if budget.period == "custom":
        assert budget.start is not None and budget.end is not None
        return budget.start, budget.end
    now = datetime.fromtimestamp(now_s, UTC)
    months = 1 if budget.period == "monthly" else 3
    first_month = now.month if months == 1 else 3 * ((now.month - 1) // 3) + 1
    start = datetime(now.year, first_month, 1, tzinfo=UTC)
    month_end = first_month + months
    end = datetime(now.year + (month_end - 1) // 12, (month_end - 1) % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


class BudgetNameTaken(Exception):
    """Another budget of the tenant (``other``) already has the name of ``budget`` (the API's 409)."""

    def __init__(self, budget: Budget, other: Budget) -> None:
        super().__init__(f"a budget named {budget.name!r} already exists (id {other.id})")
        self.budget, self.other = budget, other


#: Serialises the budget writes of every repository of the process, so that the name check and the write
#: are one step (two concurrent POSTs of a name both passed the check, and made two budgets). A lock in
#: the process is enough: DuckDB lets one process open a data directory (the store holds its lock), and a
#: DuckDB transaction would not do (two inserts of new rows never conflict in it).
_WRITES = threading.Lock()


class BudgetRepository:
    """Budgets as JSON rows in ``analytics_budgets`` (same DuckDB as the events). Names are unique per
    tenant: :meth:`create` and :meth:`replace` check and write under one lock."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self._ready = False

    def ensure(self) -> None:
        if not self._ready:
            cur = self.store.cursor()
            try:
                cur.execute(BUDGETS_SQL)
            finally:
                cur.close()
            self._ready = True

    def create(self, budget: Budget) -> None:
        """Store a new budget; :class:`BudgetNameTaken` when another budget of the tenant has its name."""
        with _WRITES:
            self._check_name(budget)
            self.put(budget)

    def replace(self, budget: Budget) -> bool:
        """Replace the stored budget ``budget.id``; False when there is none (deleted meanwhile: it is not
        brought back); :class:`BudgetNameTaken` when another budget of the tenant has the (new) name."""
        with _WRITES:
            if self.get(budget.tenant_id, budget.id) is None:
                return False
            self._check_name(budget)
            self.put(budget)
        return True

    def _check_name(self, budget: Budget) -> None:
        other = self.same_name(budget)
        if other is not None:
            raise BudgetNameTaken(budget, other)

    def put(self, budget: Budget) -> None:
        """Write ``budget`` as it is (no name check: :meth:`create` and :meth:`replace` make one)."""
        self.ensure()
        cur = self.store.cursor()
        try:
            cur.execute("BEGIN")
            cur.execute("DELETE FROM analytics_budgets WHERE tenant_id = ? AND id = ?", [budget.tenant_id, budget.id])
            cur.execute("INSERT INTO analytics_budgets VALUES (?, ?, ?, now()::TIMESTAMP)",
                        [budget.tenant_id, budget.id, json.dumps(asdict(budget))])  # fmt: skip
            cur.execute("COMMIT")
        finally:
            cur.close()

    def get(self, tenant: str, budget_id: str) -> Budget | None:
        self.ensure()
        row = self.store.read("SELECT body FROM analytics_budgets WHERE tenant_id = ? AND id = ?",
                              [tenant, budget_id]).fetchone()  # fmt: skip
        return Budget(**json.loads(row[0])) if row else None

    def list(self, tenant: str | None = None) -> list[Budget]:
        self.ensure()
        sql, params = "SELECT body FROM analytics_budgets", []
        if tenant is not None:
            sql, params = sql + " WHERE tenant_id = ?", [tenant]
        return [Budget(**json.loads(r[0])) for r in self.store.read(sql + " ORDER BY updated_at", params).fetchall()]

    def same_name(self, budget: Budget) -> Budget | None:
        """Another budget of the tenant named as ``budget`` is (names are what people see and alert on: a
        POST retried after a timeout made a second budget, and a second page for every alert)."""
        return next((b for b in self.list(budget.tenant_id) if b.name == budget.name and b.id != budget.id), None)

    def delete(self, tenant: str, budget_id: str) -> bool:
        self.ensure()
        with _WRITES:  # (a replace in flight sees the budget gone, or writes before it goes)
            existed = self.get(tenant, budget_id) is not None
            cur = self.store.cursor()
            try:
                cur.execute("DELETE FROM analytics_budgets WHERE tenant_id = ? AND id = ?", [tenant, budget_id])
            finally:
                cur.close()
        return existed


def _filters(budget: Budget) -> list[dict[str, Any]]:
    return [{"field": f, "operator": "eq", "value": v}
            for f, v in (("team", budget.team), ("project", budget.project), ("model", budget.model)) if v]  # fmt: skip


def spent_between(store: EmbeddedStore, budget: Budget, start_s: float, end_s: float) -> float:
    """USD of the budget's cost events in ``[start_s, end_s)`` (through the unified query layer)."""
    body = {"time_range": {"start": start_s, "end": end_s}, "filters": _filters(budget),
            "metric": {"event_type": "cost", "field": "value"}, "aggregation": {"functions": ["sum"]}}  # fmt: skip
    query = parse_query(body, tenant=budget.tenant_id, now_us=int(end_s * 1e6), paged=False)
    rows = EmbeddedBackend(store).run(query, timeout_s=30.0).rows
    return float(rows[0][0] or 0.0) if rows else 0.0


def evaluate_budget(
    store: EmbeddedStore, budget: Budget, *, now_s: float | None = None, level: float = 95.0,
    cache: ForecastCache | None = None,
) -> dict[str, Any]:
    """Spend to date, forecast spend to the period end (with interval), predicted exhaustion, alert flag.

    ``cache``: where the ensemble forecast of the same hourly spend (values, horizon, config) is found
    instead of being fitted again: within an hour, with no new spend in a complete hour, every evaluation
    of a budget (the scheduler's, each GET) forecasts the same series. The answer is the same with or
    without it (the time-dependent rest, the current hour's share, the paths, the crossing, is computed
    each time)."""
    now = time.time() if now_s is None else now_s
    start, end = period_bounds(budget, now)
    as_of = min(now, end)
    spent = spent_between(store, budget, start, as_of) if as_of > start else 0.0
    out: dict[str, Any] = {"budget": budget.to_dict(), "period_start": _iso(start), "period_end": _iso(end),
                           "spent_to_date": spent, "remaining": budget.amount - spent, "as_of": _iso(now)}  # fmt: skip
    exhaustion: float | None = None
    method = "linear"
    total = lower = upper = spent
    earliest = latest = None
    probability = 1.0 if spent >= budget.amount else 0.0
    spec = QuerySpec(event_type="cost", field="value", aggregation="sum", step="1h", filters=_filters(budget))
    # The forecast learns from the last HISTORY_S of spend, the period's and the days before it (on the
    # 2nd of a month, two days alone say little about the rest of it); only the period's is spent.
    since = min(start, as_of - HISTORY_S)
    # (a period that has not begun is forecast from the spend before it: it was 0 USD, with no alert, even
    # when the current spend rate would exhaust it in its first hours)
    series = load_series(store, spec, budget.tenant_id, since, as_of)
    hist = series[0] if series else None
    # Buckets are labelled by their start and complete only: the spend of the current, incomplete hour
    # (from the end of the last bucket to as_of) is the rest of ``spent``; it is spent, and only the rest
    # of that hour is forecast.
    step_s = float(spec.step_seconds)
    known = float(hist.ts[-1]) + step_s if hist is not None else math.floor(as_of / step_s) * step_s
    in_period = (hist.ts >= start) if hist is not None else None
    complete = float(np.nansum(hist.values[in_period])) if hist is not None else 0.0
    partial = max(0.0, spent - complete)
    if now < end and end - as_of <= MAX_FORECAST_AHEAD_S and hist is not None and np.isfinite(hist.values).sum() >= 16:
        # from the hub's first data on (earlier buckets are NaN: no data, not zero spend)
        i = int(np.argmax(np.isfinite(hist.values)))
        spend = pd.DataFrame({"ds": pd.to_datetime(hist.ts[i:], unit="s"), "y": hist.values[i:]})
        try:
            hours = max(1.0, (end - as_of) / 3600.0)  # paths x hours at most 4 million (a year ahead: 456 paths)
            fc = forecast_budget(spend, budget.amount, pd.Timestamp(end, unit="s"), period_start=pd.Timestamp(start, unit="s"),
                                 level=level, n_paths=int(max(200, min(1000, 4_000_000 // hours))),
                                 forecaster=EnsembleForecaster(freq="h", config=EnsembleConfig.totals(level), cache=cache),
                                 as_of=pd.Timestamp(as_of, unit="s"), partial_spend=partial)  # fmt: skip
            method = "forecast"
            total, lower, upper = fc.forecast_total, fc.forecast_total_lower, fc.forecast_total_upper
            exhaustion = fc.exhaustion.timestamp() if fc.exhaustion is not None else None
            earliest = fc.exhaustion_earliest.timestamp() if fc.exhaustion_earliest is not None else None
            latest = fc.exhaustion_latest.timestamp() if fc.exhaustion_latest is not None else None
            probability = fc.probability_exhausted
        except (ForecastInputError, ValueError):
            method = "linear"
    if method == "linear" and now < end and as_of > start:
        first = start
        if hist is not None:
            paid = (hist.ts >= start) & (np.nan_to_num(hist.values) > 0)  # the period's first spending hour
            first = float(hist.ts[int(paid.argmax())]) if paid.any() else start
        rate = spent / max(now - first, 3600.0)
        total = lower = upper = spent + rate * (end - now)
        if spent < budget.amount and rate > 0 and now + (budget.amount - spent) / rate <= end:
            exhaustion = now + (budget.amount - spent) / rate
            probability = 1.0
    elif method == "linear" and now < start and hist is not None and np.isfinite(hist.values).any():
        # not begun: the recent average rate over the whole period
        first = float(hist.ts[int(np.argmax(np.isfinite(hist.values)))])
        rate = float(np.nansum(hist.values)) / max(known - first, 3600.0)
        total = lower = upper = rate * (end - start)
        if rate > 0 and start + budget.amount / rate <= end:
            exhaustion, probability = start + budget.amount / rate, 1.0
    if spent >= budget.amount and (method == "linear" or exhaustion is None):
        # when the period's cumulative spend crossed the amount: in the past, stable from one run to the next
        ds = pd.to_datetime(hist.ts[in_period], unit="s") if hist is not None else pd.DatetimeIndex([])
        values = hist.values[in_period] if hist is not None else np.zeros(0)
        crossed = historic_exhaustion(values, ds, budget.amount, pd.Timedelta(seconds=step_s), partial_spend=partial,
                                      partial_from=pd.Timestamp(max(known, start), unit="s"),
                                      as_of=pd.Timestamp(as_of, unit="s"))  # fmt: skip
        exhaustion = crossed.timestamp() if crossed is not None else as_of
        earliest = latest = exhaustion
    alert = exhaustion is not None and exhaustion - now <= budget.alert_within_days * 86_400
    out.update({
        "forecast_total": total, "forecast_total_lower": lower, "forecast_total_upper": upper,
        "exhaustion": _iso(exhaustion), "exhaustion_timestamp_seconds": exhaustion,
        "exhaustion_earliest": _iso(earliest), "exhaustion_latest": _iso(latest),
        "probability_exhausted": probability, "alert": alert, "method": method,
        "exhausted": spent >= budget.amount,
    })  # fmt: skip
    return out


def budget_rows(budget: Budget, status: dict[str, Any], now_s: float) -> list[DerivedRow]:
    """``budget_exhaustion_timestamp_seconds`` (when exhaustion is predicted), ``budget_limit_usd``,
    ``budget_spend_usd`` and ``budget_exhaustion_alert`` (1 while exhaustion is predicted within the
    budget's ``alert_within_days``, else 0: the built-in ``LLMBudgetExhaustionPredicted`` rule fires on
    it) samples at ``now_s`` (labels ``budget_id``, ``team``, ``project``, ``model``)."""
    labels = {"budget_id": budget.id, "team": budget.team or "", "project": budget.project or "",
              "model": budget.model or ""}  # fmt: skip
    rows = [
        DerivedRow(budget.tenant_id, now_s, "budget_limit_usd", budget.amount, labels, "budget"),
        DerivedRow(budget.tenant_id, now_s, "budget_spend_usd", float(status["spent_to_date"]), labels, "budget"),
        DerivedRow(budget.tenant_id, now_s, "budget_exhaustion_alert", 1.0 if status.get("alert") else 0.0, labels,
                   "budget"),
    ]
    if status.get("exhaustion_timestamp_seconds") is not None:
        rows.append(DerivedRow(budget.tenant_id, now_s, "budget_exhaustion_timestamp_seconds",
                               float(status["exhaustion_timestamp_seconds"]), labels, "budget"))  # fmt: skip
    return rows


def with_id(budget: Budget, budget_id: str) -> Budget:
    return replace(budget, id=budget_id)
