"""From an ``Authorization`` header (or a client certificate) to a :class:`Principal`.

    >>> from hubcore.security.config import AuthConfig
    >>> auth = Authenticator(AuthConfig(enabled=False), None, None)
    >>> p = auth.authenticate(None)
    >>> (p.subject, p.tenant_id, p.auth_method, p.cross_tenant)
    ('anonymous', 'default', 'anonymous', True)
    >>> check_bind_safety("0.0.0.0", auth_enabled=False) is not None
    True
    >>> check_bind_safety("127.0.0.1", auth_enabled=False) is None
    True

* ``Bearer lah_...`` → an API key from the :class:`ApiKeyStore`;
* any other ``Bearer`` token → a JWT, if ``service.auth.jwt`` is configured;
* no header but a verified client certificate whose subject CN is in ``service.auth.mtls_subjects``
  → that identity (mTLS, for receivers and gRPC);
* auth off → an anonymous platform-level principal of the default tenant (the embedded default on
  loopback; :func:`check_bind_safety` makes the service refuse anything else).

When auth is on and the credential is missing or invalid, :class:`AuthError` (→ 401 + ``WWW-Authenticate``).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from hubcore.security.apikeys import KEY_PREFIX, ApiKeyStore
from hubcore.security.config import AuthConfig
from hubcore.security.principal import AuthError, Principal
from hubcore.security.rbac import Hierarchy, RoleRegistry

if TYPE_CHECKING:  # the verifier is handed in; importing it (httpx, PyJWT) would slow `hub run`'s config checks
    from hubcore.security.jwt import JwtVerifier


class Authenticator:
    def __init__(
        self,
        config: AuthConfig,
        key_store: ApiKeyStore | None,
        jwt_verifier: JwtVerifier | None,
        *,
        default_tenant: str = "default",
        registry: RoleRegistry | None = None,
    ) -> None:
        self.config = config
        self.key_store = key_store if config.api_keys else None
        self.jwt_verifier = jwt_verifier
        self.default_tenant = default_tenant
        self.registry = registry or RoleRegistry.from_config(config.roles)
        self.hierarchy = Hierarchy.from_config(config.orgs)
        self._anonymous = self.registry.principal("anonymous", default_tenant, ["platform_admin"])

    def authenticate(self, authorization_header: str | None, *, client_cert_subject: str | None = None) -> Principal:
        if not self.config.enabled:
            return self._anonymous
        if not authorization_header or not authorization_header.strip():
            if client_cert_subject is not None:
                return self.hierarchy.enrich(self._mtls(client_cert_subject))
            raise AuthError("missing_credentials", "authentication is required: send Authorization: Bearer <token>")
        scheme, _, token = authorization_header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("bad_scheme", "the Authorization header must be 'Bearer <API key or JWT>'")
        if token.startswith(KEY_PREFIX):
            if self.key_store is None:
                raise AuthError("invalid_api_key", "API keys are not accepted by this hub")
            principal = self.key_store.verify(token)
            if principal is None:
                raise AuthError("invalid_api_key", "the API key is unknown, revoked or expired")
        elif self.jwt_verifier is not None:
            principal = self.jwt_verifier.verify(token)
        else:
            raise AuthError("jwt_not_configured", "bearer JWTs are not accepted by this hub (no service.auth.jwt)")
        return self.hierarchy.enrich(principal)

    def _mtls(self, subject: str) -> Principal:
        ident = self.config.mtls_subjects.get(subject)
        if ident is None:
            raise AuthError("unknown_client_cert", f"client certificate {subject!r} is not mapped to an identity")
        return self.registry.principal(
            f"mtls:{subject}", ident.tenant_id, [ident.role], team=ident.team, auth_method="mtls"
        )


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``; everything else (``0.0.0.0``, names) is exposed."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_safety(host: str, auth_enabled: bool) -> str | None:
    """An error message when ``host`` is not loopback and auth is off (the service must refuse to
    start), else None. See :func:`open_warning` for the warning to log when running open on loopback."""
    if auth_enabled or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host!r} without authentication: anyone who can reach it could read and "
        "write every tenant's data. Turn authentication on (API keys or JWT): `hub run --auth on` or "
        "service.auth.enabled: true in the config file; or bind to 127.0.0.1."
    )


def open_warning(host: str, auth_enabled: bool) -> str | None:
    """The loud warning to log when the hub runs without authentication on loopback, else None."""
    if auth_enabled or not is_loopback(host):
        return None
    return (
        f"AUTHENTICATION IS OFF: every request to {host} acts as an anonymous platform admin of the default "
        "tenant. This is only safe on a single-user machine; otherwise turn authentication on: `hub run --auth on` "
        "or service.auth.enabled: true in the config file."
    )
