"""Anomalies, feedback, forecasts, budgets, what-if and derived series (tenant-scoped; thin).

The :class:`analytics.service.AnalyticsService` comes from ``app.state.analytics`` (set by the hub
service, which also starts and stops its scheduler); without one, one is created on first use over the
same store with the built-in config, and ``GET /anomalies`` runs the caller's due models itself.

* ``GET  /api/v1/anomalies?start=&end=&query=&severity=&limit=&alerts=``
* ``POST /api/v1/anomalies/{anomaly_id}/feedback``  ``{"label": "false_positive", "detector": null, "scope": null}``
  (a team's series teaches its team's state; ``"scope": "query"``, teams:all only, every series'; so does a
  series naming no team in a query of teams' series, also teams:all only)
* ``DELETE /api/v1/anomalies/{anomaly_id}/feedback`` (undo that mark),
  ``GET|DELETE /api/v1/anomalies/feedback?query=&team=`` (what a query, or one team, learned; forget it)
* ``GET  /api/v1/forecast?query=requests_rate&horizon=7d&level=95&step=&threshold=&window_start=&window_end=``
* ``POST|GET /api/v1/budgets``, ``GET|PUT|DELETE /api/v1/budgets/{budget_id}``
* ``POST /api/v1/whatif``
* ``GET  /api/v1/analytics/series?name=&query=&start=&end=``

Every route takes its own query parameters, ``tenant`` and ``team`` (the guard's rule 4): any other is a 422
``unknown_parameter``, one given twice a 422 ``repeated_parameter``. A ``PUT`` body that leaves out a field
the stored budget sets is a 422 (PUT replaces the whole budget).
"""

from __future__ import annotations

import difflib
import itertools
import threading
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.service import AnalyticsService, NotFound
from analytics.service.budgets import Budget, BudgetNameTaken
from analytics.service.config import DERIVED_SERIES
from analytics.service.handlers import SEVERITIES, forecast, parse_time_param, what_if
from analytics.service.teams import anomaly_teams, teaches_other_teams
from api.cursors import encode_cursor, listing_scope, read_series_cursor
from api.deps import (
    audit_target,
    check_known_params,
    ensure_team_access,
    get_state,
    principal_of,
    read_tenant,
    team_limited,
    write_tenant,
)
from api.errors import ErrorBody, error_response, json_response
from api.jsonbody import BadJsonError, decode_json
from api.openapi_bodies import request_body
from api.state import ApiState
from hubcore.errors import ConfigError, InvalidParameter, PermanentError
from hubcore.query.executor import QueryTimeout
from hubcore.query.model import QueryError
from hubcore.security.rbac import ForbiddenError
from hubcore.times import iso_s

router = APIRouter(prefix="/api/v1", tags=["analytics"])
_lock = threading.Lock()
MAX_BODY = 256 * 1024
#: Rows one ``GET /analytics/series`` answer holds at most (``limit``; page on with ``next_start``).
MAX_SERIES_ROWS = 50_000
#: The query parameters of a route that takes none of its own: the tenant, and ``team``, which the app-wide
#: permission guard reads (rule 4 on ``?team=``); any other (a typo) is a 422 ``unknown_parameter``.
_TENANT_TEAM = ("tenant", "team")
#: What ``POST /anomalies/{id}/feedback`` takes.
_FEEDBACK_FIELDS = ("label", "detector", "scope")


def get_service(request: Request, state: ApiState) -> AnalyticsService:
    svc: AnalyticsService | None = getattr(request.app.state, "analytics", None)
    if svc is None:
        with _lock:
            svc = getattr(request.app.state, "analytics", None)
            if svc is None:
                # no background thread here (nothing would stop it before the store closes): without a
                # service wired by the hub, GET /anomalies runs the due models of the caller's tenant
                svc = AnalyticsService(None, state.store, state.metrics.registry)
                request.app.state.analytics = svc
    return svc


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise QueryError("", f"the body exceeds {MAX_BODY} bytes", status=413, reason="body_too_large")
    try:
        return decode_json(raw)
    except BadJsonError as exc:
        raise QueryError("", str(exc), status=400, reason="bad_json") from None


async def _answer(fn: Any, *args: Any, status: int = 200, **kwargs: Any) -> Response:
    try:
        return json_response(await run_in_threadpool(fn, *args, **kwargs), status)
    except NotFound as exc:
        return error_response(404, "not_found", str(exc))
    except QueryError as exc:
        return error_response(exc.status, exc.reason, str(exc), field=exc.field)
    except QueryTimeout as exc:
        return error_response(504, "query_timeout", str(exc), timeout_s=exc.timeout_s)
    except PermanentError as exc:
        return error_response(422, exc.reason, str(exc))
    except ConfigError as exc:  # a duration or spec that does not parse
        return error_response(422, "invalid_parameter", str(exc))


