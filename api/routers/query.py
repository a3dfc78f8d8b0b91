"""The unified query API: ``POST /api/v1/query``, exports and the metric catalogue.

* ``POST /api/v1/query`` — body per docs/query.md → ``{"data": [...], "metadata": {...}}``
* ``POST /api/v1/query/batch`` — ``{"queries": [body, ...]}`` (up to 50) → ``{"results": [...]}``, one
  ``{"status": 200, "data", "metadata"}`` or ``{"status": 4xx/5xx, "error"}`` per query, in order
* ``POST /api/v1/query/export?format=csv|jsonl|parquet`` — every row of a query, streamed
* ``GET /api/v1/events/export?format=...&model=gpt-4o&tags.team=search&start=...`` — raw events, streamed
  (both at most ``service.query.export_time_limit`` seconds; a stopped export ends with a resume
  ``next_cursor``: the same request with ``?cursor=`` continues it)
* ``GET /api/v1/metrics/catalog`` — names, labels, payload fields and tag keys of the caller's tenant

The tenant is the caller's (``X-Scope-OrgID``, else ``tenant``); ``"tenant": "*"`` needs
:func:`may_query_all_tenants`: a platform admin, or anyone when auth is off (the anonymous local user is
one); anyone else gets a 403. The exports' response, format negotiation, trailer and the events export's
parameters are :mod:`api.routers.query_export`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import audit_target, check_known_params, get_state, principal_of, read_tenant, state_of
from api.errors import error_response, json_response
from api.jsonbody import BadJsonError, decode_json
from api.negotiation import NotAcceptable
from api.openapi_bodies import QUERY_EXAMPLE, request_body
from api.routers.query_export import (
    _EXPORT_CONTENT,
    _EXPORT_PARAMS,
    EXPORT_BATCH_ROWS,
    MAX_EXPORT_LIMIT,
    _check_repeated,
    _export_filter,
    _export_limit,
    _export_range,
    _export_timeout,
    _not_acceptable,
    _streaming,
    _truncated,
    export_format,
)
from api.state import ApiState
from hubcore.query.cache import QueryCache
from hubcore.query.catalog import build_catalog
from hubcore.query.compile_duckdb import export_key
from hubcore.query.executor import (
    EmbeddedBackend,
    LokiBackend,
    PromBackend,
    QueryExecutor,
    QueryMetrics,
    QueryTimeout,
)
from hubcore.query.export import (
    CURSOR_KINDS,
    ExportCursor,
    KeyTracker,
    QueryExportCursor,
    QueryKeyTracker,
    decode_export_cursor,
    decode_query_cursor,
    encode_export_cursor,
    encode_query_cursor,
    events_export_sql,
    export_scope,
)
from hubcore.query.model import ALL_TENANTS, QueryError, parse_query

#: The export helpers (response, format, trailer, events-export parameters) are :mod:`api.routers.query_export`.
__all__ = [
    "EXPORT_BATCH_ROWS",
    "MAX_BATCH",
    "MAX_BODY",
    "MAX_EXPORT_LIMIT",
    "REDIS_URL_ENV",
    "export_format",
    "get_executor",
    "may_query_all_tenants",
    "router",
    "select_backend",
]

router = APIRouter(prefix="/api/v1", tags=["query"])
MAX_BODY = 256 * 1024
REDIS_URL_ENV = "HUB_QUERY_REDIS_URL"
_engine_lock = threading.Lock()
log = logging.getLogger(__name__)


def may_query_all_tenants(request: Request) -> bool:
    """Whether the caller may ask for ``"tenant": "*"``: a principal allowed to cross tenants
    (a platform admin; with auth off, the anonymous local user)."""
    principal = getattr(request.state, "principal", None)
    return bool(principal is not None and principal.cross_tenant)


def select_backend(state: ApiState) -> Any:
    """The backend ``service.query.backend`` names; ``auto`` follows the hub's mode: the embedded store
    when the events pipeline keeps events locally, else VictoriaMetrics (PromQL), else Loki (LogQL)."""
    cfg = state.config
    choice = cfg.service.query.backend
    vm, loki = cfg.exporters.victoriametrics, cfg.exporters.loki
    if choice == "auto":
        keeps_events = any(
            "embedded" in p.exporters and "native" in p.receivers for p in cfg.service.pipelines.values()
        )
        choice = "embedded" if keeps_events or (vm is None and loki is None) else ("victoriametrics" if vm else "loki")
    if choice == "victoriametrics" and vm is not None:
        from hubcore.storage.readers import PromReader

        return PromBackend(PromReader(str(vm["endpoint"])))
    if choice == "loki" and loki is not None:
        from hubcore.storage.readers import LokiReader

        return LokiBackend(LokiReader(str(loki["endpoint"])))
    return EmbeddedBackend(state.store)


def get_executor(request: Request) -> QueryExecutor:
    """One executor per app, built on first use; its cache listens to the store's commits."""
    app_state = request.app.state
    executor: QueryExecutor | None = getattr(app_state, "query_executor", None)
    if executor is None:
        with _engine_lock:
            executor = getattr(app_state, "query_executor", None)
            if executor is None:
                state: ApiState = state_of(request)
                redis_url = state.config.service.query.redis_url or os.environ.get(REDIS_URL_ENV) or None
                cache = QueryCache(redis_url=redis_url)
                state.store.add_listener(cache.on_commit)
                executor = QueryExecutor(select_backend(state), cache, metrics=QueryMetrics(state.metrics.registry))
                app_state.query_executor = executor
    return executor


