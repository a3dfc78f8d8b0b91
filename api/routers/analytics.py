"""Anomalies, feedback, forecasts, budgets, what-if and derived series (tenant-scoped; thin).

The :class:`analytics.service.AnalyticsService` comes from ``app.state.analytics`` (set by the hub
service, which also starts and stops its scheduler); without one, one is created on first use over the
same store with the built-in config, and ``GET /anomalies`` runs the caller's due models itself.

* ``GET  /api/v1/anomalies?start=&end=&query=&severity=&limit=&alerts=&team=&cursor=`` (paged, ``team=`` filters:
  :mod:`api.routers.analytics_listing`)
* ``POST /api/v1/anomalies/{anomaly_id}/feedback``  ``{"label": "false_positive", "detector": null, "scope": null}``
  (a team's series teaches its team's state; ``"scope": "query"``, teams:all only, every series'; so does a
  series naming no team in a query of teams' series, also teams:all only)
* ``DELETE /api/v1/anomalies/{anomaly_id}/feedback`` (undo that mark),
  ``GET|DELETE /api/v1/anomalies/feedback?query=&team=`` (what a query, or one team, learned; forget it)
* ``GET  /api/v1/forecast?query=requests_rate&horizon=7d&level=95&step=&threshold=&window_start=&window_end=``
* ``POST|GET /api/v1/budgets`` (``GET ?team=``: that team's budgets), ``GET|PUT|DELETE /api/v1/budgets/{budget_id}``
* ``POST /api/v1/whatif``
* ``GET  /api/v1/analytics/series?name=&query=&start=&end=``

Every route takes its own query parameters, ``tenant`` and ``team`` (the guard's rule 4): any other is a 422
``unknown_parameter``, one given twice a 422 ``repeated_parameter``. A ``PUT`` body that leaves out a field
the stored budget sets is a 422 (PUT replaces the whole budget).
"""

from __future__ import annotations

import difflib
import itertools
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.service import NotFound
from analytics.service.budgets import Budget, BudgetNameTaken
from analytics.service.config import DERIVED_SERIES
from analytics.service.errors import json_text
from analytics.service.handlers import forecast, parse_time_param, what_if
from api.cursors import encode_cursor, listing_scope, read_series_cursor
from api.deps import check_known_params, get_state, principal_of, read_tenant, team_limited
from api.errors import error_response
from api.openapi_bodies import request_body
from api.routers.analytics_access import MAX_BODY, _answer, _body, get_service
from api.routers.analytics_listing import anomaly_page, check_team_name
from api.routers.budget_bodies import (
    _BUDGET_EXAMPLE,
    _NAME_TAKEN,
    _NULLABLE,
    _budget_tenant,
    _check_team,
    _left_out,
    _name_taken,
    _stored,
)
from api.routers.feedback_scope import _check_anomaly_team, _feedback_team
from api.state import ApiState
from hubcore.errors import InvalidParameter, PermanentError
from hubcore.query.model import QueryError
from hubcore.times import iso_s

# MAX_BODY, get_service (analytics_access), the budget body helpers (budget_bodies) and the feedback scope
# checks (feedback_scope) were defined here: still importable from this module
__all__ = ["MAX_BODY", "MAX_SERIES_ROWS", "get_service", "router"]

router = APIRouter(prefix="/api/v1", tags=["analytics"])
#: Rows one ``GET /analytics/series`` answer holds at most (``limit``; page on with ``next_start``).
MAX_SERIES_ROWS = 50_000
#: The query parameters of a route that takes none of its own: the tenant, and ``team``, which the app-wide
#: permission guard reads (rule 4 on ``?team=``); any other (a typo) is a 422 ``unknown_parameter``.
_TENANT_TEAM = ("tenant", "team")
#: What ``POST /anomalies/{id}/feedback`` takes.
_FEEDBACK_FIELDS = ("label", "detector", "scope")


