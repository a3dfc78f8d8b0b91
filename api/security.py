"""Every API route goes through here: authenticate, rate-limit, decide, audit.

One table, :data:`ROUTE_PERMISSIONS`, maps each route (method, path template) to the permission and
the resource type it needs; :func:`hubcore.security.rbac.decide` makes the decision. A route missing
from the table is refused (fail closed) and ``tests/security_api`` checks that every route is listed.

The caller's principal lands in ``request.state.principal``; :func:`api.deps.read_tenant` and
:func:`api.deps.write_tenant` scope reads and writes with it.
"""

# No ``from __future__ import annotations``: FastAPI resolves these signatures at runtime.

from starlette.requests import HTTPConnection

from api.deps import AuditScope, header_tenant, state_of
from api.state import ApiState
from hubcore.errors import HubError
from hubcore.security.asgi_tls import client_cert_subject
from hubcore.security.principal import Principal
from hubcore.security.rbac import ForbiddenError, Resource, decide

#: Routes that need no credential (probes; the docs and the OpenAPI schema describe no data).
PUBLIC = frozenset({"/healthz", "/readyz", "/docs", "/openapi.json"}) | frozenset(
    {
        # The web console's page shells and static files (api/console): like /docs they hold no data; their
        # JavaScript calls /api/v1/* with the user's own credential. api.console.PUBLIC_PATHS is the same set.
        "/", "/console", "/console/performance", "/console/cost", "/console/security", "/console/governance",
        "/console/anomalies", "/console/correlations", "/console/alerts", "/console/events",
        "/console/static/{path:path}",
    }
)  # fmt: skip