def _query_error(exc: QueryError) -> Response:
    return error_response(exc.status, exc.reason, str(exc), field=exc.field)


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise QueryError("", f"the body exceeds {MAX_BODY} bytes", status=413, reason="body_too_large")
    try:
        return decode_json(body)
    except BadJsonError as exc:
        raise QueryError("", str(exc), status=400, reason="bad_json") from None


#: The end of the message for a query parameter a unified-query route does not take: ``?tenant=`` or ``?limit=``
#: would otherwise be ignored (the caller's own tenant queried, the default page size used).
_BODY_HINT = " (the query, its tenant and limit included, is the JSON body; a tenant may also come in X-Scope-OrgID)"
_ALL_TENANTS_DENIED = 'tenant "*" (all tenants) is for platform admins only'


def _tenant(request: Request, state: ApiState, body: Any) -> str | None:
    requested = body.get("tenant") if isinstance(body, dict) else None
    if requested is not None and not isinstance(requested, str):
        raise QueryError("tenant", 'must be a tenant id (a string), or "*" for every tenant')
    if requested == ALL_TENANTS:
        # read_tenant is bypassed: audit the "*" target (every tenant) here, allowed or refused, as it would
        allowed = may_query_all_tenants(request)
        principal = principal_of(request)
        if principal is not None:
            audit_target(request, principal, ALL_TENANTS, denied=None if allowed else f"denied: {_ALL_TENANTS_DENIED}")
        return ALL_TENANTS if allowed else None
    return read_tenant(request, state, requested)


def _forbidden() -> Response:
    return error_response(403, "forbidden", _ALL_TENANTS_DENIED)


def _timeout_s(body: dict[str, Any]) -> float | None:
    raw = body.get("timeout_ms")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 60_000:
        raise QueryError("timeout_ms", "must be an integer between 1 and 60000")
    return raw / 1000