# -- anomalies -----------------------------------------------------------------------------------------
@router.get(
    "/anomalies", summary="Anomalous points found by the scheduled anomaly models, newest first (paged)",
    responses={200: {"description": "at most limit anomalies, newest first; truncated: more match, and "
                                    "next_cursor (passed as cursor with the same parameters) resumes right after "
                                    "the last one",
                     "content": {"application/json": {"example": {"anomalies": [], "truncated": False,
                                                                  "next_cursor": None}}}}},
)  # fmt: skip
async def list_anomalies(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, query: str | None = None, severity: str | None = None, tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    alerts: Annotated[bool, Query(description="only the points that announced an event (is_alert): one per "
                                              "incident, what the paging rule fires on")] = False,
    team: Annotated[str | None, Query(description="only the anomalies of this team's series (a query grouped "
                                                  "by team, or filtering on it)")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "query", "severity", "tenant", "team", "limit", "alerts", "cursor"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    return await _answer(anomaly_page, svc, t, start=start, end=end, query=query, severity=severity, limit=limit,
                         alerts=alerts, team=team, cursor=cursor)  # fmt: skip


@router.post(
    "/anomalies/{anomaly_id}/feedback",
    summary="Mark an anomaly as a false positive (the model learns)",
    openapi_extra=request_body("AnomalyFeedback", example={"label": "false_positive"}),
)
async def anomaly_feedback(
    anomaly_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)]
) -> Response:
    check_known_params(request, _TENANT_TEAM)
    try:
        body = await _body(request)
    except QueryError as exc:
        return error_response(exc.status, exc.reason, str(exc))
    # (an unknown field first: {"lable": ...} is a typo of label, not a wrong label)
    if not isinstance(body, dict):
        return error_response(422, "invalid_feedback", 'body: must be a JSON object such as {"label": '
                              '"false_positive"}; the body takes label, detector, scope', field="body")  # fmt: skip
    unknown = sorted(set(body) - set(_FEEDBACK_FIELDS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], _FEEDBACK_FIELDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return error_response(422, "invalid_feedback", f"{unknown[0]}: unknown field{hint}; the body takes "
                              "label, detector, scope", field=unknown[0])  # fmt: skip
    if "label" not in body:
        return error_response(422, "invalid_feedback", 'label: missing; the body takes label ("false_positive"), '
                              "detector, scope", field="label")  # fmt: skip
    if body["label"] != "false_positive":
        return error_response(422, "invalid_feedback", 'label: must be "false_positive" (the only feedback taught), '
                              f"got {json_text(body['label'])}", field="label")  # fmt: skip
    detector, scope = body.get("detector"), body.get("scope")
    if detector is not None and not isinstance(detector, str):
        return error_response(422, "invalid_feedback", "detector: must be a detector name or null, got "
                              f"{json_text(detector)}", field="detector")  # fmt: skip
    if scope not in (None, "team", "query"):
        return error_response(422, "invalid_feedback", 'scope: must be "team" (the series\' team\'s state), "query" '
                              f"(every series of the query) or null, got {json_text(scope)}", field="scope")  # fmt: skip
    if scope == "query" and team_limited(request):
        return error_response(403, "forbidden", 'scope: "query" teaches every team\'s series of the query and needs '
                                                "teams:all; leave it out to teach your team's state")  # fmt: skip
    t = read_tenant(request, state, request.query_params.get("tenant"))
    svc = get_service(request, state)
    await _check_anomaly_team(request, svc, t, anomaly_id)
    return await _answer(svc.mark_false_positive, t, anomaly_id, detector, scope)


@router.delete("/anomalies/{anomaly_id}/feedback", summary="Undo the false-positive mark of an anomaly")
async def undo_anomaly_feedback(
    anomaly_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)]
) -> Response:
    check_known_params(request, _TENANT_TEAM)
    t = read_tenant(request, state, request.query_params.get("tenant"))
    svc = get_service(request, state)
    await _check_anomaly_team(request, svc, t, anomaly_id, marked=True)
    return await _answer(svc.undo_false_positive, t, anomaly_id, query_wide=not team_limited(request))


