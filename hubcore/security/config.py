"""Configuration of the security blocks: ``service.auth``, ``service.tls``, ``service.quotas``, ``service.audit``.

Every key is optional; the defaults are the embedded default (auth off, loopback only, no TLS):

    service:
      auth:
        enabled: true
        api_keys: true                       # accept ``Bearer lah_...`` keys from <data_dir>/auth.sqlite
        key_cache_seconds: 5
        jwt:
          issuer: https://login.example.com/
          audience: llm-analytics-hub
          jwks_url: https://login.example.com/.well-known/jwks.json   # or jwks_file: /etc/hub/jwks.json
          algorithms: [RS256, ES256]
          leeway: 30
        roles:                               # custom roles
          finops: {extends: analytics_viewer, permissions: [budgets:write]}
        orgs:                                # org -> team -> users (fills Principal.team / .org)
          acme: {teams: {ml-platform: [alice, bob]}}
        mtls_subjects:                       # client-certificate CN -> identity (receivers, gRPC)
          collector-1: {tenant_id: acme, role: ingest}
      tls: {enabled: true, cert_file: /etc/hub/tls.crt, key_file: /etc/hub/tls.key,
            ca_file: /etc/hub/ca.crt, client_auth: require}
      quotas:
        api_calls_per_second: 50
        api_calls_burst: 100
        events_per_second: 5000
        events_burst: 20000
        tenants: {acme: {events_per_second: 20000, storage_bytes: 50_000_000_000}}
      audit: {enabled: true, fsync: true}

Each struct validates itself with :meth:`validate` (``ConfigError`` naming the YAML key):

    >>> AuthConfig(roles={"x": CustomRoleConfig(permissions=["nope:do"])}).validate()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hubcore.errors.ConfigError: service.auth.roles.x.permissions: unknown permission 'nope:do' ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from hubcore.errors import ConfigError
from hubcore.tenants import TENANT_RULE, is_tenant

PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]


class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    pass


class CustomRoleConfig(_Base):
    """A role defined in the config: ``permissions`` (``resource:verb`` or ``resource:*``), optionally
    on top of a built-in or earlier custom role named by ``extends``."""

    permissions: list[str] = []
    extends: str | None = None
    description: str = ""


class OrgConfig(_Base):
    """One organisation: ``teams`` maps a team name to the subjects (users) in it."""

    teams: dict[str, list[str]] = {}


class MtlsIdentity(_Base):
    """Who a client certificate (by subject common name) is."""

    tenant_id: str
    role: str
    team: str | None = None


class JwtConfig(_Base):
    """OAuth 2.0 / OIDC bearer tokens verified locally.

    * ``issuer`` / ``audience``: required; the ``iss`` / ``aud`` claims must match.
    * ``jwks_url`` (fetched with a ``jwks_timeout``, cached ``jwks_cache_seconds``, refetched on an
      unknown ``kid`` at most every ``jwks_min_refresh_seconds``) or ``jwks_file``.
    * ``algorithms``: asymmetric only (RS*/ES*/PS*/EdDSA). HS256 is accepted only when ``hs256_secret``
      is set (use ``${env:HUB_JWT_SECRET}``). ``none`` is never accepted.
    * ``leeway``: clock skew in seconds allowed for ``exp`` / ``nbf`` / ``iat``.
    * ``*_claim``: where the tenant, roles, permissions, team and org are read from.
    """

    issuer: str = ""
    audience: str | list[str] = ""
    jwks_url: str | None = None
    jwks_file: str | None = None
    algorithms: list[str] = msgspec.field(default_factory=lambda: ["RS256", "ES256"])
    hs256_secret: str | None = None
    leeway: Annotated[float, msgspec.Meta(ge=0, le=600)] = 30.0
    jwks_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    jwks_cache_seconds: PositiveFloat = 300.0
    jwks_min_refresh_seconds: NonNegativeFloat = 10.0
    tenant_claim: str = "tenant_id"
    roles_claim: str = "roles"
    permissions_claim: str = "permissions"
    team_claim: str = "team"
    org_claim: str = "org"

    def validate(self, key: str = "service.auth.jwt") -> JwtConfig:
        if not self.issuer:
            raise ConfigError(f"{key}.issuer", "is required (the `iss` every accepted token must carry)")
        if not self.audience:
            raise ConfigError(f"{key}.audience", "is required (the `aud` every accepted token must carry)")
        asymmetric = [a for a in self.algorithms if not a.upper().startswith("HS")]
        for alg in self.algorithms:
            if alg.lower() == "none":
                raise ConfigError(f"{key}.algorithms", "'none' is never accepted")
            if alg not in _ALGORITHMS:
                raise ConfigError(f"{key}.algorithms", f"unknown algorithm {alg!r} (known: {sorted(_ALGORITHMS)})")
            if alg.startswith("HS") and alg != "HS256":
                raise ConfigError(f"{key}.algorithms", f"{alg} is not supported; HS256 only, with hs256_secret")
        if "HS256" in self.algorithms and not self.hs256_secret:
            raise ConfigError(f"{key}.hs256_secret", "is required when algorithms lists HS256")
        if self.hs256_secret is not None and len(self.hs256_secret) < 32:
            raise ConfigError(f"{key}.hs256_secret", "must be at least 32 characters")
        if asymmetric and not (self.jwks_url or self.jwks_file):
            raise ConfigError(key, f"set jwks_url or jwks_file to verify {', '.join(asymmetric)} tokens")
        if self.jwks_url and self.jwks_file:
            raise ConfigError(f"{key}.jwks_file", "set either jwks_url or jwks_file, not both")
        if self.jwks_url and not self.jwks_url.startswith(("https://", "http://")):
            raise ConfigError(f"{key}.jwks_url", f"must be an http(s) URL, got {self.jwks_url!r}")
        if self.jwks_file and not Path(self.jwks_file).is_file():
            raise ConfigError(f"{key}.jwks_file", f"file {self.jwks_file!r} does not exist")
        return self


_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "HS256"}
)


class AuthConfig(_Base):
    """Who may call the hub. Off by default: the embedded default on 127.0.0.1 answers everyone as an
    anonymous platform-level principal of the default tenant (the service refuses a non-loopback bind)."""

    enabled: bool = False
    api_keys: bool = True
    key_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    jwt: JwtConfig | None = None
    roles: dict[str, CustomRoleConfig] = {}
    orgs: dict[str, OrgConfig] = {}
    mtls_subjects: dict[str, MtlsIdentity] = {}
    realm: str = "llm-analytics-hub"

    def validate(self, key: str = "service.auth") -> AuthConfig:
        from hubcore.security.rbac import RoleRegistry

        registry = RoleRegistry.from_config(self.roles, key=f"{key}.roles")
        for subject, ident in self.mtls_subjects.items():
            if not registry.is_known(ident.role):
                raise ConfigError(f"{key}.mtls_subjects.{subject}.role", f"unknown role {ident.role!r}")
            if not is_tenant(ident.tenant_id):
                raise ConfigError(f"{key}.mtls_subjects.{subject}.tenant_id", f"must be {TENANT_RULE}")
        seen: dict[str, str] = {}
        for org, oc in self.orgs.items():
            for team, users in oc.teams.items():
                for user in users:
                    if user in seen and seen[user] != f"{org}/{team}":
                        raise ConfigError(f"{key}.orgs.{org}.teams.{team}", f"user {user!r} is already in {seen[user]}")
                    seen[user] = f"{org}/{team}"
        if self.jwt is not None:
            self.jwt.validate(f"{key}.jwt")
        if self.enabled and not self.api_keys and self.jwt is None and not self.mtls_subjects:
            raise ConfigError(key, "auth is enabled but no method is: enable api_keys, jwt or mtls_subjects")
        return self


class TlsConfig(_Base):
    """TLS for the API, OTLP/HTTP and gRPC listeners (TLS 1.2+). ``client_auth: require`` is mTLS:
    clients must present a certificate signed by ``ca_file``."""

    enabled: bool = False
    cert_file: str = ""
    key_file: str = ""
    ca_file: str | None = None
    client_auth: Literal["none", "optional", "require"] = "none"
    min_version: Literal["1.2", "1.3"] = "1.2"

    def validate(self, key: str = "service.tls") -> TlsConfig:
        if not self.enabled:
            return self
        for name in ("cert_file", "key_file"):
            path = getattr(self, name)
            if not path:
                raise ConfigError(f"{key}.{name}", "is required when TLS is enabled")
            if not Path(path).is_file():
                raise ConfigError(f"{key}.{name}", f"file {path!r} does not exist")
        if self.client_auth != "none" and not self.ca_file:
            raise ConfigError(f"{key}.ca_file", f"is required when client_auth is {self.client_auth!r}")
        if self.ca_file and not Path(self.ca_file).is_file():
            raise ConfigError(f"{key}.ca_file", f"file {self.ca_file!r} does not exist")
        return self


class TenantQuota(_Base):
    """Per-tenant overrides of :class:`QuotasConfig`; unset keys keep the global value."""

    api_calls_per_second: PositiveFloat | None = None
    api_calls_burst: PositiveFloat | None = None
    events_per_second: PositiveFloat | None = None
    events_burst: PositiveFloat | None = None
    storage_bytes: Annotated[int, msgspec.Meta(gt=0)] | None = None


class QuotasConfig(_Base):
    """Token buckets: API calls per API key (or per subject) and per tenant, events per tenant; and an
    optional storage quota per tenant (bytes). ``max_buckets`` bounds memory (idle buckets are evicted)."""

    enabled: bool = False
    api_calls_per_second: PositiveFloat = 50.0
    api_calls_burst: PositiveFloat = 100.0
    key_calls_per_second: PositiveFloat = 20.0
    key_calls_burst: PositiveFloat = 40.0
    events_per_second: PositiveFloat = 10_000.0
    events_burst: PositiveFloat = 50_000.0
    storage_bytes: Annotated[int, msgspec.Meta(gt=0)] | None = None
    max_buckets: Annotated[int, msgspec.Meta(gt=0)] = 100_000
    tenants: dict[str, TenantQuota] = {}

    def validate(self, key: str = "service.quotas") -> QuotasConfig:
        bursts = ("api_calls_burst", "key_calls_burst", "events_burst")
        for name in bursts:
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}", f"must be at least 1 (one call or event), got {getattr(self, name)}")
        for tenant, tq in self.tenants.items():
            for name in ("api_calls_burst", "events_burst"):
                value = getattr(tq, name)
                if value is not None and value < 1:
                    raise ConfigError(f"{key}.tenants.{tenant}.{name}", f"must be at least 1, got {value}")
        return self


class AuditConfig(_Base):
    """The hash-chained audit log at ``<data_dir>/audit/audit.jsonl``. ``fsync`` every append (the
    default) so an acknowledged write is on disk; ``log_reads`` also records successful reads of the caller's
    own tenant (``*:read`` permissions and ``query:run``; cross-tenant reads and denials are always recorded)."""

    enabled: bool = True
    fsync: bool = True
    log_reads: bool = False
    directory: str | None = None

    def validate(self, key: str = "service.audit") -> AuditConfig:
        if self.directory is not None and not self.directory.strip():
            raise ConfigError(f"{key}.directory", "must not be empty (leave it out for <data_dir>/audit)")
        return self
