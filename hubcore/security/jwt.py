"""OAuth 2.0 / OIDC bearer JWTs, verified locally with PyJWT against a JWKS (URL or file).

    >>> from hubcore.security.config import JwtConfig
    >>> cfg = JwtConfig(issuer="https://idp", audience="hub", algorithms=["HS256"], hs256_secret="s" * 32)
    >>> import jwt as pyjwt, time
    >>> token = pyjwt.encode({"sub": "alice", "tenant_id": "acme", "roles": ["analytics_viewer"],
    ...     "iss": "https://idp", "aud": "hub", "iat": int(time.time()), "exp": int(time.time()) + 60},
    ...     "s" * 32, algorithm="HS256")
    >>> p = JwtVerifier(cfg).verify(token)
    >>> (p.subject, p.tenant_id, p.auth_method, "events:read" in p.permissions)
    ('alice', 'acme', 'jwt', True)

Verification: the header's ``alg`` must be allowed (``none`` never is; HS256 only with a configured
secret); the key is the JWKS entry named by ``kid`` (an unknown ``kid`` refetches the JWKS, at most
every ``jwks_min_refresh_seconds``; a token without ``kid`` is accepted only when the JWKS has one key);
``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` are checked with ``leeway`` seconds of clock skew; ``sub``,
``exp``, ``iat`` and the tenant claim are required. Failures raise :class:`AuthError` with a code;
an unreachable JWKS with no cached keys raises ``RetryableError`` (→ 503, the IdP is down, not the token).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt

from hubcore.errors import RetryableError
from hubcore.security.config import JwtConfig
from hubcore.security.principal import AuthError, Principal
from hubcore.security.rbac import RoleRegistry
from hubcore.tenants import TENANT_RULE, is_tenant

log = logging.getLogger(__name__)

_ERRORS: list[tuple[type[Exception], str, str]] = [
    (pyjwt.ExpiredSignatureError, "token_expired", "the token has expired"),
    (pyjwt.ImmatureSignatureError, "token_not_yet_valid", "the token is not yet valid (nbf/iat in the future)"),
    (pyjwt.InvalidAudienceError, "wrong_audience", "the token's audience is not this hub"),
    (pyjwt.InvalidIssuerError, "wrong_issuer", "the token's issuer is not the configured one"),
    (pyjwt.InvalidSignatureError, "bad_signature", "the token's signature does not verify"),
    (pyjwt.MissingRequiredClaimError, "missing_claim", "the token lacks a required claim"),
    (pyjwt.InvalidIssuedAtError, "malformed_token", "the token's iat claim is invalid"),
    (pyjwt.InvalidAlgorithmError, "disallowed_algorithm", "the token's algorithm is not allowed"),
    (pyjwt.InvalidKeyError, "bad_signature", "the token's key does not fit its algorithm"),
    (pyjwt.DecodeError, "malformed_token", "the token is not a well-formed JWT"),
    (pyjwt.PyJWTError, "invalid_token", "the token is invalid"),
]


class JwtVerifier:
    """Verify bearer JWTs; thread-safe. ``http_client`` and ``clock`` (monotonic) are injectable."""

    def __init__(
        self,
        config: JwtConfig,
        *,
        registry: RoleRegistry | None = None,
        http_client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.registry = registry or RoleRegistry.from_config({})
        self._http = http_client
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, pyjwt.PyJWK] = {}
        self._key_algs: dict[str | None, str | None] = {}  # the JWK's own "alg", when it names one
        self._fetched_at: float | None = None
        self.fetches = 0
        allowed = {a for a in config.algorithms if not a.startswith("HS")}
        if config.hs256_secret:
            allowed.add("HS256")
        self.algorithms = frozenset(allowed)

    def verify(self, token: str) -> Principal:
        try:
            header = pyjwt.get_unverified_header(token)
        except pyjwt.PyJWTError:
            raise AuthError("malformed_token", "the bearer token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise AuthError(
                "disallowed_algorithm",
                f"algorithm {alg!r} is not accepted (accepted: {', '.join(sorted(self.algorithms))})",
            )
        key: Any
        if alg == "HS256":
            key = (self.config.hs256_secret or "").encode()
        else:
            jwk = self._key_for(header.get("kid"))
            jwk_alg = self._key_algs.get(jwk.key_id)
            if jwk_alg is not None and jwk_alg != alg:
                raise AuthError("disallowed_algorithm", f"the token says {alg} but its key is for {jwk_alg}")
            key = jwk.key
        cfg = self.config
        try:
            claims = pyjwt.decode(
                token, key, algorithms=[alg], audience=cfg.audience, issuer=cfg.issuer, leeway=cfg.leeway,
                options={"require": ["exp", "iat", "sub"]},
            )  # fmt: skip
        except pyjwt.PyJWTError as exc:
            for cls, code, message in _ERRORS:
                if isinstance(exc, cls):
                    detail = f" ({exc})" if code in ("missing_claim",) else ""
                    raise AuthError(code, message + detail) from None
            raise AuthError("invalid_token", "the token is invalid") from None  # pragma: no cover
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        cfg = self.config
        tenant = claims.get(cfg.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise AuthError("missing_claim", f"the token lacks the tenant claim {cfg.tenant_claim!r}")
        if not is_tenant(tenant):
            # "*" would read every tenant and "_hub" the hub's own data: a token names one tenant
            raise AuthError("bad_claim", f"the tenant claim {cfg.tenant_claim!r} must be {TENANT_RULE}")
        team, org = claims.get(cfg.team_claim), claims.get(cfg.org_claim)
        return self.registry.principal(
            str(claims["sub"]), tenant, _names(claims.get(cfg.roles_claim)),
            permissions=_names(claims.get(cfg.permissions_claim)),
            team=team if isinstance(team, str) else None, org=org if isinstance(org, str) else None,
            auth_method="jwt",
        )  # fmt: skip

    # -- JWKS -------------------------------------------------------------------------------------
    def _key_for(self, kid: Any) -> pyjwt.PyJWK:
        kid = kid if isinstance(kid, str) else None
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.config.jwks_cache_seconds
            if stale:
                self._refresh(now)
            key = self._pick(kid)
            since = now - (self._fetched_at if self._fetched_at is not None else now)
            if key is None and not stale and since >= self.config.jwks_min_refresh_seconds:
                self._refresh(now)
                key = self._pick(kid)
        if key is None:
            raise AuthError("unknown_key", f"no key with kid {kid!r} in the JWKS" if kid else "the token has no kid")
        return key

    def _pick(self, kid: str | None) -> pyjwt.PyJWK | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        try:
            data = self._load_jwks()
            keyset = pyjwt.PyJWKSet.from_dict(data)
        except (httpx.HTTPError, OSError, ValueError, pyjwt.PyJWTError) as exc:
            self._fetched_at = now  # do not hammer the IdP; retry after jwks_min_refresh_seconds
            if not self._keys:
                raise RetryableError(f"the JWKS could not be loaded: {exc}", retry_after=5.0) from None
            log.warning("JWKS refresh failed; keeping the cached keys", extra={"error": str(exc)})
            return
        self.fetches += 1
        self._keys = {k.key_id: k for k in keyset.keys}
        self._key_algs = {k.get("kid"): k.get("alg") for k in data.get("keys", []) if isinstance(k, dict)}
        self._fetched_at = now

    def _load_jwks(self) -> dict[str, Any]:
        cfg = self.config
        if cfg.jwks_file:
            data = json.loads(Path(cfg.jwks_file).read_text())
        elif cfg.jwks_url:
            client = self._http or httpx.Client(timeout=cfg.jwks_timeout)
            try:
                resp = client.get(cfg.jwks_url, timeout=cfg.jwks_timeout)
                resp.raise_for_status()
                data = resp.json()
            finally:
                if self._http is None:
                    client.close()
        else:
            raise ValueError("neither jwks_url nor jwks_file is configured")
        if not isinstance(data, dict):
            raise ValueError("the JWKS is not a JSON object")
        return data


def _names(value: Any) -> list[str]:
    """A roles/permissions claim: a list of strings or one space-separated string."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []
