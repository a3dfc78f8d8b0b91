"""``/healthz`` (the process is up), ``/readyz`` (it can take traffic) and ``/metrics`` (Prometheus).

``HEAD /healthz`` and ``HEAD /readyz`` answer the status and headers of the GET, without a body (load
balancers and uptime checkers probe with HEAD); they are left out of the OpenAPI schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from api.deps import get_state
from api.errors import ERROR_RESPONSES, head_response, json_response
from api.state import ApiState

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: the store writer runs and the ingest queue has room")
async def readyz(state: Annotated[ApiState, Depends(get_state)]) -> Response:
    store = state.store
    checks = {
        "store_writer": store.ready,
        "queue_has_room": store.stats.pending_rows < store.max_pending_rows,
    }
    for name, check in state.readiness_checks.items():
        checks[name] = bool(check())
    ok = all(checks.values())
    return json_response({"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503)


@router.head("/healthz", include_in_schema=False)
async def healthz_head() -> Response:
    return head_response(await healthz())


@router.head("/readyz", include_in_schema=False)
async def readyz_head(state: Annotated[ApiState, Depends(get_state)]) -> Response:
    return head_response(await readyz(state))


@router.get(
    "/metrics",
    summary="The hub's own Prometheus metrics",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"},
        # with auth on it needs metrics:read (service.telemetry.metrics_public unset or false)
        # (JSON, stated outright: FastAPI would document them in the route's text/plain)
        **{
            k: {
                "description": ERROR_RESPONSES[k]["description"],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            }
            for k in (401, 403, 429)
        },
    },
)
async def metrics(state: Annotated[ApiState, Depends(get_state)]) -> Response:
    state.metrics.dlq_entries.set(await run_in_threadpool(state.dlq.count))  # (file I/O: off the event loop)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
