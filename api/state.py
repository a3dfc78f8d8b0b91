"""What the API's routers need from the running hub (injected; no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hubcore.config import HubConfig
from hubcore.contracts import EventsConsumer
from hubcore.dlq import DeadLetterQueue
from hubcore.security.apikeys import ApiKeyStore
from hubcore.security.audit import AuditLog
from hubcore.security.authenticator import Authenticator
from hubcore.security.config import AuthConfig
from hubcore.security.quotas import Quotas
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics


class DlqReplayer(Protocol):
    def replay_dlq(self, *, tenant_id: str | None, ids: list[str] | None = None) -> tuple[int, int]: ...


class IngestPipelineLike(EventsConsumer, DlqReplayer, Protocol):
    def reject_request(self, receiver: str, reason: str) -> None: ...


@dataclass
class SecurityContext:
    """The security blocks the API and receivers share (``hubcore.security``)."""

    authenticator: Authenticator
    enabled: bool = False
    quotas: Quotas | None = None
    audit: AuditLog | None = None
    key_store: ApiKeyStore | None = None
    log_reads: bool = False

    @classmethod
    def open(cls, default_tenant: str) -> SecurityContext:
        """Auth off, nothing audited: for tests and tools that build an app by hand."""
        return cls(Authenticator(AuthConfig(), None, None, default_tenant=default_tenant))


@dataclass
class ApiState:
    config: HubConfig
    store: EmbeddedStore
    pipeline: IngestPipelineLike
    dlq: DeadLetterQueue
    metrics: HubMetrics
    security: SecurityContext = field(default_factory=lambda: SecurityContext.open("default"))
    readiness_checks: dict[str, Any] = field(default_factory=dict)

    @property
    def default_tenant(self) -> str:
        return self.config.processors.native_events.default_tenant
