"""Component contracts: what a receiver hands data to, and how components start and stop.

The consumer contract is one method per kind of input. Implementations classify their errors:
:class:`~hubcore.errors.PermanentError` for bad input, :class:`~hubcore.errors.RetryableError` (e.g.
``QueueFullError``) when the caller should come back later.

    >>> from hubcore.contracts import IngestOutcome
    >>> IngestOutcome(accepted=2, rejected=[], duplicates=1).status
    'accepted'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

SignalKind = Literal["metric_points", "logs", "spans"]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to a batch of native events."""

    accepted: int
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0

    @property
    def status(self) -> Literal["accepted", "rejected", "empty"]:
        if self.accepted or self.duplicates:
            return "accepted"
        return "rejected" if self.rejected else "empty"


@runtime_checkable
class EventsConsumer(Protocol):
    """Takes native events (raw JSON each), stores what is valid durably, dead-letters the rest."""

    def consume_events(
        self, raw_events: Sequence[bytes | msgspec.Raw], *, tenant_id: str | None, receiver: str
    ) -> IngestOutcome: ...


@runtime_checkable
class SignalsConsumer(Protocol):
    """Takes OTLP-derived rows (columns of a table in :mod:`hubcore.storage.tables`) durably."""

    def consume_rows(self, kind: SignalKind, columns: dict[str, list[Any]], *, receiver: str) -> None: ...


@runtime_checkable
class Component(Protocol):
    """Start in order, shut down in reverse. ``shutdown`` is idempotent and safe without ``start``."""

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...