@router.post(
    "/query",
    summary="Unified query: time range, filters, metric, aggregation, sort, paging",
    openapi_extra=request_body("Query", example=QUERY_EXAMPLE),
)
async def query(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    try:
        check_known_params(request, (), hint=_BODY_HINT)
        body = await _json_body(request)
        tenant = _tenant(request, state, body)
        if tenant is None:
            return _forbidden()
        now_us = time.time_ns() // 1000
        q = parse_query(body, tenant=tenant, now_us=now_us, received_by_us=now_us)
        timeout_s = _timeout_s(body)
        executor = get_executor(request)
        answer = await run_in_threadpool(executor.execute, q, timeout_s=timeout_s)
    except QueryError as exc:
        return _query_error(exc)
    except QueryTimeout as exc:
        return error_response(504, "query_timeout", str(exc), timeout_s=exc.timeout_s)
    return json_response(answer)


MAX_BATCH = 50


def _run_one(executor: QueryExecutor, item: Any, tenant: str, now_us: int, index: int) -> dict[str, Any]:
    """One query of a batch → its result entry (errors are entries too, naming ``queries.<i>.<field>``)."""
    try:
        if not isinstance(item, dict):
            raise QueryError("", "must be a query body (a JSON object)")
        if item.get("tenant") not in (None, tenant):
            raise QueryError("tenant", "a batch runs for one tenant: set it on the batch, not per query")
        q = parse_query(item, tenant=tenant, now_us=now_us, received_by_us=now_us)
        answer = executor.execute(q, timeout_s=_timeout_s(item))
        return {"status": 200, **answer}
    except QueryError as exc:
        field = f"queries.{index}.{exc.field}" if exc.field else f"queries.{index}"
        return {"status": exc.status, "error": {"code": exc.reason, "message": str(exc), "field": field}}
    except QueryTimeout as exc:
        return {"status": 504, "error": {"code": "query_timeout", "message": str(exc), "timeout_s": exc.timeout_s}}
    except Exception:
        # a fault in the hub, not in the query: this entry says so, the other queries still run
        log.exception("query %d of a batch failed", index)
        return {"status": 500, "error": {"code": "internal_error",
                                         "message": "internal error; the hub's log has the details"}}  # fmt: skip


@router.post(
    "/query/batch",
    summary="Several unified queries in one request (a dashboard page's panels)",
    openapi_extra=request_body("QueryBatch", example={"queries": [QUERY_EXAMPLE, {"time_range": {"last": "1h"}}]}),
)
async def query_batch(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    """``{"queries": [...], "tenant": ...}``: each query as ``POST /api/v1/query`` would run it, for the
    batch's tenant, in order; one failing query does not fail the others (its entry carries the error)."""
    try:
        check_known_params(request, (), hint=_BODY_HINT)
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("queries"), list):
            raise QueryError("queries", "must be a list of query bodies")
        unknown = sorted(set(body) - {"queries", "tenant"})
        if unknown:
            raise QueryError(unknown[0], "unknown field (a batch has queries and tenant)")
        items = body["queries"]
        if not 1 <= len(items) <= MAX_BATCH:
            raise QueryError("queries", f"must hold 1 to {MAX_BATCH} queries, got {len(items)}")
        tenant = _tenant(request, state, body)
        if tenant is None:
            return _forbidden()
        executor = get_executor(request)
        now_us = time.time_ns() // 1000
        results = await run_in_threadpool(
            lambda: [_run_one(executor, item, tenant, now_us, i) for i, item in enumerate(items)]
        )
    except QueryError as exc:
        return _query_error(exc)
    return json_response({"results": results})


@router.post(
    "/query/export",
    summary="Stream every row of a unified query as CSV, JSON lines or Parquet",
    openapi_extra=request_body("ExportQuery", example={k: v for k, v in QUERY_EXAMPLE.items() if k != "limit"}),
    responses={
        **_EXPORT_CONTENT,  # type: ignore[dict-item]
        504: {"description": "the export could not start within service.query.export_time_limit"},
    },
)
async def export_query(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    """Every row of the query (the body of ``POST /api/v1/query``), in a total order: the sort, then the
    bucket and group columns. The store is read at most ``service.query.export_time_limit`` seconds; an
    export still streaming then ends with a trailer ``{"truncated": true, "next_cursor": ...}``: the same
    request (the same body) with ``?cursor=<next_cursor>`` continues right after the last row sent, in the
    first request's time window and on the events received by then."""
    try:
        check_known_params(request, ("format", "cursor"), hint=_BODY_HINT)
        fmt = export_format(request)
        body = await _json_body(request)
        tenant = _tenant(request, state, body)
        if tenant is None:
            return _forbidden()
        time_limit = state.config.service.query.export_time_limit
        now_us = time.time_ns() // 1000
        q = parse_query(body, tenant=tenant, now_us=now_us, max_limit=10**9, paged=False)
        key = export_key(q)
        scope = export_scope("query", q.fingerprint(with_page=False))
        raw_cursor = request.query_params.get("cursor")
        if raw_cursor:
            resume = decode_query_cursor(raw_cursor, scope, [k.kind for k in key])
            if not q.time_range.resumable_in(resume.start_us, resume.end_us):
                # a tampered window: it would bypass the range and bucket limits the body was checked against
                raise QueryError("cursor", CURSOR_KINDS["query"][0])
            # the first answer's window (a relative "last" does not slide); the cursor replaces the offset
            q = replace(q, time_range=replace(q.time_range, start_us=resume.start_us, end_us=resume.end_us), offset=0)
        else:
            tr = q.time_range
            resume = QueryExportCursor(tr.start_us, tr.end_us, now_us, None, scope)
        executor = get_executor(request)
        stream = await run_in_threadpool(
            lambda: executor.stream(q, batch_rows=EXPORT_BATCH_ROWS, time_limit_s=time_limit, after=resume.after,
                                    received_by_us=resume.received_by_us)
        )  # fmt: skip
    except NotAcceptable as exc:
        return _not_acceptable(exc)
    except QueryError as exc:
        return _query_error(exc)
    except QueryTimeout:
        return _export_timeout(time_limit)
    tracker = QueryKeyTracker(stream.batches, key)

    def cursor() -> str:
        after = tracker.last if tracker.last is not None else resume.after
        return encode_query_cursor(replace(resume, after=after))

    trailer = _truncated(stream, tracker, time_limit, cursor)
    return _streaming(stream.columns, iter(tracker), fmt, "query", trailer, {"X-Export-Time-Limit": f"{time_limit:g}"})


@router.get(
    "/events/export",
    summary="Stream a tenant's raw events (oldest first) as CSV, JSON lines or Parquet",
    responses={
        **_EXPORT_CONTENT,  # type: ignore[dict-item]
        504: {"description": "the export could not start within service.query.export_time_limit"},
    },
)
async def export_events(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    """Filters: ``<field>=value`` for event fields, ``tags.<key>=``, ``payload.<path>=`` (equality).
    ``tenant=*`` (platform admins) exports every tenant's events; the ``tenant_id`` column tells them apart.

    The export holds its store cursor at most ``service.query.export_time_limit`` seconds; one still
    streaming then ends with a trailer ``{"truncated": true, "next_cursor": ...}`` (the last JSON line, a
    last CSV line ``#{...}``, or the Parquet footer's ``hub.export`` metadata): the same request with
    ``cursor=<next_cursor>`` continues right after the last row sent, in the same time window."""
    params = request.query_params
    time_limit = state.config.service.query.export_time_limit
    try:
        _check_repeated(params)
        fmt = export_format(request)
        tenant = read_tenant(request, state, params.get("tenant"), all_tenants=True)
        filters = [_export_filter(k, v) for k, v in params.multi_items() if k not in _EXPORT_PARAMS]
        limit = _export_limit(params.get("limit"))
        now_us = time.time_ns() // 1000
        scope = export_scope(tenant, sorted((k, v) for k, v in params.multi_items() if k not in _EXPORT_PARAMS),
                             [params.get(k) for k in ("start", "end", "last")])  # fmt: skip
        raw_cursor = params.get("cursor")
        if raw_cursor:
            _export_range(params, now_us)  # the parameters are checked as always; the window is the cursor's
            resume = decode_export_cursor(raw_cursor, scope)
        else:
            tr = _export_range(params, now_us)
            resume = ExportCursor(tr.start_us, tr.end_us, None, scope)
        sql, sql_params, columns = events_export_sql(
            tenant, filters, resume.start_us, resume.end_us, limit, after=resume.after
        )
        backend = EmbeddedBackend(state.store)
        stream = await run_in_threadpool(
            lambda: backend.stream_sql(sql, sql_params, columns, batch_rows=EXPORT_BATCH_ROWS, time_limit_s=time_limit)
        )
    except NotAcceptable as exc:
        return _not_acceptable(exc)
    except QueryError as exc:
        return _query_error(exc)
    except QueryTimeout:
        return _export_timeout(time_limit)
    tracker = KeyTracker(stream.batches, every_tenant=tenant == ALL_TENANTS)

    def cursor() -> str:
        after = tracker.last if tracker.last is not None else resume.after
        return encode_export_cursor(ExportCursor(resume.start_us, resume.end_us, after, scope))

    trailer = _truncated(stream, tracker, time_limit, cursor)
    return _streaming(stream.columns, iter(tracker), fmt, "events", trailer, {"X-Export-Time-Limit": f"{time_limit:g}"})


@router.get("/metrics/catalog", summary="Metric names, labels, payload fields and tag keys of the caller's tenant")
async def catalog(
    request: Request, state: Annotated[ApiState, Depends(get_state)], last: str = "30d", tenant: str | None = None
) -> Response:
    try:
        check_known_params(request, ("last", "tenant"))
        q = parse_query({"time_range": {"last": last}}, tenant="-", now_us=time.time_ns() // 1000)
        who = read_tenant(request, state, tenant)
        result = await run_in_threadpool(build_catalog, state.store, who, since_us=q.time_range.start_us)
    except QueryError as exc:
        return _query_error(exc)
    return json_response(result)