# -- anomalies -----------------------------------------------------------------------------------------
@router.get("/anomalies", summary="Anomalous points found by the scheduled anomaly models")
async def list_anomalies(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, query: str | None = None, severity: str | None = None, tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    alerts: Annotated[bool, Query(description="only the points that announced an event (is_alert): one per "
                                              "incident, what the paging rule fires on")] = False,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "query", "severity", "tenant", "team", "limit", "alerts"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)

    def run() -> dict[str, Any]:
        now = time.time()
        end_s = parse_time_param(end, "end", now + 1)
        start_s = parse_time_param(start, "start", end_s - 86_400)
        if end_s <= start_s:
            raise InvalidParameter("end: must be after start", reason="bad_time")
        if severity is not None and severity not in SEVERITIES:
            raise InvalidParameter(f"severity: must be one of {', '.join(SEVERITIES)} (the minimum shown), "
                                   f"got {severity!r}")  # fmt: skip
        if query is not None and query not in svc.config.queries:
            raise InvalidParameter(f"query: unknown query alias {query!r}; configured: "
                                   f"{', '.join(sorted(svc.config.queries))}")  # fmt: skip
        if not svc.running:
            svc.run_once(tenants=[t])
        shown = SEVERITIES[SEVERITIES.index(severity) :] if severity else None
        rows = svc.repo.list_anomalies(t, start_s=start_s, end_s=end_s, query=query, min_severity=shown, limit=limit,
                                       alerts_only=alerts)  # fmt: skip
        return {"anomalies": rows}

    return await _answer(run)


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
                              f"got {body['label']!r}", field="label")  # fmt: skip
    detector, scope = body.get("detector"), body.get("scope")
    if detector is not None and not isinstance(detector, str):
        return error_response(422, "invalid_feedback", "detector: must be a detector name or null", field="detector")
    if scope not in (None, "team", "query"):
        return error_response(422, "invalid_feedback", 'scope: must be "team" (the series\' team\'s state), "query" '
                              f"(every series of the query) or null, got {scope!r}", field="scope")  # fmt: skip
    if scope == "query" and team_limited(request):
        return error_response(403, "forbidden", 'scope: "query" teaches every team\'s series of the query and needs '
                                                "teams:all; leave it out to teach your team's state")  # fmt: skip
    t = read_tenant(request, state, request.query_params.get("tenant"))
    svc = get_service(request, state)
    await _check_anomaly_team(request, svc, t, anomaly_id)
    return await _answer(svc.mark_false_positive, t, anomaly_id, detector, scope)


async def _check_anomaly_team(
    request: Request, svc: AnalyticsService, tenant: str, anomaly_id: str, *, marked: bool = False
) -> None:
    """Rule 4 on the anomaly's own team (its series' team label, the query's team filter), not on ?team=;
    anomaly ids are derived from (tenant, query, model, series, time), so the record cannot change meanwhile.
    ``marked`` (an undo): also a point a mark made no longer anomalous, as the service finds it. An unknown
    id passes (the service answers 404). A series naming no team in a query of teams' series is scored with
    the query-wide state, which scores every team's series: marking it, or undoing its mark, needs
    teams:all (as ``"scope": "query"`` does), else a 403 that says why (audited)."""
    rec = await run_in_threadpool(lambda: svc.find_anomaly(tenant, anomaly_id, marked=marked))
    if rec is None:
        return
    spec = svc.config.queries.get(rec["query"])
    for team in sorted(anomaly_teams(spec, rec["labels"], tenant)):
        ensure_team_access(request, "anomalies:feedback", "anomalies", tenant, team, what=f"anomaly {anomaly_id!r}")
    p = principal_of(request)
    if p is not None and team_limited(request) and teaches_other_teams(spec, rec["labels"], tenant):
        reason = (f"anomaly {anomaly_id!r}: its series names no team, so its mark is kept in the query-wide feedback "
                  f"state of query {rec['query']!r}, which scores every team's series of the query; "
                  f"{'undoing' if marked else 'marking'} it needs teams:all")  # fmt: skip
        audit_target(request, p, tenant, denied=reason)
        raise ForbiddenError(reason)


@router.delete("/anomalies/{anomaly_id}/feedback", summary="Undo the false-positive mark of an anomaly")
async def undo_anomaly_feedback(
    anomaly_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)]
) -> Response:
    check_known_params(request, _TENANT_TEAM)
    t = read_tenant(request, state, request.query_params.get("tenant"))
    svc = get_service(request, state)
    await _check_anomaly_team(request, svc, t, anomaly_id, marked=True)
    return await _answer(svc.undo_false_positive, t, anomaly_id, query_wide=not team_limited(request))


def _feedback_team(
    request: Request, svc: AnalyticsService, tenant: str, query: str, team: str | None, verb: str
) -> str | Response | None:
    """The team whose feedback state a GET/DELETE is about: ``team=``, or for a caller limited to a team
    (no teams:all) its own team (when the query can hold it), and never another (403). None: the query."""
    if not team_limited(request):
        return team
    p = principal_of(request)
    own = p.team if p is not None else None
    if team is not None and team != own:
        return error_response(403, "forbidden", f"team: a caller limited to team {own!r} {verb} only its own team's "
                                                f"feedback state, not team {team!r}'s (or needs teams:all)")  # fmt: skip
    if team is None and own is not None and not svc.holds_team(query, own, tenant):
        own = None  # a query whose series name no team (or only others): its state is query-wide
    if own is None and verb == "resets":
        # the query-wide state serves every team's series of the query: resetting it is not one team's call
        return error_response(403, "forbidden", "resetting a query's feedback needs teams:all (it is shared by every "
                                                "team's series of the query); undo single marks with DELETE "
                                                "/api/v1/anomalies/{id}/feedback")  # fmt: skip
    return own


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
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, _TENANT_TEAM)
    # a read evaluates and writes nothing: the budget_* series come from the scheduler (budget_every) and
    # from POST/PUT (AnalyticsService.refresh_budget)
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    return await _answer(lambda: {"budgets": [svc.budget_status(b) for b in svc.budgets.list(t)]})


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
