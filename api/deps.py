"""Request-scoped helpers shared by routers: the API state and the caller's tenant.

The app-wide guard (:mod:`api.security`) has already authenticated the caller and decided the route's
permission for the tenant it asked for; these helpers only apply that answer.

The guard audits the request with the tenant it could see (path, ``X-Scope-OrgID``, ``?tenant=``). A route
may settle on another one (a body's ``tenant``/``tenant_id``, the tenant of the API key it revokes, the header
winning over a path parameter): when the tenant these helpers resolve is not one already recorded for the
request, :func:`audit_target` writes a record naming it, allowed or denied, so the audit log always names
the tenant whose data was acted upon (``target_tenant_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from starlette.requests import HTTPConnection

from api.state import ApiState
from hubcore.errors import InvalidParameter, PermanentError
from hubcore.security.audit import AuditLog
from hubcore.security.context import authenticated
from hubcore.security.principal import Principal
from hubcore.security.rbac import ForbiddenError, Resource, decide
from hubcore.tenants import ALL_TENANTS, INTERNAL_TENANT, TENANT_RE, TENANT_RULE


@dataclass
class AuditScope:
    """What the guard audited for a request (``conn.state.audit_scope``), for :func:`audit_target`."""

    audit: AuditLog
    action: str
    resource_type: str
    #: appended to ``<resource_type>/<tenant>`` in the record (the method and route of a write)
    resource_suffix: str
    #: whether an allowed action is recorded (writes always; reads with ``service.audit.log_reads``, or when
    #: they cross tenants)
    record_allowed: bool
    #: the target tenants already recorded for this request
    tenants: set[str] = field(default_factory=set)


def state_of(conn: HTTPConnection) -> ApiState:
    """The hub's API state, for code that is not a dependency (a ``def`` dependency of its own, a helper)."""
    state: ApiState = conn.app.state.hub
    return state


async def get_state(request: Request) -> ApiState:
    """The route dependency. ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread
    pool, a hand-off to a worker thread and back on every request, here for one attribute read. Only
    dependencies that may block stay ``def`` (the guard: key lookups, audit appends)."""
    return state_of(request)


def principal_of(conn: HTTPConnection) -> Principal | None:
    return getattr(conn.state, "principal", None)


def header_tenant(conn: HTTPConnection, *, hub_tenant: bool = False) -> str | None:
    """The tenant named by ``X-Scope-OrgID`` (validated), or None. ``hub_tenant``: the route also takes the
    hub's own tenant (``_hub``, see :func:`read_tenant`)."""
    value = conn.headers.get("x-scope-orgid")
    if value is None:
        return None
    value = value.strip()
    if not TENANT_RE.match(value) and not (hub_tenant and value == INTERNAL_TENANT):
        raise PermanentError(f"X-Scope-OrgID must be {TENANT_RULE}", reason="bad_tenant")
    return value


def ensure_tenant_access(conn: HTTPConnection, tenant: str) -> str:
    """``tenant`` if the caller may act on it (its own, or any for a cross-tenant principal); else 403."""
    return _check(conn, tenant)


def _check(conn: HTTPConnection, tenant: str, *, hub_tenant: bool = False) -> str:
    named = tenant == ALL_TENANTS or (hub_tenant and tenant == INTERNAL_TENANT) or TENANT_RE.match(tenant)
    if not named:
        raise PermanentError(f"tenant must be {TENANT_RULE}", reason="bad_tenant")
    p = principal_of(conn)
    if p is not None and tenant != p.tenant_id and not p.cross_tenant:
        reason = f"denied: {p.subject} may not access tenant {tenant!r}"
        audit_target(conn, p, tenant, denied=reason)
        raise ForbiddenError(reason)
    if p is not None:
        audit_target(conn, p, tenant)
    return tenant


def audit_target(conn: HTTPConnection, principal: Principal, tenant: str, *, denied: str | None = None) -> None:
    """Record the request's action on ``tenant`` unless the guard (or an earlier call) already recorded that
    target tenant for this request. ``denied``: the reason when the route refuses the tenant, or refuses the
    record's team (:func:`ensure_team_access`) — a refusal is always recorded, even on a tenant the guard
    already recorded as allowed (it saw only ``?team=``)."""
    scope: AuditScope | None = getattr(conn.state, "audit_scope", None)
    if scope is None or (denied is None and tenant in scope.tenants):
        return
    scope.tenants.add(tenant)
    if denied is None and not scope.record_allowed and tenant == principal.tenant_id:
        return  # an allowed read of the caller's own tenant (cross-tenant access is always recorded)
    scope.audit.record(
        principal, scope.action, f"{scope.resource_type}/{tenant}{scope.resource_suffix}",
        target_tenant_id=tenant, outcome="denied" if denied else "allowed",
        reason=denied or f"allowed: {scope.action} on {scope.resource_type} of tenant {tenant}",
        source_ip=conn.client.host if conn.client else None, user_agent=conn.headers.get("user-agent"),
    )  # fmt: skip


def team_limited(conn: HTTPConnection) -> bool:
    """Whether the caller's team-scoped actions are limited to its own team (a principal without
    ``teams:all``): only then can :func:`team_allowed` say no."""
    p = principal_of(conn)
    return p is not None and "teams:all" not in p.permissions


def team_allowed(conn: HTTPConnection, action: str, resource_type: str, tenant: str, team: str | None) -> bool:
    """Whether the caller may do the team-scoped ``action`` on a resource of ``team`` (rule 4), without
    raising or auditing: for routes that leave out another team's records (a bulk DLQ replay, the
    Alertmanager webhook) rather than refuse the whole request. A resource with no team: True."""
    p = principal_of(conn)
    if p is None or team is None:
        return True
    return decide(p, action, Resource(resource_type, tenant, team=team), cross_tenant=tenant != p.tenant_id).allowed


def ensure_team_access(
    conn: HTTPConnection, action: str, resource_type: str, tenant: str, team: str | None, *, what: str | None = None
) -> None:
    """403 unless the caller may do the team-scoped ``action`` on a resource of ``team`` (rule 4 of
    :func:`hubcore.security.rbac.decide`): the route knows the resource's team (a budget's ``team``, an
    alert's or a rule's ``labels.team``, a dead letter's ``tags.team``, an anomaly's series label), which
    the guard, seeing only ``?team=``, cannot. ``what`` names the record in the 403's message
    (``dead-letter entry 'e1'``); the audit record keeps the decision's reason."""
    p = principal_of(conn)
    if p is None or team is None:
        return
    decision = decide(p, action, Resource(resource_type, tenant, team=team), cross_tenant=tenant != p.tenant_id)
    if not decision.allowed:
        audit_target(conn, p, tenant, denied=decision.reason)
        raise ForbiddenError(f"{what}: {decision.reason}" if what else decision.reason)


def read_tenant(
    request: HTTPConnection,
    state: ApiState,
    requested: str | None = None,
    *,
    all_tenants: bool = False,
    hub_tenant: bool = False,
) -> str:
    """The tenant a read is scoped to: the header, else ``requested`` (``?tenant=``), else the caller's.

    ``"*"`` (every tenant) only where the route reads every tenant (``all_tenants``: alerts, audit, event
    export) and only for a principal allowed to cross tenants (platform admins); elsewhere it is a 422 rather
    than a literal tenant that matches nothing (an erasure of ``*`` had answered 200, deleting nothing).

    ``"_hub"`` (the hub's own traces, :data:`hubcore.tenants.INTERNAL_TENANT`) only where the route reads
    OTLP data back (``hub_tenant``: spans, traces, logs, metric points; the guard lets the header through on
    the same routes, :data:`api.security.HUB_TENANT_ROUTES`) and, like ``"*"``, only for a principal allowed
    to cross tenants (the 403 of a foreign tenant otherwise); elsewhere it stays a 400 ``bad_tenant``.
    """
    p = principal_of(request)
    asked = header_tenant(request, hub_tenant=hub_tenant) or requested
    if asked == ALL_TENANTS and not all_tenants:
        raise InvalidParameter('tenant "*" (every tenant) is not supported here; name one tenant')
    if asked is None:
        if p is None:
            return state.default_tenant
        audit_target(request, p, p.tenant_id)
        return p.tenant_id
    return _check(request, asked, hub_tenant=hub_tenant)


def write_tenant(conn: HTTPConnection, requested: str | None = None) -> str | None:
    """The tenant a write goes to. With a credential: the allowed header (or ``requested``) or the
    credential's tenant. Without (auth off): the header, else None (``tags.tenant_id`` or the default)."""
    asked = header_tenant(conn) or requested
    if asked is not None and not TENANT_RE.match(asked):
        raise PermanentError(f"tenant must be {TENANT_RULE}", reason="bad_tenant")
    p = principal_of(conn)
    if authenticated(p):
        assert p is not None
        if asked:
            return _check(conn, asked)
        audit_target(conn, p, p.tenant_id)
        return p.tenant_id
    return asked


def check_known_params(
    request: HTTPConnection, names: tuple[str, ...], *, repeatable: tuple[str, ...] = (), hint: str = ""
) -> None:
    """422 ``unknown_parameter`` for a query parameter the route does not take: a typo (``types=``,
    ``start_time=``) would otherwise be ignored and answer, say, every type instead of the one asked for.
    422 ``repeated_parameter`` for one given twice that is not in ``repeatable`` (``limit=1&limit=2``: the
    route would silently use the last). ``hint`` ends the unknown-parameter message (what to do instead).

        >>> from starlette.requests import Request
        >>> check_known_params(Request({"type": "http", "query_string": b"state=firing"}), ("state",))
        >>> check_known_params(Request({"type": "http", "query_string": b"status=firing"}), ("state", "tenant"))
        Traceback (most recent call last):
        ...
        hubcore.errors.InvalidParameter: unknown query parameter 'status'; use state, tenant
    """
    seen: set[str] = set()
    for key, _ in request.query_params.multi_items():
        if key not in names:
            use = f"use {', '.join(names)}" if names else "this route takes no query parameters"
            raise InvalidParameter(f"unknown query parameter {key[:64]!r}; {use}{hint}", reason="unknown_parameter")
        if key in seen and key not in repeatable:
            raise InvalidParameter(f"query parameter {key!r} is given more than once; give it once",
                                   reason="repeated_parameter")  # fmt: skip
        seen.add(key)
