"""Correlations, incidents, RCA, dependencies, compliance report and threat intelligence (tenant-scoped).

The engine comes from ``app.state.correlation_engine`` (set by the service that also feeds it from the
pipeline); if none is set, one is created on first use over the same store.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from analytics.correlation import (
    CORRELATION_TYPES,
    CorrelationEngine,
    compliance_report,
    dependency_graph,
    threat_intel,
)
from analytics.correlation.engine import MAX_ANALYZE_ROWS
from analytics.correlation.timeutil import parse_time
from api.deps import check_known_params, get_state, read_tenant
from api.errors import error_response, json_response
from api.jsonbody import body_field
from api.openapi_bodies import struct_body
from api.state import ApiState
from hubcore.errors import InvalidParameter
from hubcore.times import iso_s

router = APIRouter(prefix="/api/v1", tags=["correlations"])
_lock = threading.Lock()
MAX_ANALYZE_S = 7 * 86_400
DAY_US = 86_400_000_000


def get_engine(request: Request, state: ApiState) -> CorrelationEngine:
    engine: CorrelationEngine | None = getattr(request.app.state, "correlation_engine", None)
    if engine is None:
        with _lock:
            engine = getattr(request.app.state, "correlation_engine", None)
            if engine is None:
                engine = CorrelationEngine(state.store, registry=state.metrics.registry)
                engine.start()
                request.app.state.correlation_engine = engine
    return engine


def _range(start: str | None, end: str | None, default_s: float) -> tuple[int, int]:
    end_us = parse_time(end, "end")
    start_us = parse_time(start, "start")
    end_us = end_us if end_us is not None else int(time.time() * 1e6) + 1
    start_us = start_us if start_us is not None else end_us - int(default_s * 1e6)
    if end_us <= start_us:  # name both instants: an end left out is now, which a start ahead of it passed
        default = ", the default: now" if end is None else ""
        raise InvalidParameter(f"end ({iso_s(end_us / 1e6)}{default}) must be after start ({iso_s(start_us / 1e6)})",
                               reason="bad_time")  # fmt: skip
    return start_us, end_us


@router.get("/correlations", summary="Stored correlations overlapping [start, end), optionally of one type")
async def list_correlations(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, type: str | None = None, tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "type", "tenant", "limit"))
    if type is not None and type not in CORRELATION_TYPES:
        return error_response(422, "invalid_parameter", f"type must be one of {list(CORRELATION_TYPES)}, got {type!r}")
    t = read_tenant(request, state, tenant)
    start_us, end_us = _range(start, end, 365 * 86_400)
    engine = get_engine(request, state)
    assert engine.repo is not None
    repo = engine.repo
    rows = await run_in_threadpool(repo.list_correlations, t, start_us, end_us, type, limit + 1)
    return json_response({"correlations": rows[:limit], "truncated": len(rows) > limit})


class AnalyzeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The optional body of ``POST /correlations/analyze``: the same ``start`` / ``end`` as the query."""

    start: str | None = None
    end: str | None = None


_ANALYZE_BODY_FORM = '{"start": "<time>", "end": "<time>"} (both optional) or empty'


@router.post(
    "/correlations/analyze", summary="Correlate the stored events of [start, end) now and store results",
    openapi_extra=struct_body(AnalyzeRequest, required=False, example={"start": "-6h", "end": "-5h"},
                              description="optional: start and end as in the query (ISO-8601, epoch seconds or "
                                          "-6h); no body (or no keys) means the query's, or the last hour"),
)  # fmt: skip
async def analyze(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, tenant: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "tenant"))
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw, type=AnalyzeRequest) if raw.strip() else AnalyzeRequest()
    except msgspec.ValidationError as exc:  # {"start": 1}, {"begin": "-1h"}, []
        return error_response(422, "validation_error", f"body: {exc}; the body is {_ANALYZE_BODY_FORM}",
                              field=body_field(exc))  # fmt: skip
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return error_response(400, "bad_json", f"body must be {_ANALYZE_BODY_FORM}: {exc}")
    for name, query_value, body_value in (("start", start, body.start), ("end", end, body.end)):
        if query_value is not None and body_value is not None and query_value != body_value:
            return error_response(422, "conflicting_parameter", f"{name}: given as ?{name}={query_value} and in "
                                  f"the body as {body_value!r}; give it once", field=name)  # fmt: skip
    start = start if start is not None else body.start
    end = end if end is not None else body.end
    t = read_tenant(request, state, tenant)
    start_us, end_us = _range(start, end, 3600)
    if end_us - start_us > MAX_ANALYZE_S * 1_000_000:
        days = (end_us - start_us) / 86_400e6
        return error_response(422, "range_too_large", f"start: the span [start, end) is {days:,.1f} days; analyze "
                              f"at most {MAX_ANALYZE_S // 86_400} days at a time (call again for the rest)")  # fmt: skip
    engine = get_engine(request, state)

    def run() -> dict[str, Any]:
        state.store.flush(5.0)
        res = engine.analyze(t, start_us, end_us)
        owner = {cid: inc.id for inc in res.incidents for cid in inc.correlation_ids}  # as GET /correlations has it
        return {"correlations": [{**c.to_dict(), "incident_id": owner.get(c.id)} for c in res.correlations],
                "incidents": [i.to_dict() for i in res.incidents], "events": res.events,
                "seconds": round(res.seconds, 4),
                # at most MAX_ANALYZE_ROWS events are read: a busier span needs shorter calls
                "truncated": res.events >= MAX_ANALYZE_ROWS, "max_events": MAX_ANALYZE_ROWS}  # fmt: skip

    return json_response(await run_in_threadpool(run))