@router.get("/anomalies/feedback", summary="What a query's (or one team's) anomaly model learned from feedback")
async def get_anomaly_feedback(
    request: Request, state: Annotated[ApiState, Depends(get_state)], query: str, tenant: str | None = None,
    team: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("query", "tenant", "team"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    scope = _feedback_team(request, svc, t, query, team, "reads")
    if isinstance(scope, Response):
        return scope
    if scope is None and team_limited(request):  # the query-wide state, without the other teams' counts
        return await _answer(lambda: {k: v for k, v in svc.feedback_state(t, query).items() if k != "teams"})
    return await _answer(svc.feedback_state, t, query, scope)


@router.delete("/anomalies/feedback", summary="Forget the false-positive marks of a query, or of one team's series")
async def reset_anomaly_feedback(
    request: Request, state: Annotated[ApiState, Depends(get_state)], query: str, tenant: str | None = None,
    team: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("query", "tenant", "team"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    scope = _feedback_team(request, svc, t, query, team, "resets")
    if isinstance(scope, Response):
        return scope
    return await _answer(svc.reset_feedback, t, query, scope)


# -- forecasts -----------------------------------------------------------------------------------------
@router.get("/forecast", summary="Forecast a configured query (alias) or a metric spec, with intervals")
async def get_forecast(
    request: Request, state: Annotated[ApiState, Depends(get_state)], query: str, horizon: str = "7d",
    level: float = 95.0, history: str | None = None, threshold: float | None = None,
    window_start: str | None = None, window_end: str | None = None, tenant: str | None = None,
    step: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("query", "horizon", "level", "history", "threshold", "window_start", "window_end",
                                 "step", "tenant", "team"))  # fmt: skip
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    return await _answer(forecast, svc, t, query, horizon=horizon, level=level, history=history, threshold=threshold,
                         window_start=window_start, window_end=window_end, step=step)  # fmt: skip


# -- what-if -------------------------------------------------------------------------------------------
@router.post(
    "/whatif", summary="Baseline vs scenario forecast of cost, requests, latency and capacity",
    openapi_extra=request_body("WhatIf", example={
        "scenario": [{"type": "scale_traffic", "factor": 1.5}, {"type": "price_change", "model": "gpt-4o", "percent": -20}],
        "horizon": "7d", "history": "14d", "step": "1h"}),
)  # fmt: skip
async def post_whatif(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    check_known_params(request, _TENANT_TEAM)
    try:
        body = await _body(request)
    except QueryError as exc:
        return error_response(exc.status, exc.reason, str(exc))
    t = read_tenant(request, state, request.query_params.get("tenant"))
    return await _answer(what_if, get_service(request, state), t, body)


# -- budgets -------------------------------------------------------------------------------------------


@router.post(
    "/budgets",
    status_code=201,
    summary="Create a budget (tenant, team, project or model), evaluate it and write its budget_* series",
    openapi_extra=request_body("Budget", example=_BUDGET_EXAMPLE),
    responses=_NAME_TAKEN,
)
async def create_budget(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    check_known_params(request, _TENANT_TEAM)
    try:
        body = await _body(request)
    except QueryError as exc:
        return error_response(exc.status, exc.reason, str(exc))
    t = _budget_tenant(request, state)
    svc = get_service(request, state)
    p = principal_of(request)
    try:
        budget = Budget.from_body(body, t, created_by=p.subject if p is not None else None)
    except PermanentError as exc:
        return error_response(422, exc.reason, str(exc))
    _check_team(request, t, budget.team)

    def run() -> dict[str, Any]:
        try:
            svc.budgets.create(budget)
        except BudgetNameTaken as exc:
            raise _name_taken(exc) from None
        return svc.refresh_budget(budget)

    return await _answer(run, status=201)


@router.get("/budgets", summary="Budgets of the tenant with spend, forecast and predicted exhaustion (writes nothing)")
async def list_budgets(
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None,
    team: Annotated[str | None, Query(description="only the budgets of this team")] = None,
) -> Response:  # fmt: skip
    check_known_params(request, _TENANT_TEAM)
    # a read evaluates and writes nothing: the budget_* series come from the scheduler (budget_every) and
    # from POST/PUT (AnalyticsService.refresh_budget)
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)

    def run() -> dict[str, Any]:
        if team is not None:
            check_team_name(team)
        return {"budgets": [svc.budget_status(b) for b in svc.budgets.list(t) if team is None or b.team == team]}

    return await _answer(run)


@router.get("/budgets/{budget_id}", summary="One budget's status (writes nothing)")
async def get_budget(budget_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)],
                     tenant: str | None = None) -> Response:  # fmt: skip
    check_known_params(request, _TENANT_TEAM)
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)

    def run() -> dict[str, Any]:
        budget = svc.budgets.get(t, budget_id)
        if budget is None:
            raise NotFound(f"budget {budget_id!r} does not exist for tenant {t!r}")
        return svc.budget_status(budget)

    return await _answer(run)


@router.put(
    "/budgets/{budget_id}",
    summary="Replace a budget and write its budget_* series",
    openapi_extra=request_body("Budget", example=_BUDGET_EXAMPLE),
    responses=_NAME_TAKEN,
)
async def put_budget(budget_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    check_known_params(request, _TENANT_TEAM)
    try:
        body = await _body(request)
    except QueryError as exc:
        return error_response(exc.status, exc.reason, str(exc))
    t = _budget_tenant(request, state)
    svc = get_service(request, state)
    old = await run_in_threadpool(svc.budgets.get, t, budget_id)
    if old is None:
        return error_response(404, "not_found", f"budget {budget_id!r} does not exist for tenant {t!r}")
    _check_team(request, t, old.team)  # before the 422 below, which names the stored values
    missing = _left_out(body, old)
    if missing:
        clear = [f for f in missing if f in _NULLABLE]
        return error_response(
            422, "invalid_budget",
            f"{missing[0]}: PUT replaces the whole budget, and the body leaves out what budget {budget_id!r} "
            f"sets: {', '.join(f'{f} (stored: {_stored(old, f)!r})' for f in missing)}; send "
            f"{'it' if len(missing) == 1 else 'them'} again"
            + (f" (or null to clear {', '.join(clear)})" if clear else ""),
            fields=missing,
        )  # fmt: skip
    try:
        budget = Budget.from_body(body, t, budget_id=budget_id, created_by=old.created_by)
    except PermanentError as exc:
        return error_response(422, exc.reason, str(exc))
    _check_team(request, t, budget.team)

    def run() -> dict[str, Any]:
        try:
            replaced = svc.budgets.replace(budget)
        except BudgetNameTaken as exc:
            raise _name_taken(exc) from None
        if not replaced:  # deleted since it was read above: not brought back
            raise NotFound(f"budget {budget_id!r} does not exist for tenant {t!r}")
        return svc.refresh_budget(budget)

    return await _answer(run)


@router.delete("/budgets/{budget_id}", summary="Delete a budget and its derived series")
async def delete_budget(budget_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    check_known_params(request, _TENANT_TEAM)
    t = _budget_tenant(request, state)
    svc = get_service(request, state)
    old = await run_in_threadpool(svc.budgets.get, t, budget_id)
    if old is None:
        return error_response(404, "not_found", f"budget {budget_id!r} does not exist for tenant {t!r}")
    _check_team(request, t, old.team)

    def run() -> dict[str, Any]:
        svc.delete_budget(t, budget_id)  # with every budget_* series of it
        return {"deleted": budget_id}

    return await _answer(run)


# -- derived series ------------------------------------------------------------------------------------
@router.get("/analytics/series", summary="Derived series (anomaly_score, yhat*, forecast_breach, budget_*)")
async def derived_series(
    request: Request, state: Annotated[ApiState, Depends(get_state)], name: str | None = None,
    query: str | None = None, start: str | None = None, end: str | None = None, tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SERIES_ROWS)] = 10_000, cursor: str | None = None,
) -> Response:  # fmt: skip
    """Rows of ``derived_series``, oldest first, at most ``limit``; when more match, ``truncated`` is true,
    ``next_cursor`` resumes exactly after the last row, and ``next_start`` is where the next page starts
    (the page holds every row before it). A page splits a timestamp's rows only when they are more than
    ``limit``: its ``next_start`` is null then (``next_cursor`` goes on inside the timestamp)."""
    check_known_params(request, ("name", "query", "start", "end", "tenant", "team", "limit", "cursor"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)

    def run() -> dict[str, Any]:
        if name is not None and name not in DERIVED_SERIES:
            raise InvalidParameter(
                f"name: unknown derived series {name!r}; the service writes {', '.join(DERIVED_SERIES)}"
            )
        if query is not None and query not in svc.config.queries:
            raise InvalidParameter(
                f"query: unknown query alias {query!r}; configured: {', '.join(sorted(svc.config.queries))}"
            )
        scope = listing_scope(t, name, query)
        after, sent = read_series_cursor(cursor, scope, MAX_SERIES_ROWS) if cursor is not None else (None, 0)
        end_s = parse_time_param(end, "end", time.time() + 30 * 86_400)
        start_s = parse_time_param(start, "start", time.time() - 86_400)
        keyed = svc.repo.read_series_keyed(t, name, query=query, start_s=start_s, end_s=end_s, after=after,
                                           limit=limit + 1 + sent)  # fmt: skip
        skip = 0
        while skip < min(sent, len(keyed)) and keyed[skip][0] == after:  # the rows of the cursor's key it sent
            skip += 1
        keyed = keyed[skip:]
        if len(keyed) <= limit:
            return {"series": [row for _, row in keyed], "truncated": False, "next_start": None, "next_cursor": None}
        boundary = keyed[limit][1]["ts"]
        page = [kr for kr in keyed[:limit] if kr[1]["ts"] < boundary]  # whole timestamps where they fit
        next_start: str | None = iso_s(boundary)
        if not page:  # one timestamp's rows alone are more than limit: split them (the cursor goes on inside)
            page, next_start = keyed[:limit], None
        last = page[-1][0]
        n = sum(1 for _ in itertools.takewhile(lambda kr: kr[0] == last, reversed(page)))
        n += sent if last == after and n == len(page) else 0
        return {"series": [row for _, row in page], "truncated": True, "next_start": next_start,
                "next_cursor": encode_cursor("series", {"k": list(last), "n": n}, scope)}  # fmt: skip

    return await _answer(run)
