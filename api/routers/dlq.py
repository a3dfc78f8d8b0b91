"""``GET /api/v1/dlq`` lists dead-lettered input; ``POST /api/v1/dlq/replay`` re-processes it."""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import get_state, read_tenant
from api.errors import error_response, json_response
from api.state import ApiState

router = APIRouter(prefix="/api/v1/dlq", tags=["dead-letter queue"])


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str] | None = None


@router.get("", summary="Dead-lettered items of the caller's tenant, newest first")
async def list_dlq(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    reason: str | None = None,
) -> Response:
    tenant_id = read_tenant(request, state, tenant)
    entries, total = await run_in_threadpool(
        state.dlq.list, tenant_id=tenant_id, limit=limit, offset=offset, reason_contains=reason
    )
    return json_response({"entries": entries, "total": total, "limit": limit, "offset": offset})


@router.post("/replay", summary="Replay dead-lettered items (all of the tenant's, or the given ids)")
async def replay_dlq(
    request: Request, state: Annotated[ApiState, Depends(get_state)], tenant: str | None = None
) -> Response:
    tenant_id = read_tenant(request, state, tenant)
    body = await request.body()
    try:
        req = msgspec.json.decode(body, type=ReplayRequest) if body.strip() else ReplayRequest()
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError) as exc:
        return error_response(400, "bad_request", f'body must be {{"ids": [...]}} or empty: {exc}')
    replayed, accepted = await run_in_threadpool(state.pipeline.replay_dlq, tenant_id=tenant_id, ids=req.ids)
    return json_response({"replayed": replayed, "accepted": accepted, "still_rejected": replayed - accepted})
