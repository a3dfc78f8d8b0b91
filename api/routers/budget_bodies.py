"""The budget bodies of :mod:`api.routers.analytics`: the fields a body takes, what a ``PUT`` leaves out, the
tenant and team a write is for, and the 409 of a name another budget has.

    >>> _left_out({"amount": 200}, Budget.from_body({"amount": 100, "team": "search"}, "acme"))
    ['name', 'team']
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from analytics.service.budgets import Budget, BudgetNameTaken
from api.deps import ensure_team_access, write_tenant
from api.errors import ErrorBody
from api.state import ApiState
from hubcore.query.model import QueryError


def _check_team(request: Request, tenant: str, team: str | None) -> None:
    ensure_team_access(request, "budgets:write", "budgets", tenant, team)


def _name_taken(exc: BudgetNameTaken) -> QueryError:
    """The 409 of a name another budget of the tenant has (the repository checks and writes atomically)."""
    budget, other = exc.budget, exc.other
    return QueryError("name", f"a budget named {budget.name!r} already exists (id {other.id}); PUT "
                      f"/api/v1/budgets/{other.id} changes it, or choose another name", status=409, reason="conflict")  # fmt: skip


def _budget_tenant(request: Request, state: ApiState) -> str:
    return write_tenant(request, request.query_params.get("tenant")) or state.default_tenant


#: The fields of a budget body, in the order a PUT that leaves some out names them.
_BUDGET_FIELDS = ("name", "amount", "period", "team", "project", "model", "start", "end", "alert_within_days")
#: Those a body may set to null to clear.
_NULLABLE = ("team", "project", "model")


def _stored(budget: Budget, field: str) -> Any:
    return budget.to_dict()[field]


def _left_out(body: Any, old: Budget) -> list[str]:
    """The fields a PUT body leaves out whose stored value is not what leaving them out gives (the
    default; a name derived from the body's team/project/model): PUT replaces the whole budget, so leaving
    them out would silently rewrite them (``{"amount": 200}`` made a team budget the whole tenant's)."""
    if not isinstance(body, dict):
        return []  # Budget.from_body says what is wrong
    scope = "/".join(str(body.get(k)) for k in ("team", "project", "model") if body.get(k))
    defaults: dict[str, Any] = {"name": scope or "tenant", "period": "monthly", "team": None, "project": None,
                                "model": None, "start": None, "end": None, "alert_within_days": 7.0}  # fmt: skip
    return [f for f in _BUDGET_FIELDS if f not in body and (f not in defaults or getattr(old, f) != defaults[f])]


_BUDGET_EXAMPLE = {"name": "search", "amount": 5000, "period": "monthly", "team": "search", "alert_within_days": 7}
_NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "another budget of the tenant has this name (code conflict)"}
}