@router.get("/incidents", summary="Incidents (groups of correlations), newest first")
async def list_incidents(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, tenant: str | None = None, limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "tenant", "limit"))
    t = read_tenant(request, state, tenant)
    start_us, end_us = _range(start, end, 365 * 86_400)
    repo = get_engine(request, state).repo
    assert repo is not None
    rows = await run_in_threadpool(repo.list_incidents, t, start_us, end_us, limit + 1)
    return json_response({"incidents": rows[:limit], "truncated": len(rows) > limit})


@router.get("/incidents/{incident_id}", summary="One incident")
async def get_incident(
    incident_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("tenant",))
    t = read_tenant(request, state, tenant)
    repo = get_engine(request, state).repo
    assert repo is not None
    row = await run_in_threadpool(repo.get_incident, t, incident_id)
    if row is None:
        return error_response(404, "not_found", f"no incident {incident_id!r} for this tenant")
    return json_response(row)


@router.get("/incidents/{incident_id}/rca", summary="Root-cause hypotheses for one incident, best first")
async def incident_rca(
    incident_id: str, request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("tenant",))
    t = read_tenant(request, state, tenant)
    repo = get_engine(request, state).repo
    assert repo is not None
    hyps = await run_in_threadpool(repo.hypotheses, t, incident_id)
    if hyps is None:
        return error_response(404, "not_found", f"no incident {incident_id!r} for this tenant")
    return json_response({"incident_id": incident_id, "hypotheses": hyps})


@router.get("/dependencies", summary="Service dependency graph learned from traces and correlation ids")
async def dependencies(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, tenant: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "tenant"))
    t = read_tenant(request, state, tenant)
    start_us, end_us = _range(start, end, 86_400)
    return json_response(await run_in_threadpool(dependency_graph, state.store, t, start_us, end_us))


_COMPLIANCE_EXAMPLE = {
    "tenant_id": "acme", "start": "2026-11-26T09:00:00Z", "end": "2026-11-27T09:00:00Z",
    "hourly": [{"policy_id": "pii-redaction", "hour": "2026-11-27T08:00:00Z", "evaluations": 40, "pass": 38, "fail": 1,
                "warn": 1, "compliance_rate": 0.95}],
    "policies": [{"policy_id": "pii-redaction", "evaluations": 40, "pass": 38, "fail": 1, "warn": 1,
                  "compliance_rate": 0.95}],
}  # fmt: skip


@router.get(
    "/policy/compliance/report", summary="Hourly compliance per policy (evaluations, pass/fail/warn, rate)",
    responses={200: {"description": "hour, start and end are ISO-8601 UTC",
                     "content": {"application/json": {"example": _COMPLIANCE_EXAMPLE}}}},
)  # fmt: skip
async def policy_compliance_report(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, tenant: str | None = None,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "tenant"))
    t = read_tenant(request, state, tenant)
    start_us, end_us = _range(start, end, 86_400)
    return json_response(await run_in_threadpool(compliance_report, state.store, t, start_us, end_us))


@router.get("/security/threat-intel", summary="Indicators seen in security findings, across modules")
async def security_threat_intel(
    request: Request, state: Annotated[ApiState, Depends(get_state)], start: str | None = None,
    end: str | None = None, tenant: str | None = None, min_count: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> Response:  # fmt: skip
    check_known_params(request, ("start", "end", "tenant", "min_count", "limit"))
    t = read_tenant(request, state, tenant)
    start_us, end_us = _range(start, end, 86_400)
    body = await run_in_threadpool(
        lambda: threat_intel(state.store, t, start_us, end_us, min_count=min_count, limit=limit))  # fmt: skip
    return json_response(body)
