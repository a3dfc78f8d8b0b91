"""Request-scoped helpers shared by routers: the API state and the caller's tenant."""

from __future__ import annotations

import re

from fastapi import Request

from api.state import ApiState
from hubcore.errors import PermanentError

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.hub
    return state


def header_tenant(request: Request) -> str | None:
    """The tenant named by ``X-Scope-OrgID`` (validated), or None."""
    value = request.headers.get("x-scope-orgid")
    if value is None:
        return None
    value = value.strip()
    if not _TENANT.match(value):
        raise PermanentError(
            "X-Scope-OrgID must be 1-128 characters of letters, digits, '_', '.', '-'", reason="bad_tenant"
        )
    return value


def read_tenant(request: Request, state: ApiState, requested: str | None = None) -> str:
    """The tenant a read is scoped to: the header, else ``?tenant=``, else the default tenant."""
    tenant = header_tenant(request) or requested or state.default_tenant
    if not _TENANT.match(tenant):
        raise PermanentError("tenant must be 1-128 characters of letters, digits, '_', '.', '-'", reason="bad_tenant")
    return tenant
