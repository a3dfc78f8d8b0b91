"""``POST /api/v1/events`` (ingest a batch) and ``GET /api/v1/events`` (list, newest first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.correlation.timeutil import parse_time
from api.deps import check_known_params, get_state, read_tenant, write_tenant
from api.errors import error_response, json_response
from api.openapi_bodies import EVENT_EXAMPLE, NDJSON_EXAMPLE, request_body
from api.routers.ingest_body import BodyError, split_events
from api.state import ApiState
from hubcore.errors import InvalidParameter, QueueFullError, RateLimitedError, StoreUnavailableError
from hubcore.query.events import FILTERABLE, EventListQuery, rows_to_events

router = APIRouter(prefix="/api/v1", tags=["events"])
RECEIVER = "rest"


async def read_body_limited(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes before reading it all (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, "body_too_large", f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, "body_too_large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_NDJSON = {"schema": {"type": "string", "description": "one native event (JSON) per line; blank lines ignored"},
           "example": NDJSON_EXAMPLE}  # fmt: skip
_BODY = request_body("EventsBatch", example=[EVENT_EXAMPLE], extra_content={"application/x-ndjson": _NDJSON})


@router.post(
    "/events",
    status_code=202,
    summary="Ingest 1-1000 native events",
    openapi_extra=_BODY,
    responses={
        202: {
            "description": "at least one event accepted: {accepted, rejected: [{index, event_id, reason}], duplicates}"
        },
        400: {"description": "bad JSON"},
        413: {"description": "body or batch too large"},
        415: {"description": "not application/json (an array of events) or application/x-ndjson (one per line)"},
        422: {"description": "no event accepted; see rejected"},
        503: {"description": "queue full; retry after Retry-After seconds"},
    },
)
async def ingest_events(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> Response:
    ctype = request.headers.get("content-type", "")
    media_type = ctype.split(";")[0].strip().lower()
    if media_type not in ("application/json", "application/x-ndjson", ""):
        state.pipeline.reject_request(RECEIVER, "unsupported_media_type")
        return error_response(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json or application/x-ndjson, got {ctype!r}",
        )
    native = state.config.receivers.native
    try:  # ?tenant=a&tenant=b had silently used b, and ?tennat=b the caller's own tenant
        check_known_params(request, ("tenant",))
    except InvalidParameter as exc:
        state.pipeline.reject_request(RECEIVER, exc.reason)
        raise
    try:
        tenant = write_tenant(request, request.query_params.get("tenant"))
        body = await read_body_limited(request, native.max_body_bytes)
        events = split_events(body, max_events=native.max_batch_events, ndjson=media_type == "application/x-ndjson")
    except BodyError as exc:
        state.pipeline.reject_request(RECEIVER, exc.reason)
        return error_response(exc.status, exc.reason, str(exc))
    try:
        outcome = await run_in_threadpool(state.pipeline.consume_events, events, tenant_id=tenant, receiver=RECEIVER)
    except RateLimitedError as exc:
        return error_response(429, "rate_limited", str(exc), retry_after=exc.retry_after)
    except QueueFullError as exc:
        code = "store_unavailable" if isinstance(exc, StoreUnavailableError) else "queue_full"  # disk full, I/O
        return error_response(503, code, str(exc), retry_after=exc.retry_after)
    body_out = {"accepted": outcome.accepted, "rejected": outcome.rejected, "duplicates": outcome.duplicates}
    if outcome.status == "accepted":
        return json_response(body_out, 202)
    return json_response(
        {**body_out, "error": {"code": "all_rejected", "message": "no event in the batch was accepted; see rejected"}},
        422,
    )


@router.get("/events", summary="List stored events, newest first, with filters and cursor pagination")
async def list_events(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    source_module: str | None = None,
    event_type: str | None = None,
    severity: str | None = None,
    environment: str | None = None,
    correlation_id: str | None = None,
    model: str | None = None,
    team: str | None = None,
    tenant: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Response:
    """Also accepts ``tags.<key>=value`` and ``payload.<path>=value`` query parameters. A ``cursor`` is bound to
    the tenant, filters and ``start``/``end`` it was made for (not ``limit``): with others it is a 422 ``bad_cursor``."""
    named = {
        "source_module": source_module, "event_type": event_type, "severity": severity,
        "environment": environment, "correlation_id": correlation_id, "model": model, "team": team,
    }  # fmt: skip
    filters = {k: v for k, v in named.items() if v is not None}
    tag_filters: dict[str, str] = {}
    payload_filters: dict[str, str] = {}
    known = set(named) | {"tenant", "start", "end", "limit", "cursor"}
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key in seen:  # model=a&model=b had silently meant model=b
            raise InvalidParameter(f"query parameter {key[:64]!r} is given more than once; give it once",
                                   reason="repeated_parameter")  # fmt: skip
        seen.add(key)
        if key.startswith("tags."):
            tag_filters[key[5:]] = value
        elif key.startswith("payload."):
            payload_filters[key[8:]] = value
        elif key in FILTERABLE:
            filters[key] = value
        elif key not in known:
            raise InvalidParameter(
                f"unknown query parameter {key[:64]!r}; use {', '.join(FILTERABLE)}, tags.<key>, payload.<path>, "
                "tenant, start, end, limit, cursor",
                reason="unknown_parameter",
            )
    q = EventListQuery(
        tenant_id=read_tenant(request, state, tenant),
        filters=filters,
        tag_filters=tag_filters,
        payload_filters=payload_filters,
        start_us=parse_time(start, "start"),
        end_us=parse_time(end, "end"),
        limit=limit,
        cursor=cursor,
        window=(start, end),
    )
    sql, params = q.to_sql()
    rows = await run_in_threadpool(lambda: state.store.read(sql, params).fetchall())
    events, next_cursor = rows_to_events(rows, limit, q.scope())
    return json_response({"events": events, "next_cursor": next_cursor})
