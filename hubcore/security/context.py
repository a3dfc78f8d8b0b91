"""The principal of the request being served, for code that does not see the request (receivers).

The auth layer (API dependency, gRPC interceptor, OTLP/HTTP middleware) sets it; receivers ask it
which tenant a request writes to:

    >>> from hubcore.security.principal import Principal
    >>> p = Principal("svc", "acme", frozenset({"ingest"}), frozenset({"events:write"}), auth_method="api_key")
    >>> token = CURRENT_PRINCIPAL.set(p)
    >>> tenant_for_write(None, default_tenant="default")
    ('acme', False)
    >>> CURRENT_PRINCIPAL.reset(token)
    >>> tenant_for_write(None, default_tenant="default")
    ('default', True)
"""

from __future__ import annotations

from contextvars import ContextVar

from hubcore.security.principal import Principal

CURRENT_PRINCIPAL: ContextVar[Principal | None] = ContextVar("hub_principal", default=None)


def current_principal() -> Principal | None:
    return CURRENT_PRINCIPAL.get()


def authenticated(p: Principal | None) -> bool:
    """True for a real credential (not the anonymous principal of an open hub)."""
    return p is not None and p.auth_method != "anonymous"


def tenant_for_write(requested: str | None, *, default_tenant: str) -> tuple[str, bool]:
    """``(tenant, data_may_name_tenant)`` for a write.

    With a credential the tenant is the credential's (or the requested one, which the auth layer has
    already allowed), and tenant attributes inside the data are ignored. Without one (auth off), the
    requested tenant, else the default, and the data may name its own tenant.
    """
    p = CURRENT_PRINCIPAL.get()
    if authenticated(p):
        assert p is not None
        return (requested or p.tenant_id), False
    if requested:
        return requested, False
    return default_tenant, True
