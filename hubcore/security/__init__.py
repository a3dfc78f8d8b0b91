"""Security building blocks: who is calling, what they may do, how much, and what they did.

    from hubcore.security import (Authenticator, ApiKeyStore, JwtVerifier, RoleRegistry, Resource, decide,
                                  Quotas, AuditLog, server_ssl_context)

* :mod:`~hubcore.security.principal` — ``Principal``, ``AuthError``
* :mod:`~hubcore.security.rbac` — permissions, roles, ``decide(principal, action, resource)``
* :mod:`~hubcore.security.apikeys` — hashed API keys in ``<data_dir>/auth.sqlite``
* :mod:`~hubcore.security.jwt` — OAuth 2.0 / OIDC bearer JWTs against a JWKS
* :mod:`~hubcore.security.authenticator` — header → principal; ``check_bind_safety``
* :mod:`~hubcore.security.quotas` — token-bucket rate limits, storage quota hook
* :mod:`~hubcore.security.audit` — hash-chained audit log and its verification
* :mod:`~hubcore.security.tls` — TLS 1.2+/mTLS contexts and gRPC credentials
* :mod:`~hubcore.security.erasure` — GDPR erasure (embedded store, DLQ, VictoriaMetrics request)
* :mod:`~hubcore.security.config` — ``service.auth`` / ``tls`` / ``quotas`` / ``audit`` config models

The names are imported on first use (PEP 562): ``hubcore.config`` needs only the config models, and
the CLI that loads it (``hub run``, ``hub keys``) should not pay for the JWT client (httpx, PyJWT) or
prometheus_client until something uses them.

See docs/security.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hubcore.lazy import lazy_attribute

if TYPE_CHECKING:
    from hubcore.security.apikeys import ApiKeyInfo, ApiKeyStore, CreatedKey
    from hubcore.security.audit import AuditLog, VerifyResult, iter_records, verify
    from hubcore.security.authenticator import Authenticator, check_bind_safety, is_loopback, open_warning
    from hubcore.security.config import AuditConfig, AuthConfig, JwtConfig, QuotasConfig, TlsConfig
    from hubcore.security.jwt import JwtVerifier
    from hubcore.security.principal import AuthError, Principal
    from hubcore.security.quotas import Quotas, RateLimiter
    from hubcore.security.rbac import (
        BUILTIN_ROLES,
        PERMISSIONS,
        Decision,
        ForbiddenError,
        Hierarchy,
        Resource,
        RoleRegistry,
        decide,
        require,
    )
    from hubcore.security.tls import (
        TlsError,
        client_ssl_context,
        grpc_server_credentials,
        server_ssl_context,
        uvicorn_ssl_kwargs,
    )

__all__ = [
    "BUILTIN_ROLES", "PERMISSIONS", "ApiKeyInfo", "ApiKeyStore", "AuditConfig", "AuditLog", "AuthConfig",
    "AuthError", "Authenticator", "CreatedKey", "Decision", "ForbiddenError", "Hierarchy", "JwtConfig",
    "JwtVerifier", "Principal", "Quotas", "QuotasConfig", "RateLimiter", "Resource", "RoleRegistry", "TlsConfig",
    "TlsError", "VerifyResult", "check_bind_safety", "client_ssl_context", "decide", "grpc_server_credentials",
    "is_loopback", "iter_records", "open_warning", "require", "server_ssl_context", "uvicorn_ssl_kwargs", "verify",
]  # fmt: skip

#: Each public name -> the submodule that defines it.
_SOURCES: dict[str, str] = {
    **dict.fromkeys(("ApiKeyInfo", "ApiKeyStore", "CreatedKey"), "apikeys"),
    **dict.fromkeys(("AuditLog", "VerifyResult", "iter_records", "verify"), "audit"),
    **dict.fromkeys(("Authenticator", "check_bind_safety", "is_loopback", "open_warning"), "authenticator"),
    **dict.fromkeys(("AuditConfig", "AuthConfig", "JwtConfig", "QuotasConfig", "TlsConfig"), "config"),
    "JwtVerifier": "jwt",
    **dict.fromkeys(("AuthError", "Principal"), "principal"),
    **dict.fromkeys(("Quotas", "RateLimiter"), "quotas"),
    **dict.fromkeys(("BUILTIN_ROLES", "PERMISSIONS", "Decision", "ForbiddenError", "Hierarchy", "Resource",
                     "RoleRegistry", "decide", "require"), "rbac"),
    **dict.fromkeys(("TlsError", "client_ssl_context", "grpc_server_credentials", "server_ssl_context",
                     "uvicorn_ssl_kwargs"), "tls"),
}  # fmt: skip

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any misspelt name

    def __getattr__(name: str) -> Any:
        return lazy_attribute(__name__, _SOURCES, name)
