"""What the API's routers need from the running hub (injected; no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from hubcore.config import HubConfig
from hubcore.contracts import EventsConsumer
from hubcore.dlq import DeadLetterQueue
from hubcore.storage.embedded import EmbeddedStore
from hubcore.telemetry import HubMetrics


class DlqReplayer(Protocol):
    def replay_dlq(self, *, tenant_id: str | None, ids: list[str] | None = None) -> tuple[int, int]: ...


class IngestPipelineLike(EventsConsumer, DlqReplayer, Protocol):
    def reject_request(self, receiver: str, reason: str) -> None: ...


@dataclass
class ApiState:
    config: HubConfig
    store: EmbeddedStore
    pipeline: IngestPipelineLike
    dlq: DeadLetterQueue
    metrics: HubMetrics
    readiness_checks: dict[str, Any] = field(default_factory=dict)

    @property
    def default_tenant(self) -> str:
        return self.config.processors.native_events.default_tenant
