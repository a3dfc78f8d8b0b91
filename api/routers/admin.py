"""Data rights and the audit trail: erasure of a tenant's or a user's data, and the audit log."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.deps import check_known_params, get_state, header_tenant, principal_of, read_tenant
from api.errors import json_response
from api.state import ApiState
from hubcore.errors import InvalidParameter
from hubcore.security.audit import tail
from hubcore.security.erasure import check_user_id, erase_tenant, erase_user, vm_delete_series_request

router = APIRouter(prefix="/api/v1", tags=["data rights and audit"])


@router.delete("/tenants/{tenant_id}/data", summary="Erase every stored row of a tenant (GDPR erasure)")
async def erase_tenant_data(
    request: Request, tenant_id: str, state: Annotated[ApiState, Depends(get_state)]
) -> Response:
    tenant = _erased_tenant(request, state, tenant_id)
    _forget_in_memory(request, tenant)
    counts = await run_in_threadpool(erase_tenant, state.store, tenant, dlq=state.dlq)
    backends = await _erase_in_backends(state, tenant)
    return json_response({"tenant_id": tenant, "deleted": counts, "backends": backends})


def _erased_tenant(request: Request, state: ApiState, tenant_id: str) -> str:
    """The tenant of an erasure: the path's, checked like any read's. It takes no query parameter (a
    ``?dry_run=true`` would otherwise erase), and an ``X-Scope-OrgID`` naming another tenant is a 422: the
    header had won over the path, so ``DELETE /tenants/b/data`` sent through a proxy that sets the header to
    ``a`` erased tenant ``a``."""
    check_known_params(request, ())
    header = header_tenant(request)
    if header is not None and header != tenant_id:
        raise InvalidParameter(
            f"X-Scope-OrgID ({header[:128]!r}) names another tenant than the path ({tenant_id[:128]!r}): "
            "send the header with the path's tenant, or leave it out", reason="conflicting_tenant",
        )  # fmt: skip
    return read_tenant(request, state, tenant_id)


def _forget_in_memory(request: Request, tenant: str) -> None:
    """The streaming correlation engine holds the tenant's recent events and correlations in memory; drop
    them first, or its next flush would write erased data back (it rebuilds from new events)."""
    engine = getattr(request.app.state, "correlation_engine", None)
    if engine is not None:
        engine.forget(tenant)


async def _erase_in_backends(state: ApiState, tenant: str) -> dict[str, str]:
    """Stack mode: ask VictoriaMetrics to delete the tenant's series (``delete_series``) and Loki to delete
    its streams (``/loki/api/v1/delete``, needs Loki's compactor with deletion enabled)."""
    out: dict[str, str] = {}
    vm = state.config.exporters.victoriametrics
    loki = state.config.exporters.loki
    async with httpx.AsyncClient(timeout=30) as client:
        if vm is not None:
            url, params = vm_delete_series_request(str(vm["endpoint"]), tenant)
            out["victoriametrics"] = await _call(client, "POST", url, params)
        if loki is not None:
            selector = '{tenant_id="' + tenant.replace("\\", "\\\\").replace('"', '\\"') + '"}'
            out["loki"] = await _call(
                client, "POST", str(loki["endpoint"]).rstrip("/") + "/loki/api/v1/delete",
                {"query": selector, "start": "0"}, headers={"X-Scope-OrgID": tenant},
            )  # fmt: skip
    return out


async def _call(client: httpx.AsyncClient, method: str, url: str, params: dict[str, str],
                headers: dict[str, str] | None = None) -> str:  # fmt: skip
    try:
        r = await client.request(method, url, params=params, headers=headers)
    except httpx.HTTPError as exc:
        return f"failed: {exc!r}"
    return "deleted" if r.status_code in (200, 204) else f"failed: HTTP {r.status_code} {r.text[:200]}"


@router.delete("/tenants/{tenant_id}/users/{user_id}/data", summary="Erase a user's rows in a tenant")
async def erase_user_data(
    request: Request, tenant_id: str, user_id: str, state: Annotated[ApiState, Depends(get_state)]
) -> Response:
    """A blank ``user_id`` (``%20``) or ``*`` is a 422 ``bad_user_id`` (it had answered 200, erasing nothing):
    every user of a tenant goes with the tenant's erasure."""
    tenant = _erased_tenant(request, state, tenant_id)
    check_user_id(user_id)  # before anything is forgotten
    _forget_in_memory(request, tenant)
    counts = await run_in_threadpool(erase_user, state.store, tenant, user_id, dlq=state.dlq)
    return json_response({"tenant_id": tenant, "user_id": user_id, "deleted": counts})


@router.get("/audit", summary="The newest audit records of the tenant")
async def audit_records(
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    tenant: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Records that concern the tenant: its principals' actions (``tenant_id``) and what was done to its data
    (``target_tenant_id``, e.g. by a platform admin). Other tenants' *denied* attempts on it are shown to
    platform admins only (they name the other tenant's users). ``tenant=*`` (platform admins): every record."""
    check_known_params(request, ("tenant", "limit"))
    tenant_id = read_tenant(request, state, tenant, all_tenants=True)
    audit = state.security.audit
    if audit is None:
        return json_response({"records": [], "enabled": False})
    caller = principal_of(request)
    records = await run_in_threadpool(
        tail, audit.path, tenant_id=None if tenant_id == "*" else tenant_id, limit=limit,
        foreign_denied=caller is None or caller.cross_tenant,
    )  # fmt: skip
    return json_response({"records": records, "enabled": True})