#: (method, route path) -> (permission, resource type). WS = a WebSocket route.
ROUTE_PERMISSIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/metrics"): ("metrics:read", "metrics"),
    ("POST", "/api/v1/events"): ("events:write", "events"),
    ("GET", "/api/v1/events"): ("events:read", "events"),
    ("GET", "/api/v1/traces/{trace_id}"): ("events:read", "traces"),
    ("GET", "/api/v1/spans"): ("events:read", "traces"),
    ("GET", "/api/v1/logs"): ("events:read", "logs"),
    ("GET", "/api/v1/metrics"): ("events:read", "metric_points"),
    ("GET", "/api/v1/metrics/names"): ("events:read", "metric_points"),
    ("WS", "/ws/events"): ("events:write", "events"),
    ("GET", "/api/v1/schemas"): ("schemas:read", "schemas"),
    ("GET", "/api/v1/schemas/{version}"): ("schemas:read", "schemas"),
    ("GET", "/api/v1/dlq"): ("dlq:read", "dlq"),
    ("POST", "/api/v1/dlq/replay"): ("dlq:replay", "dlq"),
    ("POST", "/api/v1/query"): ("query:run", "query"),
    ("POST", "/api/v1/query/batch"): ("query:run", "query"),
    ("POST", "/api/v1/query/export"): ("query:export", "query"),
    ("GET", "/api/v1/events/export"): ("query:export", "events"),
    ("GET", "/api/v1/metrics/catalog"): ("analytics:read", "catalog"),
    ("POST", "/api/v1/keys"): ("keys:manage", "keys"),
    ("GET", "/api/v1/keys"): ("keys:manage", "keys"),
    ("DELETE", "/api/v1/keys/{key_id}"): ("keys:manage", "keys"),
    ("GET", "/api/v1/audit"): ("audit:read", "audit"),
    ("DELETE", "/api/v1/tenants/{tenant_id}/data"): ("data:erase", "tenant"),
    ("DELETE", "/api/v1/tenants/{tenant_id}/users/{user_id}/data"): ("data:erase", "tenant"),
    ("GET", "/api/v1/correlations"): ("correlations:read", "correlations"),
    ("POST", "/api/v1/correlations/analyze"): ("rca:run", "correlations"),
    ("GET", "/api/v1/incidents"): ("incidents:read", "incidents"),
    ("GET", "/api/v1/incidents/{incident_id}"): ("incidents:read", "incidents"),
    ("GET", "/api/v1/incidents/{incident_id}/rca"): ("incidents:read", "incidents"),
    ("GET", "/api/v1/dependencies"): ("correlations:read", "dependencies"),
    ("GET", "/api/v1/policy/compliance/report"): ("analytics:read", "compliance"),
    ("GET", "/api/v1/security/threat-intel"): ("analytics:read", "threat_intel"),
    ("GET", "/api/v1/alerts"): ("alerts:read", "alerts"),
    ("GET", "/api/v1/alerts/{alert_id}"): ("alerts:read", "alerts"),
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): ("alerts:ack", "alerts"),
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): ("alerts:ack", "alerts"),
    ("GET", "/api/v1/alerts/rules"): ("alerts:read", "alert_rules"),
    ("GET", "/api/v1/alerts/rules/{rule_id}"): ("alerts:read", "alert_rules"),
    ("POST", "/api/v1/alerts/rules"): ("alerts:manage", "alert_rules"),
    ("DELETE", "/api/v1/alerts/rules/{rule_id}"): ("alerts:manage", "alert_rules"),
    ("POST", "/api/v1/alerts/alertmanager"): ("alerts:manage", "alerts"),
    ("GET", "/console/stream"): ("dashboards:read", "dashboards"),
    ("GET", "/api/v1/anomalies"): ("anomalies:read", "anomalies"),
    ("POST", "/api/v1/anomalies/{anomaly_id}/feedback"): ("anomalies:feedback", "anomalies"),
    ("DELETE", "/api/v1/anomalies/{anomaly_id}/feedback"): ("anomalies:feedback", "anomalies"),
    ("GET", "/api/v1/anomalies/feedback"): ("anomalies:read", "anomalies"),
    ("DELETE", "/api/v1/anomalies/feedback"): ("anomalies:feedback", "anomalies"),
    ("GET", "/api/v1/forecast"): ("forecasts:read", "forecasts"),
    ("POST", "/api/v1/whatif"): ("whatif:run", "whatif"),
    ("GET", "/api/v1/budgets"): ("budgets:read", "budgets"),
    ("POST", "/api/v1/budgets"): ("budgets:write", "budgets"),
    ("GET", "/api/v1/budgets/{budget_id}"): ("budgets:read", "budgets"),
    ("PUT", "/api/v1/budgets/{budget_id}"): ("budgets:write", "budgets"),
    ("DELETE", "/api/v1/budgets/{budget_id}"): ("budgets:write", "budgets"),
    ("GET", "/api/v1/analytics/series"): ("analytics:read", "derived_series"),
}


#: The routes that read OTLP data back and so also take the hub's own tenant, ``_hub`` (its self-traces,
#: :mod:`hub.selftrace`), in ``X-Scope-OrgID`` or ``?tenant=``: a platform-level read, decided like any other
#: tenant's (only a principal allowed to cross tenants, and audited as such). Their handlers pass
#: ``hub_tenant=True`` to :func:`api.deps.read_tenant`; every other route refuses ``_hub`` (400 ``bad_tenant``).
HUB_TENANT_ROUTES = frozenset(
    {
        ("GET", "/api/v1/traces/{trace_id}"), ("GET", "/api/v1/spans"), ("GET", "/api/v1/logs"),
        ("GET", "/api/v1/metrics"), ("GET", "/api/v1/metrics/names"),
    }
)  # fmt: skip


class RateLimited(HubError):
    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def route_key(conn: HTTPConnection) -> tuple[str, str]:
    route = conn.scope.get("route")
    path = getattr(route, "path", conn.url.path)
    method = "WS" if conn.scope["type"] == "websocket" else conn.scope.get("method", "GET")
    return method, path


