"""Who is calling: the :class:`Principal` every authenticated request carries, and :class:`AuthError`.

>>> p = Principal("alice", "acme", frozenset({"analytics_viewer"}), frozenset({"events:read"}))
>>> p.has("events:read"), p.has("events:write")
(True, False)
>>> AuthError("token_expired", "the token expired at 2026-01-01T00:00:00Z").www_authenticate("hub")
'Bearer realm="hub", error="invalid_token", error_description="the token expired at 2026-01-01T00:00:00Z"'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hubcore.errors import HubError

AuthMethod = Literal["api_key", "jwt", "anonymous", "mtls"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``permissions`` is already the union over ``roles`` (see ``rbac``);
    ``cross_tenant`` says the principal *may* act on other tenants when a request explicitly asks."""

    subject: str
    tenant_id: str
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    team: str | None = None
    org: str | None = None
    auth_method: AuthMethod = "anonymous"
    key_id: str | None = None
    cross_tenant: bool = False

    def has(self, permission: str) -> bool:
        return permission in self.permissions


class AuthError(HubError):
    """Authentication failed (→ 401 with ``WWW-Authenticate``). ``code`` is stable and machine-readable:
    ``missing_credentials``, ``bad_scheme``, ``invalid_api_key``, ``token_expired``, ``token_not_yet_valid``,
    ``bad_signature``, ``wrong_issuer``, ``wrong_audience``, ``unknown_key``, ``disallowed_algorithm``,
    ``malformed_token``, ``missing_claim``, ``jwks_unavailable``, ``jwt_not_configured``, ``unknown_client_cert``.
    The message never contains the credential."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def www_authenticate(self, realm: str = "llm-analytics-hub") -> str:
        """The RFC 6750 challenge (``invalid_request`` when no credentials were sent at all)."""
        if self.code == "missing_credentials":
            return f'Bearer realm="{realm}"'
        error = "invalid_request" if self.code == "bad_scheme" else "invalid_token"
        desc = self.message.replace("\\", "").replace('"', "'")
        return f'Bearer realm="{realm}", error="{error}", error_description="{desc}"'
