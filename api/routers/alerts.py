"""Alerts: list, acknowledge, resolve; alert rules; the Alertmanager webhook receiver (tenant-scoped).

    GET    /api/v1/alerts?state=firing&severity=critical      -> {"alerts": [...], "inhibited_count": n}
           (&inhibited=false, the default: not the inhibited ones; true: only those; any: all)
    GET    /api/v1/alerts/{alert_id}                          -> {"alert": {...}}
    POST   /api/v1/alerts/{alert_id}/acknowledge  {"by", "comment"} -> {"alert": {...}}
    POST   /api/v1/alerts/{alert_id}/resolve      {"by"}      -> {"alert": {...}}
    GET    /api/v1/alerts/rules                               -> {"rules": [...]}
    GET    /api/v1/alerts/rules/{rule_id}                     -> {"rule": {...}} | 404
    POST   /api/v1/alerts/rules                   rule JSON   -> 201 {"rule": {...}} | 422
    DELETE /api/v1/alerts/rules/{rule_id}                     -> 204
    POST   /api/v1/alerts/alertmanager            webhook v4  -> {"received", "created", ...}

The service comes from ``app.state.alerting`` (set by the hub service); if none is set, one is created
on first use over the same store (rules evaluated in the background, no Alertmanager client).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import (
    check_known_params,
    ensure_team_access,
    get_state,
    principal_of,
    read_tenant,
    team_allowed,
    write_tenant,
)
from api.errors import ErrorBody, error_response, json_response
from api.jsonbody import BadJsonError, decode_json
from api.openapi_bodies import request_body
from api.state import ApiState
from hubcore.security.context import authenticated
from processors.alerting import AlertConflict, AlertingConfig, AlertingService, AlertNotFound, RuleError

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
_lock = threading.Lock()
MAX_BODY = 1 << 20
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorBody, "description": "not allowed in this state"}}


_BY = request_body("AlertTransition", required=False, example={"by": "oncall@example.com", "comment": "looking"})
_RULE = request_body("AlertRule", example={
    "name": "GPT4oSlow", "for": "5m", "severity": "warning", "labels": {"team": "search"},
    "condition": {"type": "threshold", "metric": "gen_ai.client.operation.duration", "filters": {"model": "gpt-4o"},
                  "aggregation": "p95", "window": "5m", "op": ">", "value": 2000},
})  # fmt: skip
_WEBHOOK = request_body("WebhookPayload", example={
    "version": "4", "status": "firing", "receiver": "hub", "groupKey": "{}:{alertname=\"HighLatency\"}",
    "alerts": [{"status": "firing", "labels": {"alertname": "HighLatency", "severity": "warning", "tenant_id": "acme"},
                "annotations": {"summary": "p95 above 2 s"}, "startsAt": "2026-01-15T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "a1b2c3"}],
})  # fmt: skip


def get_service(request: Request, state: ApiState) -> AlertingService:
    svc: AlertingService | None = getattr(request.app.state, "alerting", None)
    if svc is None:
        with _lock:
            svc = getattr(request.app.state, "alerting", None)
            if svc is None:
                svc = AlertingService(AlertingConfig(), state.store, state.metrics.registry,
                                      default_tenant=state.default_tenant)  # fmt: skip
                svc.start()
                request.app.state.alerting = svc
    return svc


def _team(labels: Any) -> str | None:
    """The team a rule or an alert belongs to: its ``labels.team`` (rule 4 of the RBAC decision)."""
    team = labels.get("team") if isinstance(labels, dict) else None
    return team if isinstance(team, str) and team else None


def _tenant_for_write(request: Request, state: ApiState, tenant: str | None) -> str:
    return write_tenant(request, tenant) or state.default_tenant


async def _json(request: Request, *, optional: bool) -> tuple[Any, Response | None]:
    body = await request.body()
    if len(body) > MAX_BODY:
        return None, error_response(413, "too_large", f"body over {MAX_BODY} bytes")
    if not body.strip():
        if optional:
            return {}, None
        return None, error_response(422, "invalid_rule", "a JSON body is required")
    try:
        return decode_json(body), None
    except BadJsonError as exc:
        return None, error_response(400, "bad_json", str(exc))


def _invalid(exc: RuleError, code: str = "invalid_rule") -> Response:
    return error_response(422, code, str(exc), field=exc.field)


_INHIBITED = {"false": False, "true": True, "any": None}


@router.get(
    "", summary="Alerts of the tenant, newest first (filter by state and severity); inhibited ones only on request"
)
async def list_alerts(
    request: Request, state: Annotated[ApiState, Depends(get_state)],
    alert_state: Annotated[str | None, Query(alias="state")] = None, severity: str | None = None,
    tenant: str | None = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    inhibited: Annotated[str, Query(
        description="false (default): leave out the warnings inhibited by the critical alert of the same labels; "
                    "true: only those; any: all. `inhibited_count` counts them either way")] = "false",
) -> Response:  # fmt: skip
    check_known_params(request, ("state", "severity", "tenant", "team", "limit", "inhibited"))
    t = read_tenant(request, state, tenant, all_tenants=True)
    if inhibited.lower() not in _INHIBITED:
        return error_response(422, "invalid_parameter", f"inhibited must be false, true or any, got {inhibited!r}",
                              field="inhibited")  # (its code had been bad_inhibited: one code for a bad value)
    only = _INHIBITED[inhibited.lower()]
    svc = get_service(request, state)

    def page() -> tuple[list[dict[str, Any]], int]:
        alerts = svc.list_alerts(t, state=alert_state, severity=severity, limit=limit, inhibited=only)
        return alerts, svc.count_inhibited(t, state=alert_state, severity=severity)

    try:
        alerts, count = await run_in_threadpool(page)
    except ValueError as exc:
        return error_response(422, "invalid_parameter", str(exc), field="state")  # (had been bad_state)
    return json_response({"alerts": alerts, "inhibited_count": count})


@router.get("/rules", summary="Alert rules that apply to the tenant (built-in, configured, its own) and health")
async def list_rules(
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant", "team"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    return json_response({"rules": await run_in_threadpool(svc.rules, t)})


@router.get(
    "/rules/{rule_id}", summary="One alert rule that applies to the tenant (as in the list), with its health",
    responses={200: {"description": '{"rule": {...}}; 404 for an id that names no rule of the tenant'}},
)  # fmt: skip
async def get_rule(
    rule_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant", "team"))
    t = read_tenant(request, state, tenant)
    svc = get_service(request, state)
    rule = await _find_rule(svc, t, rule_id)
    if rule is None:  # an unknown id, or another tenant's rule: the same answer (no existence oracle)
        return error_response(404, "not_found", f"no alert rule {rule_id[:200]!r} for tenant {t!r}")
    return json_response({"rule": rule})


async def _find_rule(svc: AlertingService, tenant: str, rule_id: str) -> dict[str, Any] | None:
    """The rule ``rule_id`` among those that apply to ``tenant`` (its own, configured, built-in), or None."""
    return next((r for r in await run_in_threadpool(svc.rules, tenant) if r.get("id") == rule_id), None)


@router.post(
    "/rules", summary="Create a rule for the tenant (422 names the invalid key)", status_code=201, openapi_extra=_RULE
)
async def create_rule(
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant", "team"))
    t = _tenant_for_write(request, state, tenant)
    data, err = await _json(request, optional=False)
    if err is not None:
        return err
    p = principal_of(request)
    labels = data.get("labels") if isinstance(data, dict) else None
    ensure_team_access(request, "alerts:manage", "alert_rules", t, _team(labels))
    try:
        rule = await run_in_threadpool(get_service(request, state).create_rule, t, data, p.subject if p else None)
    except RuleError as exc:
        return _invalid(exc)
    return json_response({"rule": rule}, 201)


@router.delete(
    "/rules/{rule_id}", summary="Delete one of the tenant's rules (its open alerts resolve)", status_code=204,
    responses=_CONFLICT,
)  # fmt: skip
async def delete_rule(
    rule_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant", "team"))
    t = _tenant_for_write(request, state, tenant)
    svc = get_service(request, state)
    rule = await _find_rule(svc, t, rule_id)
    if rule is not None and not rule.get("builtin"):  # a built-in one is a 409 whoever asks
        ensure_team_access(request, "alerts:manage", "alert_rules", t, _team(rule.get("labels")))
    try:
        await run_in_threadpool(svc.delete_rule, t, rule_id)
    except AlertNotFound as exc:
        return error_response(404, "not_found", str(exc))
    except AlertConflict as exc:
        return error_response(409, "builtin_rule", str(exc))
    return Response(status_code=204)


@router.post("/alertmanager", summary="Alertmanager webhook receiver (payload version 4)", openapi_extra=_WEBHOOK)
async def alertmanager_webhook(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    body = await request.body()
    if len(body) > 16 * MAX_BODY:
        return error_response(413, "too_large", "webhook body too large")
    p = principal_of(request)

    def allowed(tenant: str) -> bool:
        return not authenticated(p) or p is None or p.cross_tenant or tenant == p.tenant_id

    def allowed_team(tenant: str, team: str) -> bool:  # rule 4 on each alert's labels.team, not ?team=
        return team_allowed(request, "alerts:manage", "alerts", tenant, team)

    try:
        counts = await run_in_threadpool(get_service(request, state).receive_webhook, body, allowed, allowed_team)
    except RuleError as exc:
        return _invalid(exc, "invalid_webhook")
    return json_response(counts)


@router.get("/{alert_id}", summary="One alert")
async def get_alert(
    alert_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    check_known_params(request, ("tenant", "team"))
    t = read_tenant(request, state, tenant)
    try:
        alert = await run_in_threadpool(get_service(request, state).get_alert, t, alert_id)
    except AlertNotFound as exc:
        return error_response(404, "not_found", str(exc))
    return json_response({"alert": alert})


async def _transition(request: Request, state: ApiState, alert_id: str, tenant: str | None, ack: bool) -> Response:
    check_known_params(request, ("tenant", "team"))
    t = _tenant_for_write(request, state, tenant)
    data, err = await _json(request, optional=True)
    if err is not None:
        return err
    if not isinstance(data, dict) or any(not isinstance(data.get(k), str | None) for k in ("by", "comment")):
        return error_response(422, "bad_body", 'body must be {"by": string?, "comment": string?}')
    unknown = sorted(str(k) for k in data if k not in ("by", "comment"))
    if unknown:  # a typo ("comments") would otherwise be dropped without a word
        return error_response(422, "bad_body", f'unknown key {unknown[0][:64]!r}: the body is {{"by": string?, '
                              '"comment": string?}', field=unknown[0][:64])  # fmt: skip
    p = principal_of(request)
    svc = get_service(request, state)
    try:
        current = await run_in_threadpool(svc.get_alert, t, alert_id)
    except AlertNotFound as exc:
        return error_response(404, "not_found", str(exc))
    ensure_team_access(request, "alerts:ack", "alerts", t, _team(current.get("labels")))
    if authenticated(p) and p is not None:
        # who acted is the credential, never the body: "by" can only name someone when no one signs in
        by: str | None = p.subject
    else:
        by = data.get("by")
    try:
        if ack:
            alert = await run_in_threadpool(svc.acknowledge, t, alert_id, by, data.get("comment"))
        else:
            alert = await run_in_threadpool(svc.resolve, t, alert_id, by)
    except AlertNotFound as exc:
        return error_response(404, "not_found", str(exc))
    except AlertConflict as exc:
        return error_response(409, "conflict", str(exc))
    return json_response({"alert": alert})


@router.post(
    "/{alert_id}/acknowledge", summary="firing → acknowledged (stops escalation)", responses=_CONFLICT,
    openapi_extra=_BY,
)  # fmt: skip
async def acknowledge(
    alert_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    return await _transition(request, state, alert_id, tenant, ack=True)


@router.post("/{alert_id}/resolve", summary="Resolve an alert now (Alertmanager gets endsAt)", openapi_extra=_BY)
async def resolve(
    alert_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    return await _transition(request, state, alert_id, tenant, ack=False)
