"""The hub's security blocks, built from ``service.*``: key store, JWT verifier, authenticator, quotas, audit log.

:class:`~hub.service.HubService` builds them once, in its constructor; the audit log's tail is repaired at start,
once the store holds the data directory's lock.

    >>> from hubcore.config import HubConfig
    >>> from hubcore.telemetry import HubMetrics
    >>> security = build_security(HubConfig(), HubMetrics())   # doctest: +SKIP
    >>> _storage_quotas(HubConfig())   # quotas are off by default: no storage accounting
    False
"""

from __future__ import annotations

from api.state import SecurityContext
from hubcore.config import HubConfig
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.audit import AuditLog
from hubcore.security.authenticator import Authenticator
from hubcore.security.jwt import JwtVerifier
from hubcore.security.quotas import Quotas
from hubcore.security.rbac import RoleRegistry
from hubcore.telemetry import HubMetrics


def _storage_quotas(config: HubConfig) -> bool:
    q = config.service.quotas
    return q.enabled and (q.storage_bytes is not None or any(t.storage_bytes for t in q.tenants.values()))


def build_security(config: HubConfig, metrics: HubMetrics) -> SecurityContext:
    """Key store, JWT verifier, authenticator, quotas and audit log from ``service.*``."""
    sec = config.service
    data_dir = config.exporters.embedded.data_dir
    default_tenant = config.processors.native_events.default_tenant
    registry = RoleRegistry.from_config(sec.auth.roles)
    key_store = ApiKeyStore(data_dir, registry=registry, cache_seconds=sec.auth.key_cache_seconds)
    verifier = JwtVerifier(sec.auth.jwt, registry=registry) if sec.auth.jwt is not None else None
    authenticator = Authenticator(sec.auth, key_store, verifier, default_tenant=default_tenant, registry=registry)
    quotas = Quotas(sec.quotas, registry=metrics.registry) if sec.quotas.enabled else None
    audit = (  # its tail is repaired by HubService.start, once the store holds the data directory's lock
        AuditLog(data_dir, fsync=sec.audit.fsync, directory=sec.audit.directory, recover=False)
        if sec.audit.enabled
        else None
    )
    return SecurityContext(
        authenticator=authenticator,
        enabled=sec.auth.enabled,
        quotas=quotas,
        audit=audit,
        key_store=key_store,
        log_reads=sec.audit.log_reads,
    )
