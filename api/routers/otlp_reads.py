"""Read back OTLP spans, log records and metric points from the embedded store:
``GET /api/v1/traces/{trace_id}``, ``GET /api/v1/spans``, ``GET /api/v1/logs`` and ``GET /api/v1/metrics``
(newest first, cursor pagination: a cursor is bound to the filters, tenant and ``start``/``end`` it was
made for, and is a 422 ``bad_cursor`` with others), and ``GET /api/v1/metrics/names``, scoped to the
caller's tenant like ``GET /api/v1/events``. A caller allowed to cross tenants (a platform admin; anyone on a
hub with auth off) may also name the hub's own tenant, ``_hub`` (``?tenant=_hub`` or ``X-Scope-OrgID: _hub``),
to read the hub's self-traces (:mod:`hub.selftrace`); no other route takes it.

In stack mode, where no pipeline keeps OTLP data in the embedded store, they answer 501: read traces from
Tempo, logs from Loki and metrics from VictoriaMetrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.correlation.timeutil import parse_time
from api.deps import check_known_params, get_state, read_tenant
from api.errors import ERROR_RESPONSES, error_response, json_response
from api.state import ApiState
from hubcore.query.otlp import (
    MAX_TRACE_SPANS,
    LogListQuery,
    SpanListQuery,
    check_trace_id,
    log_dicts,
    parents_first,
    span_dicts,
    trace_sql,
)
from hubcore.query.otlp_metrics import MAX_NAMES, MetricListQuery, metric_dicts, metric_names_sql, name_dicts

router = APIRouter(prefix="/api/v1", tags=["OTLP traces, logs and metrics"])

_NOT_STORED = {**ERROR_RESPONSES[404], "description": "stack mode: OTLP data is not kept locally"}
_RESPONSES: dict[int | str, dict[str, Any]] = {501: _NOT_STORED}
_SPAN_PARAMS = ("service", "name", "status", "model", "trace_id", "min_duration_ms")
_LOG_PARAMS = ("service", "severity", "trace_id", "contains")
_METRIC_PARAMS = ("name", "service", "label")
_NAMES_PARAMS = ("service", "prefix", "tenant", "start", "end", "limit")
_COMMON = ("tenant", "start", "end", "limit", "cursor")


def _tenant(request: Request, state: ApiState, tenant: str | None) -> str:
    """The read's tenant (:func:`api.deps.read_tenant`); these routes also take the hub's own, ``_hub`` (its
    self-traces, :mod:`hub.selftrace`), for a caller allowed to cross tenants (the guard lets the header through
    on :data:`api.security.HUB_TENANT_ROUTES`)."""
    return read_tenant(request, state, tenant, hub_tenant=True)


def keeps_otlp(state: ApiState) -> bool:
    """Whether a pipeline fed by OTLP writes to the embedded store (not so in ``--stack-only`` mode)."""
    return any(
        "embedded" in p.exporters and any(r != "native" for r in p.receivers)
        for p in state.config.service.pipelines.values()
    )


def _not_stored(what: str, backend: str) -> Response:
    return error_response(
        501, "not_stored_locally",
        f"this hub does not keep OTLP {what} in its embedded store (stack mode); query {backend} instead",
    )  # fmt: skip


async def _page(state: ApiState, q: Any, what: str, backend: str, key: str,
                to_dicts: Callable[[list[tuple[Any, ...]]], list[dict[str, Any]]]) -> Response:
    """One page of a list query (:class:`hubcore.query.otlp._Page`): every parameter is validated (422)
    before the mode is looked at (501 in stack mode); ``{key: [...], "next_cursor"}``."""
    sql, params = q.to_sql()
    if not keeps_otlp(state):
        return _not_stored(what, backend)
    rows = await run_in_threadpool(lambda: state.store.read(sql, params).fetchall())
    page, next_cursor = q.page(rows)
    return json_response({key: to_dicts(page), "next_cursor": next_cursor})


@router.get(
    "/traces/{trace_id}",
    summary="Every stored span of one trace, by start time, with its events",
    responses={**_RESPONSES, 404: {**ERROR_RESPONSES[404], "description": "no span of this trace in the tenant"}},
)
async def get_trace(
    request: Request, state: Annotated[ApiState, Depends(get_state)], trace_id: str, tenant: str | None = None
) -> Response:
    """``{"trace_id", "spans": [...], "span_count", "truncated"}``; at most 10,000 spans (``truncated``): the
    OTLP spans of the trace and the spans of the tenant's native events of it (``source`` ``event``, under the
    synthetic root of their correlation id, ``source`` ``event_root``, or their traceparent's span)."""
    check_known_params(request, ("tenant",))
    tid = check_trace_id(trace_id)
    tenant_id = _tenant(request, state, tenant)
    if not keeps_otlp(state):
        return _not_stored("spans", "Tempo")
    sql, params = trace_sql(tenant_id, tid)
    rows = await run_in_threadpool(lambda: state.store.read(sql, params).fetchall())
    if not rows:
        return error_response(404, "not_found", f"no span of trace {tid} is stored for tenant {tenant_id!r}")
    truncated = len(rows) > MAX_TRACE_SPANS
    spans = span_dicts(parents_first(rows[:MAX_TRACE_SPANS]))
    return json_response({"trace_id": tid, "spans": spans, "span_count": len(spans), "truncated": truncated})


