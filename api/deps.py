"""Request-scoped helpers shared by routers: the API state and the caller's tenant.

The app-wide guard (:mod:`api.security`) has already authenticated the caller and decided the route's
permission for the tenant it asked for; these helpers only apply that answer.
"""

from __future__ import annotations

import re

from fastapi import Request
from starlette.requests import HTTPConnection

from api.state import ApiState
from hubcore.errors import PermanentError
from hubcore.security.context import authenticated
from hubcore.security.principal import Principal
from hubcore.security.rbac import ForbiddenError

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.hub
    return state


def get_state_conn(conn: HTTPConnection) -> ApiState:
    state: ApiState = conn.app.state.hub
    return state


def principal_of(conn: HTTPConnection) -> Principal | None:
    return getattr(conn.state, "principal", None)


def header_tenant(conn: HTTPConnection) -> str | None:
    """The tenant named by ``X-Scope-OrgID`` (validated), or None."""
    value = conn.headers.get("x-scope-orgid")
    if value is None:
        return None
    value = value.strip()
    if not _TENANT.match(value):
        raise PermanentError(
            "X-Scope-OrgID must be 1-128 characters of letters, digits, '_', '.', '-'", reason="bad_tenant"
        )
    return value


def ensure_tenant_access(conn: HTTPConnection, tenant: str) -> str:
    """``tenant`` if the caller may act on it (its own, or any for a cross-tenant principal); else 403."""
    return _check(conn, tenant)


def _check(conn: HTTPConnection, tenant: str) -> str:
    if tenant != "*" and not _TENANT.match(tenant):
        raise PermanentError("tenant must be 1-128 characters of letters, digits, '_', '.', '-'", reason="bad_tenant")
    p = principal_of(conn)
    if p is not None and tenant != p.tenant_id and not p.cross_tenant:
        raise ForbiddenError(f"denied: {p.subject} may not access tenant {tenant!r}")
    return tenant


def read_tenant(request: HTTPConnection, state: ApiState, requested: str | None = None) -> str:
    """The tenant a read is scoped to: the header, else ``requested`` (``?tenant=``), else the caller's.

    ``"*"`` (every tenant) only for a principal allowed to cross tenants (platform admins).
    """
    p = principal_of(request)
    asked = header_tenant(request) or requested
    if asked is None:
        return p.tenant_id if p is not None else state.default_tenant
    return _check(request, asked)


def write_tenant(conn: HTTPConnection, requested: str | None = None) -> str | None:
    """The tenant a write goes to. With a credential: the allowed header (or ``requested``) or the
    credential's tenant. Without (auth off): the header, else None (``tags.tenant_id`` or the default)."""
    asked = header_tenant(conn) or requested
    p = principal_of(conn)
    if authenticated(p):
        assert p is not None
        return _check(conn, asked) if asked else p.tenant_id
    return asked