def requested_tenant(conn: HTTPConnection, *, hub_tenant: bool = False) -> str | None:
    """The tenant a request asks for: the path's ``tenant_id``, ``X-Scope-OrgID`` or ``?tenant=``
    (``hub_tenant``: a route of :data:`HUB_TENANT_ROUTES`, whose header may name ``_hub``)."""
    header = header_tenant(conn, hub_tenant=hub_tenant)
    return conn.path_params.get("tenant_id") or header or conn.query_params.get("tenant") or None


#: Actions that only read data: their allowed calls are audited with ``service.audit.log_reads`` only
#: (or when they cross tenants). ``query:run`` reads like the ``*:read`` permissions; ``query:export``
#: (bulk extraction) is always audited.
READ_ACTIONS = frozenset({"query:run"})


def is_read(action: str) -> bool:
    """Whether ``action`` only reads (see :data:`READ_ACTIONS`)."""
    return action.endswith(":read") or action in READ_ACTIONS


def guard(conn: HTTPConnection) -> Principal:
    """The app-wide dependency. Raises AuthError (401), RateLimited (429), ForbiddenError (403); for a
    WebSocket the error handlers answer the handshake with that status (:func:`api.errors.deliver`).

    A plain ``def``, so FastAPI runs it in the thread pool: authenticating may read the key store or fetch
    JWKS, and the audit append writes a file. It reads the state itself rather than through a sub-dependency
    (each one resolved costs every request of every route)."""
    return _guard(conn, state_of(conn))


def _metrics_public(state: ApiState) -> bool:
    """``service.telemetry.metrics_public``, which unset follows auth: public only when auth is off."""
    public = state.config.service.telemetry.metrics_public
    return not state.security.enabled if public is None else public


def _guard(conn: HTTPConnection, state: ApiState) -> Principal:
    method, path = route_key(conn)
    sec = state.security
    if path in PUBLIC or (path == "/metrics" and _metrics_public(state)):
        conn.state.principal = sec.authenticator.authenticate(None) if not sec.enabled else None
        return conn.state.principal
    principal = sec.authenticator.authenticate(
        conn.headers.get("authorization"), client_cert_subject=client_cert_subject(conn.scope)
    )
    conn.state.principal = principal
    if sec.quotas is not None:
        retry = sec.quotas.check_request(principal)
        if retry is not None:
            raise RateLimited(retry, f"API call rate limit reached for {principal.subject}; retry later")
    needed = ROUTE_PERMISSIONS.get((method, path))
    if needed is None:
        raise ForbiddenError(f"denied: route {method} {path} has no permission mapping (fail closed)")
    action, rtype = needed
    asked = requested_tenant(conn, hub_tenant=(method, path) in HUB_TENANT_ROUTES)
    tenant = asked or principal.tenant_id
    resource = Resource(rtype, tenant, team=conn.query_params.get("team"))
    decision = decide(principal, action, resource, cross_tenant=tenant != principal.tenant_id)
    audit = sec.audit
    if audit is not None:
        record_allowed = not is_read(action) or sec.log_reads
        suffix = "" if method in ("GET", "WS") else " " + method + " " + path
        # a read of another tenant's data is always recorded: cross-tenant access is what audits are for
        if not decision.allowed or record_allowed or tenant != principal.tenant_id:
            # tenant_id: the principal's tenant (who); target_tenant_id: the tenant acted upon (on whom)
            audit.record(
                principal, action, f"{rtype}/{tenant}{suffix}", target_tenant_id=tenant,
                outcome="allowed" if decision.allowed else "denied", reason=decision.reason,
                source_ip=conn.client.host if conn.client else None, user_agent=conn.headers.get("user-agent"),
                # ingest batches are many: written and hash-chained, but not fsynced one by one
                sync=None if (action != "events:write" or not decision.allowed) else False,
            )  # fmt: skip
        # a route that settles on another tenant (a body field, a key's tenant) records that one too
        conn.state.audit_scope = AuditScope(audit, action, rtype, suffix, record_allowed, {tenant})
    if not decision.allowed:
        raise ForbiddenError(decision.reason)
    return principal