@router.get("/spans", summary="List stored OTLP spans, newest first, with filters and cursor pagination",
            responses=_RESPONSES)  # fmt: skip
async def list_spans(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    service: str | None = None,
    name: str | None = None,
    status: str | None = None,
    model: str | None = None,
    trace_id: str | None = None,
    min_duration_ms: float | None = None,
    tenant: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response:
    """``{"spans": [...], "next_cursor"}``; ``status`` is UNSET, OK or ERROR (any case)."""
    check_known_params(request, _SPAN_PARAMS + _COMMON)
    q = SpanListQuery(
        _tenant(request, state, tenant), service=service, name=name, status=status, model=model,
        trace_id=trace_id, min_duration_ms=min_duration_ms, start_us=parse_time(start, "start"),
        end_us=parse_time(end, "end"), limit=limit, cursor=cursor, window=(start, end),
    )  # fmt: skip
    return await _page(state, q, "spans", "Tempo", "spans", span_dicts)


@router.get("/logs", summary="List stored OTLP log records, newest first, with filters and cursor pagination",
            responses=_RESPONSES)  # fmt: skip
async def list_logs(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    service: str | None = None,
    severity: str | None = None,
    trace_id: str | None = None,
    contains: str | None = None,
    tenant: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response:
    """``{"logs": [...], "next_cursor"}``; ``severity``: at least this level (TRACE..FATAL or 1-24);
    ``contains``: a case-insensitive substring of the body (1-256 characters)."""
    check_known_params(request, _LOG_PARAMS + _COMMON)
    q = LogListQuery(
        _tenant(request, state, tenant), service=service, severity=severity, trace_id=trace_id,
        contains=contains, start_us=parse_time(start, "start"), end_us=parse_time(end, "end"), limit=limit,
        cursor=cursor, window=(start, end),
    )  # fmt: skip
    return await _page(state, q, "log records", "Loki", "logs", log_dicts)


@router.get("/metrics", summary="List stored OTLP metric points, newest first, with filters and cursor pagination",
            responses=_RESPONSES)  # fmt: skip
async def list_metric_points(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    name: str | None = None,
    service: str | None = None,
    label: Annotated[list[str] | None, Query()] = None,
    tenant: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response:
    """``{"metric_points": [...], "next_cursor"}``; ``label``: repeated ``key=value`` / ``key!=value`` matchers
    on the point's attributes (``key=`` matches points without it). An unknown name lists nothing."""
    check_known_params(request, _METRIC_PARAMS + _COMMON, repeatable=("label",))
    q = MetricListQuery(
        _tenant(request, state, tenant), name=name, service=service, labels=label,
        start_us=parse_time(start, "start"), end_us=parse_time(end, "end"), limit=limit, cursor=cursor,
        window=(start, end),
    )  # fmt: skip
    return await _page(state, q, "metric points", "VictoriaMetrics (PromQL)", "metric_points", metric_dicts)


@router.get("/metrics/names", summary="Stored OTLP metric names with kind, unit and point counts",
            responses=_RESPONSES)  # fmt: skip
async def list_metric_names(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    service: str | None = None,
    prefix: str | None = None,
    tenant: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_NAMES)] = MAX_NAMES,
) -> Response:
    """``{"metrics": [{"name", "kind", "unit", "points", "first_timestamp", "last_timestamp"}], "truncated"}``,
    by name: one entry per (name, kind, unit) with points in [start, end) (every stored point by default)."""
    check_known_params(request, _NAMES_PARAMS)
    sql, params = metric_names_sql(
        _tenant(request, state, tenant), service=service, prefix=prefix, start_us=parse_time(start, "start"),
        end_us=parse_time(end, "end"), limit=limit,
    )  # fmt: skip
    if not keeps_otlp(state):
        return _not_stored("metric points", "VictoriaMetrics (PromQL)")
    rows = await run_in_threadpool(lambda: state.store.read(sql, params).fetchall())
    return json_response({"metrics": name_dicts(rows[:limit]), "truncated": len(rows) > limit})
